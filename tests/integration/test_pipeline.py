"""Processing: a COPARN becomes canonical records, forms, events and outbox deliveries in one transaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.model import Booking, Container, Deal, Delivery, Event, Form, Message, Participation, VesselCall
from gateway.pipeline import STEPS, Pipeline, Work


def count(gateway: Gateway, model: Any) -> int:
    with gateway.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_coparn_becomes_canonical_records(gateway: Gateway, coparn: bytes) -> None:
    result = gateway.accept(coparn, channel="drops")
    assert (result.status, result.format, result.message_type, result.messages) == ("accepted", "edifact", "COPARN", 2)
    with gateway.sessions() as s:
        msg = s.get_one(Message, result.message_ids[0])
        assert msg.status == "done" and msg.partner is not None and msg.partner.code == "ONE"  # from UNB sender
        assert [st["step"] for st in msg.steps] == ["parse", "validate", "map", "persist"]
        [call] = s.scalars(select(VesselCall))
        assert (call.vessel_name, call.voyage, call.call_sign, call.carrier_scac) == (
            "ONE APUS",
            "012E",
            "JD7712",
            "ONEY",
        )
        assert call.etd is not None and call.etd.isoformat() == "2026-12-01T09:00:00+00:00"  # 18:00 JST
        bookings = {b.booking_number: b for b in s.scalars(select(Booking))}
        assert set(bookings) == {"ONEYTYOA12345", "ONEYTYOA12346"}
        deals = list(s.scalars(select(Deal)))
        assert len(deals) == 2 and {d.direction for d in deals} == {"export"}
        assert {(d.booking_number, d.carrier_scac) for d in deals} == {
            ("ONEYTYOA12345", "ONEY"),
            ("ONEYTYOA12346", "ONEY"),
        }
        boxes = {c.number: c for c in s.scalars(select(Container))}
        assert set(boxes) == {"CSQU3054383", "MSCU1234566", "TGHU8765436"}
        assert boxes["CSQU3054383"].seals == [
            {"number": "SL123456", "issuer": "CA"},
            {"number": "SH998877", "issuer": "SH"},
        ]
        assert (boxes["CSQU3054383"].vgm_kg, boxes["MSCU1234566"].reefer_temp_c) == (28350.0, -18.0)
        assert [(d.un_number, d.imdg_class) for d in boxes["TGHU8765436"].dangerous_goods] == [("1263", "3")]
        assert boxes["CSQU3054383"].booking is bookings["ONEYTYOA12345"]
        forms = list(s.scalars(select(Form).where(Form.type_code == "UL090")))
        assert sorted(f.subject for f in forms) == sorted(boxes) and all(f.version == 1 for f in forms)
        kinds = [e.kind for e in s.scalars(select(Event).order_by(Event.id))]
        assert kinds.count("container.announced") == 3 and kinds.count("deal.opened") == 2
        assert all(e.message_id == msg.id for e in s.scalars(select(Event)))
        deliveries = list(s.scalars(select(Delivery)))
        assert len(deliveries) == 3 and {d.status for d in deliveries} == {"pending"}
        parts = list(s.scalars(select(Participation)))
        assert len(parts) == 2 and all(p.rights == {"UL090": "ReadWrite"} for p in parts)


def test_replaying_the_same_content_changes_nothing(gateway: Gateway, coparn: bytes) -> None:
    gateway.accept(coparn, channel="drops")
    before = (count(gateway, Event), count(gateway, Delivery))
    # a new interchange (other reference, so not a byte duplicate) announcing the same containers unchanged
    again = gateway.accept(coparn.replace(b"20261124001", b"20261124002"), channel="drops")
    assert again.status == "accepted"
    assert (count(gateway, Event), count(gateway, Delivery)) == before


def test_an_amendment_bumps_the_form_version_and_queues_a_new_prenotice(gateway: Gateway, coparn: bytes) -> None:
    gateway.accept(coparn, channel="drops")
    amended = coparn.replace(b"20261124001", b"20261124003").replace(b"KGM:24500", b"KGM:24600")
    gateway.accept(amended, channel="drops")
    with gateway.sessions() as s:
        form = s.scalars(select(Form).where(Form.subject == "CSQU3054383")).one()
        assert (form.version, form.payload["gross_weight_kg"]) == (2, 24600.0)
        assert form.etag == f'"{form.id}-2"'
        assert s.scalar(select(func.count()).select_from(Delivery)) == 4


def test_wrong_unt_count_is_rejected_and_raw_kept(gateway: Gateway, coparn: bytes) -> None:
    bad = coparn.replace(b"UNT+16+2'", b"UNT+15+2'")
    result = gateway.accept(bad, channel="drops")
    assert result.status == "rejected" and result.message_type == "COPARN"
    [err] = result.errors
    assert err["code"] == "EDI-29" and err["segment"] == {"tag": "UNT", "number": 40} and err["step"] == "validate"
    with gateway.sessions() as s:
        msg = s.get_one(Message, result.message_ids[0])
        assert msg.status == "failed" and msg.raw == bad and msg.error_code == "EDI-29"
        assert msg.steps[-1]["status"] == "failed" and msg.steps[-1]["step"] == "validate"
    assert count(gateway, Container) == 0 and count(gateway, Delivery) == 0


def test_a_failure_late_in_the_transaction_leaves_no_partial_effects(gateway: Gateway, coparn: bytes) -> None:
    """A crash inside persist (after canonical rows were flushed) rolls everything back; the raw input stays."""

    def explode(work: Work) -> None:
        raise RuntimeError("disk on fire")

    steps = [*STEPS, ("explode", explode, None)]
    receipt = gateway.store.receive(coparn, channel="drops", partner="ONE")
    pipeline = Pipeline(gateway.sessions, gateway.mappings, gateway.config.routes, steps)
    outcome = pipeline.process(receipt.message_id)
    assert outcome is not None and outcome.error is not None and outcome.error.code == "INT-1"
    assert count(gateway, Container) == 0 and count(gateway, Delivery) == 0 and count(gateway, Event) == 0
    with gateway.sessions() as s:
        msg = s.get_one(Message, receipt.message_id)
        assert (msg.status, msg.error_step, msg.raw) == ("failed", "explode", coparn)


def test_a_message_left_received_by_a_crash_is_processed_once(gateway: Gateway, coparn: bytes) -> None:
    receipt = gateway.store.receive(coparn, channel="drops", partner="ONE")  # stored, then the process died
    assert gateway.process_received() == 1
    assert gateway.process_received() == 0
    assert gateway.pipeline.process(receipt.message_id) is None  # already done: not ours to process again
    assert count(gateway, Container) == 3 and count(gateway, Delivery) == 3


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"", "FMT-3"),
        (b"\x00\x01binary", "FMT-1"),
        (b"<?xml version='1.0'?><a/>", "FMT-7"),  # well-formed, but no schema knows it
        (b"<a><b></a>", "FMT-4"),
        (b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>', "FMT-5"),
        (b"container,booking\nCSQU3054383,BK1\n", "MAP-1"),  # CSV, but this routes.yaml maps no CSV
        (b"UNB+UNOA:2+X+Y+1+1'", "EDI-13"),
    ],
)
def test_bad_input_gets_a_coded_error(gateway: Gateway, payload: bytes, code: str) -> None:
    result = gateway.accept(payload, channel="drops")
    assert result.status == "rejected" and result.errors[0]["code"] == code


def test_no_mapping_is_map_1(gateway: Gateway, coparn: bytes) -> None:
    result = gateway.accept(coparn.replace(b"COPARN:D:95B", b"IFTERA:D:95B"), channel="drops")
    assert result.errors[0]["code"] == "MAP-1" and "IFTERA" in result.errors[0]["text"]


def test_a_failed_message_is_reprocessed_from_its_raw_bytes_after_a_fix(gateway: Gateway, coparn: bytes) -> None:
    broken = coparn.replace(b"COPARN:D:95B", b"COPARN:D:00B")
    gateway.mappings.rules[0] = gateway.mappings.rules[0].model_copy(
        update={"match": gateway.mappings.rules[0].match.model_copy(update={"version": "D95B"})}
    )
    first = gateway.accept(broken, channel="drops")
    assert first.errors[0]["code"] == "MAP-1"
    gateway.mappings.rules[0] = gateway.mappings.rules[0].model_copy(  # the operator widens the rule
        update={"match": gateway.mappings.rules[0].match.model_copy(update={"version": None})}
    )
    again = gateway.reprocess(first.message_ids[0])
    assert again.status == "accepted" and again.message_ids == first.message_ids
    with gateway.sessions() as s:
        msg = s.get_one(Message, first.message_ids[0])
        assert msg.status == "done" and msg.raw == broken and msg.error_code is None
        [history] = [st for st in msg.steps if st["step"] == "reprocess"]
        assert history["previous_error"]["code"] == "MAP-1"
    with pytest.raises(ValueError):
        gateway.reprocess(first.message_ids[0])  # done messages are not reprocessed


def test_a_message_that_breaks_its_definition_is_rejected_before_mapping(gateway: Gateway, coparn: bytes) -> None:
    bad = coparn.replace(b"MEA+AAE+G+KGM:24500'", b"MEA+AAE+G+KGM:24.5T'")
    result = gateway.accept(bad, channel="drops")
    [err] = result.errors
    assert (err["code"], err["step"], err["segment"]) == ("EDI-37", "validate", {"tag": "MEA", "number": 12})
    assert err["position"] == {"element": 3, "component": 2, "message_number": 1}


def test_bare_messages_only_on_a_channel_that_allows_them(tmp_path: Path, database_url: str, coparn: bytes) -> None:
    from gateway import config as config_mod
    from tests.conftest import write_config

    body = coparn[coparn.index(b"UNH") : coparn.index(b"UNZ")]
    drops = {"type": "folder", "path": "in", "archive": "a", "failed": "f", "partner": "ONE"}
    channels = {"strict": drops, "lenient": {**drops, "path": "in2", "allow_bare_edifact": True}}
    gw = Gateway(config_mod.load(write_config(tmp_path, database_url, channels=channels)))
    try:
        refused = gw.accept(body, channel="strict", partner="ONE")
        assert refused.status == "rejected" and refused.errors[0]["code"] == "EDI-13"
        taken = gw.accept(body + b"\n", channel="lenient", partner="ONE")
        assert (taken.status, taken.messages) == ("accepted", 2)
    finally:
        gw.close()


def test_a_message_another_worker_holds_does_not_count_as_work_done(
    gateway: Gateway, coparn: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker loop runs again at once only when it processed something: a message it could not claim (held by
    another worker, or the database refused) counts 0, so the loop waits instead of spinning on it."""
    gateway.store.receive(coparn, channel="drops", partner="ONE")
    monkeypatch.setattr(gateway.pipeline, "process", lambda message_id: None)  # what a held message returns
    assert gateway.process_received() == 0


def test_accept_processes_itself_and_does_not_wake_the_worker(gateway: Gateway, coparn: bytes) -> None:
    """A folder file processed in the foreground must not also wake the worker, which could claim it first and
    leave the file in place to be stored again as a duplicate; a payload only stored does wake it."""
    assert gateway.accept(coparn, channel="drops").status == "accepted"
    assert not gateway.work_waiting.is_set()
    gateway.receive(coparn.replace(b"+20261124001'", b"+20261124002'"), channel="drops")
    assert gateway.work_waiting.is_set()
