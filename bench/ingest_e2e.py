"""Benchmark: end-to-end ingest of COPARN files, drop folder → persisted → CONPAS file, on SQLite and PostgreSQL.

Generates ``--files`` distinct COPARN D.95B interchanges of ``--per-file`` messages each (default 20 × 100 =
2,000 messages); every message has its own booking and one container of its own (a valid ISO 6346 check digit),
so each makes a deal, a container, a UL090 form, events and one CONPAS pre-notification. A temporary routes.yaml
holds the partner, the repository's COPARN mapping (mappings/edifact/coparn.yaml), a folder channel and the
``conpas-prenotice`` route to a folder sink. Then, in this one process, for each database:

    ingest   Gateway.accept over the dropped files (read, store raw and commit, parse, validate, map, persist,
             CONPAS delivery queued; one transaction per file), as ``gateway ingest`` does
    send     Gateway.dispatcher.drain(): render each CONPAS delivery, commit it, write the file, settle

    .venv/bin/python bench/ingest_e2e.py [--files 20] [--per-file 100] [--database sqlite,postgresql] [--profile]

Why 100 messages per file by default: a carrier's COPARN drop holds many messages (one per booking or container
of a vessel's export list), and the gateway works an interchange as one transaction written a chunk at a time,
so each file costs two durable commits (stored, processed: an fsync each with ``synchronous=FULL``) plus a few
statements per table, shared by its messages. With 10 per file those per-file costs dominate; run
``--files 200 --per-file 10`` to see that case.

Prints messages per second for ingest, for send (deliveries/s) and for both together, beside the peer measured
in the same run: pydifact parsing the same interchanges alone (no validating against a definition, no storing),
and the ratio of the SQLite ingest rate to the goal of issue 8 (5,000 COPARN messages/s end to end, one process).
``--profile`` runs the SQLite ingest and send once more under cProfile and prints the top 15 functions by
cumulative time.

SQLite: a file in a temporary folder. PostgreSQL: a scratch database ``gateway_bench_e2e`` (created, migrated,
dropped at the end); ``GATEWAY_BENCH_POSTGRES_URL`` overrides the default
``postgresql://gateway:gateway@127.0.0.1:5432/gateway_bench_e2e`` (the role needs CREATEDB). One file of
distinct messages is ingested and sent first in each database as a warm-up (definitions, mapping, statement
caches) and is not counted. The gateway logs as it does in service (JSON lines at INFO), into /dev/null.
The SQL statements and commits each phase sends are counted too. A benchmark, not a test: it fails only when a
file is not accepted or a CONPAS file is missing.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import structlog  # noqa: E402
from sqlalchemy import event, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from gateway import config as config_mod  # noqa: E402
from gateway import logs  # noqa: E402
from gateway.app import Gateway  # noqa: E402
from gateway.iso6346 import check_digit  # noqa: E402
from gateway.model import Container, Delivery, Message  # noqa: E402
from gateway.store import db  # noqa: E402

DEFAULT_URL = "postgresql://gateway:gateway@127.0.0.1:5432/gateway_bench_e2e"
GOAL = 5000  # COPARN messages per second end to end, one process, SQLite (issue 8)
CHANNEL = "bench-drops"
ROUTE = "conpas-prenotice"

HEADER = "UNA:+.? '\nUNB+UNOA:2+ONEY:ZZZ+JPTYOCY1:ZZZ+261124:0930+{ref}'\n"
MESSAGE = (
    "UNH+{m}+COPARN:D:95B:UN:SMDG16'\nBGM+126+BKG{n:07d}+9'\nRFF+BN:ONEYTYO{n:07d}'\n"
    "TDT+20+{voyage}+1++ONEY:172:20+++JD7712:103::ONE APUS'\nLOC+9+JPTYO:139:6'\nLOC+11+USLAX:139:6'\n"
    "DTM+133:202612011800:203'\nNAD+CA+ONEY:160:20'\nEQD+CN+{container}+45G1:102:5++2+5'\n"
    "MEA+AAE+G+KGM:24500'\nMEA+AAE+VGM+KGM:28350'\nSEL+SL{n:07d}+CA'\nFTX+AAA+++AUTO PARTS?: SPARE'\nCNT+16:1'\n"
    "UNT+15+{m}'\n"
)
ROUTES_YAML = """\
database:
  url: sqlite:///{db}
  auto_migrate: true
partners:
  ONE:
    name: Ocean Network Express
    business_type: ocean_carrier
    edifact_ids: [ONEY]
channels:
  {channel}:
    type: folder
    path: {tmp}/inbox
    archive: {tmp}/archive
    failed: {tmp}/failed
    pattern: "*.edi"
mappings:
  - {{match: {{format: edifact, message: COPARN}}, use: {root}/mappings/edifact/coparn.yaml}}
routes:
  {route}:
    on: container.announced
    when: {{direction: export}}
    render: conpas
    to: {{type: folder, path: {outbox}}}
"""


def container_number(n: int) -> str:
    first_ten = f"BNCU{n:06d}"
    return f"{first_ten}{check_digit(first_ten)}"


def interchange(file_no: int, per_file: int, first: int) -> bytes:
    """One COPARN interchange: ``per_file`` messages numbered from ``first``, one voyage per file."""
    parts = [HEADER.format(ref=f"E2E{file_no:06d}")]
    for i in range(per_file):
        n = first + i
        parts.append(MESSAGE.format(m=i + 1, n=n, voyage=f"{file_no % 1000:03d}E", container=container_number(n)))
    parts.append(f"UNZ+{per_file}+E2E{file_no:06d}'\n")
    return "".join(parts).encode("ascii")


def write_files(folder: Path, files: int, per_file: int, start_file: int = 1) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in range(start_file, start_file + files):
        path = folder / f"ONE-COPARN-{f:06d}.edi"
        path.write_bytes(interchange(f, per_file, first=(f - 1) * per_file + 1))
        paths.append(path)
    return paths


# ---- the peer ---------------------------------------------------------------------------------------------


def pydifact_rate(paths: list[Path]) -> tuple[float, int]:
    """(seconds, messages): pydifact builds each Interchange, runs its validate() and walks its messages."""
    from pydifact.segmentcollection import Interchange

    warnings.simplefilter("ignore")
    start = time.perf_counter()
    count = 0
    for path in paths:
        ic = Interchange.from_str(path.read_text(encoding="latin-1"))
        ic.validate()
        count += sum(1 for _ in ic.get_messages())
    return time.perf_counter() - start, count


# ---- the databases ----------------------------------------------------------------------------------------


def create_postgres(url: str) -> None:
    parsed = make_url(db.normalise_url(url))
    admin = db.make_engine(parsed.set(database="postgres").render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def drop_postgres(url: str) -> None:
    parsed = make_url(db.normalise_url(url))
    admin = db.make_engine(parsed.set(database="postgres").render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    admin.dispose()


# ---- the run ----------------------------------------------------------------------------------------------


@dataclass
class Result:
    database: str
    messages: int
    ingest_s: float
    send_s: float
    deliveries: int
    ingest_sql: tuple[int, int]  # (statements, commits)
    send_sql: tuple[int, int]

    @property
    def total_s(self) -> float:
        return self.ingest_s + self.send_s


def run(name: str, url: str, work: Path, files: int, per_file: int, profile: cProfile.Profile | None = None) -> Result:
    """Ingest and send ``files`` generated files into a fresh database at ``url``; ``work``: an empty folder."""
    outbox = work / "outbox"
    routes = work / "routes.yaml"
    routes.write_text(
        ROUTES_YAML.format(db=work / "gateway.db", channel=CHANNEL, tmp=work, root=ROOT, route=ROUTE, outbox=outbox),
        encoding="utf-8",
    )
    config = config_mod.load(routes)
    config = config.model_copy(update={"database": config.database.model_copy(update={"url": url})})
    gw = Gateway(config)
    gc.collect()
    gc.freeze()  # as the gateway command does once its gateway is built (gateway/cli.py)
    try:
        inbox = work / "inbox"
        # the warm-up: one file numbered after the measured ones
        warm = write_files(inbox / "warm", 1, per_file, start_file=files + 1)
        for path in warm:
            result = gw.accept(path.read_bytes(), channel=CHANNEL, filename=path.name)
            if result.status != "accepted":
                raise SystemExit(f"{name}: warm-up file {path.name} {result.status}: {result.errors}")
        gw.dispatcher.drain()
        sent_before = len(list(outbox.iterdir()))

        paths = write_files(inbox, files, per_file)
        counts = {"statements": 0, "commits": 0}

        def statement(*_: object) -> None:
            counts["statements"] += 1

        def commit(*_: object) -> None:
            counts["commits"] += 1

        event.listen(gw.engine, "before_cursor_execute", statement)
        event.listen(gw.engine, "commit", commit)
        if profile is not None:
            profile.enable()
        start = time.perf_counter()
        for path in paths:
            result = gw.accept(path.read_bytes(), channel=CHANNEL, filename=path.name)
            if result.status != "accepted":
                raise SystemExit(f"{name}: {path.name} {result.status}: {result.errors}")
        ingest_s = time.perf_counter() - start
        ingest_sql = (counts["statements"], counts["commits"])
        with gw.sessions() as s:
            queued = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "pending"))
        start = time.perf_counter()
        delivered = gw.dispatcher.drain()
        send_s = time.perf_counter() - start
        if profile is not None:
            profile.disable()
        send_sql = (counts["statements"] - ingest_sql[0] - 1, counts["commits"] - ingest_sql[1])  # less the count
        event.remove(gw.engine, "before_cursor_execute", statement)
        event.remove(gw.engine, "commit", commit)

        n = files * per_file
        written = len(list(outbox.iterdir())) - sent_before
        with gw.sessions() as s:
            containers = s.scalar(select(func.count()).select_from(Container))
            done = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "done"))
            inbound = s.scalar(select(func.count()).select_from(Message).where(Message.direction == "in"))
        if not (queued == delivered == written == n and containers == done == n + per_file):
            raise SystemExit(
                f"{name}: expected {n} CONPAS deliveries: queued {queued}, sent {delivered}, files {written}, "
                f"containers {containers}, deliveries done {done}"
            )
        if inbound != files + 1:
            raise SystemExit(f"{name}: expected {files + 1} inbound message rows, found {inbound}")
        return Result(name, n, ingest_s, send_s, delivered, ingest_sql, send_sql)
    finally:
        gw.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=20, help="interchanges dropped")
    parser.add_argument("--per-file", type=int, default=100, help="COPARN messages per interchange")
    parser.add_argument("--database", default="sqlite,postgresql", help="sqlite, postgresql or both (comma)")
    parser.add_argument("--profile", action="store_true", help="cProfile a further SQLite run: top 15 by cumtime")
    args = parser.parse_args()
    os.environ.pop(config_mod.ENV_DATABASE_URL, None)  # the URL is this benchmark's own
    # the gateway's own log set-up (JSON lines, INFO, as under systemd), written to /dev/null: its cost is counted
    logs.configure("INFO", json_lines=True)
    devnull = open(os.devnull, "w")  # noqa: SIM115
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(devnull))
    pg_url = os.environ.get("GATEWAY_BENCH_POSTGRES_URL", DEFAULT_URL)
    databases = [d.strip() for d in args.database.split(",") if d.strip()]
    n = args.files * args.per_file

    with tempfile.TemporaryDirectory(prefix="gateway-bench-e2e-") as tmp_:
        tmp = Path(tmp_)
        peer_files = write_files(tmp / "peer", args.files, args.per_file)
        size_mb = sum(p.stat().st_size for p in peer_files) / 1e6
        print(
            f"input: {args.files} COPARN D.95B interchanges x {args.per_file} messages = {n} messages, {size_mb:.1f} MB"
        )
        print("       each message: its own booking and container, one CONPAS pre-notification\n")
        peer_s, peer_n = pydifact_rate(peer_files)
        if peer_n != n:
            raise SystemExit(f"pydifact found {peer_n} messages, expected {n}")
        peer_rate = n / peer_s

        results: list[Result] = []
        for name in databases:
            work = tmp / name
            work.mkdir()
            if name == "sqlite":
                url = f"sqlite:///{work / 'gateway.db'}"
            elif name == "postgresql":
                url = pg_url
                create_postgres(url)
            else:
                raise SystemExit(f"unknown database {name!r}")
            try:
                results.append(run(name, url, work, args.files, args.per_file))
            finally:
                if name == "postgresql":
                    drop_postgres(url)

        w = 44
        print(f"{'':{w}} {'seconds':>8} {'messages/s':>11} {'vs pydifact':>12} {'SQL/msg':>8} {'commits/msg':>12}")
        print(f"{'pydifact parse only':{w}} {peer_s:8.2f} {peer_rate:11.0f} {1:11.2f}x")
        for r in results:
            rows = [
                ("ingest (stored..delivery queued)", r.ingest_s, r.ingest_sql),
                ("send (CONPAS files written)", r.send_s, r.send_sql),
                ("end to end", r.total_s, (r.ingest_sql[0] + r.send_sql[0], r.ingest_sql[1] + r.send_sql[1])),
            ]
            for label, seconds, (stmts, commits) in rows:
                rate = n / seconds
                print(
                    f"{r.database + ' ' + label:{w}} {seconds:8.2f} {rate:11.0f} {rate / peer_rate:11.2f}x"
                    f" {stmts / n:8.1f} {commits / n:12.2f}"
                )
        sqlite = next((r for r in results if r.database == "sqlite"), None)
        if sqlite:
            for label, seconds in (("ingest (delivery queued)", sqlite.ingest_s), ("with CONPAS sent", sqlite.total_s)):
                rate = n / seconds
                print(
                    f"goal: {GOAL} COPARN messages/s end to end on SQLite; {label}: {rate:.0f}/s = "
                    f"{rate / GOAL:.2f}x the goal ({GOAL / rate:.1f}x short)"
                    if rate < GOAL
                    else f"goal: {GOAL}/s; {label}: {rate:.0f}/s = {rate / GOAL:.2f}x the goal (met)"
                )

        if args.profile:
            work = tmp / "profile"
            work.mkdir()
            profile = cProfile.Profile()
            r = run("sqlite", f"sqlite:///{work / 'gateway.db'}", work, args.files, args.per_file, profile)
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(15)
            print(
                f"\nprofile: SQLite ingest + send of {n} messages under cProfile ({r.total_s:.2f} s with its overhead)"
            )
            lines = out.getvalue().splitlines()
            head = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
            print("\n".join(ln.replace(str(ROOT) + "/", "") for ln in lines[head:] if ln.strip()))
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(r"/gateway/", 25)
            lines = out.getvalue().splitlines()
            head = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
            print("\nthe gateway's own functions (top 25 by cumulative time):")
            print("\n".join(ln.replace(str(ROOT) + "/", "") for ln in lines[head:] if ln.strip()))
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(15)
            lines = out.getvalue().splitlines()
            head = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
            print("\ntop 15 by own time:")
            print("\n".join(ln.replace(str(ROOT) + "/", "") for ln in lines[head:] if ln.strip()))


if __name__ == "__main__":
    main()
