"""Persist canonical records: upserts by natural key, forms, timeline events and their outbox deliveries.

Runs inside the processing transaction of one inbound payload, so the canonical change, the events it writes
and the deliveries those events cause commit together or not at all (the transactional outbox).
A record that changes nothing writes no event and causes no delivery: replays are harmless.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import forms
from gateway.canonical import BookingRecord, ContainerRecord, MappedMessage, VesselCallRecord
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
    Participation,
    Partner,
    Right,
    VesselCall,
)
from gateway.store import outbox

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
)


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


class CanonicalWriter:
    """Writes the records of one inbound payload; collects the events it wrote."""

    def __init__(self, session: Session, message: Message, routes: Mapping[str, RouteConfig]) -> None:
        self.session = session
        self.message = message
        self.routes = routes
        self.partner: Partner | None = message.partner
        self.events: list[Event] = []

    def write(self, mapped: MappedMessage) -> None:
        vessel_call: VesselCall | None = None
        bookings: dict[str, Booking] = {}
        for record in mapped.records:
            if isinstance(record, VesselCallRecord):
                vessel_call = self.vessel_call(record)
            elif isinstance(record, BookingRecord):
                booking = self.booking(record, vessel_call)
                bookings[booking.booking_number] = booking
            else:
                self.container(record, bookings, vessel_call, mapped)

    def event(self, kind: str, deal: Deal | None, detail: dict[str, Any], container: Container | None = None) -> Event:
        self.session.flush()
        ev = outbox.emit(
            self.session,
            kind,
            self.routes,
            self.facts(container),
            message_id=self.message.id,
            deal_id=deal.id if deal else None,
            container_id=container.id if container else None,
            detail=detail,
        )
        self.events.append(ev)
        return ev

    def facts(self, container: Container | None) -> dict[str, Any]:
        """What route conditions (``when:``) may test."""
        return {
            "partner": self.partner.code if self.partner else None,
            "message_type": self.message.message_type,
            "full_empty": container.full_empty if container else None,
        }

    def vessel_call(self, rec: VesselCallRecord) -> VesselCall:
        identity = rec.imo_number or rec.call_sign or rec.vessel_name or ""
        key = "|".join((rec.carrier_scac or "", rec.voyage, identity)).upper()
        row = self.session.scalar(select(VesselCall).where(VesselCall.natural_key == key))
        if row is None:
            row = VesselCall(natural_key=key, voyage=rec.voyage)
            self.session.add(row)
        changed = _assign(row, rec.model_dump(exclude={"entity"}, exclude_none=True))
        if changed:
            self.session.flush()
            self.event("vessel_call.announced", None, {"vessel_call_id": row.id, "changed": changed})
        return row

    def booking(self, rec: BookingRecord, vessel_call: VesselCall | None) -> Booking:
        scac = rec.carrier_scac or (vessel_call.carrier_scac if vessel_call else None) or ""
        row = self.session.scalar(
            select(Booking).where(Booking.booking_number == rec.booking_number, Booking.carrier_scac == scac)
        )
        is_new = row is None
        if row is None:
            row = Booking(booking_number=rec.booking_number, carrier_scac=scac)
            self.session.add(row)
        if row.deal is None:
            row.deal = self.open_deal(booking_number=rec.booking_number, carrier_scac=scac)
        changed = _assign(row, {"vessel_call": vessel_call} if vessel_call else {})
        if changed or is_new:
            self.session.flush()
            self.event("booking.announced", row.deal, {"booking_number": row.booking_number})
        return row

    def open_deal(self, *, booking_number: str, carrier_scac: str) -> Deal:
        deal = find_deal(self.session, booking_number=booking_number, carrier_scac=carrier_scac)
        if deal is None:
            deal = Deal(
                deal_number=f"DL-{secrets.token_hex(5).upper()}",
                direction="export",
                booking_number=booking_number,
                carrier_scac=carrier_scac,
            )
            self.session.add(deal)
            self.session.flush()
            self.event("deal.opened", deal, {"booking_number": booking_number, "carrier_scac": carrier_scac})
        return deal

    def container(
        self,
        rec: ContainerRecord,
        bookings: dict[str, Booking],
        vessel_call: VesselCall | None,
        mapped: MappedMessage,
    ) -> None:
        booking = bookings.get(rec.booking_number or "") if rec.booking_number else None
        if booking is None and not rec.booking_number and len(bookings) == 1:
            booking = next(iter(bookings.values()))
        if booking is None:
            raise GatewayError(
                "MAP-2",
                f"container {rec.number} names no booking this message announces "
                f"(booking {rec.booking_number or 'absent'})",
                Position(message_number=mapped.number),
                step="persist",
            )
        deal = booking.deal
        assert deal is not None
        row = self.session.scalar(select(Container).where(Container.deal_id == deal.id, Container.number == rec.number))
        if row is None:
            row = Container(number=rec.number, deal=deal)
            self.session.add(row)
        values: dict[str, Any] = {"booking": booking}
        values.update({f: getattr(rec, f) for f in _CONTAINER_FIELDS if getattr(rec, f) is not None})
        if "seals" in rec.model_fields_set:
            values["seals"] = [s.model_dump(exclude_none=True) for s in rec.seals]
        if rec.oog is not None:
            values["oog"] = rec.oog.model_dump(exclude_none=True)
        changed = _assign(row, values)
        if "dangerous_goods" in rec.model_fields_set:
            wanted = [d.model_dump() for d in rec.dangerous_goods]
            have = [
                {k: getattr(d, k) for k in ("un_number", "imdg_class", "packing_group", "flash_point_c")}
                for d in row.dangerous_goods
            ]
            if wanted != have:
                row.dangerous_goods = [DangerousGoods(**d) for d in wanted]
                changed.append("dangerous_goods")
        row.last_message_id = self.message.id
        if not changed:
            return
        self.session.flush()
        self.save_form(deal, "UL090", row.number, forms.ul090(row, booking, booking.vessel_call or vessel_call))
        self.join(deal, "UL090")
        self.event("container.announced", deal, {"container": row.number, "changed": changed}, container=row)

    def save_form(self, deal: Deal, type_code: str, subject: str, payload: dict[str, Any]) -> Form:
        form = self.session.scalar(
            select(Form).where(Form.deal_id == deal.id, Form.type_code == type_code, Form.subject == subject)
        )
        if form is None:
            form = Form(deal=deal, type_code=type_code, subject=subject, payload=payload)
            self.session.add(form)
        elif form.payload != payload:
            form.payload = payload  # version_id_col bumps the version (and etag) on flush
        return form

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


def _assign(row: Any, values: Mapping[str, Any]) -> list[str]:
    """Set attributes that differ; return the names that changed."""
    changed = []
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed.append(name)
    return changed
