"""NACCS and CONPAS routes end to end: render from the store, replies matched by hand-over information, permits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway import config as config_mod
from gateway import forms
from gateway.app import Gateway
from gateway.model import Booking, Container, Deal, Delivery, Event, Form, Message, VesselCall
from gateway.naccs.frame import read_input_header, set_password
from gateway.outbound.renderers.naccs import handover_for
from gateway.store import outbox
from tests.conftest import NACCS_PASSWORD_ENV as PASSWORD_ENV
from tests.conftest import REPO, write_config
from tests.unit.naccs.test_reply import output

GOLDEN = Path(__file__).parent / "golden"


def naccs_route(business: str, on: str, **extra: Any) -> dict[str, Any]:
    return {
        "on": on,
        "render": "naccs",
        "naccs": {
            "business": business,
            "mapping": str(REPO / f"naccs/mappings/{business}.yaml"),
            "user_code": "ABCDE",
            "user_id": "001",
            "password_env": PASSWORD_ENV,
            "system_id": "1",
        },
        "to": {"type": "folder", "path": f"outbox/naccs-{business.lower()}"},
        "retry": {"max_attempts": 2, "initial_delay": "1s", "jitter": 0},
        **extra,
    }


@pytest.fixture
def naccs_gateway(tmp_path: Path, database_url: str, naccs_password: str) -> Iterator[Gateway]:
    routes = {
        "naccs-ecr": naccs_route("ECR", "shipment.updated"),
        "naccs-cyh": naccs_route("CYH", "container.gate_in"),
        "conpas-prenotice": {
            "on": "container.announced",
            "when": {"direction": "export"},
            "render": "conpas",
            "require": "customs_permit",
            "to": {"type": "folder", "path": "outbox/conpas"},
        },
    }
    gw = Gateway(config_mod.load(write_config(tmp_path, database_url, routes=routes)))
    yield gw
    gw.close()


def make_deal(gw: Gateway, *, description: str = "MACHINE PARTS") -> int:
    """An export deal with a B/L, a booking on a vessel call and two containers; no event yet."""
    with gw.sessions.begin() as s:
        call = VesselCall(
            natural_key="ONEY|012E|9999999",
            vessel_name="ONE APUS",
            call_sign="JXYZ9",
            voyage="012E",
            carrier_scac="ONEY",
            port_of_discharge="USLAX",
            etd=datetime(2026, 3, 1, 15, 30, tzinfo=UTC),  # 2026-03-02 00:30 in Japan
        )
        deal = Deal(
            deal_number="DL-00000000AA",
            direction="export",
            bl_number="ONEYTYOB0001",
            booking_number="ONEYTYOA12345",
            carrier_scac="oney",
            details={
                "shipper": {"name": "NIPPON KIKAI KK", "code": "1234567890123"},
                "place_of_receipt": "1AW01",
                "place_of_delivery": "USLAX",
                "package_count": 120,
                "package_type": "CT",
                "gross_kg": 10250.5,
                "volume_m3": 33.2,
                "description": description,
            },
        )
        booking = Booking(booking_number="ONEYTYOA12345", carrier_scac="ONEY", deal=deal, vessel_call=call)
        s.add_all([call, deal, booking])
        for number in ("MSCU1234566", "CSQU3054383"):
            container = Container(
                number=number,
                deal=deal,
                booking=booking,
                iso_size_type="45G1",
                seals=[],
                full_empty="full",
                gross_kg=12000.0,
                status_at=datetime(2026, 2, 27, 23, 5, tzinfo=UTC),
            )
            s.add(container)
            s.add(Form(deal=deal, type_code="UL090", subject=number, payload=forms.ul090(container, booking, call)))
        s.flush()
        return deal.id


def emit(gw: Gateway, kind: str, deal_id: int, container: str | None = None) -> None:
    with gw.sessions.begin() as s:
        deal = s.get_one(Deal, deal_id)
        c = next(x for x in deal.containers if x.number == container) if container else None
        facts = {"direction": deal.direction, "full_empty": c.full_empty if c else None}
        outbox.emit(
            s, kind, gw.config.routes, facts, message_id=None, deal_id=deal_id, container_id=c.id if c else None
        )


def delivery(gw: Gateway, route: str) -> Delivery:
    with gw.sessions() as s:
        return s.scalars(select(Delivery).where(Delivery.route == route)).one()


def test_ecr_rendered_byte_exact_from_a_deal(naccs_gateway: Gateway, tmp_path: Path, naccs_password: str) -> None:
    """Golden ECR message from a deal: breaks when the outbound mapping, a conversion (Japan-time date, 3
    decimals, upper case), the container list order, the header fields or the item padding change."""
    gw = naccs_gateway
    deal_id = make_deal(gw)
    emit(gw, "shipment.updated", deal_id)
    d = delivery(gw, "naccs-ecr")
    with gw.sessions.begin() as s:  # a fixed key, so the golden file holds a fixed hand-over information
        s.get_one(Delivery, d.id).idempotency_key = "0123456789abcdef0123456789abcdef"
    assert gw.dispatcher.drain() == 1
    with gw.sessions() as s:
        d = s.get_one(Delivery, d.id)
        assert d.status == "done", d.last_error
        msg = s.get_one(Message, d.message_id)
        sent = (tmp_path / "outbox/naccs-ecr" / msg.filename).read_bytes() if msg.filename else b""
        assert sent == set_password(msg.raw, naccs_password)  # the stored bytes plus the password, nothing else
        assert msg.message_type == "NACCS-ECR"
        golden = GOLDEN / "naccs_ecr.bin"
        assert msg.raw == golden.read_bytes()
        header = read_input_header(msg.raw)
        assert (header.business_code, header.user_code, header.user_id, header.system_id) == (
            "ECR",
            "ABCDE",
            "001",
            "1",
        )
        assert header.handover == "0123456789abcdef0123456789" == handover_for(d)


def test_the_stored_message_has_no_password(naccs_gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rendered message row holds a blank password; the bytes the sink writes carry the one from the
    environment. Breaks if the renderer writes the password into what is stored, or the route's sink stops
    writing it in at send time."""
    monkeypatch.setenv(PASSWORD_ENV, "s3cr3tpw")
    gw = naccs_gateway
    emit(gw, "shipment.updated", make_deal(gw))
    gw.dispatcher.drain()
    d = delivery(gw, "naccs-ecr")
    with gw.sessions() as s:
        stored = s.get_one(Message, d.message_id).raw
        assert s.get_one(Message, d.message_id).format == "x-naccs-edi"  # the media type without its charset
    assert b"s3cr3tpw" not in stored and read_input_header(stored).password == ""
    [written] = (gw.config.routes["naccs-ecr"].to.path).glob("*")  # type: ignore[union-attr]
    sent = written.read_bytes()
    assert read_input_header(sent).password == "s3cr3tpw" and len(sent) == len(stored)


def test_an_unset_password_variable_is_a_permanent_send_error(
    naccs_gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No password in the environment: the delivery dies at once naming the variable, and nothing is sent with
    a blank password. Breaks if a blank password goes out or the error is retried as if the peer were down."""
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    gw = naccs_gateway
    emit(gw, "shipment.updated", make_deal(gw))
    gw.dispatcher.drain()
    d = delivery(gw, "naccs-ecr")
    assert d.status == "dead" and d.attempts == 1
    assert d.last_error is not None and PASSWORD_ENV in d.last_error["text"]
    assert not list(gw.config.routes["naccs-ecr"].to.path.glob("*"))  # type: ignore[union-attr]


def test_a_too_long_value_is_dead_with_out_10(naccs_gateway: Gateway) -> None:
    """A description over its 70 bytes: the delivery dies with OUT-10 and nothing is written or cut.
    Breaks if the renderer truncates, or the code is lost on the way to the delivery's error."""
    gw = naccs_gateway
    emit(gw, "shipment.updated", make_deal(gw, description="X" * 71))
    gw.dispatcher.drain()
    d = delivery(gw, "naccs-ecr")
    assert d.status == "dead" and d.message_id is None
    assert d.last_error is not None and d.last_error["text"].startswith("OUT-10: ")
    assert d.last_error["code"] == "OUT-10"
    assert "description" in d.last_error["text"]


def test_cyh_on_gate_in_of_one_container(naccs_gateway: Gateway) -> None:
    """CYH for one container: its number, Japan-time gate-in date and time, full = 5. Breaks if the container
    root or the code table of the outbound mapping stop working."""
    gw = naccs_gateway
    emit(gw, "container.gate_in", make_deal(gw), container="CSQU3054383")
    gw.dispatcher.drain()
    d = delivery(gw, "naccs-cyh")
    assert d.status == "done", d.last_error
    with gw.sessions() as s:
        body = s.get_one(Message, d.message_id).raw[400:].decode("euc_jp").split("\r\n")
    assert body[:4] == ["9", "CSQU3054383 ", "20260228", "0805"]
    assert body[9] == "5"  # full_empty


def sent_ecr(gw: Gateway) -> tuple[int, str]:
    """A deal whose ECR went out: (deal id, hand-over information of the sent message)."""
    deal_id = make_deal(gw)
    emit(gw, "shipment.updated", deal_id)
    gw.dispatcher.drain()
    with gw.sessions() as s:
        msg = s.get_one(Message, delivery(gw, "naccs-ecr").message_id)
        return deal_id, read_input_header(msg.raw).handover


def timeline(gw: Gateway, deal_id: int, kind: str) -> list[dict[str, Any]]:
    with gw.sessions() as s:
        q = select(Event).where(Event.deal_id == deal_id, Event.kind == kind).order_by(Event.id)
        return [e.detail for e in s.scalars(q)]


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        ("00000-0000-0000\r\n", "success"),
        ("W0001-CNO -0001\r\n", "warning"),
        ("00000-0000-0000 W0001-0000-0000\r\n", "warning"),
        ("S0010-BLN -0000 W0001-0000-0000\r\n", "error"),
    ],
)
def test_a_reply_is_matched_by_handover_onto_the_timeline(naccs_gateway: Gateway, body: str, outcome: str) -> None:
    """A result notice finds the sent ECR by its hand-over information and goes on that deal's timeline with its
    outcome and codes. Breaks if sniff misses NACCS, matching by hand-over stops working or W codes fail."""
    gw = naccs_gateway
    deal_id, handover = sent_ecr(gw)
    result = gw.accept(output(body, handover=handover, code="*SECR  "), channel="naccs-mail")
    assert result.status == "accepted", result.errors
    [detail] = timeline(gw, deal_id, "naccs.result")
    assert detail["outcome"] == outcome and detail["output_code"] == "*SECR"
    assert detail["codes"] == [body[i : i + 15] for i in range(0, len(body.rstrip()), 16)]
    assert detail["route"] == "naccs-ecr" and detail["handover"] == handover
    assert timeline(gw, deal_id, "customs.status") == []  # a result notice is not a permit


def test_a_reply_nobody_sent_fails_per_2(naccs_gateway: Gateway) -> None:
    """A reply whose hand-over information matches no delivery is a failed message (PER-2), not a silent drop."""
    result = naccs_gateway.accept(output(handover="ffffffffffffffffffffffffff"), channel="naccs-mail")
    assert result.status == "rejected" and result.errors[0]["code"] == "PER-2"


def test_split_reply_parts_are_reassembled_from_stored_messages(naccs_gateway: Gateway) -> None:
    """Parts 2 (last) and 1 arrive as separate payloads: nothing is recorded until the set is whole, then one
    naccs.result with the codes of both. Breaks if earlier parts are not found by their key in stored messages."""
    gw = naccs_gateway
    deal_id, handover = sent_ecr(gw)
    first = output("00000-0000-0000\r\n", handover=handover, code="*SECR  ", seq="001", last=" ")
    second = output("W0001-0000-0000\r\n", handover=handover, code="*SECR  ", seq="002", last="E")
    other = output("S0010-0000-0000\r\n", handover=handover, code="*SECR  ", seq="001", input_id="0000000099")
    assert gw.accept(second, channel="naccs-mail").status == "accepted"
    assert gw.accept(other, channel="naccs-mail").status == "accepted"  # another input's part: kept apart
    assert timeline(gw, deal_id, "naccs.result") == []
    assert gw.accept(first, channel="naccs-mail").status == "accepted"
    [detail] = timeline(gw, deal_id, "naccs.result")
    assert detail["parts"] == 2 and detail["outcome"] == "warning"
    assert detail["codes"] == ["00000-0000-0000", "W0001-0000-0000"]


def test_export_permit_releases_a_held_conpas_prenotification(naccs_gateway: Gateway, tmp_path: Path) -> None:
    """The issue's "done when": a CONPAS pre-notification of an export deal waits (held) for customs; a NACCS
    export permit (output code SAE...) flips the deal's and its containers' customs status and the pre-notification
    goes. Breaks if require: customs_permit stops holding, the permit rule changes, or release_held is not called."""
    gw = naccs_gateway
    deal_id, handover = sent_ecr(gw)
    emit(gw, "container.announced", deal_id, container="MSCU1234566")
    assert gw.dispatcher.drain() == 0
    conpas = delivery(gw, "conpas-prenotice")
    assert conpas.status == "held"
    permit = output("輸出許可\r\n", kind="P", handover=handover, code="SAE0010", subject="輸出許可通知書")
    assert gw.accept(permit, channel="naccs-mail").status == "accepted"
    with gw.sessions() as s:
        deal = s.get_one(Deal, deal_id)
        assert deal.customs_status == "export_permitted"
        assert {c.customs_status for c in deal.containers} == {"export_permitted"}
    [status] = timeline(gw, deal_id, "customs.status")
    assert status["status"] == "export_permitted" and status["output_code"] == "SAE0010"
    assert delivery(gw, "conpas-prenotice").status == "pending"
    assert gw.dispatcher.drain() == 1
    assert delivery(gw, "conpas-prenotice").status == "done"
    assert [p.name.split("_")[0] for p in (tmp_path / "outbox/conpas").glob("*.json")] == ["MSCU1234566"]
    # once permitted, a later pre-notification is not held
    emit(gw, "container.announced", deal_id, container="CSQU3054383")
    with gw.sessions() as s:
        assert {d.status for d in s.scalars(select(Delivery).where(Delivery.route == "conpas-prenotice"))} == {
            "done",
            "pending",
        }


def test_an_error_reply_to_a_permit_output_is_no_permit(naccs_gateway: Gateway) -> None:
    """An SAE output whose result codes are errors does not permit. Breaks if the outcome is ignored."""
    gw = naccs_gateway
    deal_id, handover = sent_ecr(gw)
    gw.accept(output("E0001-0000-0000\r\n", handover=handover, code="SAE0010"), channel="naccs-mail")
    assert timeline(gw, deal_id, "naccs.result")[0]["outcome"] == "error"
    assert timeline(gw, deal_id, "customs.status") == []


def test_conpas_schema_refuses_a_bad_prenotification(naccs_gateway: Gateway) -> None:
    """A UL090 slip that breaks the schema (a 7th seal, a bad delivery time, an unknown key) makes the CONPAS
    delivery dead before anything is stored or sent, naming the JSON paths. Breaks if validation is skipped."""
    gw = naccs_gateway
    deal_id = make_deal(gw)
    with gw.sessions.begin() as s:
        deal = s.get_one(Deal, deal_id)
        deal.customs_status = "export_permitted"
        form = s.scalars(select(Form).where(Form.subject == "MSCU1234566")).one()
        form.payload = {
            **form.payload,
            "seal_numbers": [f"S{i}" for i in range(7)],
            "delivery_time": "2561",
            "colour": "red",
        }
    emit(gw, "container.announced", deal_id, container="MSCU1234566")
    assert gw.dispatcher.drain() == 1
    d = delivery(gw, "conpas-prenotice")
    assert d.status == "dead" and d.message_id is None and d.last_error is not None
    text = d.last_error["text"]
    assert "conpas-prenotification.schema.json" in text
    assert "$.seal_numbers" in text and "$.delivery_time" in text and "colour" in text


def test_conpas_schema_accepts_what_the_renderer_makes(naccs_gateway: Gateway, tmp_path: Path) -> None:
    """The renderer's own output (permitted deal: not held) passes the schema and is written. Breaks when the
    UL090 form gains a key the schema does not describe."""
    gw = naccs_gateway
    deal_id = make_deal(gw)
    with gw.sessions.begin() as s:
        s.get_one(Deal, deal_id).customs_status = "export_permitted"
    emit(gw, "container.announced", deal_id, container="CSQU3054383")
    assert gw.dispatcher.drain() == 1
    assert delivery(gw, "conpas-prenotice").status == "done"
    assert len(list((tmp_path / "outbox/conpas").glob("CSQU3054383_*.json"))) == 1
