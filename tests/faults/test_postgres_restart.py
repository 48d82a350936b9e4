"""PostgreSQL crashes and comes back under a running ``gateway run`` (a cluster of the test's own).

The gateway (a real process, folder channel and folder sink, HTTP on a loopback port) works through a batch of
files when the database is stopped with ``pg_ctl stop -m immediate`` (a crash: no checkpoint, connections cut,
recovery from the WAL at the next start). More files are dropped while it is down; then it is started again.
The gateway must not die: its loops log the error and go on, and the connection pool reconnects
(``pool_pre_ping`` in ``gateway/store/db.py``) without a restart of the gateway.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.acceptance.crashkit import GatewayProcess, free_port, wait_for
from tests.conftest import write_config
from tests.faults.kit import (
    ROUTE,
    add_operator,
    assert_conpas_once,
    assert_received_once,
    containers_of,
    open_deliveries,
    payload,
    statuses,
)
from tests.services.postgres_node import OwnPostgres

CHANNEL = "drops"
BEFORE = 40  # files waiting when the gateway starts
DURING = 20  # files dropped while the database is down
LEASE = 3  # seconds: claims whose settle died with the connection are taken over after this (default 5 minutes)


def test_a_postgres_crash_mid_run_loses_nothing_and_does_nothing_twice(
    tmp_path: Path, own_postgres: OwnPostgres
) -> None:
    """Breaks if the gateway process dies with the database, if the pool hands out dead connections after the
    restart (nothing more would be stored), if a file is moved without its commit or stored twice as an
    original, if a container is announced or a CONPAS file written twice, if anything is left received or
    pending, or if the outage is invisible (no logged loop error, /readyz not 503 while the database is down)."""
    url = own_postgres.url
    port = free_port()
    retry = {"max_attempts": 100, "initial_delay": "200ms", "multiplier": 1.5, "max_delay": "2s", "jitter": 0}
    config = write_config(
        tmp_path,
        url,
        http={"enabled": True, "host": "127.0.0.1", "port": port},
        dispatch={"lease": f"{LEASE}s"},
        routes={
            ROUTE: {"on": "container.announced", "render": "conpas", "to": {"type": "folder", "path": "outbox"}}
            | {"retry": retry}
        },
    )
    add_operator(config)  # migrates the own cluster's database
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    sent = [payload(i) for i in range(BEFORE + DURING)]
    for i in range(BEFORE):
        (inbox / f"p{i:03d}.edi").write_bytes(sent[i])
    base = f"http://127.0.0.1:{port}"

    gateway = GatewayProcess(config)
    try:
        gateway.start()
        wait_for(lambda: statuses(url, CHANNEL)["done"] >= 5, 60, gateway.describe)
        own_postgres.stop("immediate")  # the crash
        assert any(inbox.iterdir()), "the crash came after the last file"

        for i in range(BEFORE, BEFORE + DURING):
            (inbox / f"p{i:03d}.edi").write_bytes(sent[i])
        wait_for(lambda: httpx.get(f"{base}/readyz", timeout=15).status_code == 503, 30, gateway.describe)
        ready = httpx.get(f"{base}/readyz", timeout=15).json()
        assert ready == {"status": "unavailable", "reason": "OperationalError", "channels": {CHANNEL: "down"}}
        wait_for(lambda: '"event": "loop error"' in gateway.log_path.read_text(errors="replace"), 15)
        assert '"event": "poll failed"' in gateway.log_path.read_text(errors="replace")  # the folder channel's
        time.sleep(2)  # the loops keep failing for a while
        assert gateway.proc is not None and gateway.proc.poll() is None, "the gateway died with its database"
        assert len(list(inbox.iterdir())) >= DURING, "files moved while nothing could be stored"

        own_postgres.start()  # recovery from the WAL
        wait_for(lambda: not any(inbox.iterdir()), 90, gateway.describe)
        wait_for(lambda: statuses(url, CHANNEL)["received"] == 0, 60, gateway.describe)
        wait_for(
            lambda: httpx.get(f"{base}/readyz", timeout=15).json() == {"status": "ready", "channels": {CHANNEL: "up"}},
            15,
        )
        # deliveries claimed when the connection died stay "sending" until their lease ends, then go again
        wait_for(lambda: open_deliveries(url) == 0, 60, gateway.describe)
        assert gateway.proc.poll() is None
    finally:
        gateway.stop()
    print(f"statuses {dict(statuses(url, CHANNEL))}, deliveries sent again after their lease: {_retaken(url)}")
    assert gateway.starts == 1, "the gateway was never restarted"
    assert_received_once(url, CHANNEL, sent, outcomes={"done"})
    containers = {n for i in range(len(sent)) for n in containers_of(i)}
    assert_conpas_once(url, tmp_path / "outbox", containers)
    archived = sorted(p.name.split("_", 1)[1] for p in (tmp_path / "archive").iterdir())
    assert archived == [f"p{i:03d}.edi" for i in range(len(sent))]


def _retaken(url: str) -> int:
    """Deliveries with more than one attempt settled (the first failed with the connection, or its lease ran
    out)."""
    from sqlalchemy import func, select

    from gateway.model import DeliveryAttempt
    from tests.faults.kit import connected

    with connected(url) as conn:
        query = select(func.count(func.distinct(DeliveryAttempt.delivery_id))).where(DeliveryAttempt.number > 1)
        return int(conn.scalar(query) or 0)
