"""Benchmark: peak memory taking in one large COPARN interchange, the gateway's reader, its whole ingest, pydifact.

Generates one COPARN D.95B interchange of about ``--size-mb`` MB (default 200) into a temporary folder: the
message of bench/ingest_e2e.py, each with its own booking and one container of its own (a valid ISO 6346
check digit), so every message is distinct and makes a deal, a container, a UL090 form and a CONPAS delivery.
Then, each in a child process of its own (so that its peak is its own, not this process's or another run's):

    reader   gateway.edifact streaming the file from disk: the tokenizer, every envelope count and reference,
             every message validated against edifact/D95B/COPARN.yaml (as bench/edifact_parse.py's engine)
    ingest   the whole gateway ingest on SQLite (a file in the temporary folder): Gateway.accept of the file's
             bytes as ``gateway ingest`` does it (store the raw bytes and commit, parse, validate, map, persist,
             CONPAS deliveries queued; not sent); the routes.yaml of bench/ingest_e2e.py
    pydifact the peer: pydifact's Interchange.from_str of the file's text, its validate(), its messages walked
             (pydifact has no streaming reader: it builds the whole interchange)

    .venv/bin/python bench/ingest_memory.py [--size-mb 200] [--only reader,ingest,pydifact]

The ingest of 200 MB (over half a million messages, each a deal) takes as long as the ingest rate says (see
bench/ingest_e2e.py) and, while the writer holds a whole interchange, several GB: ``--size-mb 20`` is a quick
run, ``--only reader,pydifact`` leaves the ingest out.

Each child reads its resident set (VmRSS of /proc/self/status) after its imports and set-up (the baseline:
the gateway's definitions and mapping loaded, its database migrated), does the work, then reads its high-water
mark (VmHWM). Printed per run: seconds, messages/s, peak RSS and MB above the baseline, and the ratios of the
MB above baseline against pydifact's and against the file's size. A benchmark, not a test: it fails only when
a run does not take in every message (the ingest: not accepted, or a deal, container or delivery missing).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))  # ingest_e2e: imported where used, so that a child imports only its own

RUNS = ("reader", "ingest", "pydifact")
MAX_MESSAGES = 999_999  # container_number() numbers containers BNCU000001..BNCU999999


def write_interchange(path: Path, size_mb: float) -> int:
    """One interchange of about ``size_mb`` MB written to ``path`` as it grows; returns its message count."""
    from ingest_e2e import HEADER, MESSAGE, container_number

    limit = int(size_mb * 1_000_000)
    ref = "MEM000001"
    n = 0
    with open(path, "w", encoding="ascii") as fh:
        head = HEADER.format(ref=ref)
        fh.write(head)
        written = len(head)
        while written < limit:
            n += 1
            if n > MAX_MESSAGES:
                raise SystemExit(f"--size-mb {size_mb} needs more than {MAX_MESSAGES} distinct container numbers")
            chunk = MESSAGE.format(m=n, n=n, voyage="001E", container=container_number(n))
            fh.write(chunk)
            written += len(chunk)
        fh.write(f"UNZ+{n}+{ref}'\n")
    return n


def _status_mb(field: str) -> float:
    """A field of /proc/self/status (VmRSS, VmHWM) in MB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise SystemExit(f"no {field} in /proc/self/status")


def child_reader(path: Path) -> tuple[float, float, int]:
    """(baseline MB, seconds, messages): the gateway's EDIFACT reader and validator streaming ``path``."""
    from gateway.edifact.definitions import load
    from gateway.edifact.envelope import Reader
    from gateway.edifact.tokenizer import Tokenizer
    from gateway.edifact.validator import validate

    load()  # the definitions are read once per process, as in the gateway
    base = _status_mb("VmRSS")
    start = time.perf_counter()
    messages = 0
    with open(path, "rb") as fh:
        reader = Reader(Tokenizer(fh))
        for msg in reader:
            if msg.errors or validate(msg):
                raise SystemExit(f"reader: unexpected error in message {msg.number}")
            messages += 1
        if any(i.errors for i in reader.interchanges):
            raise SystemExit("reader: unexpected interchange error")
    return base, time.perf_counter() - start, messages


def child_pydifact(path: Path) -> tuple[float, float, int]:
    """(baseline MB, seconds, messages): pydifact building the whole interchange from the file's text."""
    import warnings

    from pydifact.segmentcollection import Interchange

    warnings.simplefilter("ignore")
    base = _status_mb("VmRSS")
    start = time.perf_counter()
    interchange = Interchange.from_str(path.read_text(encoding="latin-1"))
    interchange.validate()  # pydifact's own check: envelope header and footer
    messages = sum(1 for _ in interchange.get_messages())
    return base, time.perf_counter() - start, messages


def child_ingest(path: Path, work: Path) -> tuple[float, float, int]:
    """(baseline MB, seconds, messages): Gateway.accept of the file on a fresh SQLite database in ``work``."""
    import structlog
    from ingest_e2e import CHANNEL, ROUTE, ROUTES_YAML
    from sqlalchemy import func, select

    from gateway import config as config_mod
    from gateway import logs
    from gateway.app import Gateway
    from gateway.edifact.definitions import load
    from gateway.model import Container, Deal, Delivery

    os.environ.pop(config_mod.ENV_DATABASE_URL, None)  # the database is this benchmark's own
    logs.configure("INFO", json_lines=True)  # as in service, into /dev/null: its cost is counted
    devnull = open(os.devnull, "w")  # noqa: SIM115
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(devnull))
    routes = work / "routes.yaml"
    routes.write_text(
        ROUTES_YAML.format(
            db=work / "gateway.db", channel=CHANNEL, tmp=work, root=ROOT, route=ROUTE, outbox=work / "outbox"
        ),
        encoding="utf-8",
    )
    gw = Gateway(config_mod.load(routes))  # migrates the new database
    try:
        load()
        with gw.sessions() as s:  # the mapping and the ORM warmed by a query, as a running gateway has them
            s.scalar(select(func.count()).select_from(Deal))
        base = _status_mb("VmRSS")
        start = time.perf_counter()
        result = gw.accept(path.read_bytes(), channel=CHANNEL, filename=path.name)  # as `gateway ingest` reads it
        seconds = time.perf_counter() - start
        if result.status != "accepted":
            raise SystemExit(f"ingest: {path.name} {result.status}: {result.errors[:3]}")
        with gw.sessions() as s:
            deals = s.scalar(select(func.count()).select_from(Deal)) or 0
            containers = s.scalar(select(func.count()).select_from(Container)) or 0
            queued = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "pending")) or 0
        if not deals == containers == queued == result.messages:
            raise SystemExit(
                f"ingest: {result.messages} messages gave {deals} deals, {containers} containers, {queued} deliveries"
            )
        return base, seconds, result.messages
    finally:
        gw.close()


def child(run: str, path: str, work: str) -> None:
    """Run one of RUNS over ``path`` and print its figures as JSON."""
    if run == "reader":
        base, seconds, messages = child_reader(Path(path))
    elif run == "pydifact":
        base, seconds, messages = child_pydifact(Path(path))
    else:
        base, seconds, messages = child_ingest(Path(path), Path(work))
    peak = _status_mb("VmHWM")
    print(json.dumps({"baseline_mb": base, "peak_mb": peak, "seconds": seconds, "messages": messages}))


def run_child(run: str, path: Path, work: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, __file__, "--child", run, str(path), str(work)],
        capture_output=True,
        text=True,
        env=env,
    )
    if out.returncode:
        raise SystemExit(f"{run}: exit {out.returncode}\n{out.stdout[-2000:]}{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=200, help="size of the interchange (default 200)")
    parser.add_argument("--only", default=",".join(RUNS), help="runs to make, comma-separated: " + ", ".join(RUNS))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    runs = [r.strip() for r in args.only.split(",") if r.strip()]
    unknown = sorted(set(runs) - set(RUNS))
    if unknown:
        raise SystemExit(f"unknown run {', '.join(unknown)} (runs: {', '.join(RUNS)})")

    with tempfile.TemporaryDirectory(prefix="gateway-bench-memory-") as tmp_:
        tmp = Path(tmp_)
        path = tmp / "ONE-COPARN-BIG.edi"
        count = write_interchange(path, args.size_mb)
        size_mb = path.stat().st_size / 1e6
        print(f"input: one COPARN D.95B interchange, {count} messages, {size_mb:.1f} MB")
        print("       each message: its own booking and container; each run in a child process of its own\n")
        labels = {
            "reader": "gateway reader + validator (streaming)",
            "ingest": "gateway ingest on SQLite (accept)",
            "pydifact": "pydifact Interchange.from_str",
        }
        results: dict[str, dict[str, float]] = {}
        w = 40
        print(f"{'':{w}} {'seconds':>8} {'messages/s':>11} {'peak RSS':>9} {'baseline':>9} {'above':>8} {'x file':>7}")
        for run in runs:
            work = tmp / run
            work.mkdir()
            r = run_child(run, path, work)
            if r["messages"] != count:
                raise SystemExit(f"{run}: {r['messages']} messages, expected {count}")
            results[run] = r
            above = r["peak_mb"] - r["baseline_mb"]
            print(
                f"{labels[run]:{w}} {r['seconds']:8.1f} {count / r['seconds']:11.0f} {r['peak_mb']:6.0f} MB "
                f"{r['baseline_mb']:6.0f} MB {above:5.0f} MB {above / size_mb:6.2f}x",
                flush=True,
            )
        peer = results.get("pydifact")
        if peer:
            peer_above = peer["peak_mb"] - peer["baseline_mb"]
            for run in ("reader", "ingest"):
                if run in results:
                    above = results[run]["peak_mb"] - results[run]["baseline_mb"]
                    print(
                        f"memory above baseline, {run} / pydifact: {above:.0f} / {peer_above:.0f} MB = "
                        f"{above / peer_above:.3f}x"
                        + (f" ({peer_above / above:.0f}x less)" if 0 < above < peer_above else "")
                    )


if __name__ == "__main__":
    main()
