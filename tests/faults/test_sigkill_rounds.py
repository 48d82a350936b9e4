"""SIGKILL at random points, round after round: ``gateway run`` over a drop folder and a folder sink (SQLite).

Each round drops a few more payloads, starts ``python -m gateway run``, and kills it with SIGKILL after a random
delay (seeded; the seed is printed and ``GATEWAY_FAULT_SEED`` replays a run): one kill in five while the process
starts (imports, migrates), the others 0-1.5 s after it logged "gateway running", so kills land while a file is
stored, processed or moved, and while a delivery is claimed, rendered, written or settled. A killed dispatcher's
claims stay ``sending`` until their lease runs out (``dispatch.lease``, 2 s here, 5 minutes by default); the next
round's dispatcher takes them over. After the last round, once the leases have run out, a final
``gateway run --until-idle`` finishes the work.

SQLite only: the database file survives the kill as a server would, and the shared PostgreSQL is not used here.
"""

from __future__ import annotations

import collections
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

from sqlalchemy import func, select

from gateway.model import DeliveryAttempt
from tests.acceptance.crashkit import wait_for
from tests.conftest import write_config
from tests.faults.kit import (
    ROUTE,
    assert_conpas_once,
    assert_received_once,
    connected,
    containers_of,
    deliveries_in,
    open_deliveries,
    payload,
    statuses,
)

CHANNEL = "drops"
ROUNDS = 25
PER_ROUND = 8  # payloads dropped before each round: 200 payloads, 600 CONPAS deliveries in all
LEASE = 2  # seconds
IN_STARTUP = 0.2  # the share of kills that land before the process is ready
KILL_IN_STARTUP = (0.2, 1.0)  # seconds after the spawn
KILL_AFTER_READY = (0.0, 1.5)  # seconds after "gateway running"


def _ready(log: Path) -> bool:
    return b'"event": "gateway running"' in log.read_bytes()


def broken(n: int) -> bytes:
    """A payload of its own that is rejected (no UNT/UNZ): processed once, to failed."""
    return f"UNA:+.? 'UNB+UNOA:2+ONEY:ZZZ+JPTYOCY1:ZZZ+261124:0930+BAD{n:05d}'UNH+1+COPARN:D:95B:UN'".encode()


def test_sigkill_at_random_points_in_many_rounds_loses_nothing_and_does_nothing_twice(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """Breaks if a kill at any point loses a payload (moved before its commit), stores one twice as an original,
    processes one twice (a second container.announced or delivery), writes a second CONPAS file for a delivery
    or container (a resend under another key), leaves a temporary file, or leaves a delivery open after the
    final run."""
    seed = int(os.environ.get("GATEWAY_FAULT_SEED", str(time.time_ns() % 2**32)))
    print(f"GATEWAY_FAULT_SEED={seed}")
    rng = random.Random(seed)
    database = tmp_path / "gateway.db"
    database.write_bytes(sqlite_template.read_bytes())
    url = f"sqlite:///{database}"
    retry = {"max_attempts": 50, "initial_delay": "100ms", "multiplier": 1.5, "max_delay": "1s", "jitter": 0}
    config = write_config(
        tmp_path,
        url,
        dispatch={"lease": f"{LEASE}s"},
        routes={
            ROUTE: {"on": "container.announced", "render": "conpas", "to": {"type": "folder", "path": "outbox"}}
            | {"retry": retry}
        },
    )
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    env = {**os.environ, "GATEWAY_CONFIG": str(config)}
    env.pop("GATEWAY_DATABASE_URL", None)
    sent: list[bytes] = []
    names: list[str] = []
    delays = []
    kills: collections.Counter[str] = collections.Counter()
    started = time.monotonic()
    for round_ in range(ROUNDS):
        for _ in range(PER_ROUND):
            i = len(sent)
            raw = broken(i) if i % 20 == 7 else payload(i)
            (inbox / f"p{i:05d}.edi").write_bytes(raw)
            sent.append(raw)
            names.append(f"p{i:05d}.edi")
        log_path = tmp_path / f"round-{round_}.log"
        with open(log_path, "wb") as log:
            spawned = time.monotonic()
            proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "--log-json", "run", "--no-http"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            if rng.random() < IN_STARTUP:  # while it imports, migrates and syncs partners
                time.sleep(rng.uniform(*KILL_IN_STARTUP))
                where = "startup"
            else:  # while it works: from the spawn's readiness on, whatever the machine's speed
                wait_for(partial(_ready, log_path), 60)
                time.sleep(rng.uniform(*KILL_AFTER_READY))
                where = "running"
            kills[where] += 1
            delays.append(time.monotonic() - spawned)
            assert proc.poll() is None, log_path.read_text()[-2000:]
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
    rounds_took = time.monotonic() - started
    at_end = statuses(url, CHANNEL)
    sending = deliveries_in(url, "sending")  # claims of the last killed dispatcher
    time.sleep(LEASE)
    with open(tmp_path / "final.log", "wb") as log:
        final = subprocess.run(
            [sys.executable, "-m", "gateway", "--log-json", "run", "--no-http", "--until-idle"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=120,
        )
    assert final.returncode == 0, (tmp_path / "final.log").read_text()[-3000:]

    good = [raw for raw in sent if not raw.endswith(b"COPARN:D:95B:UN'")]
    with connected(url) as conn:
        retried = conn.scalar(
            select(func.count(func.distinct(DeliveryAttempt.delivery_id))).where(DeliveryAttempt.number > 1)
        )
    summary = {
        "seed": seed,
        "rounds": ROUNDS,
        "payloads": len(sent),
        "rounds_seconds": round(rounds_took, 1),
        "kills": dict(kills),
        "kill_after_spawn": f"{min(delays):.2f}-{max(delays):.2f} s",
        "before_final_run": dict(at_end),
        "sending_at_last_kill": sending,
        "deliveries_with_more_than_one_attempt": retried,
        "after": dict(statuses(url, CHANNEL)),
    }
    print(summary)
    assert not any(inbox.iterdir()), "files left in the drop folder"
    assert_received_once(url, CHANNEL, sent, outcomes={"done", "failed"})
    final_statuses = statuses(url, CHANNEL)
    assert final_statuses["done"] == len(good) and final_statuses["failed"] == len(sent) - len(good)
    assert open_deliveries(url) == 0
    containers = {n for i, raw in enumerate(sent) if raw in good for n in containers_of(i)}
    assert_conpas_once(url, tmp_path / "outbox", containers)
    # each file moved once, whole: archive (done) or failed, under the id of the row that moved it
    moved: collections.Counter[str] = collections.Counter()
    for folder in ("archive", "failed"):
        for path in (tmp_path / folder).iterdir():
            name = path.name.split("_", 1)[1]
            moved[name] += 1
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            assert digest == hashlib.sha256(sent[names.index(name)]).hexdigest()
    assert moved == collections.Counter(names)
