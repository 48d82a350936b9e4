"""The canonical port-logistics model, after Cyber Port's deal (取引): one deal per B/L.

Everything a channel receives is mapped onto these tables; everything an outbound route sends is rendered from
them. Natural keys (B/L number, booking number + carrier SCAC, container number within a deal, ...) are unique
constraints so that a replayed message updates rather than duplicates. ``docs/architecture.md`` has the picture.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from gateway import iso6346

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class BusinessType(enum.StrEnum):
    """The 12 business types a Cyber Port organisation joins a deal as (domain.md §1)."""

    OCEAN_CARRIER = "ocean_carrier"
    FEEDER_CARRIER = "feeder_carrier"
    SHIPPING_AGENT = "shipping_agent"
    TRUCKER = "trucker"
    TERMINAL_OPERATOR = "terminal_operator"
    WAREHOUSE_OPERATOR = "warehouse_operator"
    CUSTOMS_BROKER = "customs_broker"
    FORWARDER = "forwarder"
    NVOCC = "nvocc"
    SHIPPER_CONSIGNEE = "shipper_consignee"
    VGM_NOTIFIER = "vgm_notifier"
    VGM_REGISTRANT = "vgm_registrant"


class Right(enum.StrEnum):
    """A partner's right on one form type of a deal."""

    READ = "Read"
    READ_WRITE = "ReadWrite"
    NONE = "none"


class MessageStatus(enum.StrEnum):
    RECEIVED = "received"
    PARSED = "parsed"
    MAPPED = "mapped"
    DONE = "done"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    DISCARDED = "discarded"  # a failed message an operator gave up on, with a reason (dashboard)
    # outbound payloads
    RENDERED = "rendered"
    SENT = "sent"


class DeliveryStatus(enum.StrEnum):
    HELD = "held"  # waits for the deal's customs permit (a route's require: customs_permit); never claimed
    PENDING = "pending"  # due at next_attempt_at
    SENDING = "sending"  # claimed by a dispatcher until locked_until
    DONE = "done"
    DEAD = "dead"  # retries exhausted or permanent failure; payload and attempts kept


FORM_TYPES = {
    "UL040": "shipping instruction (S/I)",
    "UL050": "booking confirmation",
    "UL090": "container gate-in slip (CONPAS pre-notification data set)",
    "UL100": "commercial invoice",
    "UL150": "bill of lading",
    "UL290": "arrival notice",
    "DG": "dangerous-goods declaration",
    "VGM": "verified gross mass",
}


class Partner(Base):
    """An organisation we exchange messages with; synchronised from routes.yaml on start."""

    __tablename__ = "partner"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    business_type: Mapped[str] = mapped_column(String(32))
    edifact_ids: Mapped[list[Any]] = mapped_column(default=list)
    channels: Mapped[list[Any]] = mapped_column(default=list)
    # sha256 hex digests of the partner's API keys; the keys themselves are never stored
    api_key_hashes: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Deal(Base):
    """One per B/L; found by deal number, B/L number, booking number + carrier SCAC or internal reference."""

    __tablename__ = "deal"
    __table_args__ = (
        Index("ix_deal_booking", "booking_number", "carrier_scac"),
        Index("ix_deal_internal_reference", "internal_reference"),
        Index("ix_deal_declaration_number", "declaration_number"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    deal_number: Mapped[str] = mapped_column(String(32), unique=True)
    direction: Mapped[str] = mapped_column(String(8))  # export | import
    bl_number: Mapped[str | None] = mapped_column(String(35), unique=True)
    booking_number: Mapped[str | None] = mapped_column(String(35))
    carrier_scac: Mapped[str | None] = mapped_column(String(17))
    internal_reference: Mapped[str | None] = mapped_column(String(64))
    customs_status: Mapped[str | None] = mapped_column(String(32))
    declaration_number: Mapped[str | None] = mapped_column(String(35))  # the customs declaration (NACCS)
    # the shipment as the messages describe it: parties, places, cargo (gateway.canonical.ShipmentRecord)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # field → issue time of the message that set it; an older message does not overwrite a newer value
    as_of: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    participations: Mapped[list[Participation]] = relationship(back_populates="deal")
    containers: Mapped[list[Container]] = relationship(back_populates="deal")
    forms: Mapped[list[Form]] = relationship(back_populates="deal")
    events: Mapped[list[Event]] = relationship(back_populates="deal", order_by="Event.id")


class Participation(Base):
    """A partner's membership of a deal, with its right per form type (absent form type = none)."""

    __tablename__ = "participation"
    __table_args__ = (UniqueConstraint("partner_id", "deal_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partner.id"))
    deal_id: Mapped[int] = mapped_column(ForeignKey("deal.id"))
    business_type: Mapped[str] = mapped_column(String(32))
    rights: Mapped[dict[str, Any]] = mapped_column(default=dict)

    deal: Mapped[Deal] = relationship(back_populates="participations")
    partner: Mapped[Partner] = relationship()

    def right(self, form_type: str) -> Right:
        return Right(self.rights.get(form_type, Right.NONE.value))


class VesselCall(Base):
    """A vessel's call on a voyage; keyed by carrier, voyage and the best vessel identity we have."""

    __tablename__ = "vessel_call"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    natural_key: Mapped[str] = mapped_column(String(200), unique=True)
    vessel_name: Mapped[str | None] = mapped_column(String(70))
    imo_number: Mapped[str | None] = mapped_column(String(10))
    call_sign: Mapped[str | None] = mapped_column(String(17))
    voyage: Mapped[str] = mapped_column(String(17))
    carrier_scac: Mapped[str | None] = mapped_column(String(17))
    port_of_loading: Mapped[str | None] = mapped_column(String(5))
    port_of_discharge: Mapped[str | None] = mapped_column(String(5))
    eta: Mapped[datetime | None]
    etd: Mapped[datetime | None]
    as_of: Mapped[dict[str, Any]] = mapped_column(default=dict)  # field → issue time of the message that set it
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Booking(Base):
    __tablename__ = "booking"
    __table_args__ = (UniqueConstraint("booking_number", "carrier_scac"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    booking_number: Mapped[str] = mapped_column(String(35))
    carrier_scac: Mapped[str] = mapped_column(String(17), default="")  # "" when unknown, so the key is unique
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deal.id"))
    vessel_call_id: Mapped[int | None] = mapped_column(ForeignKey("vessel_call.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    deal: Mapped[Deal | None] = relationship()
    vessel_call: Mapped[VesselCall | None] = relationship()


class Container(Base):
    """A container (ISO 6346 number) as it travels on one deal."""

    __tablename__ = "container"
    __table_args__ = (
        UniqueConstraint("deal_id", "number"),
        Index("ix_container_number", "number"),
        Index("ix_container_bl_number", "bl_number"),  # dashboard: messages by B/L (migration 0007)
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(11))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deal.id"))
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"))
    iso_size_type: Mapped[str | None] = mapped_column(String(4))
    full_empty: Mapped[str | None] = mapped_column(String(5))  # full | empty
    seals: Mapped[list[Any]] = mapped_column(default=list)  # up to 6: [{"number", "issuer"}]
    gross_kg: Mapped[float | None] = mapped_column(Float)
    tare_kg: Mapped[float | None] = mapped_column(Float)
    vgm_kg: Mapped[float | None] = mapped_column(Float)
    cargo_kg: Mapped[float | None] = mapped_column(Float)
    reefer_temp_c: Mapped[float | None] = mapped_column(Float)
    oog: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # height, left, right, front, rear (cm)
    commodity: Mapped[str | None] = mapped_column(String(350))
    terminal_code: Mapped[str | None] = mapped_column(String(17))
    delivery_at: Mapped[datetime | None]  # requested gate-in (UL090 delivery date and time)
    customs_status: Mapped[str | None] = mapped_column(String(32))
    conpas_result: Mapped[int | None] = mapped_column(Integer)  # pre-matching 0-3
    conpas_terminal_check: Mapped[int | None] = mapped_column(Integer)  # 0-2
    bl_number: Mapped[str | None] = mapped_column(String(35))
    vgm_method: Mapped[str | None] = mapped_column(String(3))  # SM1 | SM2
    vgm_party: Mapped[str | None] = mapped_column(String(70))
    # the latest event (gate_in, gate_out, loaded, discharged, released, ...), when and where it happened
    status: Mapped[str | None] = mapped_column(String(16))
    status_at: Mapped[datetime | None]
    location: Mapped[str | None] = mapped_column(String(17))
    facility: Mapped[str | None] = mapped_column(String(35))
    # field → issue time of the message that set it; an older message does not overwrite a newer value
    as_of: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    deal: Mapped[Deal | None] = relationship(back_populates="containers")
    booking: Mapped[Booking | None] = relationship()
    dangerous_goods: Mapped[list[DangerousGoods]] = relationship(
        back_populates="container", cascade="all, delete-orphan"
    )

    @validates("number")
    def _check_number(self, _key: str, number: str) -> str:
        iso6346.require_valid(number)
        return number

    @validates("seals")
    def _check_seals(self, _key: str, seals: list[Any]) -> list[Any]:
        if len(seals) > 6:
            raise ValueError(f"a container carries at most 6 seals, got {len(seals)}")
        return seals

    @property
    def is_dangerous(self) -> bool:
        return bool(self.dangerous_goods)


class DangerousGoods(Base):
    __tablename__ = "dangerous_goods"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    container_id: Mapped[int] = mapped_column(ForeignKey("container.id"))
    un_number: Mapped[str] = mapped_column(String(4))
    imdg_class: Mapped[str | None] = mapped_column(String(7))
    packing_group: Mapped[str | None] = mapped_column(String(3))
    flash_point_c: Mapped[float | None] = mapped_column(Float)

    container: Mapped[Container] = relationship(back_populates="dangerous_goods")


class Form(Base):
    """A Cyber Port form (帳票) of a deal; saving with a stale version is a conflict, never an overwrite."""

    __tablename__ = "form"
    __table_args__ = (UniqueConstraint("deal_id", "type_code", "subject"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deal.id"))
    type_code: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(64), default="")  # e.g. the container of a UL090
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    deal: Mapped[Deal] = relationship(back_populates="forms")

    # SQLAlchemy checks the version in every UPDATE and raises StaleDataError when it moved.
    __mapper_args__ = {"version_id_col": version}

    @property
    def etag(self) -> str:
        return f'"{self.id}-{self.version}"'


class Event(Base):
    """The deal's timeline: what happened, when, and which message caused it."""

    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_deal", "deal_id", "id"),
        Index("ix_event_message", "message_id"),
        Index("ix_event_container", "container_id"),  # dashboard: messages by container (migration 0007)
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deal.id"))
    kind: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    container_id: Mapped[int | None] = mapped_column(ForeignKey("container.id"))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

    deal: Mapped[Deal | None] = relationship(back_populates="events")
    container: Mapped[Container | None] = relationship()


class Message(Base):
    """Every inbound and outbound payload, raw bytes untouched, with where it stands and why."""

    __tablename__ = "message"
    __table_args__ = (
        # received_at too: a date range on the failed list is checked in the index (migration 0007)
        Index("ix_message_status", "status", "id", "received_at"),
        Index("ix_message_received_at", "received_at"),
        Index("ux_message_idempotency_key", "idempotency_key", unique=True),
        Index("ux_message_interchange_key", "interchange_key", unique=True),
        # the dashboard's filters, each keyset-paged by id (migration 0006)
        Index("ix_message_channel", "channel", "id"),
        Index("ix_message_partner", "partner_id", "id"),
        Index("ix_message_type", "message_type", "id"),
        Index("ix_message_error_code", "error_code", "id"),
        Index("ix_message_duplicate_of", "duplicate_of_id"),
        Index("ix_message_resubmitted_from", "resubmitted_from_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    channel: Mapped[str] = mapped_column(String(64))
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partner.id"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    filename: Mapped[str | None] = mapped_column(String(512))
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    # "<partner or channel>:<sha256>" for originals, NULL for duplicates: the unique index is the dedup rule
    dedup_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    # why a duplicate is one: "same bytes", "interchange reference"
    duplicate_reason: Mapped[str | None] = mapped_column(String(32))
    # "<partner>:<Idempotency-Key>" (HTTP): a retried request finds the message it made the first time
    idempotency_key: Mapped[str | None] = mapped_column(String(300))
    # "<partner or @channel>:<UNB sender>:<interchange reference>" on an EDIFACT original that did not fail:
    # a resent interchange is a duplicate even when its bytes differ (a new UNB date, say)
    interchange_key: Mapped[str | None] = mapped_column(String(200))
    format: Mapped[str | None] = mapped_column(String(16))
    message_type: Mapped[str | None] = mapped_column(String(32))
    interchange_ref: Mapped[str | None] = mapped_column(String(35))
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(16))
    error_text: Mapped[str | None] = mapped_column(Text)
    error_step: Mapped[str | None] = mapped_column(String(16))
    error_position: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    steps: Mapped[list[Any]] = mapped_column(default=list)  # [{"step", "status", "at"}]
    # problems that did not fail the message: CSV rows skipped under `bad_rows: skip` ([error dict + row])
    problems: Mapped[list[Any]] = mapped_column(default=list)
    # an operator's edited copy of a failed message (dashboard "edit and resubmit"); the original stays as it was
    resubmitted_from_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    partner: Mapped[Partner | None] = relationship()

    def error_dict(self) -> dict[str, Any] | None:
        if self.error_code is None:
            return None
        pos = dict(self.error_position or {})
        segment = None
        if "segment_tag" in pos or "segment_number" in pos:
            segment = {"tag": pos.pop("segment_tag", None), "number": pos.pop("segment_number", None)}
        return {
            "code": self.error_code,
            "text": self.error_text,
            "step": self.error_step,
            "segment": segment,
            "position": pos or None,
        }


class Delivery(Base):
    """An outbound send caused by an event, written in the same transaction as that event (the outbox)."""

    __tablename__ = "delivery"
    __table_args__ = (
        Index("ix_delivery_due", "status", "next_attempt_at"),
        # ordering per key (RouteConfig.order_by): "is an earlier delivery of this route and key still open?"
        Index("ix_delivery_route_container", "route", "container_id", "id"),
        Index("ix_delivery_route_deal", "route", "deal_id", "id"),
        Index("ix_delivery_event", "event_id"),  # the deliveries a message caused (through its events)
        Index("ix_delivery_status_id", "status", "id"),  # dashboard: dead deliveries, keyset-paged by id
        # dashboard: messages by B/L or container, through their deliveries (migration 0007)
        Index("ix_delivery_deal", "deal_id"),
        Index("ix_delivery_container", "container_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    route: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("event.id"))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deal.id"))
    container_id: Mapped[int | None] = mapped_column(ForeignKey("container.id"))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))  # the rendered payload
    last_error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    replay_of_id: Mapped[int | None] = mapped_column(ForeignKey("delivery.id"))  # the dead delivery replayed
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    attempt_log: Mapped[list[DeliveryAttempt]] = relationship(
        back_populates="delivery", order_by="DeliveryAttempt.number"
    )


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempt"
    __table_args__ = (UniqueConstraint("delivery_id", "number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("delivery.id"))
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(String(8))  # ok | retry | dead
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    delivery: Mapped[Delivery] = relationship(back_populates="attempt_log")


class Role(enum.StrEnum):
    """Dashboard roles, each allowed what the one before it may do: viewer < operator < admin."""

    VIEWER = "viewer"  # reads
    OPERATOR = "operator"  # retries, reprocesses, discards
    ADMIN = "admin"  # also the audit log and users

    @property
    def rank(self) -> int:
        return list(Role).index(self)


class User(Base):
    """A person who logs into the dashboard. A user with a partner sees only that partner's deals and messages."""

    __tablename__ = "user"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))  # argon2id, PHC string
    role: Mapped[str] = mapped_column(String(16))  # Role
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partner.id"))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    partner: Mapped[Partner | None] = relationship()


class WebSession(Base):
    """A logged-in browser. ``id`` is the sha256 of the cookie's random token, so the table alone opens nothing."""

    __tablename__ = "web_session"
    __table_args__ = (Index("ix_web_session_expires_at", "expires_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]

    user: Mapped[User] = relationship()


class Audit(Base):
    """Who did what, when, to what: every dashboard action, login and logout (``gateway/store/audit.py``)."""

    __tablename__ = "audit"
    __table_args__ = (
        Index("ix_audit_target", "target_kind", "target_id"),
        Index("ix_audit_action_at", "action", "at"),  # the failed-login limit (audit.failed_logins)
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    # the login name as given (kept for failed logins of unknown names and for the CLI, "cli")
    login: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))  # e.g. login, login.failed, message.reprocess
    target_kind: Mapped[str | None] = mapped_column(String(32))  # message, delivery, deal, user, ...
    target_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
