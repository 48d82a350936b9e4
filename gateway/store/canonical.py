"""Persist canonical records: upserts by natural key, forms, timeline events and their outbox deliveries.

Runs inside the processing transaction of one inbound payload, so the canonical change, the events it writes
and the deliveries those events cause commit together or not at all (the transactional outbox).

Two rules keep updates correct whatever the order messages arrive in:

- **Replays are harmless.** A record that changes nothing writes no event and causes no delivery; a container
  event already on the timeline (same container, kind and time) is not written twice.
- **Newer wins, per field.** Every row remembers, per field, the issue time of the message that set it
  (``as_of``). A message issued earlier that arrives late fills fields nobody set later, and leaves the rest;
  an older container event goes on the timeline marked ``superseded`` without changing the current status.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

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
    Event,
    Form,
    Message,
    MessageStatus,
    Participation,
    Partner,
    Right,
    VesselCall,
)
from gateway.naccs.permit import permit_status, received_at
from gateway.naccs.reply import Reassembler, ReplyPart, parse_part
from gateway.outbound.renderers.naccs import delivery_for_handover
from gateway.store import outbox

log = structlog.get_logger("gateway.canonical")

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


@dataclass
class _Context:
    """What earlier records of the same message established, for the records after them."""

    mapped: MappedMessage
    stamp: str  # the message's issue time, UTC ISO: compared with the stamps in ``as_of``
    vessel_call: VesselCall | None = None
    bookings: dict[str, Booking] = field(default_factory=dict)
    deals: dict[str, Deal] = field(default_factory=dict)  # by B/L and by booking number
    # shipments written, settled once the whole message is: (deal, form, changed details)
    shipments: list[tuple[Deal, str | None, list[str]]] = field(default_factory=list)


class CanonicalWriter:
    """Writes the records of one inbound payload; collects the events it wrote."""

    def __init__(self, session: Session, message: Message, routes: Mapping[str, RouteConfig]) -> None:
        self.session = session
        self.message = message
        self.routes = routes
        self.partner: Partner | None = message.partner
        self.events: list[Event] = []

    def write(self, mapped: MappedMessage) -> None:
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

    # --- events --------------------------------------------------------------------------------------------

    def event(
        self,
        kind: str,
        deal: Deal | None,
        detail: dict[str, Any],
        container: Container | None = None,
        occurred_at: datetime | None = None,
    ) -> Event:
        self.session.flush()
        ev = outbox.emit(
            self.session,
            kind,
            self.routes,
            self.facts(container, deal),
            message_id=self.message.id,
            deal_id=deal.id if deal else None,
            container_id=container.id if container else None,
            detail=detail,
            occurred_at=occurred_at,
        )
        self.events.append(ev)
        return ev

    def facts(self, container: Container | None, deal: Deal | None = None) -> dict[str, Any]:
        """What route conditions (``when:``) may test."""
        deal = deal or (container.deal if container else None)
        return {
            "partner": self.partner.code if self.partner else None,
            "message_type": self.message.message_type,
            "full_empty": container.full_empty if container else None,
            "direction": deal.direction if deal else None,
        }

    # --- vessel calls, bookings, deals -----------------------------------------------------------------------

    def vessel_call(self, rec: VesselCallRecord, ctx: _Context) -> VesselCall:
        identity = rec.imo_number or rec.call_sign or rec.vessel_name or ""
        key = "|".join((rec.carrier_scac or "", rec.voyage, identity)).upper()
        row = self.session.scalar(select(VesselCall).where(VesselCall.natural_key == key))
        if row is None:
            row = VesselCall(natural_key=key, voyage=rec.voyage)
            self.session.add(row)
        changed, _ = _assign(row, rec.model_dump(exclude={"entity"}, exclude_none=True), ctx.stamp)
        if changed:
            self.session.flush()
            self.event("vessel_call.announced", None, {"vessel_call_id": row.id, "changed": changed})
        return row

    def booking(self, rec: BookingRecord, ctx: _Context) -> Booking:
        scac = rec.carrier_scac or (ctx.vessel_call.carrier_scac if ctx.vessel_call else None) or ""
        row, is_new = self.booking_row(rec.booking_number, scac)
        changed = []
        if ctx.vessel_call is not None and row.vessel_call is not ctx.vessel_call:
            row.vessel_call = ctx.vessel_call
            changed.append("vessel_call")
        if changed or is_new:
            self.session.flush()
            self.event("booking.announced", row.deal, {"booking_number": row.booking_number})
        assert row.deal is not None
        ctx.deals[row.booking_number] = row.deal
        return row

    def booking_row(self, number: str, scac: str, bl_number: str | None = None) -> tuple[Booking, bool]:
        """The booking, created with its export deal when new."""
        row = self.session.scalar(select(Booking).where(Booking.booking_number == number, Booking.carrier_scac == scac))
        is_new = row is None
        if row is None:
            row = Booking(booking_number=number, carrier_scac=scac)
            self.session.add(row)
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
    ) -> Deal:
        """The deal of a B/L, else of a booking; opened when there is none (one deal per B/L)."""
        deal = find_deal(self.session, bl_number=bl_number) if bl_number else None
        if deal is None and booking_number:
            deal = find_deal(self.session, booking_number=booking_number, carrier_scac=carrier_scac)
            if deal is not None and bl_number and deal.bl_number not in (None, bl_number):
                deal = None  # the booking is split over several B/Ls: this one gets a deal of its own
        if deal is None:
            deal = Deal(
                deal_number=f"DL-{secrets.token_hex(5).upper()}",
                direction=direction,
                bl_number=bl_number,
                booking_number=booking_number,
                carrier_scac=carrier_scac or "",
            )
            self.session.add(deal)
            self.session.flush()
            detail = {"bl_number": bl_number, "booking_number": booking_number, "carrier_scac": carrier_scac}
            self.event("deal.opened", deal, {k: v for k, v in detail.items() if v})
        elif bl_number and deal.bl_number is None:
            deal.bl_number = bl_number
        return deal

    def context_deal(self, ctx: _Context, bl_number: str | None, booking_number: str | None) -> Deal | None:
        """A deal this message already named, by B/L or booking; the only one when the record names none."""
        for key in (bl_number, booking_number):
            if key and key in ctx.deals:
                return ctx.deals[key]
        if not (bl_number or booking_number):
            distinct = {id(d): d for d in ctx.deals.values()}
            if len(distinct) == 1:
                return next(iter(distinct.values()))
        return None

    def shipment(self, rec: ShipmentRecord, ctx: _Context) -> Deal:
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
        if rec.customs_declaration and deal.declaration_number is None:
            deal.declaration_number = rec.customs_declaration
        ctx.shipments.append((deal, rec.form, changed))
        return deal

    def settle_shipments(self, ctx: _Context) -> None:
        """Deal-level forms are saved after the whole message, so they list the containers it announced."""
        for deal, form, changed in ctx.shipments:
            if form:
                self.session.flush()
                self.session.refresh(deal, ["containers"])
                if self.save_form(deal, form, "", forms.shipment(deal)):
                    changed = [*changed, f"form {form}"]
                self.join(deal, form)
            if changed:
                self.event("shipment.updated", deal, {"changed": changed, "form": form})

    # --- containers --------------------------------------------------------------------------------------------

    def container_deal(self, ctx: _Context, number: str, bl: str | None, booking: str | None) -> Deal | None:
        """The deal a container record belongs to: named by this message, else by the store, else the deal
        the container was last seen on; None for a container no deal claims yet (a bay plan's)."""
        deal = self.context_deal(ctx, bl, booking)
        if deal is None and bl:
            deal = find_deal(self.session, bl_number=bl)
        if deal is None and booking:
            known = self.session.scalars(
                select(Booking).where(Booking.booking_number == booking).order_by(Booking.id).limit(1)
            ).first()
            if known is not None:
                deal = known.deal
            else:  # a booking nobody announced: it opens its export deal
                scac = ctx.vessel_call.carrier_scac if ctx.vessel_call else None
                deal = self.booking_row(booking, scac or "")[0].deal
        if deal is None:
            last = self.session.scalars(
                select(Container).where(Container.number == number).order_by(Container.id.desc()).limit(1)
            ).first()
            deal = last.deal if last else None
        return deal

    def container_row(self, number: str, deal: Deal | None) -> Container:
        q = select(Container).where(Container.number == number)
        q = q.where(Container.deal_id == deal.id) if deal is not None else q.where(Container.deal_id.is_(None))
        row = self.session.scalars(q.limit(1)).first()
        if row is None:
            row = Container(number=number, deal=deal)
            self.session.add(row)
        return row

    def container(self, rec: ContainerRecord, ctx: _Context) -> None:
        deal = self.container_deal(ctx, rec.number, rec.bl_number, rec.booking_number)
        row = self.container_row(rec.number, deal)
        booking = ctx.bookings.get(rec.booking_number or "") or next(
            (b for b in ctx.bookings.values() if deal is not None and b.deal is deal), None
        )
        if booking is None and rec.booking_number:
            booking = self.session.scalar(select(Booking).where(Booking.booking_number == rec.booking_number))
        values: dict[str, Any] = {f: getattr(rec, f) for f in _CONTAINER_FIELDS if getattr(rec, f) is not None}
        if "seals" in rec.model_fields_set:
            values["seals"] = [s.model_dump(exclude_none=True) for s in rec.seals]
        if rec.oog is not None:
            values["oog"] = rec.oog.model_dump(exclude_none=True)
        changed, stale = _assign(row, values, ctx.stamp)
        if booking is not None and row.booking is not booking:
            row.booking = booking
            changed.append("booking")
        if "dangerous_goods" in rec.model_fields_set and not _is_stale(row, "dangerous_goods", ctx.stamp):
            wanted = [d.model_dump() for d in rec.dangerous_goods]
            have = [
                {k: getattr(d, k) for k in ("un_number", "imdg_class", "packing_group", "flash_point_c")}
                for d in row.dangerous_goods
            ]
            row.as_of = {**(row.as_of or {}), "dangerous_goods": ctx.stamp}  # None on a row not flushed yet
            if wanted != have:
                row.dangerous_goods = [DangerousGoods(**d) for d in wanted]
                changed.append("dangerous_goods")
        row.last_message_id = self.message.id
        if not changed:
            return
        self.session.flush()
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
        self.session.flush()
        seen = self.session.scalar(
            select(Event.id).where(
                Event.container_id == row.id, Event.kind == kind, Event.occurred_at == rec.occurred_at
            )
        )
        if seen is not None:
            return  # the same event from another message: already on the timeline
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
    ) -> Deal | None:
        """An existing deal by B/L, booking (any carrier) or customs declaration; never opens one."""
        deal = self.context_deal(ctx, bl, booking)
        for column, value in (
            (Deal.bl_number, bl),
            (Deal.booking_number, booking),
            (Deal.declaration_number, declaration),
        ):
            if deal is None and value:
                deal = self.session.scalars(select(Deal).where(column == value).order_by(Deal.id).limit(1)).first()
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
        deal: Deal,
        status: str,
        stamp: str,
        detail: dict[str, Any],
        containers: Sequence[str] = (),
        occurred_at: datetime | None = None,
        *,
        declaration: str | None = None,
    ) -> None:
        """Customs status on the deal and its containers (all, or those named), newer wins; a ``customs.status``
        event when something changed. A permit releases the deal's held deliveries (``require: customs_permit``)."""
        changed, stale = _assign(deal, {"customs_status": status}, stamp)
        targets = [c for c in deal.containers if not containers or c.number in containers]
        for container in targets:
            c_changed, _ = _assign(container, {"customs_status": status}, stamp)
            changed += [f"{container.number}.customs_status" for _ in c_changed]
        if declaration and deal.declaration_number != declaration:
            deal.declaration_number = declaration
            changed.append("declaration_number")
        if not changed and not stale:
            return
        if stale:
            detail = {**detail, "superseded": True}
        self.event("customs.status", deal, detail, occurred_at=occurred_at)
        if outbox.has_permit(self.session, deal.id):
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
        deal = self.session.get(Deal, delivery.deal_id) if delivery.deal_id else None
        container = self.session.get(Container, delivery.container_id) if delivery.container_id else None
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

    def save_form(self, deal: Deal, type_code: str, subject: str, payload: dict[str, Any]) -> bool:
        """Create or update a form; True when its content changed."""
        form = self.session.scalar(
            select(Form).where(Form.deal_id == deal.id, Form.type_code == type_code, Form.subject == subject)
        )
        if form is None:
            self.session.add(Form(deal=deal, type_code=type_code, subject=subject, payload=payload))
            return True
        if form.payload != payload:
            form.payload = payload  # version_id_col bumps the version (and etag) on flush
            return True
        return False

    def join(self, deal: Deal, form_type: str) -> None:
        """The sending partner takes part in the deal with write rights on the forms its messages fill."""
        if self.partner is None:
            return
        part = self.session.scalar(
            select(Participation).where(Participation.deal_id == deal.id, Participation.partner_id == self.partner.id)
        )
        if part is None:
            part = Participation(deal=deal, partner=self.partner, business_type=self.partner.business_type, rights={})
            self.session.add(part)
        if part.rights.get(form_type) != Right.READ_WRITE.value:
            part.rights = {**part.rights, form_type: Right.READ_WRITE.value}


def _vessel(booking: Booking | None, ctx: _Context) -> VesselCall | None:
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
