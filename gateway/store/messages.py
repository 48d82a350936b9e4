"""The message store: raw payloads committed on receipt, their status, and the queries over them.

The durable-receipt rule lives here: :meth:`MessageStore.receive` returns only after the payload is committed,
and a channel acknowledges its sender only after it returns. The dedup rule lives here too: the unique
``dedup_key`` (partner, or ``@channel`` when the partner is unknown, + sha256) admits one original per payload;
a second copy is stored as a ``duplicate`` row pointing at the first and is never processed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.config import PartnerConfig
from gateway.errors import GatewayError
from gateway.model import Message, MessageStatus, Partner, utcnow


@dataclass(frozen=True)
class Receipt:
    message_id: int
    duplicate_of: int | None
    reason: str | None = None  # for a duplicate: "same bytes" or "interchange reference"
    replayed: bool = False  # a retried request with the same idempotency key: nothing new was stored

    @property
    def duplicate(self) -> bool:
        return self.duplicate_of is not None


class IdempotencyConflict(Exception):
    """The idempotency key was used before for a different payload."""

    def __init__(self, message_id: int) -> None:
        super().__init__(f"the idempotency key was used for message {message_id} with a different payload")
        self.message_id = message_id


def sync_partners(
    session: Session, partners: Mapping[str, PartnerConfig], channels: Mapping[str, str | None] | None = None
) -> dict[str, int]:
    """Make the partner table match routes.yaml (partners are never deleted: messages refer to them).

    ``channels`` maps channel name → the partner it is dedicated to (None when shared).
    """
    existing = {p.code: p for p in session.scalars(select(Partner))}
    for code, row in existing.items():
        if code not in partners:  # removed from routes.yaml: kept for its messages, but no key opens the API
            row.api_key_hashes = []
            row.edifact_ids = []
            row.channels = []
    for code, cfg in partners.items():
        row = existing.get(code) or Partner(code=code)
        row.name = cfg.name
        row.business_type = cfg.business_type.value
        row.edifact_ids = list(cfg.edifact_ids)
        row.channels = sorted(name for name, owner in (channels or {}).items() if owner == code)
        row.api_key_hashes = list(cfg.api_key_sha256)
        if row.id is None:
            session.add(row)
            existing[code] = row
    session.flush()
    return {code: row.id for code, row in existing.items()}


class MessageStore:
    def __init__(self, sessions: sessionmaker[Session], partner_ids: Mapping[str, int]) -> None:
        self.sessions = sessions
        self.partner_ids = dict(partner_ids)

    def receive(
        self,
        raw: bytes,
        *,
        channel: str,
        partner: str | None,
        filename: str | None = None,
        headers: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        resubmitted_from: int | None = None,
    ) -> Receipt:
        """Store ``raw`` and commit; the caller may acknowledge its sender once this returns.

        A duplicate (same bytes, or the same EDIFACT interchange reference from the same sender while the first
        copy did not fail) is stored as a ``duplicate`` row and never processed. A request retried with the same
        ``idempotency_key`` stores nothing and gets the first message back; with other bytes it raises
        :class:`IdempotencyConflict`.
        """
        sha = hashlib.sha256(raw).hexdigest()
        owner = partner or "@" + channel
        key = f"{owner}:{sha}"
        reference = interchange_reference(raw)
        ref_key = f"{owner}:{reference[0]}:{reference[1]}"[:200] if reference else None
        idem_key = f"{owner}:{idempotency_key}"[:300] if idempotency_key else None
        row = dict(
            direction="in",
            channel=channel,
            partner_id=self.partner_ids.get(partner) if partner else None,
            filename=filename,
            headers=dict(headers or {}),
            raw=raw,
            sha256=sha,
            size=len(raw),
            idempotency_key=idem_key,
            resubmitted_from_id=resubmitted_from,
        )
        for _ in range(3):  # a concurrent receiver may win a unique key between our read and write
            try:
                with self.sessions.begin() as s:
                    return self._receive(s, row, key, ref_key, idem_key)
            except IntegrityError:
                continue
        raise RuntimeError(f"could not store payload {key} after a dedup race")

    @staticmethod
    def _receive(s: Session, row: dict[str, Any], key: str, ref_key: str | None, idem_key: str | None) -> Receipt:
        if idem_key is not None:
            earlier = s.scalar(select(Message).where(Message.idempotency_key == idem_key))
            if earlier is not None:
                if earlier.sha256 != row["sha256"]:
                    raise IdempotencyConflict(earlier.id)
                return Receipt(earlier.id, earlier.duplicate_of_id, earlier.duplicate_reason, replayed=True)
        # the same bytes, and the first copy of the same interchange, in one query (Core: no flush, no objects)
        if ref_key is None:
            found = s.execute(_BY_DEDUP_KEY, {"key": key}).all()
        else:
            found = s.execute(_BY_DEDUP_OR_INTERCHANGE_KEY, {"key": key, "ref": ref_key}).all()
        original = next((r.id for r in found if r.dedup_key == key), None)
        reason = "same bytes" if original is not None else None
        if original is None and ref_key is not None:
            first = next((r for r in found if r.interchange_key == ref_key), None)
            if first is not None and first.status in (MessageStatus.FAILED.value, MessageStatus.DISCARDED.value):
                # a corrected resend of a rejected interchange is processed
                s.execute(update(_MESSAGE).where(_MESSAGE.c.id == first.id).values(interchange_key=None))
            elif first is not None:
                original, reason = first.id, "interchange reference"
        if original is None:
            values = {**row, "dedup_key": key, "interchange_key": ref_key, "status": MessageStatus.RECEIVED.value}
        else:
            values = {
                **row,
                "duplicate_of_id": original,
                "duplicate_reason": reason,
                "status": MessageStatus.DUPLICATE.value,
            }
        message_id = s.execute(insert(_MESSAGE).values(values).returning(_MESSAGE.c.id)).scalar_one()
        return Receipt(message_id, original, reason)


_MESSAGE = cast(Table, Message.__table__)
_DEDUP_COLUMNS = (_MESSAGE.c.id, _MESSAGE.c.dedup_key, _MESSAGE.c.interchange_key, _MESSAGE.c.status)
_BY_DEDUP_KEY = select(*_DEDUP_COLUMNS).where(_MESSAGE.c.dedup_key == bindparam("key"))
# the interchange's first copy is locked (PostgreSQL) so that two receivers do not both clear or keep its key
_BY_DEDUP_OR_INTERCHANGE_KEY = (
    select(*_DEDUP_COLUMNS)
    .where(or_(_MESSAGE.c.dedup_key == bindparam("key"), _MESSAGE.c.interchange_key == bindparam("ref")))
    .with_for_update()
)


def interchange_reference(raw: bytes) -> tuple[str, str] | None:
    """(UNB sender, interchange control reference) of an EDIFACT payload, read cheaply; None otherwise."""
    from gateway.edifact import unb_fields

    fields = unb_fields(raw)
    if fields is None or not fields[0] or not fields[1]:
        return None
    return fields


def claim(session: Session, message_id: int) -> Message | None:
    """Lock a received message for processing; None when another worker holds it or it is already done."""
    return session.scalar(
        select(Message)
        .where(Message.id == message_id, Message.status == MessageStatus.RECEIVED.value)
        .with_for_update(skip_locked=True)
    )


def received_ids(session: Session, limit: int = 100, *, before: datetime | None = None) -> list[int]:
    """Messages stored but not yet processed (left by a crash, or waiting for a worker); with ``before``, only
    those stored before then (a worker that learns of new messages by notices sweeps for the forgotten ones)."""
    query = select(Message.id).where(Message.status == MessageStatus.RECEIVED.value, Message.direction == "in")
    if before is not None:
        query = query.where(Message.received_at < before)
    return list(session.scalars(query.order_by(Message.id).limit(limit)))


def record_failure(
    session: Session, message_id: int, error: GatewayError, steps: Sequence[dict[str, Any]], learned: dict[str, Any]
) -> Message | None:
    """Mark a message failed with its coded error; the raw bytes are left exactly as received."""
    msg = session.get(Message, message_id, with_for_update=True)
    if msg is None:
        return None
    for key, value in learned.items():
        setattr(msg, key, value)
    msg.status = MessageStatus.FAILED.value
    msg.error_code = error.code
    msg.error_text = error.text
    msg.error_step = error.step
    msg.error_position = error.position.as_dict() or None
    msg.steps = list(steps)
    return msg


def reopen(session: Session, message_id: int) -> Message:
    """Put a failed message back to ``received`` so it is processed again from its raw bytes.

    The error is moved into the step history, so what went wrong before stays visible.
    """
    msg = session.get(Message, message_id, with_for_update=True)
    if msg is None or msg.direction != "in":
        raise LookupError(f"no inbound message {message_id}")
    if msg.status != MessageStatus.FAILED.value:
        raise ValueError(f"message {message_id} is {msg.status}; only failed messages are reprocessed")
    history = {
        "step": "reprocess",
        "status": "requested",
        "at": utcnow().isoformat(),
        "previous_error": msg.error_dict(),
    }
    msg.steps = [*msg.steps, history]
    msg.status = MessageStatus.RECEIVED.value
    msg.error_code = msg.error_text = msg.error_step = None
    msg.error_position = None
    return msg


def step_entry(step: str, status: str, at: datetime | None = None) -> dict[str, Any]:
    return {"step": step, "status": status, "at": (at or utcnow()).isoformat()}


def list_messages(
    session: Session,
    *,
    status: str | None = None,
    partner_id: int | None = None,
    direction: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Message]:
    """Newest first, keyset-paged by id (``before_id``) so deep pages stay as fast as the first."""
    q = select(Message).order_by(Message.id.desc()).limit(limit)
    if status:
        q = q.where(Message.status == status)
    if partner_id is not None:
        q = q.where(Message.partner_id == partner_id)
    if direction:
        q = q.where(Message.direction == direction)
    if before_id is not None:
        q = q.where(Message.id < before_id)
    return list(session.scalars(q))


def counts_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(Message.status, func.count()).group_by(Message.status))
    return {status: n for status, n in rows}


def summary(msg: Message) -> dict[str, Any]:
    """A message as the CLI and API show it (without the raw bytes)."""
    return {
        "id": msg.id,
        "direction": msg.direction,
        "channel": msg.channel,
        "partner": msg.partner.code if msg.partner else None,
        "received_at": msg.received_at.isoformat(),
        "filename": msg.filename,
        "size": msg.size,
        "sha256": msg.sha256,
        "format": msg.format,
        "message_type": msg.message_type,
        "interchange_ref": msg.interchange_ref,
        "messages": msg.message_count,
        "status": msg.status,
        "duplicate_of": msg.duplicate_of_id,
        "duplicate_reason": msg.duplicate_reason,
        "error": msg.error_dict(),
        "problems": msg.problems,  # CSV rows left out under `bad_rows: skip`
        "steps": msg.steps,
    }


def discard(session: Session, message_id: int, reason: str, by: str) -> Message:
    """Mark a failed message ``discarded`` (an operator gave up on it); the error and the raw bytes stay."""
    msg = session.get(Message, message_id, with_for_update=True)
    if msg is None:
        raise LookupError(f"no message {message_id}")
    if msg.status != MessageStatus.FAILED.value:
        raise ValueError(f"message {message_id} is {msg.status}; only failed messages are discarded")
    msg.status = MessageStatus.DISCARDED.value
    msg.steps = [*msg.steps, {**step_entry("discard", "done"), "reason": reason, "by": by}]
    return msg


# ---- the dashboard's message search -------------------------------------------------------------------------

SEARCH_WINDOW = 5000  # messages the payload search looks through per page (the newest that pass the filters)


@dataclass(frozen=True)
class MessageFilter:
    """What the dashboard's message list filters on; every field is optional (None or "" = any)."""

    status: str | None = None
    direction: str | None = None
    channel: str | None = None
    partner_id: int | None = None
    message_type: str | None = None
    error_code: str | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None  # exclusive
    reference: str | None = None  # a B/L, booking or container number the message touched
    search: str | None = None  # a substring of the raw payload


@dataclass(frozen=True)
class Found:
    rows: list[Message]
    older: int | None  # ``before_id`` of the next page, None at the end
    searched: tuple[int, int] | None = None  # with a payload search: the (newest, oldest) ids looked through


def _touching(reference: str) -> Any:
    """Ids of the messages that touched a deal or container with this B/L, booking or container number: the
    messages behind their events, and the outbound messages of their deliveries."""
    from sqlalchemy import or_, union

    from gateway.model import Container, Deal, Delivery, Event

    deals = select(Deal.id).where(or_(Deal.bl_number == reference, Deal.booking_number == reference))
    containers = select(Container.id).where(or_(Container.number == reference, Container.bl_number == reference))
    return union(
        select(Event.message_id).where(Event.deal_id.in_(deals), Event.message_id.is_not(None)),
        select(Event.message_id).where(Event.container_id.in_(containers), Event.message_id.is_not(None)),
        select(Delivery.message_id).where(Delivery.deal_id.in_(deals), Delivery.message_id.is_not(None)),
        select(Delivery.message_id).where(Delivery.container_id.in_(containers), Delivery.message_id.is_not(None)),
    )


def _filtered(f: MessageFilter) -> Any:
    q = select(Message.id)
    if f.status:
        q = q.where(Message.status == f.status)
    if f.direction:
        q = q.where(Message.direction == f.direction)
    if f.channel:
        q = q.where(Message.channel == f.channel)
    if f.partner_id is not None:
        q = q.where(Message.partner_id == f.partner_id)
    if f.message_type:
        q = q.where(Message.message_type == f.message_type)
    if f.error_code:
        q = q.where(Message.error_code == f.error_code)
    if f.received_from is not None:
        q = q.where(Message.received_at >= f.received_from)
    if f.received_to is not None:
        q = q.where(Message.received_at < f.received_to)
    if f.reference:
        q = q.where(Message.id.in_(_touching(f.reference.strip())))
    return q


def needles(text: str) -> list[bytes]:
    """The search text as bytes in each encoding partners use (UTF-8, Shift_JIS, EUC-JP), without repeats."""
    found: list[bytes] = []
    for codec in ("utf-8", "cp932", "euc_jp"):
        try:
            b = text.encode(codec)
        except UnicodeEncodeError:
            continue
        if b not in found:
            found.append(b)
    return found


def _contains(session: Session, search: str) -> Any:
    """raw contains the text (byte-exact, case-sensitive) on both databases: ``instr`` on SQLite's BLOB,
    ``position(… IN …)`` on PostgreSQL's bytea (LIKE would be case-insensitive on SQLite and needs escaping)."""
    from sqlalchemy import Integer, LargeBinary, bindparam, or_

    postgres = session.get_bind().dialect.name == "postgresql"
    clauses = []
    for i, needle in enumerate(needles(search)):
        param = bindparam(f"needle_{i}", needle, type_=LargeBinary)
        if postgres:
            clauses.append(func.position(param.op("IN")(Message.raw), type_=Integer) > 0)
        else:
            clauses.append(func.instr(Message.raw, param) > 0)
    return or_(*clauses)


def find_messages(
    session: Session,
    f: MessageFilter,
    *,
    before_id: int | None = None,
    limit: int = 50,
    window: int = SEARCH_WINDOW,
) -> Found:
    """Newest first, keyset-paged by id. With ``f.search``, the payloads looked through are only the ``window``
    newest messages (below ``before_id``) that pass the other filters; ``searched`` says which, and ``older``
    continues below them, so a page never reads more than ``window`` payloads whatever the table's size."""
    q = _filtered(f)
    if before_id is not None:
        q = q.where(Message.id < before_id)
    if not f.search:
        ids = list(session.scalars(q.order_by(Message.id.desc()).limit(limit + 1)))
        rows = _load(session, ids[:limit])
        return Found(rows, ids[limit - 1] if len(ids) > limit else None)
    scope = q.order_by(Message.id.desc()).limit(window).subquery()
    bounds = session.execute(select(func.max(scope.c.id), func.min(scope.c.id), func.count())).one()
    if not bounds[2]:
        return Found([], None, None)
    newest, oldest, scanned = bounds
    hits = list(
        session.scalars(
            select(Message.id)
            .where(Message.id.in_(select(scope.c.id)), _contains(session, f.search))
            .order_by(Message.id.desc())
            .limit(limit + 1)
        )
    )
    if len(hits) > limit:  # more hits in this window: the next page starts below the last one shown
        hits = hits[:limit]
        return Found(_load(session, hits), hits[-1], (newest, hits[-1]))
    return Found(_load(session, hits), oldest if scanned == window else None, (newest, oldest))


def _load(session: Session, ids: Sequence[int]) -> list[Message]:
    if not ids:
        return []
    rows = {m.id: m for m in session.scalars(select(Message).where(Message.id.in_(ids)))}
    return [rows[i] for i in ids if i in rows]


def matching_ids(session: Session, f: MessageFilter, limit: int) -> list[int]:
    """Up to ``limit`` ids (newest first) of the messages passing ``f`` (bulk actions; the payload search over
    the newest ``SEARCH_WINDOW`` as on the list)."""
    if not f.search:
        return list(session.scalars(_filtered(f).order_by(Message.id.desc()).limit(limit)))
    scope = _filtered(f).order_by(Message.id.desc()).limit(SEARCH_WINDOW).subquery()
    return list(
        session.scalars(
            select(Message.id)
            .where(Message.id.in_(select(scope.c.id)), _contains(session, f.search))
            .order_by(Message.id.desc())
            .limit(limit)
        )
    )
