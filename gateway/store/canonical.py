"""Persist canonical records: upserts by natural key, forms, timeline events and their outbox deliveries.

Runs inside the processing transaction of one inbound payload, so the canonical change, the events it writes
and the deliveries those events cause commit together or not at all (the transactional outbox).

Two rules keep updates correct whatever the order messages arrive in:

- **Replays are harmless.** A record that changes nothing writes no event and causes no delivery; a container
  event already on the timeline (same container, kind and time) is not written twice.
- **Newer wins, per field.** Every row remembers, per field, the issue time of the message that set it
  (``as_of``). A message issued earlier that arrives late fills fields nobody set later, and leaves the rest;
  an older container event goes on the timeline marked ``superseded`` without changing the current status.

The writer works a **chunk** of messages at a time (up to :data:`CHUNK` of one interchange), not a row at a
time: it loads every row the chunk's records can name by natural key with a few ``IN`` queries into plain
Python rows (:class:`_Rows`), decides everything in Python, then writes with few statements: an ``INSERT`` of
many rows per table (ids back through ``RETURNING``), an ``UPDATE`` of the changed rows only, grouped by the
columns that changed, and the events and their deliveries in two more. A form update checks its version
(``UPDATE … WHERE id = ? AND version = ?``) and raises ``StaleDataError`` when another writer moved it. The rows
of a chunk are dropped once it is written, so a huge interchange holds one chunk's rows at a time; all chunks
are in the one processing transaction, so the interchange still commits as a whole.
"""

from __future__ import annotations

import functools
import secrets
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import structlog
from sqlalchemy import CursorResult, Select, Table, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from gateway import forms
from gateway.canonical import (
    AcknowledgementRecord,
    BookingRecord,
    ContainerEventRecord,
    ContainerRecord,
    CustomsStatusRecord,
    MappedMessage,
    ShipmentRecord,
    VesselCallRecord,
)
from gateway.config import RouteConfig
from gateway.errors import GatewayError, Position
from gateway.model import (
    Booking,
    Container,
    DangerousGoods,
    Deal,
    Delivery,
    DeliveryStatus,
    Event,
    Form,
    Message,
    MessageStatus,
    Participation,
    Right,
    VesselCall,
    utcnow,
)
from gateway.naccs.permit import permit_status, received_at
from gateway.naccs.reply import Reassembler, ReplyPart, parse_part
from gateway.outbound.renderers.naccs import delivery_for_handover
from gateway.store import outbox

log = structlog.get_logger("gateway.canonical")

CHUNK = 500  # messages written together: rows loaded, decided and written per chunk

_CONTAINER_FIELDS = (
    "iso_size_type",
    "full_empty",
    "gross_kg",
    "tare_kg",
    "vgm_kg",
    "cargo_kg",
    "reefer_temp_c",
    "commodity",
    "terminal_code",
    "delivery_at",
    "bl_number",
    "vgm_method",
    "vgm_party",
)
_SHIPMENT_KEYS = {"entity", "bl_number", "booking_number", "carrier_scac", "direction", "form", "customs_declaration"}
_DG_FIELDS = ("un_number", "imdg_class", "packing_group", "flash_point_c")


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


T_DEAL = _table(Deal)
T_BOOKING = _table(Booking)
T_VESSEL_CALL = _table(VesselCall)
T_CONTAINER = _table(Container)
T_DG = _table(DangerousGoods)
T_FORM = _table(Form)
T_PART = _table(Participation)
T_EVENT = _table(Event)
T_DELIVERY = _table(Delivery)


def find_deal(
    session: Session,
    *,
    deal_number: str | None = None,
    bl_number: str | None = None,
    booking_number: str | None = None,
    carrier_scac: str | None = None,
    internal_reference: str | None = None,
) -> Deal | None:
    """A deal by any of the keys Cyber Port finds one by (booking number needs the carrier SCAC with it)."""
    q = select(Deal)
    if deal_number:
        q = q.where(Deal.deal_number == deal_number)
    elif bl_number:
        q = q.where(Deal.bl_number == bl_number)
    elif booking_number:
        q = q.where(Deal.booking_number == booking_number, Deal.carrier_scac == (carrier_scac or ""))
    elif internal_reference:
        q = q.where(Deal.internal_reference == internal_reference)
    else:
        return None
    return session.scalars(q.order_by(Deal.id).limit(1)).first()


_NOTHING = object()
_InsertPlan = tuple[str, list[tuple[str, Callable[[Any], Any] | None]], dict[str, Any]]
_PLANS: dict[tuple[str, Table, tuple[str, ...]], _InsertPlan] = {}


def executemany_insert(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (all with the keys of the first) in one executemany.

    SQLite: straight to the driver, each value through its column type's own bind processor (as SQLAlchemy would
    send it) and the columns' Python defaults filled in, without SQLAlchemy's per-row statement machinery, which
    costs more than SQLite's insert itself. Elsewhere: a Core insert (SQLAlchemy batches it)."""
    if not rows:
        return
    conn = session.connection()
    dialect = conn.dialect
    if dialect.name != "sqlite":
        session.execute(insert(table), list(rows))
        return
    names = tuple(rows[0])
    key = (dialect.name, table, names)
    plan = _PLANS.get(key)
    if plan is None:
        defaults: dict[str, Any] = {
            c.name: c.default
            for c in table.c
            if c.name not in names and c.default is not None and (c.default.is_callable or c.default.is_scalar)
        }
        columns = [*names, *defaults]
        processors: list[tuple[str, Callable[[Any], Any] | None]] = [
            (n, table.c[n].type.dialect_impl(dialect).bind_processor(dialect)) for n in columns
        ]
        quote = dialect.identifier_preparer.quote
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})"
        )
        plan = _PLANS[key] = (sql, processors, defaults)
    sql, processors, defaults = plan
    fill = {n: (d.arg(None) if d.is_callable else d.arg) for n, d in defaults.items()}
    # a value shared by the rows (a default, the time of the write) goes through its processor once
    last: list[tuple[Any, Any]] = [(_NOTHING, None)] * len(processors)
    data = []
    for row in rows:
        values = {**row, **fill} if fill else row
        out = []
        for i, (name, processor) in enumerate(processors):
            value = values[name]
            if processor is not None:
                seen, done = last[i]
                if value is not seen:
                    done = processor(value)
                    last[i] = (value, done)
                value = done
            out.append(value)
        data.append(tuple(out))
    conn.exec_driver_sql(sql, data)


# rows whose column is among the values given for any of the first dict's columns, and for each of the second's
_Where = tuple[dict[str, Collection[Any]], dict[str, Collection[Any]]]


def _in(_and: Mapping[str, Collection[Any]] | None = None, /, **any_of: Collection[Any]) -> _Where:
    return dict(any_of), dict(_and or {})


@functools.cache
def _in_query(table: Table, any_of: tuple[str, ...], all_of: tuple[str, ...]) -> Select[Any]:
    """A select built once per shape (its lists are expanding parameters): building and hashing a new statement
    for every chunk costs more than SQLite answering it."""
    condition = or_(*(table.c[c].in_(bindparam(f"any_{c}", expanding=True)) for c in any_of))
    for c in all_of:
        condition = condition & table.c[c].in_(bindparam(f"all_{c}", expanding=True))
    return select(table).where(condition).order_by(table.c.id)


@functools.cache
def _highest_query(tables: tuple[Table, ...]) -> Select[Any]:
    return select(*(select(func.max(t.c.id)).scalar_subquery() for t in tables))


# --- rows as the writer holds them ------------------------------------------------------------------------------


class _Row:
    """One row: its column values as attributes, the values it had when loaded or written (``saved``; None for a
    row not written yet), and an order: existing rows by id, then new rows in the order they were made."""

    table: Table
    COLUMNS: tuple[str, ...] = ()
    id: int | None
    saved: dict[str, Any] | None
    seq: int

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.COLUMNS}

    def order(self) -> tuple[int, int]:
        return (0, self.id) if self.saved is not None and self.id is not None else (1, self.seq)


def _first(rows: Iterable[_Row]) -> Any:
    return min(rows, key=_Row.order, default=None)


def _last(rows: Iterable[_Row]) -> Any:
    return max(rows, key=_Row.order, default=None)


@dataclass(eq=False)
class _VesselCall(_Row):
    natural_key: str
    voyage: str
    vessel_name: str | None = None
    imo_number: str | None = None
    call_sign: str | None = None
    carrier_scac: str | None = None
    port_of_loading: str | None = None
    port_of_discharge: str | None = None
    eta: datetime | None = None
    etd: datetime | None = None
    as_of: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    saved: dict[str, Any] | None = None
    seq: int = 0

    table = T_VESSEL_CALL
    COLUMNS = (
        "natural_key",
        "voyage",
        "vessel_name",
        "imo_number",
        "call_sign",
        "carrier_scac",
        "port_of_loading",
        "port_of_discharge",
        "eta",
        "etd",
        "as_of",
    )


@dataclass(eq=False)
class _Deal(_Row):
    deal_number: str
    direction: str
    bl_number: str | None = None
    booking_number: str | None = None
    carrier_scac: str | None = None
    internal_reference: str | None = None
    customs_status: str | None = None
    declaration_number: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    as_of: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    saved: dict[str, Any] | None = None
    seq: int = 0

    table = T_DEAL
    COLUMNS = (
        "deal_number",
        "direction",
        "bl_number",
        "booking_number",
        "carrier_scac",
        "internal_reference",
        "customs_status",
        "declaration_number",
        "details",
        "as_of",
    )


@dataclass(eq=False)
class _Booking(_Row):
    booking_number: str
    carrier_scac: str
    deal: _Deal | None = None
    vessel_call: _VesselCall | None = None
    deal_id: int | None = None
    vessel_call_id: int | None = None
    id: int | None = None
    saved: dict[str, Any] | None = None
    seq: int = 0

    table = T_BOOKING
    COLUMNS = ("booking_number", "carrier_scac", "deal_id", "vessel_call_id")

    def values(self) -> dict[str, Any]:
        return {
            "booking_number": self.booking_number,
            "carrier_scac": self.carrier_scac,
            "deal_id": self.deal.id if self.deal is not None else self.deal_id,
            "vessel_call_id": self.vessel_call.id if self.vessel_call is not None else self.vessel_call_id,
        }


@dataclass(eq=False)
class _DG:
    un_number: str
    imdg_class: str | None = None
    packing_group: str | None = None
    flash_point_c: float | None = None


_CONTAINER_COLUMNS = (
    "number",
    "iso_size_type",
    "full_empty",
    "seals",
    "gross_kg",
    "tare_kg",
    "vgm_kg",
    "cargo_kg",
    "reefer_temp_c",
    "oog",
    "commodity",
    "terminal_code",
    "delivery_at",
    "customs_status",
    "conpas_result",
    "conpas_terminal_check",
    "bl_number",
    "vgm_method",
    "vgm_party",
    "status",
    "status_at",
    "location",
    "facility",
    "as_of",
    "last_message_id",
)


@dataclass(eq=False)
class _Container(_Row):
    number: str
    deal: _Deal | None = None
    booking: _Booking | None = None
    deal_id: int | None = None
    booking_id: int | None = None
    iso_size_type: str | None = None
    full_empty: str | None = None
    seals: list[Any] = field(default_factory=list)
    gross_kg: float | None = None
    tare_kg: float | None = None
    vgm_kg: float | None = None
    cargo_kg: float | None = None
    reefer_temp_c: float | None = None
    oog: dict[str, Any] | None = None
    commodity: str | None = None
    terminal_code: str | None = None
    delivery_at: datetime | None = None
    customs_status: str | None = None
    conpas_result: int | None = None
    conpas_terminal_check: int | None = None
    bl_number: str | None = None
    vgm_method: str | None = None
    vgm_party: str | None = None
    status: str | None = None
    status_at: datetime | None = None
    location: str | None = None
    facility: str | None = None
    as_of: dict[str, Any] = field(default_factory=dict)
    last_message_id: int | None = None
    # None: not loaded (never needed for this row); replaced: write the list anew
    dangerous_goods: list[_DG] | None = None
    dg_replaced: bool = False
    dg_existed: bool = False  # dangerous_goods rows may exist in the table (delete them before a new list)
    id: int | None = None
    saved: dict[str, Any] | None = None
    seq: int = 0

    table = T_CONTAINER
    COLUMNS = _CONTAINER_COLUMNS

    def values(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in _CONTAINER_COLUMNS}
        out["deal_id"] = self.deal.id if self.deal is not None else self.deal_id
        out["booking_id"] = self.booking.id if self.booking is not None else self.booking_id
        return out


@dataclass(eq=False)
class _Form(_Row):
    deal: _Deal
    type_code: str
    subject: str
    payload: dict[str, Any]
    version: int = 1
    id: int | None = None
    saved: dict[str, Any] | None = None
    seq: int = 0

    table = T_FORM

    def values(self) -> dict[str, Any]:
        return {"deal_id": self.deal.id, "type_code": self.type_code, "subject": self.subject, "payload": self.payload}


@dataclass(eq=False)
class _Participation(_Row):
    deal: _Deal
    partner_id: int
    business_type: str
    rights: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    saved: dict[str, Any] | None = None
    seq: int = 0

    table = T_PART

    def values(self) -> dict[str, Any]:
        return {
            "deal_id": self.deal.id,
            "partner_id": self.partner_id,
            "business_type": self.business_type,
            "rights": self.rights,
        }


@dataclass(eq=False)
class _PendingEvent:
    """An event decided but not written yet, with the deliveries it causes: (route, held)."""

    kind: str
    deal: _Deal | None
    container: _Container | None
    detail: dict[str, Any]
    occurred_at: datetime
    deliveries: list[tuple[str, bool]]
    vessel_call: _VesselCall | None = None  # vessel_call.announced: its id goes first in the detail


def _vessel_key(rec: VesselCallRecord) -> str:
    identity = rec.imo_number or rec.call_sign or rec.vessel_name or ""
    return "|".join((rec.carrier_scac or "", rec.voyage, identity)).upper()


class _Rows:
    """The rows of one chunk, found by natural key; loaded from the table once, then changed in memory."""

    def __init__(self, session: Session, partner_id: int | None) -> None:
        self.session = session
        self.partner_id = partner_id
        self._sqlite: bool | None = None
        self.seq = 0
        self.vessel_calls: dict[str, _VesselCall] = {}
        self.vessel_calls_by_id: dict[int, _VesselCall] = {}
        self.deals_by_id: dict[int, _Deal] = {}
        self.deals: list[_Deal] = []  # every deal held, for the indexes below
        self.deals_by_bl: dict[str, list[_Deal]] = {}
        self.deals_by_booking: dict[str, list[_Deal]] = {}  # any carrier
        self.deals_by_declaration: dict[str, list[_Deal]] = {}
        self.bookings: dict[tuple[str, str], _Booking] = {}
        self.bookings_by_number: dict[str, list[_Booking]] = {}
        self.bookings_by_id: dict[int, _Booking] = {}
        self.containers: dict[tuple[str, _Deal | None], _Container] = {}
        self.containers_by_number: dict[str, list[_Container]] = {}
        self.containers_by_id: dict[int, _Container] = {}
        self.containers_by_deal: dict[_Deal, list[_Container]] = {}
        self.deal_containers_loaded: set[_Deal] = set()
        self.forms: dict[tuple[_Deal, str, str], _Form] = {}
        self.participations: dict[_Deal, _Participation] = {}
        self.event_keys: set[tuple[_Container, str, datetime]] = set()
        self.new: list[_Row] = []  # rows made in this chunk and not written yet
        self.top: dict[Table, int] = {}  # SQLite, while writing: the highest id given in each table

    @property
    def sqlite(self) -> bool:
        """Asked when first writing (a writer made for mapping alone may have no database)."""
        if self._sqlite is None:
            self._sqlite = self.session.get_bind().dialect.name == "sqlite"
        return self._sqlite

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def made(self, row: _Row) -> None:
        row.seq = self._next()
        self.new.append(row)

    # --- indexes ---

    def index_deal(self, deal: _Deal) -> None:
        """Index a deal by its current keys (again after one of them was set)."""
        for index, key in (
            (self.deals_by_bl, deal.bl_number),
            (self.deals_by_booking, deal.booking_number),
            (self.deals_by_declaration, deal.declaration_number),
        ):
            if key:
                rows = index.setdefault(key, [])
                if deal not in rows:
                    rows.append(deal)

    def deal_by_bl(self, bl: str) -> _Deal | None:
        return _first(d for d in self.deals_by_bl.get(bl, ()) if d.bl_number == bl)  # type: ignore[no-any-return]

    def deal_by_booking(self, booking: str, scac: str | None) -> _Deal | None:
        rows = self.deals_by_booking.get(booking, ())
        if scac is None:  # any carrier
            return _first(d for d in rows if d.booking_number == booking)  # type: ignore[no-any-return]
        return _first(d for d in rows if d.booking_number == booking and d.carrier_scac == scac)  # type: ignore[no-any-return]

    def deal_by_declaration(self, declaration: str) -> _Deal | None:
        rows = self.deals_by_declaration.get(declaration, ())
        return _first(d for d in rows if d.declaration_number == declaration)  # type: ignore[no-any-return]

    def add_booking(self, row: _Booking) -> None:
        self.bookings[(row.booking_number, row.carrier_scac)] = row
        self.bookings_by_number.setdefault(row.booking_number, []).append(row)
        if row.id is not None:
            self.bookings_by_id[row.id] = row

    def add_container(self, row: _Container) -> None:
        self.containers[(row.number, row.deal)] = row
        self.containers_by_number.setdefault(row.number, []).append(row)
        if row.deal is not None:
            self.containers_by_deal.setdefault(row.deal, []).append(row)
        if row.id is not None:
            self.containers_by_id[row.id] = row

    # --- loading ---

    def _select(self, table: Table, where: _Where) -> list[dict[str, Any]]:
        any_of, all_of = where
        stmt = _in_query(table, tuple(any_of), tuple(all_of))
        params = {f"any_{k}": sorted(v) for k, v in any_of.items()} | {f"all_{k}": sorted(v) for k, v in all_of.items()}
        return [dict(r) for r in self.session.execute(stmt, params).mappings()]

    def load_vessel_calls(self, where: _Where) -> None:
        for r in self._select(T_VESSEL_CALL, where):
            if r["id"] in self.vessel_calls_by_id:
                continue
            r.pop("updated_at")
            row = _VesselCall(**r)
            row.saved = row.values()
            self.vessel_calls[row.natural_key] = self.vessel_calls_by_id[r["id"]] = row

    def load_deals(self, where: _Where) -> list[_Deal]:
        out = []
        for r in self._select(T_DEAL, where):
            row = self.deals_by_id.get(r["id"])
            if row is None:
                r.pop("created_at")
                r.pop("updated_at")
                row = _Deal(**r)
                row.saved = row.values()
                self.deals_by_id[r["id"]] = row
                self.deals.append(row)
                self.index_deal(row)
            out.append(row)
        return out

    def load_bookings(self, where: _Where) -> list[_Booking]:
        out = []
        for r in self._select(T_BOOKING, where):
            row = self.bookings_by_id.get(r["id"])
            if row is None:
                r.pop("updated_at")
                row = _Booking(**r)
                row.saved = row.values()
                self.add_booking(row)
            out.append(row)
        return out

    def load_containers(
        self, where: _Where | None, deal: _Deal | None = None, found: list[dict[str, Any]] | None = None
    ) -> list[_Container]:
        """Containers (their deals must be held, or be ``deal``); a container held already stays as it is.
        ``found``: rows selected already (instead of ``where``)."""
        rows = []
        if found is None:
            assert where is not None
            found = self._select(T_CONTAINER, where)
        for r in found:
            row = self.containers_by_id.get(r["id"])
            if row is None:
                r.pop("updated_at")
                row = _Container(**r, dg_existed=True)
                row.saved = row.values()
                if row.deal_id is not None:
                    row.deal = deal if deal is not None else self.deals_by_id[row.deal_id]
                if row.booking_id is not None:
                    row.booking = self.bookings_by_id.get(row.booking_id)
                self.add_container(row)
            rows.append(row)
        return rows

    def deal(self, deal_id: int) -> _Deal | None:
        if deal_id not in self.deals_by_id:
            self.load_deals(_in(id=[deal_id]))
        return self.deals_by_id.get(deal_id)

    def container(self, container_id: int) -> _Container | None:
        if container_id not in self.containers_by_id:
            deal_id = self.session.scalar(select(T_CONTAINER.c.deal_id).where(T_CONTAINER.c.id == container_id))
            deal = self.deal(deal_id) if deal_id is not None else None
            self.load_containers(_in(id=[container_id]), deal)
        return self.containers_by_id.get(container_id)

    def containers_of(self, deal: _Deal) -> list[_Container]:
        """Every container of the deal: those in the table and those made in this chunk, in id order."""
        if deal.id is not None and deal not in self.deal_containers_loaded:
            self.deal_containers_loaded.add(deal)
            self.load_containers(_in(deal_id=[deal.id]), deal)
        return sorted(self.containers_by_deal.get(deal, ()), key=_Row.order)

    def preload(self, batch: Sequence[MappedMessage]) -> None:
        """Every row the records of ``batch`` can find by natural key, in a few IN queries."""
        vessel_keys: set[str] = set()
        bls: set[str] = set()
        bookings: set[str] = set()
        declarations: set[str] = set()
        numbers: set[str] = set()
        event_kinds: set[str] = set()
        for mapped in batch:
            for rec in mapped.records:
                if isinstance(rec, VesselCallRecord):
                    vessel_keys.add(_vessel_key(rec))
                elif isinstance(rec, BookingRecord):
                    bookings.add(rec.booking_number)
                elif isinstance(rec, ShipmentRecord):
                    bls.add(rec.bl_number or "")
                    bookings.add(rec.booking_number or "")
                    declarations.add(rec.customs_declaration or "")
                elif isinstance(rec, ContainerRecord):
                    numbers.add(rec.number)
                    bls.add(rec.bl_number or "")
                    bookings.add(rec.booking_number or "")
                elif isinstance(rec, ContainerEventRecord):
                    numbers.add(rec.container)
                    bls.add(rec.bl_number or "")
                    bookings.add(rec.booking_number or "")
                    event_kinds.add(f"container.{rec.kind}")
                elif isinstance(rec, CustomsStatusRecord):
                    bls.add(rec.bl_number or "")
                    bookings.add(rec.booking_number or "")
                    declarations.add(rec.declaration_number or "")
                elif isinstance(rec, AcknowledgementRecord):
                    bls.add(rec.bl_number or "")
                    bookings.add(rec.booking_number or "")
        for keys in (bls, bookings, declarations):
            keys.discard("")
        if vessel_keys:
            self.load_vessel_calls(_in(natural_key=vessel_keys))
        by_key = {"bl_number": bls, "booking_number": bookings, "declaration_number": declarations}
        if bls or bookings or declarations:
            self.load_deals(_in(**{k: v for k, v in by_key.items() if v}))
        booking_rows = self.load_bookings(_in(booking_number=bookings)) if bookings else []
        container_rows = self._select(T_CONTAINER, _in(number=numbers)) if numbers else []
        booking_ids = {r["booking_id"] for r in container_rows if r["booking_id"] is not None}
        booking_ids -= set(self.bookings_by_id)
        if booking_ids:
            booking_rows += self.load_bookings(_in(id=booking_ids))
        deal_ids = {b.deal_id for b in booking_rows if b.deal_id is not None}
        deal_ids |= {r["deal_id"] for r in container_rows if r["deal_id"] is not None}
        deal_ids -= set(self.deals_by_id)
        if deal_ids:
            self.load_deals(_in(id=deal_ids))
        call_ids = {b.vessel_call_id for b in booking_rows if b.vessel_call_id is not None}
        call_ids -= set(self.vessel_calls_by_id)
        if call_ids:
            self.load_vessel_calls(_in(id=call_ids))
        for b in booking_rows:
            if b.deal is None and b.deal_id is not None:
                b.deal = self.deals_by_id[b.deal_id]
            if b.vessel_call is None and b.vessel_call_id is not None:
                b.vessel_call = self.vessel_calls_by_id[b.vessel_call_id]
        if container_rows:
            self.load_containers(None, found=container_rows)
        held = [c for c in self.containers_by_id.values() if c.dangerous_goods is None]
        if held:
            for c in held:
                c.dangerous_goods = []
            by_id = {c.id: c for c in held}
            for r in self._select(T_DG, _in(container_id=by_id)):
                dgs = by_id[r["container_id"]].dangerous_goods
                assert dgs is not None
                dgs.append(_DG(**{k: r[k] for k in _DG_FIELDS}))
        deal_ids_held = sorted(self.deals_by_id)
        if deal_ids_held:
            subjects = sorted(numbers | {""})
            for r in self._select(T_FORM, _in({"subject": subjects}, deal_id=deal_ids_held)):
                deal = self.deals_by_id[r["deal_id"]]
                form = _Form(deal, r["type_code"], r["subject"], r["payload"], r["version"], r["id"])
                form.saved = form.values()
                self.forms[(deal, form.type_code, form.subject)] = form
            if self.partner_id is not None:
                where = _in({"partner_id": [self.partner_id]}, deal_id=deal_ids_held)
                for r in self._select(T_PART, where):
                    deal = self.deals_by_id[r["deal_id"]]
                    part = _Participation(deal, r["partner_id"], r["business_type"], r["rights"], r["id"])
                    part.saved = part.values()
                    self.participations[deal] = part
        if event_kinds and self.containers_by_id:
            q = select(T_EVENT.c.container_id, T_EVENT.c.kind, T_EVENT.c.occurred_at).where(
                T_EVENT.c.container_id.in_(sorted(self.containers_by_id)), T_EVENT.c.kind.in_(sorted(event_kinds))
            )
            for container_id, kind, occurred_at in self.session.execute(q):
                self.event_keys.add((self.containers_by_id[container_id], kind, occurred_at))

    # --- writing ---

    def write(self) -> None:
        """Insert the rows made and update the rows changed, table by table (parents first)."""
        new = {id(r) for r in self.new}  # just inserted: nothing to update
        for table in (T_VESSEL_CALL, T_DEAL, T_BOOKING, T_CONTAINER):
            self._insert([r for r in self.new if r.table is table])
            self._update(r for r in self._held(table) if id(r) not in new)
        self._write_dangerous_goods()
        self._insert([r for r in self.new if r.table is T_FORM])
        self._update_forms(r for r in self.forms.values() if id(r) not in new)
        self._insert([r for r in self.new if r.table is T_PART])
        self._update(r for r in self.participations.values() if id(r) not in new)
        self.new = []

    def _held(self, table: Table) -> list[_Row]:
        if table is T_VESSEL_CALL:
            return list(self.vessel_calls.values())
        if table is T_DEAL:
            return list(self.deals)
        if table is T_BOOKING:
            return list(self.bookings.values())
        return list(self.containers.values())

    def _insert(self, rows: Sequence[_Row]) -> None:
        if not rows:
            return
        groups: dict[tuple[str, ...], list[tuple[_Row, dict[str, Any]]]] = {}
        saved = []
        for row in rows:
            values = row.values()
            saved.append(values)  # what the row holds once written
            if row.table is T_CONTAINER and values["oog"] is None:
                values = {k: v for k, v in values.items() if k != "oog"}  # SQL NULL, not JSON null
            if row.table is T_FORM:
                values = {**values, "version": 1}
            groups.setdefault(tuple(values), []).append((row, values))
        table = rows[0].table
        ids = self.insert_rows(table, [group for group in groups.values()])
        saved_by_row = {id(row): values for row, values in zip(rows, saved, strict=True)}
        for group, group_ids in zip(groups.values(), ids, strict=True):
            for (row, _), new_id in zip(group, group_ids, strict=True):
                row.id = new_id
                row.saved = saved_by_row[id(row)]
                if isinstance(row, _Container):
                    self.containers_by_id[new_id] = row
                elif isinstance(row, _Booking):
                    self.bookings_by_id[new_id] = row
                elif isinstance(row, _Deal):
                    self.deals_by_id[new_id] = row
                elif isinstance(row, _VesselCall):
                    self.vessel_calls_by_id[new_id] = row

    def highest(self, tables: Iterable[Table]) -> None:
        """SQLite: the highest id of each table, in one query (for :meth:`insert_rows`, until :meth:`forget`)."""
        wanted = tuple(t for t in dict.fromkeys(tables) if t not in self.top)
        if wanted and self.sqlite:
            for table, top in zip(wanted, self.session.execute(_highest_query(wanted)).one(), strict=True):
                self.top[table] = top or 0

    def forget(self) -> None:
        """Others may insert between two writes of this writer (the ORM in the same transaction)."""
        self.top.clear()

    def insert_rows(self, table: Table, groups: Sequence[Sequence[tuple[Any, dict[str, Any]]]]) -> list[list[int]]:
        """Insert each group (rows with the same columns) and return their new ids, in order.

        SQLite: the transaction holds the database's write lock from its start (``BEGIN IMMEDIATE``), so the ids
        after the table's highest are ours to give: one plain executemany per group, no RETURNING (SQLAlchemy
        would send a RETURNING insert row by row there, SQLite not promising the order of returned rows).
        Elsewhere: one INSERT … RETURNING per group, batched by SQLAlchemy (``insertmanyvalues``) in order."""
        out: list[list[int]] = []
        if self.sqlite:
            if table not in self.top:
                self.highest([table])
            top = self.top[table]
            for group in groups:
                ids = list(range(top + 1, top + 1 + len(group)))
                top += len(group)
                rows = [{**values, "id": i} for (_, values), i in zip(group, ids, strict=True)]
                executemany_insert(self.session, table, rows)
                out.append(ids)
            self.top[table] = top
            return out
        stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        for group in groups:
            out.append(list(self.session.execute(stmt, [values for _, values in group]).scalars().all()))
        return out

    def _changes(self, rows: Iterable[_Row]) -> dict[tuple[str, ...], list[tuple[_Row, dict[str, Any]]]]:
        groups: dict[tuple[str, ...], list[tuple[_Row, dict[str, Any]]]] = {}
        for row in rows:
            if row.saved is None:
                continue
            values = row.values()
            changed = {k: v for k, v in values.items() if row.saved.get(k) != v}
            if changed:
                groups.setdefault(tuple(changed), []).append((row, changed))
        return groups

    def _update(self, rows: Iterable[_Row]) -> None:
        for names, group in self._changes(rows).items():
            table = group[0][0].table
            stmt = update(table).where(table.c.id == bindparam("_id")).values({name: bindparam(name) for name in names})
            self.session.execute(stmt, [{**changed, "_id": row.id} for row, changed in group])
            for row, _ in group:
                row.saved = row.values()

    def _update_forms(self, forms: Iterable[_Form]) -> None:
        """A form's update names the version read; another writer having moved it is a ``StaleDataError``."""
        stmt = (
            update(T_FORM)
            .where(T_FORM.c.id == bindparam("_id"), T_FORM.c.version == bindparam("_version"))
            .values(payload=bindparam("payload"), version=bindparam("_new_version"))
        )
        for group in self._changes(forms).values():
            for row, _ in group:
                assert isinstance(row, _Form)
                params = {
                    "payload": row.payload,
                    "_id": row.id,
                    "_version": row.version,
                    "_new_version": row.version + 1,
                }
                result = cast(CursorResult[Any], self.session.execute(stmt, params))
                if result.rowcount != 1:
                    raise StaleDataError(
                        f"UPDATE statement on table 'form' expected to update 1 row(s); {result.rowcount} were matched."
                    )
                row.version += 1
                row.saved = row.values()

    def _write_dangerous_goods(self) -> None:
        replaced = [c for c in self.containers.values() if c.dg_replaced]
        if not replaced:
            return
        old = sorted(c.id for c in replaced if c.saved is not None and c.id is not None and c.dg_existed)
        if old:
            self.session.execute(delete(T_DG).where(T_DG.c.container_id.in_(old)))
        rows = [
            {"container_id": c.id, **{k: getattr(d, k) for k in _DG_FIELDS}}
            for c in replaced
            for d in c.dangerous_goods or ()
        ]
        if rows:
            self.session.execute(insert(T_DG), rows)
        for c in replaced:
            c.dg_replaced = False
            c.dg_existed = True


@dataclass
class _Context:
    """What earlier records of the same message established, for the records after them."""

    mapped: MappedMessage
    stamp: str  # the message's issue time, UTC ISO: compared with the stamps in ``as_of``
    vessel_call: _VesselCall | None = None
    bookings: dict[str, _Booking] = field(default_factory=dict)
    deals: dict[str, _Deal] = field(default_factory=dict)  # by B/L and by booking number
    # shipments written, settled once the whole message is: (deal, form, changed details)
    shipments: list[tuple[_Deal, str | None, list[str]]] = field(default_factory=list)


class CanonicalWriter:
    """Writes the records of one inbound payload, a chunk of messages at a time.

    :meth:`add` buffers a mapped message and writes the chunk once it holds ``chunk`` messages; :meth:`finish`
    writes what is left (the pipeline calls it in the persist step). :meth:`write` writes one message at once.
    """

    def __init__(
        self, session: Session, message: Message, routes: Mapping[str, RouteConfig], *, chunk: int | None = None
    ) -> None:
        self.session = session
        self.message = message
        self.routes = routes
        self.chunk = chunk or CHUNK
        partner = message.partner
        self.partner_code = partner.code if partner else None
        self.partner_id = partner.id if partner else None
        self.partner_type = partner.business_type if partner else None
        self.pending: list[MappedMessage] = []
        self.rows = _Rows(session, self.partner_id)
        self.events: list[_PendingEvent] = []
        self.events_written = 0
        # routes by the event kind they subscribe to (enabled ones only)
        self._routes_by_kind: dict[str, list[tuple[str, RouteConfig]]] = {}
        for name, route in routes.items():
            if route.enabled:
                self._routes_by_kind.setdefault(route.on, []).append((name, route))

    # --- chunks -------------------------------------------------------------------------------------------------

    def add(self, mapped: MappedMessage) -> None:
        """Buffer one mapped message; a full chunk is written at once."""
        self.pending.append(mapped)
        if len(self.pending) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        """Write the buffered messages (one chunk)."""
        batch, self.pending = self.pending, []
        if batch:
            self.write_many(batch)

    def finish(self) -> None:
        """Write everything still buffered or decided."""
        self.flush()
        self.store()

    def write(self, mapped: MappedMessage) -> None:
        self.write_many([mapped])

    def write_many(self, batch: Sequence[MappedMessage]) -> None:
        """Load the rows the batch names, apply its messages in order, write, and drop the rows."""
        self.rows.preload(batch)
        for mapped in batch:
            self.write_message(mapped)
        self.store()
        self.rows = _Rows(self.session, self.partner_id)

    def write_message(self, mapped: MappedMessage) -> None:
        issued = mapped.issued_at or self.message.received_at
        ctx = _Context(mapped, _stamp(issued))
        for record in mapped.records:
            if isinstance(record, VesselCallRecord):
                ctx.vessel_call = self.vessel_call(record, ctx)
            elif isinstance(record, BookingRecord):
                booking = self.booking(record, ctx)
                ctx.bookings[booking.booking_number] = booking
            elif isinstance(record, ShipmentRecord):
                self.shipment(record, ctx)
            elif isinstance(record, ContainerRecord):
                self.container(record, ctx)
            elif isinstance(record, ContainerEventRecord):
                self.container_event(record, ctx)
            elif isinstance(record, CustomsStatusRecord):
                self.customs_status(record, ctx)
            elif isinstance(record, AcknowledgementRecord):
                self.acknowledgement(record, ctx)
            # goods_item and equipment records are in their shipment's goods/equipment by now (MappedMessage)
        self.settle_shipments(ctx)

    def store(self) -> None:
        """Write the rows, then the events decided so far, then their deliveries: a few statements each."""
        self.rows.highest([r.table for r in self.rows.new] + ([T_EVENT] if self.events else []))
        try:
            self._store()
        finally:
            self.rows.forget()

    def _store(self) -> None:
        self.rows.write()
        events, self.events = self.events, []
        if not events:
            return
        rows = []
        for ev in events:
            detail = ev.detail
            if ev.vessel_call is not None:
                detail = {"vessel_call_id": ev.vessel_call.id, **detail}
            rows.append(
                {
                    "kind": ev.kind,
                    "message_id": self.message.id,
                    "deal_id": ev.deal.id if ev.deal else None,
                    "container_id": ev.container.id if ev.container else None,
                    "detail": detail,
                    "occurred_at": ev.occurred_at,
                }
            )
        ids = self.rows.insert_rows(T_EVENT, [[(None, row) for row in rows]])[0]
        self.events_written += len(ids)
        now = utcnow()
        deliveries = [
            {
                "route": route,
                "event_id": event_id,
                "deal_id": row["deal_id"],
                "container_id": row["container_id"],
                "status": DeliveryStatus.HELD.value if held else DeliveryStatus.PENDING.value,
                "attempts": 0,
                "idempotency_key": uuid.uuid4().hex,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for ev, row, event_id in zip(events, rows, ids, strict=True)
            for route, held in ev.deliveries
        ]
        if deliveries:
            executemany_insert(self.session, T_DELIVERY, deliveries)

    # --- events --------------------------------------------------------------------------------------------

    def event(
        self,
        kind: str,
        deal: _Deal | None,
        detail: dict[str, Any],
        container: _Container | None = None,
        occurred_at: datetime | None = None,
        vessel_call: _VesselCall | None = None,
    ) -> None:
        """Decide an event and the deliveries it causes (written by :meth:`store`): the routes subscribed to
        ``kind`` whose ``when`` holds on the facts as they are now; ``held`` while the deal has no permit for a
        route that requires one."""
        deliveries = []
        routes = self._routes_by_kind.get(kind)
        if routes:
            facts = self.facts(container, deal)
            for name, route in routes:
                if outbox.route_applies(route, facts):
                    deliveries.append((name, route.require == "customs_permit" and not _permitted(deal)))
        self.events.append(
            _PendingEvent(kind, deal, container, detail, occurred_at or utcnow(), deliveries, vessel_call)
        )

    def facts(self, container: _Container | None, deal: _Deal | None = None) -> dict[str, Any]:
        """What route conditions (``when:``) may test."""
        deal = deal or (container.deal if container else None)
        return {
            "partner": self.partner_code,
            "message_type": self.message.message_type,
            "full_empty": container.full_empty if container else None,
            "direction": deal.direction if deal else None,
        }

    # --- vessel calls, bookings, deals -----------------------------------------------------------------------

    def vessel_call(self, rec: VesselCallRecord, ctx: _Context) -> _VesselCall:
        key = _vessel_key(rec)
        row = self.rows.vessel_calls.get(key)
        if row is None:
            row = _VesselCall(natural_key=key, voyage=rec.voyage)
            self.rows.made(row)
            self.rows.vessel_calls[key] = row
        changed, _ = _assign(row, rec.model_dump(exclude={"entity"}, exclude_none=True), ctx.stamp)
        if changed:
            self.event("vessel_call.announced", None, {"changed": changed}, vessel_call=row)
        return row

    def booking(self, rec: BookingRecord, ctx: _Context) -> _Booking:
        scac = rec.carrier_scac or (ctx.vessel_call.carrier_scac if ctx.vessel_call else None) or ""
        row, is_new = self.booking_row(rec.booking_number, scac)
        changed = []
        if ctx.vessel_call is not None and row.vessel_call is not ctx.vessel_call:
            row.vessel_call = ctx.vessel_call
            changed.append("vessel_call")
        if changed or is_new:
            self.event("booking.announced", row.deal, {"booking_number": row.booking_number})
        assert row.deal is not None
        ctx.deals[row.booking_number] = row.deal
        return row

    def booking_row(self, number: str, scac: str, bl_number: str | None = None) -> tuple[_Booking, bool]:
        """The booking, created with its export deal when new."""
        row = self.rows.bookings.get((number, scac))
        is_new = row is None
        if row is None:
            row = _Booking(booking_number=number, carrier_scac=scac)
            self.rows.made(row)
            self.rows.add_booking(row)
        if row.deal is None:
            row.deal = self.deal_for(bl_number=bl_number, booking_number=number, carrier_scac=scac)
        return row, is_new

    def deal_for(
        self,
        *,
        bl_number: str | None,
        booking_number: str | None,
        carrier_scac: str | None,
        direction: str = "export",
    ) -> _Deal:
        """The deal of a B/L, else of a booking; opened when there is none (one deal per B/L)."""
        deal = self.rows.deal_by_bl(bl_number) if bl_number else None
        if deal is None and booking_number:
            deal = self.rows.deal_by_booking(booking_number, carrier_scac or "")
            if deal is not None and bl_number and deal.bl_number not in (None, bl_number):
                deal = None  # the booking is split over several B/Ls: this one gets a deal of its own
        if deal is None:
            deal = _Deal(
                deal_number=f"DL-{secrets.token_hex(5).upper()}",
                direction=direction,
                bl_number=bl_number,
                booking_number=booking_number,
                carrier_scac=carrier_scac or "",
            )
            self.rows.made(deal)
            self.rows.deals.append(deal)
            self.rows.index_deal(deal)
            detail = {"bl_number": bl_number, "booking_number": booking_number, "carrier_scac": carrier_scac}
            self.event("deal.opened", deal, {k: v for k, v in detail.items() if v})
        elif bl_number and deal.bl_number is None:
            deal.bl_number = bl_number
            self.rows.index_deal(deal)
        return deal

    def context_deal(self, ctx: _Context, bl_number: str | None, booking_number: str | None) -> _Deal | None:
        """A deal this message already named, by B/L or booking; the only one when the record names none."""
        for key in (bl_number, booking_number):
            if key and key in ctx.deals:
                return ctx.deals[key]
        if not (bl_number or booking_number):
            distinct = {id(d): d for d in ctx.deals.values()}
            if len(distinct) == 1:
                return next(iter(distinct.values()))
        return None

    def shipment(self, rec: ShipmentRecord, ctx: _Context) -> _Deal:
        scac = rec.carrier_scac or (ctx.vessel_call.carrier_scac if ctx.vessel_call else None)
        direction = rec.direction or "export"
        if rec.booking_number and direction == "export":
            booking, _ = self.booking_row(rec.booking_number, scac or "", rec.bl_number)
            if ctx.vessel_call is not None and booking.vessel_call is None:
                booking.vessel_call = ctx.vessel_call
            deal = booking.deal
            assert deal is not None
            if rec.bl_number and deal.bl_number != rec.bl_number:
                deal = self.deal_for(bl_number=rec.bl_number, booking_number=rec.booking_number, carrier_scac=scac)
        else:
            deal = self.deal_for(
                bl_number=rec.bl_number, booking_number=rec.booking_number, carrier_scac=scac, direction=direction
            )
        for key in (rec.bl_number, rec.booking_number):
            if key:
                ctx.deals[key] = deal
        details = rec.model_dump(mode="json", exclude=_SHIPMENT_KEYS, exclude_none=True)
        changed = _merge(deal, "details", details, ctx.stamp)
        if rec.booking_number and deal.booking_number is None:
            deal.booking_number = rec.booking_number
            self.rows.index_deal(deal)
        if rec.customs_declaration and deal.declaration_number is None:
            deal.declaration_number = rec.customs_declaration
            self.rows.index_deal(deal)
        ctx.shipments.append((deal, rec.form, changed))
        return deal

    def settle_shipments(self, ctx: _Context) -> None:
        """Deal-level forms are saved after the whole message, so they list the containers it announced."""
        for deal, form, changed in ctx.shipments:
            if form:
                numbers = [c.number for c in self.rows.containers_of(deal)]
                if self.save_form(deal, form, "", forms.shipment(deal, numbers)):
                    changed = [*changed, f"form {form}"]
                self.join(deal, form)
            if changed:
                self.event("shipment.updated", deal, {"changed": changed, "form": form})

    # --- containers --------------------------------------------------------------------------------------------

    def container_deal(self, ctx: _Context, number: str, bl: str | None, booking: str | None) -> _Deal | None:
        """The deal a container record belongs to: named by this message, else by the store, else the deal
        the container was last seen on; None for a container no deal claims yet (a bay plan's)."""
        deal = self.context_deal(ctx, bl, booking)
        if deal is None and bl:
            deal = self.rows.deal_by_bl(bl)
        if deal is None and booking:
            known: _Booking | None = _first(self.rows.bookings_by_number.get(booking, ()))
            if known is not None:
                deal = known.deal
            else:  # a booking nobody announced: it opens its export deal
                scac = ctx.vessel_call.carrier_scac if ctx.vessel_call else None
                deal = self.booking_row(booking, scac or "")[0].deal
        if deal is None:
            last: _Container | None = _last(self.rows.containers_by_number.get(number, ()))
            deal = last.deal if last else None
        return deal

    def container_row(self, number: str, deal: _Deal | None) -> _Container:
        row = self.rows.containers.get((number, deal))
        if row is None:
            row = _Container(number=number, deal=deal, dangerous_goods=[])
            self.rows.made(row)
            self.rows.add_container(row)
        return row

    def container(self, rec: ContainerRecord, ctx: _Context) -> None:
        deal = self.container_deal(ctx, rec.number, rec.bl_number, rec.booking_number)
        row = self.container_row(rec.number, deal)
        booking = ctx.bookings.get(rec.booking_number or "") or next(
            (b for b in ctx.bookings.values() if deal is not None and b.deal is deal), None
        )
        if booking is None and rec.booking_number:
            booking = _first(self.rows.bookings_by_number.get(rec.booking_number, ()))
        values: dict[str, Any] = {f: getattr(rec, f) for f in _CONTAINER_FIELDS if getattr(rec, f) is not None}
        if "seals" in rec.model_fields_set:
            values["seals"] = [s.model_dump(exclude_none=True) for s in rec.seals]
            if len(values["seals"]) > 6:
                raise ValueError(f"a container carries at most 6 seals, got {len(values['seals'])}")
        if rec.oog is not None:
            values["oog"] = rec.oog.model_dump(exclude_none=True)
        changed, stale = _assign(row, values, ctx.stamp)
        if booking is not None and row.booking is not booking:
            row.booking = booking
            changed.append("booking")
        if "dangerous_goods" in rec.model_fields_set and not _is_stale(row, "dangerous_goods", ctx.stamp):
            wanted = [d.model_dump() for d in rec.dangerous_goods]
            have = [{k: getattr(d, k) for k in _DG_FIELDS} for d in row.dangerous_goods or ()]
            row.as_of = {**row.as_of, "dangerous_goods": ctx.stamp}
            if wanted != have:
                row.dangerous_goods = [_DG(**d) for d in wanted]
                row.dg_replaced = True
                changed.append("dangerous_goods")
        row.last_message_id = self.message.id
        if not changed:
            return
        booking = row.booking
        if deal is None:  # not on a deal yet (a bay plan's container): no forms, the event stands alone
            self.event("container.announced", None, {"container": row.number, "changed": changed}, container=row)
            return
        if deal.direction == "export":
            self.save_form(deal, "UL090", row.number, forms.ul090(row, booking, _vessel(booking, ctx)))
            self.join(deal, "UL090")
        if rec.form and rec.form != "UL090":
            self.save_form(deal, rec.form, row.number, forms.container_form(rec.form, row))
            self.join(deal, rec.form)
        detail: dict[str, Any] = {"container": row.number, "changed": changed}
        if stale:
            detail["superseded"] = stale  # fields a later message had set already
        self.event("container.announced", deal, detail, container=row)

    def container_event(self, rec: ContainerEventRecord, ctx: _Context) -> None:
        deal = self.container_deal(ctx, rec.container, rec.bl_number, rec.booking_number)
        row = self.container_row(rec.container, deal)
        kind = f"container.{rec.kind}"
        key = (row, kind, rec.occurred_at)
        if key in self.rows.event_keys:
            return  # the same event from another message: already on the timeline
        self.rows.event_keys.add(key)
        current = row.status_at
        newer = current is None or rec.occurred_at >= current
        if newer:
            row.status, row.status_at = rec.kind, rec.occurred_at
            row.location = rec.location or row.location
            row.facility = rec.facility or row.facility
            if rec.full_empty:
                row.full_empty = rec.full_empty
        row.last_message_id = self.message.id
        detail = rec.model_dump(mode="json", exclude={"entity", "container", "kind"}, exclude_none=True)
        detail["container"] = row.number
        if not newer:
            detail["superseded"] = True  # older than the status the container already has: history only
        self.event(kind, deal, detail, container=row, occurred_at=rec.occurred_at)

    def named_deal(
        self, ctx: _Context, bl: str | None, booking: str | None, declaration: str | None = None
    ) -> _Deal | None:
        """An existing deal by B/L, booking (any carrier) or customs declaration; never opens one."""
        deal = self.context_deal(ctx, bl, booking)
        if deal is None and bl:
            deal = self.rows.deal_by_bl(bl)
        if deal is None and booking:
            deal = self.rows.deal_by_booking(booking, None)
        if deal is None and declaration:
            deal = self.rows.deal_by_declaration(declaration)
        return deal

    def customs_status(self, rec: CustomsStatusRecord, ctx: _Context) -> None:
        deal = self.named_deal(ctx, rec.bl_number, rec.booking_number, rec.declaration_number)
        if deal is None:
            keys = ", ".join(
                f"{k} {v}"
                for k, v in (
                    ("B/L", rec.bl_number),
                    ("booking", rec.booking_number),
                    ("declaration", rec.declaration_number),
                )
                if v
            )
            raise GatewayError(
                "PER-2", f"no deal is known for {keys}", Position(message_number=ctx.mapped.number), step="persist"
            )
        stamp = _stamp(rec.occurred_at) if rec.occurred_at else ctx.stamp
        detail = rec.model_dump(mode="json", exclude={"entity"}, exclude_none=True)
        self.set_customs_status(
            deal, rec.status, stamp, detail, rec.containers, rec.occurred_at, declaration=rec.declaration_number
        )

    def set_customs_status(
        self,
        deal: _Deal,
        status: str,
        stamp: str,
        detail: dict[str, Any],
        containers: Sequence[str] = (),
        occurred_at: datetime | None = None,
        *,
        declaration: str | None = None,
    ) -> None:
        """Customs status on the deal and its containers (all, or those named), newer wins; a ``customs.status``
        event when something changed. A permit releases the deal's held deliveries (``require: customs_permit``):
        what is decided so far is written first, so the held deliveries of this chunk are released too."""
        changed, stale = _assign(deal, {"customs_status": status}, stamp)
        targets = [c for c in self.rows.containers_of(deal) if not containers or c.number in containers]
        for container in targets:
            c_changed, _ = _assign(container, {"customs_status": status}, stamp)
            changed += [f"{container.number}.customs_status" for _ in c_changed]
        if declaration and deal.declaration_number != declaration:
            deal.declaration_number = declaration
            self.rows.index_deal(deal)
            changed.append("declaration_number")
        if not changed and not stale:
            return
        if stale:
            detail = {**detail, "superseded": True}
        self.event("customs.status", deal, detail, occurred_at=occurred_at)
        if _permitted(deal):
            self.store()
            assert deal.id is not None
            released = outbox.release_held(self.session, deal.id)
            if released:
                log.info("held deliveries released", deal=deal.deal_number, deliveries=[d.id for d in released])

    def naccs_reply(self, part: ReplyPart) -> None:
        """A NACCS output part: once its message is whole (earlier parts are this handover's stored messages),
        a ``naccs.result`` event on the deal of the delivery it answers, and a permit's customs status."""
        reassembler = Reassembler()
        earlier = self.session.scalars(
            select(Message)
            .where(
                Message.direction == "in",
                Message.format == "naccs",
                Message.interchange_ref == part.header.handover,
                Message.status == MessageStatus.DONE.value,
                Message.id != self.message.id,
            )
            .order_by(Message.id)
        )
        for stored in earlier:
            old = parse_part(stored.raw)
            if old.key == part.key:
                reassembler.add(old)  # a set completed earlier was recorded then; the Reassembler drops it
        reply = reassembler.add(part)
        if reply is None:
            return  # a part of a split message: stored, waiting for the rest
        delivery = delivery_for_handover(self.session, reply.handover)
        if delivery is None:
            raise GatewayError(
                "PER-2",
                f"no NACCS message was sent with hand-over information {reply.handover!r} "
                f"(output {reply.header.output_code or '(no code)'})",
                step="persist",
            )
        deal = self.rows.deal(delivery.deal_id) if delivery.deal_id else None
        container = self.rows.container(delivery.container_id) if delivery.container_id else None
        when = received_at(reply)
        detail: dict[str, Any] = {
            "outcome": reply.outcome.value if reply.outcome else None,
            "codes": [c.text for c in reply.codes],
            "business_code": reply.header.business_code,
            "output_code": reply.header.output_code,
            "kind": reply.header.kind,
            "handover": reply.handover,
            "input_id": reply.header.input_id,
            "parts": reply.parts,
            "delivery_id": delivery.id,
            "route": delivery.route,
        }
        self.event("naccs.result", deal, detail, container=container, occurred_at=when)
        status = permit_status(reply)
        if status is not None and deal is not None:
            stamp = _stamp(when or self.message.received_at)
            why = {"status": status, "source": "naccs", "output_code": reply.header.output_code}
            self.set_customs_status(deal, status, stamp, why, occurred_at=when)

    def acknowledgement(self, rec: AcknowledgementRecord, ctx: _Context) -> None:
        deal = self.named_deal(ctx, rec.bl_number, rec.booking_number)
        detail = rec.model_dump(mode="json", exclude={"entity"}, exclude_none=True)
        self.event("acknowledgement.received", deal, detail, occurred_at=rec.occurred_at)

    # --- forms and rights -----------------------------------------------------------------------------------

    def save_form(self, deal: _Deal, type_code: str, subject: str, payload: dict[str, Any]) -> bool:
        """Create or update a form; True when its content changed."""
        key = (deal, type_code, subject)
        form = self.rows.forms.get(key)
        if form is None:
            form = _Form(deal, type_code, subject, payload)
            self.rows.made(form)
            self.rows.forms[key] = form
            return True
        if form.payload != payload:
            form.payload = payload  # written with version + 1, checked against the version read
            return True
        return False

    def join(self, deal: _Deal, form_type: str) -> None:
        """The sending partner takes part in the deal with write rights on the forms its messages fill."""
        if self.partner_id is None:
            return
        part = self.rows.participations.get(deal)
        if part is None:
            part = _Participation(deal, self.partner_id, self.partner_type or "", {})
            self.rows.made(part)
            self.rows.participations[deal] = part
        if part.rights.get(form_type) != Right.READ_WRITE.value:
            part.rights = {**part.rights, form_type: Right.READ_WRITE.value}


def _permitted(deal: _Deal | None) -> bool:
    """The deal's customs status is a permit (export or import, as its direction needs): :func:`outbox.has_permit`
    on the row as this writer holds it."""
    if deal is None:
        return False
    return deal.customs_status == ("import_permitted" if deal.direction == "import" else "export_permitted")


def _vessel(booking: _Booking | None, ctx: _Context) -> _VesselCall | None:
    return (booking.vessel_call if booking else None) or ctx.vessel_call


def _stamp(moment: datetime) -> str:
    """A UTC ISO text: stamps compare as strings."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _is_stale(row: Any, name: str, stamp: str) -> bool:
    return bool((row.as_of or {}).get(name, "") > stamp)


def _assign(row: Any, values: Mapping[str, Any], stamp: str) -> tuple[list[str], list[str]]:
    """Set the fields whose stored value is not newer than ``stamp``; return (changed, stale) field names."""
    times = dict(row.as_of or {})
    changed, stale = [], []
    for name, value in values.items():
        if times.get(name, "") > stamp:
            if getattr(row, name) != value:
                stale.append(name)
            continue
        times[name] = stamp
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed.append(name)
    if times != (row.as_of or {}):
        row.as_of = times
    return changed, stale


def _merge(row: Any, column: str, values: Mapping[str, Any], stamp: str) -> list[str]:
    """:func:`_assign` for the keys of a JSON column (``as_of`` keys are ``column.key``).

    A key's value is one value, whatever its shape: a list such as ``details.goods`` or ``details.equipment``
    is replaced as a whole by a newer message and left alone by an older one, never merged item by item."""
    times = dict(row.as_of or {})
    current = dict(getattr(row, column) or {})
    changed = []
    for name, value in values.items():
        key = f"{column}.{name}"
        if times.get(key, "") > stamp:
            continue
        times[key] = stamp
        if current.get(name) != value:
            current[name] = value
            changed.append(name)
    if changed:
        setattr(row, column, current)
    if times != (row.as_of or {}):
        row.as_of = times
    return changed
