"""Benchmark: the dashboard's message lists with 1,000,000 messages in the store, keyset paging against OFFSET.

Creates a scratch database (PostgreSQL ``gateway_bench`` by default, or a SQLite file), migrates it with
``gateway.store.db.upgrade`` and loads ``--messages`` rows in SQL (INSERT ... SELECT over a series, no Python
per row): mostly done, some failed, duplicate, discarded and outbound; six channels, twelve partners, ten
message types, a dozen error codes, received over the last 90 days; plus deals, containers, events and
deliveries so that the B/L filter, the deal search and the dead deliveries list have data.

    .venv/bin/python bench/dashboard_paging.py [--messages 1000000] [--database postgresql|sqlite]
                                               [--repeat 7] [--reuse] [--keep]

Then it times what the pages run, each the median of ``--repeat`` runs in a fresh session: the real
``gateway.store.messages.find_messages`` (first page, and a page deep in the list reached by keyset
``before_id``), for the default list (failed) and the filters (all statuses, status + channel, error code,
partner, date range, B/L, payload search), ``gateway.store.deals.search`` and the overview's ``data``; and
beside each message list the same listing done with OFFSET at the same depth (the peer, written here), with
the ratio keyset/OFFSET and the index each keyset query uses (EXPLAIN of the statement it sent).

PostgreSQL: ``GATEWAY_BENCH_POSTGRES_URL`` (default ``postgresql://gateway:gateway@127.0.0.1:5432/gateway_bench``;
the role needs CREATEDB). ``--reuse`` keeps a database already loaded with the same row count; the database (or
SQLite file) is dropped at the end unless ``--keep``. A benchmark, not a test: it fails only on an error.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from gateway.model import Deal, Delivery, DeliveryStatus, Message, MessageStatus, Role, utcnow
from gateway.store import db, deals, messages
from gateway.store.messages import MessageFilter

DEFAULT_URL = "postgresql://gateway:gateway@127.0.0.1:5432/gateway_bench"
PAGE = 50  # gateway.web.dashboard.messages.PAGE
CHANNELS = [
    (30, "sftp-oney"),
    (55, "http"),
    (75, "amqp-terminal"),
    (85, "mail-naccs"),
    (95, "sftp-conpas"),
    (100, "as2-hlag"),
]
TYPES = ["COPARN", "CODECO", "COARRI", "IFTMBF", "IFTMIN", "BAPLIE", "VERMAS", "IFTSTA", "SAL", "CSV"]
ERRORS = [
    "EDI-12",
    "EDI-13",
    "EDI-15",
    "EDI-29",
    "EDI-39",
    "FMT-1",
    "FMT-6",
    "MAP-1",
    "MAP-2",
    "MAP-3",
    "PER-2",
    "PER-3",
]
PARTNERS = 12
ROUTES = ["conpas-gatein", "naccs-sal", "oney-coarri", "hlag-codeco"]


# ---- the data ---------------------------------------------------------------------------------------------


def bucket(col: str, mult: int, n: int) -> str:
    """A deterministic, well-spread 0..n-1 from an integer column (top bits of a multiplicative hash)."""
    return f"((({col} * {mult}) % 4294967296) * {n} / 4294967296)"


def _case(expr: str, pairs: list[tuple[int, str]]) -> str:
    whens = " ".join(f"WHEN {expr} < {upto} THEN {value}" for upto, value in pairs[:-1])
    return f"CASE {whens} ELSE {pairs[-1][1]} END"


def load(engine: Engine, n: int) -> None:
    """Insert the partners, ``n`` messages, deals, containers, events and deliveries, in SQL."""
    pg = engine.dialect.name == "postgresql"
    js = "CAST('{}' AS json)" if pg else "'{}'"
    jl = "CAST('[]' AS json)" if pg else "'[]'"
    now = utcnow()
    start = now - timedelta(days=90)

    def ts(frac: str) -> str:  # start + frac * 90 days, as each backend stores UTCDateTime
        if pg:
            return f"(CAST(:start AS timestamptz) + ({frac}) * interval '90 days')"
        return f"(strftime('%Y-%m-%d %H:%M:%f', :start_text, '+' || (({frac}) * 7776000.0) || ' seconds') || '000')"

    def series(lo: int, hi: int) -> tuple[str, str]:  # (prefix, FROM clause) yielding a column i
        if pg:
            return "", f"generate_series(CAST({lo} AS bigint), CAST({hi} AS bigint)) AS g(i)"
        return f"WITH RECURSIVE g(i) AS (SELECT {lo} UNION ALL SELECT i + 1 FROM g WHERE i < {hi}) ", "g"

    params = {"start": start, "start_text": start.strftime("%Y-%m-%d %H:%M:%S"), "now": now}
    with engine.begin() as conn:
        for p in range(1, PARTNERS + 1):
            conn.execute(
                text(
                    "INSERT INTO partner (id, code, name, business_type, edifact_ids, channels, api_key_hashes,"
                    f" created_at) VALUES (:id, :code, :name, 'ocean_carrier', {jl}, {jl}, {jl}, :now)"
                ),
                {"id": p, "code": f"P{p:02d}", "name": f"Partner {p}", "now": now},
            )
    status_b, chan_b, part_b, type_b, err_b = (
        bucket("i", 2654435761, 100),
        bucket("i", 2246822519, 100),
        bucket("i", 3266489917, 100),
        bucket("i", 668265263, len(TYPES)),
        bucket("i", 374761393, len(ERRORS)),
    )
    chunk = 100_000
    for lo in range(1, n + 1, chunk):
        hi = min(n, lo + chunk - 1)
        prefix, source = series(lo, hi)
        status = _case(
            status_b,
            [(85, "'done'"), (90, "'failed'"), (93, "'duplicate'"), (94, "'discarded'"), (100, "'sent'")],
        )
        mtype = "CASE " + " ".join(f"WHEN {type_b} = {k} THEN '{t}'" for k, t in enumerate(TYPES)) + " END"
        err = "CASE " + " ".join(f"WHEN {err_b} = {k} THEN '{e}'" for k, e in enumerate(ERRORS)) + " END"
        partner = f"CASE WHEN {part_b} < 5 THEN NULL ELSE 1 + {part_b} % {PARTNERS} END"
        hexid = "lpad(to_hex(i), 64, '0')" if pg else "printf('%064x', i)"
        raw_text = (
            "'UNB+UNOA:2+SENDER' || (i % 97) || ':ZZZ+JPTYOCY1:ZZZ+261124:0930+R' || i || '''"
            f"UNH+1+' || {mtype} || ':D:95B:UN''BGM+126+BKG' || i || '+9''RFF+BN:BK' || (i % 20011) || '''"
            "EQD+CN+BNCU' || (1000000 + i % 40009) || '+45G1:102:5''UNT+5+1''UNZ+1+R' || i || ''''"
        ).replace(":", "\\:")  # not bind parameters
        raw = f"convert_to({raw_text}, 'UTF8')" if pg else f"CAST({raw_text} AS BLOB)"
        received = ts(f"CAST(i AS float) / {n} + 0.00001 * ({bucket('i', 40503, 100)} - 50) / {n}")
        sql = (
            f"{prefix}INSERT INTO message (id, direction, channel, partner_id, received_at, filename, headers, raw,"
            " sha256, size, dedup_key, duplicate_of_id, duplicate_reason, format, message_type, interchange_ref,"
            " message_count, status, error_code, error_text, error_step, steps, problems, updated_at)"
            f" SELECT i, CASE WHEN st = 'sent' THEN 'out' ELSE 'in' END, ch, pa, rc, 'F' || i || '.edi', {js},"
            f" rw, {hexid}, 200, CASE WHEN st = 'duplicate' THEN NULL ELSE coalesce('P' || pa, '@' || ch) || ':' ||"
            f" {hexid} END, CASE WHEN st = 'duplicate' AND i > 1 THEN i - 1 END, CASE WHEN st = 'duplicate' THEN"
            " 'same bytes' END, CASE WHEN mt IN ('SAL') THEN 'naccs' WHEN mt = 'CSV' THEN 'csv' ELSE 'edifact' END,"
            " mt, 'R' || i, 1, st, CASE WHEN st IN ('failed', 'discarded') THEN er END, CASE WHEN st IN ('failed',"
            " 'discarded') THEN 'benchmark failure' END, CASE WHEN st IN ('failed', 'discarded') THEN 'map' END,"
            f" {jl}, {jl}, rc"
            f" FROM (SELECT i, {status} AS st, {_case(chan_b, [(u, repr(c)) for u, c in CHANNELS])} AS ch,"
            f" {partner} AS pa, {mtype} AS mt, {err} AS er, {raw} AS rw, {received} AS rc FROM {source}) AS m"
        )
        with engine.begin() as conn:
            conn.execute(text(sql), params)
        print(f"  loaded {hi:>9,} messages", end="\r", flush=True)
    print()
    n_deals, n_containers = max(1, n // 50), max(1, n // 25)
    with engine.begin() as conn:
        prefix, source = series(1, n_deals)
        conn.execute(
            text(
                f"{prefix}INSERT INTO deal (id, deal_number, direction, bl_number, booking_number, carrier_scac,"
                " details, as_of, created_at, updated_at) SELECT i, 'D' || i, CASE WHEN i % 2 = 0 THEN 'export'"
                f" ELSE 'import' END, 'BL' || i, 'BK' || i, 'ONEY', {js}, {js}, :now, :now FROM {source}"
            ),
            params,
        )
        prefix, source = series(1, n_containers)
        conn.execute(
            text(
                f"{prefix}INSERT INTO container (id, number, deal_id, seals, as_of, updated_at)"
                f" SELECT i, 'BNCU' || (1000000 + i), 1 + i % {n_deals}, {jl}, {js}, :now FROM {source}"
            ),
            params,
        )
        # every other inbound message that went through made an event on a deal and one of its containers
        conn.execute(
            text(
                "INSERT INTO event (id, deal_id, kind, occurred_at, message_id, container_id, detail)"
                f" SELECT id, 1 + id % {n_deals}, 'updated', received_at, id, 1 + id % {n_containers}, {js}"
                " FROM message WHERE id % 2 = 0 AND status = 'done'"
            )
        )
        # each outbound message is a delivery's payload; 3 % of them dead
        conn.execute(
            text(
                "INSERT INTO delivery (id, route, deal_id, container_id, status, attempts, next_attempt_at,"
                " idempotency_key, message_id, created_at, updated_at)"
                f" SELECT id, CASE id % 4 {' '.join(f'WHEN {k} THEN {r!r}' for k, r in enumerate(ROUTES))} END,"
                f" 1 + id % {n_deals}, 1 + id % {n_containers}, CASE WHEN {bucket('id', 1597334677, 100)} < 3"
                " THEN 'dead' ELSE 'done' END, 1, received_at, 'bench-' || id, id, received_at, received_at"
                " FROM message WHERE direction = 'out'"
            )
        )
    if pg:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("partner", "message", "deal", "container", "event", "delivery"):
                conn.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
                )
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")


# ---- the database -----------------------------------------------------------------------------------------


def open_postgres(url: str, messages_wanted: int, reuse: bool) -> tuple[Engine, bool]:
    """(engine, needs loading)."""
    parsed = make_url(db.normalise_url(url))
    name = parsed.database
    admin = db.make_engine(parsed.set(database="postgres").render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if exists and reuse:
            engine = db.make_engine(url)
            if _loaded(engine) == messages_wanted:
                admin.dispose()
                return engine, False
            engine.dispose()
        if exists:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return db.make_engine(url), True


def drop_postgres(url: str) -> None:
    parsed = make_url(db.normalise_url(url))
    admin = db.make_engine(parsed.set(database="postgres").render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    admin.dispose()


def _loaded(engine: Engine) -> int | None:
    try:
        with engine.connect() as conn:
            return int(conn.scalar(text("SELECT count(*) FROM message")) or 0)
    except Exception:
        return None


# ---- the measurements -------------------------------------------------------------------------------------


def median_ms(engine: Engine, fn: Callable[[Session], Any], repeat: int) -> tuple[float, Any]:
    with Session(engine) as s:
        result = fn(s)  # warm-up, and the result to compare
    times = []
    for _ in range(repeat):
        with Session(engine) as s:
            t = time.perf_counter()
            fn(s)
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), result


def offset_page(s: Session, f: MessageFilter, page: int) -> list[int]:
    """The peer: the same listing (the same filter, newest first, the same row load) paged with OFFSET."""
    ids = list(s.scalars(messages._filtered(f).order_by(Message.id.desc()).offset(page * PAGE).limit(PAGE + 1)))
    return [m.id for m in messages._load(s, ids[:PAGE])]


def keyset_page(s: Session, f: MessageFilter, before: int | None) -> list[int]:
    return [m.id for m in messages.find_messages(s, f, before_id=before, limit=PAGE).rows]


def first_statement(engine: Engine, fn: Callable[[Session], Any]) -> tuple[str, Any]:
    """The first SQL statement ``fn`` sends (the id query of a list page), with its parameters."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with Session(engine) as s:
            fn(s)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return next((st, p) for st, p in sent if st.lstrip().upper().startswith(("SELECT", "WITH")))


def plan(engine: Engine, fn: Callable[[Session], Any]) -> str:
    """The scans of the EXPLAIN of the first statement ``fn`` sends: which index, forward or backward."""
    statement, parameters = first_statement(engine, fn)
    pg = engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(("EXPLAIN " if pg else "EXPLAIN QUERY PLAN ") + statement, parameters).all()
    lines = [str(r[0]) if pg else str(r[-1]) for r in rows]
    if pg:
        scans = [re.sub(r"\s+\(cost=.*", "", ln).strip(" ->") for ln in lines if "Scan" in ln]
    else:
        scans = [ln for ln in lines if ln.startswith(("SEARCH", "SCAN"))]
    return "; ".join(dict.fromkeys(scans))


@dataclass
class Case:
    name: str
    f: MessageFilter
    deep: int  # pages to skip for the deep page; 0: first page only


def cases(s: Session, n: int) -> list[Case]:
    now = utcnow()
    week_from = (now - timedelta(days=37)).replace(hour=0, minute=0, second=0, microsecond=0)
    failed = MessageStatus.FAILED.value
    return [
        Case("failed (the default list)", MessageFilter(status=failed), 10_000),
        Case("all statuses", MessageFilter(), 10_000),
        Case("failed + channel http", MessageFilter(status=failed, channel="http"), 10_000),
        Case("failed + error EDI-13", MessageFilter(status=failed, error_code="EDI-13"), 10_000),
        Case("failed + partner P07", MessageFilter(status=failed, partner_id=7), 10_000),
        Case("all + partner P07", MessageFilter(partner_id=7), 10_000),
        Case("failed + type COPARN", MessageFilter(status=failed, message_type="COPARN"), 10_000),
        Case(
            "failed + 7 days, 30-37 d ago",
            MessageFilter(status=failed, received_from=week_from, received_to=week_from + timedelta(days=7)),
            10_000,
        ),
        Case("all + B/L BL77", MessageFilter(reference="BL77"), 0),
        Case("all + container BNCU1000077", MessageFilter(reference="BNCU1000077"), 0),
        Case("failed + payload search", MessageFilter(status=failed, search="BGM+126+BKG"), 0),
    ]


def depth_of(s: Session, f: MessageFilter, wanted: int) -> tuple[int, int, int | None]:
    """(matching rows, pages to skip, the keyset ``before_id`` that reaches that page): the wanted depth, or 90 %
    of the way down a shorter list."""
    total = int(s.scalar(select(func.count()).select_from(messages._filtered(f).subquery())) or 0)
    pages = min(wanted, (total * 9 // 10) // PAGE)
    if pages <= 0:
        return total, 0, None
    before = s.scalar(messages._filtered(f).order_by(Message.id.desc()).offset(pages * PAGE - 1).limit(1))
    return total, pages, before


def run(engine: Engine, n: int, repeat: int) -> None:
    from gateway.web.dashboard import deliveries as delivery_page
    from gateway.web.dashboard import overview
    from gateway.web.dashboard.web import SessionUser

    print(f"{'list':32} {'rows':>8} {'page':>6} {'keyset':>9} {'OFFSET':>9} {'ratio':>7}  keyset plan")
    worst: tuple[float, str] = (0.0, "")
    ratios = []
    with Session(engine) as s:
        todo = [(c, *depth_of(s, c.f, c.deep)) for c in cases(s, n)]
    for c, total, pages, before in todo:
        for page, bid in [(0, None)] + ([(pages, before)] if pages else []):
            k_ms, k_rows = median_ms(engine, lambda s, f=c.f, b=bid: keyset_page(s, f, b), repeat)
            if c.f.search:
                o_txt, r_txt = "-", "-"  # a bounded window, not a listing: no OFFSET peer
            else:
                o_ms, o_rows = median_ms(engine, lambda s, f=c.f, p=page: offset_page(s, f, p), repeat)
                if o_rows != k_rows:
                    raise SystemExit(f"{c.name} page {page}: keyset and OFFSET returned different rows")
                o_txt, r_txt = f"{o_ms:7.2f}ms", f"{o_ms / k_ms:6.1f}x"
                if page:
                    ratios.append(o_ms / k_ms)
            worst = max(worst, (k_ms, f"{c.name}, page {page + 1}"))
            how = plan(engine, lambda s, f=c.f, b=bid: keyset_page(s, f, b))
            label = c.name if page == 0 else ""
            print(f"{label:32} {total:8d} {page + 1:6d} {k_ms:7.2f}ms {o_txt:>9} {r_txt:>7}  {how}")

    admin = SessionUser(id=0, login="bench", role=Role.ADMIN, partner_id=None, partner_code=None, csrf_token="")
    partner_user = SessionUser(id=0, login="bench", role=Role.VIEWER, partner_id=7, partner_code="P07", csrf_token="")
    with Session(engine) as s:
        n_deals = int(s.scalar(select(func.count()).select_from(Deal)) or 0)
        deep_deal = s.scalar(select(Deal.id).order_by(Deal.id.desc()).offset(n_deals * 9 // 10).limit(1))
        dead = delivery_page._filtered(admin, DeliveryStatus.DEAD.value, "")
        n_dead = int(s.scalar(select(func.count()).select_from(dead.subquery())) or 0)
        deep_dead = s.scalar(dead.order_by(Delivery.id.desc()).offset(n_dead * 9 // 10).limit(1))

    def dead_page(s: Session, before: int | None) -> list[int]:  # the two lines of delivery_list
        q = delivery_page._filtered(admin, DeliveryStatus.DEAD.value, "")
        if before is not None:
            q = q.where(Delivery.id < before)
        return list(s.scalars(q.order_by(Delivery.id.desc()).limit(PAGE + 1)))

    others: list[tuple[str, int, Callable[[Session], Any]]] = [
        ("deals: first page", n_deals, lambda s: deals.search(s, None)),
        ("deals: 90 % down (keyset)", n_deals, lambda s: deals.search(s, None, before=deep_deal)),
        ("deals: search BL77", n_deals, lambda s: deals.search(s, None, "BL77")),
        ("deals: partner user", n_deals, lambda s: deals.search(s, 7)),
        ("dead deliveries: first page", n_dead, lambda s: dead_page(s, None)),
        ("dead deliveries: 90 % down", n_dead, lambda s: dead_page(s, deep_dead)),
        ("overview (24 h, admin)", n, lambda s: overview.data(s, admin)),
        ("overview (24 h, partner user)", n, lambda s: overview.data(s, partner_user)),
    ]
    for name, rows, fn in others:
        ms, _ = median_ms(engine, fn, repeat)
        worst = max(worst, (ms, name))
        how = plan(engine, fn) if not name.startswith("overview") else "(several queries)"
        print(f"{name:32} {rows:8d} {'':6} {ms:7.2f}ms {'':>9} {'':>7}  {how}")
    if ratios:
        print(
            f"deep pages: keyset is {min(ratios):.1f}x to {max(ratios):.1f}x faster than OFFSET "
            f"(median {statistics.median(ratios):.1f}x)"
        )
    print(f"slowest keyset page: {worst[1]}, {worst[0]:.1f} ms (goal: under 50 ms at any depth)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000, help="message rows to load")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per query (the median is shown)")
    parser.add_argument("--reuse", action="store_true", help="reuse a database already loaded with --messages rows")
    parser.add_argument("--keep", action="store_true", help="keep the database (or SQLite file) afterwards")
    args = parser.parse_args()
    url = os.environ.get("GATEWAY_BENCH_POSTGRES_URL", DEFAULT_URL)
    if args.database == "sqlite":
        path = Path(tempfile.gettempdir()) / "gateway_bench.sqlite"
        if path.exists() and not (args.reuse and _loaded(db.make_engine(f"sqlite:///{path}")) == args.messages):
            for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                p.unlink(missing_ok=True)
        engine, fresh = db.make_engine(f"sqlite:///{path}"), not path.exists()
        where = str(path)
    else:
        engine, fresh = open_postgres(url, args.messages, args.reuse)
        where = make_url(db.normalise_url(url)).render_as_string(hide_password=True)
    try:
        if fresh:
            t = time.perf_counter()
            db.upgrade(engine)
            load(engine, args.messages)
            print(f"loaded {args.messages:,} messages into {where} in {time.perf_counter() - t:.0f} s")
        else:
            print(f"reusing {where} ({args.messages:,} messages)")
        with engine.connect() as conn:
            counts = dict(conn.execute(select(Message.status, func.count()).group_by(Message.status)).all())
        print("statuses: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])))
        print(f"{engine.dialect.name}, page size {PAGE}, median of {args.repeat} runs each\n")
        run(engine, args.messages, args.repeat)
    finally:
        engine.dispose()
        if not args.keep:
            if args.database == "sqlite":
                for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                    p.unlink(missing_ok=True)
            else:
                drop_postgres(url)


if __name__ == "__main__":
    main()
