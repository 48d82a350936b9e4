"""Persisting canonical records on SQLite and PostgreSQL: deals per B/L, forms, ordering, the timeline.

These drive ``CanonicalWriter`` with records as a mapping would produce them, so they test the store's rules
whatever mapping made the records: newer wins per field, a late older event does not undo a newer one, every
change is an event naming its message, a stale form version is a conflict.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from gateway.app import Gateway
from gateway.canonical import MappedMessage
from gateway.errors import GatewayError
from gateway.model import Container, Deal, Event, Form, Message, Participation
from gateway.store.canonical import CanonicalWriter

JST = ZoneInfo("Asia/Tokyo")
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=JST)


class Writes:
    """Writes records as if one stored message of partner ONE had mapped to them; returns its message id."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.n = 0

    def __call__(self, records: list[dict[str, Any]], issued_at: datetime | None = None, msg_type: str = "X") -> int:
        self.n += 1
        receipt = self.gateway.store.receive(f"payload {self.n}".encode(), channel="drops", partner="ONE")
        mapped = MappedMessage.model_validate(
            {"number": 1, "reference": str(self.n), "type": msg_type, "issued_at": issued_at, "records": records}
        )
        with self.gateway.sessions.begin() as session:
            message = session.get_one(Message, receipt.message_id)
            message.message_type = msg_type
            CanonicalWriter(session, message, self.gateway.config.routes).write(mapped)
        return receipt.message_id


@pytest.fixture
def write(gateway: Gateway) -> Iterator[Writes]:
    yield Writes(gateway)


def _container(session: Session, number: str) -> Container:
    return session.scalars(select(Container).where(Container.number == number)).one()


def _events(session: Session, kind_prefix: str) -> list[Event]:
    return list(session.scalars(select(Event).where(Event.kind.startswith(kind_prefix)).order_by(Event.id)))


def test_a_late_older_gate_in_does_not_undo_a_newer_gate_out(gateway: Gateway, write: Writes) -> None:
    """Breaks if container status follows arrival order instead of event time."""
    write([{"entity": "shipment", "booking_number": "BK1", "carrier_scac": "ONEY"}])
    event = {"entity": "container_event", "container": "CSQU3054383", "booking_number": "BK1"}
    out = write([{**event, "kind": "gate_out", "occurred_at": T0 + timedelta(hours=5), "location": "JPTYO"}])
    late = write([{**event, "kind": "gate_in", "occurred_at": T0, "location": "JPTYO"}])
    with gateway.sessions() as s:
        c = _container(s, "CSQU3054383")
        assert (c.status, c.status_at) == ("gate_out", T0 + timedelta(hours=5))
        gate_out, gate_in = _events(s, "container.gate")
        assert (gate_out.kind, gate_out.message_id, gate_out.occurred_at) == ("container.gate_out", out, c.status_at)
        assert (gate_in.kind, gate_in.message_id, gate_in.detail.get("superseded")) == ("container.gate_in", late, True)
        assert gate_in.deal_id == gate_out.deal_id == c.deal_id is not None


def test_the_same_event_from_two_messages_is_on_the_timeline_once(gateway: Gateway, write: Writes) -> None:
    """Breaks if a resent CODECO (new interchange, same content) doubles the timeline."""
    record = {"entity": "container_event", "container": "CSQU3054383", "kind": "gate_in", "occurred_at": T0}
    write([{"entity": "shipment", "booking_number": "BK1"}, {**record, "booking_number": "BK1"}])
    write([{**record, "booking_number": "BK1"}])
    with gateway.sessions() as s:
        assert len(_events(s, "container.gate_in")) == 1


def test_newer_fields_win_and_an_older_message_fills_only_what_nobody_set_later(
    gateway: Gateway, write: Writes
) -> None:
    """Breaks if a late, older message overwrites newer values, or if ordering blocks fields it may fill."""
    base = {"entity": "container", "number": "MSCU1234566", "booking_number": "BK9"}
    booking = {"entity": "shipment", "booking_number": "BK9"}
    write([booking, {**base, "vgm_kg": 28000.0}], issued_at=T0 + timedelta(hours=2))
    older = write([booking, {**base, "vgm_kg": 27000.0, "seals": [{"number": "SL1"}]}], issued_at=T0)
    with gateway.sessions() as s:
        c = _container(s, "MSCU1234566")
        assert c.vgm_kg == 28000.0 and c.seals == [{"number": "SL1"}]
        last = _events(s, "container.announced")[-1]
        assert last.message_id == older and last.detail["changed"] == ["seals"]
        assert last.detail["superseded"] == ["vgm_kg"]
    write([booking, {**base, "vgm_kg": 29000.0}], issued_at=T0 + timedelta(hours=3))
    with gateway.sessions() as s:
        assert _container(s, "MSCU1234566").vgm_kg == 29000.0


def test_a_booking_confirmation_opens_an_export_deal_with_a_ul050(gateway: Gateway, write: Writes) -> None:
    """Breaks if IFTMBC-shaped records do not give Cyber Port's export deal and its booking confirmation."""
    msg = write(
        [
            {"entity": "vessel_call", "voyage": "061E", "vessel_name": "NYK ORION", "carrier_scac": "NYKS"},
            {
                "entity": "shipment",
                "booking_number": "NYKTYO1",
                "direction": "export",
                "form": "UL050",
                "shipper": {"name": "港南通商株式会社"},
                "port_of_loading": "JPTYO",
            },
            {"entity": "container", "number": "NYKU5123455", "iso_size_type": "45G1"},
        ],
        msg_type="IFTMBC",
    )
    with gateway.sessions() as s:
        deal = s.scalars(select(Deal).where(Deal.booking_number == "NYKTYO1")).one()
        assert (deal.direction, deal.carrier_scac) == ("export", "NYKS")
        assert deal.details["shipper"] == {"name": "港南通商株式会社"}
        ul050 = s.scalars(select(Form).where(Form.deal_id == deal.id, Form.type_code == "UL050")).one()
        assert ul050.payload["booking_number"] == "NYKTYO1" and ul050.payload["containers"] == ["NYKU5123455"]
        assert {f.type_code for f in deal.forms} == {"UL050", "UL090"}
        part = s.scalars(select(Participation).where(Participation.deal_id == deal.id)).one()
        assert part.rights["UL050"] == "ReadWrite"
        updated = _events(s, "shipment.updated")
        assert updated and updated[0].message_id == msg and updated[0].deal_id == deal.id


def test_an_arrival_notice_opens_an_import_deal_per_bl_with_a_ul290(gateway: Gateway, write: Writes) -> None:
    """Breaks if IFTMAN-shaped records make an export deal, a UL090, or a second deal for the same B/L."""
    records = [
        {"entity": "shipment", "bl_number": "ONEYSGNA0001", "direction": "import", "form": "UL290"},
        {"entity": "container", "number": "TCLU7788994", "bl_number": "ONEYSGNA0001"},
    ]
    write(records, msg_type="IFTMAN")
    write([*records[:1], {**records[1], "gross_kg": 20000.0}], msg_type="IFTMAN")
    with gateway.sessions() as s:
        deal = s.scalars(select(Deal)).one()
        assert (deal.direction, deal.bl_number) == ("import", "ONEYSGNA0001")
        assert {f.type_code for f in deal.forms} == {"UL290"}
        assert _container(s, "TCLU7788994").deal_id == deal.id


def test_a_bl_number_joins_the_deal_its_booking_opened(gateway: Gateway, write: Writes) -> None:
    """Breaks if the B/L (IFTMCS) opens a second deal instead of completing the booking's deal."""
    write([{"entity": "shipment", "booking_number": "BK7", "carrier_scac": "ONEY", "form": "UL050"}])
    write(
        [{"entity": "shipment", "booking_number": "BK7", "carrier_scac": "ONEY", "bl_number": "BL7", "form": "UL150"}]
    )
    with gateway.sessions() as s:
        deal = s.scalars(select(Deal)).one()
        assert deal.bl_number == "BL7" and {f.type_code for f in deal.forms} == {"UL050", "UL150"}


def test_customs_status_sets_the_deal_and_its_containers_newer_wins(gateway: Gateway, write: Writes) -> None:
    """Breaks if a permit is not recorded on the deal and containers, or an older answer overrides it."""
    write(
        [
            {"entity": "shipment", "booking_number": "BK5", "bl_number": "BL5"},
            {"entity": "container", "number": "CSQU3054383", "bl_number": "BL5"},
        ]
    )
    status = {"entity": "customs_status", "bl_number": "BL5", "declaration_number": "1234567890"}
    write([{**status, "status": "export_permitted", "occurred_at": T0 + timedelta(hours=1)}])
    write([{**status, "status": "inspection", "occurred_at": T0}])
    with gateway.sessions() as s:
        deal = s.scalars(select(Deal)).one()
        assert deal.customs_status == "export_permitted" and deal.declaration_number == "1234567890"
        assert _container(s, "CSQU3054383").customs_status == "export_permitted"
        permit, late = _events(s, "customs.status")
        assert late.detail.get("superseded") is True and "superseded" not in permit.detail


def test_customs_status_for_an_unknown_deal_is_per_2(write: Writes) -> None:
    """Breaks if a CUSRES about a B/L nobody announced is silently dropped or creates an empty deal."""
    with pytest.raises(GatewayError) as info:
        write([{"entity": "customs_status", "bl_number": "NOPE1", "status": "export_permitted"}])
    assert info.value.code == "PER-2" and "NOPE1" in info.value.text


def test_a_stale_form_version_is_a_conflict_not_an_overwrite(gateway: Gateway, write: Writes) -> None:
    """Breaks if a form read at one version can be saved after someone else saved a newer one (the etag rule)."""
    write([{"entity": "shipment", "booking_number": "BK3", "form": "UL050"}])
    with gateway.sessions() as s:
        seen = s.scalars(select(Form)).one()  # read at version 1, e.g. by an operator's browser
        s.expunge(seen)
    with gateway.sessions.begin() as s:
        form = s.scalars(select(Form)).one()
        form.payload = {**form.payload, "remarks": "from a message"}  # saved as version 2
    seen.payload = {**seen.payload, "remarks": "from the dashboard"}
    with pytest.raises(StaleDataError), gateway.sessions.begin() as s:
        s.merge(seen)
    with gateway.sessions() as s:
        form = s.scalars(select(Form)).one()
        assert form.payload["remarks"] == "from a message" and form.etag == f'"{form.id}-2"'


def test_a_new_container_known_only_by_its_dangerous_goods_is_written(write: Writes, gateway: Gateway) -> None:
    """An IFTDGN-like record that carries a container number and its dangerous goods only creates the container
    with them. Breaks if the per-field stamps are read before the new row has any (it crashed with INT-1)."""
    write(
        [
            {
                "entity": "container",
                "number": "CSQU3054383",
                "dangerous_goods": [{"un_number": "1263", "imdg_class": "3"}],
            }
        ]
    )
    with gateway.sessions() as s:
        row = _container(s, "CSQU3054383")
        assert [d.un_number for d in row.dangerous_goods] == ["1263"] and "dangerous_goods" in row.as_of
