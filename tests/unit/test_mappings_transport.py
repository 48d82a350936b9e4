"""Transport and customs mappings (IFTM*, IFTSTA, IFTDGN, CUSCAR, CUSRES, APERAK): the values a deal depends on.

The example files are the full specification (test_mapping.py compares them field by field); these tests name
the few values whose loss would put a message on the wrong deal, fill the wrong form or mislead a user.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway import edifact
from gateway.errors import GatewayError
from gateway.mapping.engine import apply
from gateway.mapping.language import load_mapping
from tests.conftest import REPO

MAPPINGS = REPO / "mappings" / "edifact"
EXAMPLES = MAPPINGS / "examples"


def _map(message: str, raw: bytes) -> list[dict[str, Any]]:
    mapping = load_mapping(MAPPINGS / f"{message}.yaml")
    return [apply(mapping, msg).as_json() for msg in edifact.read(raw)[1]]


def _example(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


def _records(messages: list[dict[str, Any]], entity: str) -> list[dict[str, Any]]:
    return [r for m in messages for r in m["records"] if r["entity"] == entity]


def test_iftmbf_opens_an_export_shipment_without_a_form_and_only_numbered_equipment() -> None:
    messages = _map("iftmbf", _example("iftmbf-d95b-booking-request.edi"))
    [shipment] = _records(messages, "shipment")
    # Without the request number as the key the shipment is refused (no B/L, no carrier booking number yet);
    # a form here would claim a UL050 the carrier has not confirmed.
    assert shipment["booking_number"] == "KWT-BR-26-0412" and shipment["direction"] == "export"
    assert "form" not in shipment
    # The two requested 45G1 have no number: a container record for them would be MAP-2 and reject the request.
    assert [c["number"] for c in _records(messages, "container")] == ["SEGU6120933"]


def test_iftmbc_gives_an_export_deal_with_ul050_under_the_carriers_booking_number() -> None:
    messages = _map("iftmbc", _example("iftmbc-d95b-booking-confirmation.edi"))
    [shipment] = _records(messages, "shipment")
    # The carrier's booking number (RFF+BN), not the document or forwarder reference, is what later
    # IFTMIN/COPARN messages quote; the UL050 is what the confirmation fills.
    assert (shipment["booking_number"], shipment["direction"], shipment["form"]) == ("YOKG04567800", "export", "UL050")
    [call] = _records(messages, "vessel_call")
    assert (call["voyage"], call["vessel_name"], call["etd"]) == ("052E", "ONE MINATO", "2026-11-28T17:00:00+09:00")
    assert messages[0]["issued_at"] == "2026-11-06T08:35:00+09:00"  # orders it against a later amendment


def test_iftmin_fills_ul040_with_bl_parties_and_container_vgm_and_seals() -> None:
    messages = _map("iftmin", _example("iftmin-d95b-shipping-instruction.edi"))
    [shipment] = _records(messages, "shipment")
    assert (shipment["form"], shipment["bl_number"], shipment["booking_number"]) == (
        "UL040",
        "ONEYYOKG04567800",
        "YOKG04567800",
    )
    assert shipment["shipper"]["name"] == "SAKURA SEIKI CO LTD"
    assert shipment["notify_party"]["name"] == "HARBOR CUSTOMS BROKERS LLC"
    assert shipment["gross_kg"] == 21150.0 and shipment["package_count"] == 1240
    second = _records(messages, "container")[1]
    # VGM and seals go to the UL090/CONPAS data set; losing them holds the container at the gate.
    assert second["vgm_kg"] == 12360.0 and [s["number"] for s in second["seals"]] == ["JP4410221", "KWT0412002"]
    assert second["bl_number"] == "ONEYYOKG04567800"


def test_iftmin_without_bl_or_booking_is_refused() -> None:
    raw = _example("iftmin-d95b-shipping-instruction.edi")
    raw = raw.replace(b"RFF+BN:YOKG04567800'", b"RFF+FF:X'").replace(b"RFF+BM:ONEYYOKG04567800'", b"RFF+FF:Y'")
    with pytest.raises(GatewayError) as info:
        _map("iftmin", raw)
    assert info.value.code == "MAP-3" and "bl_number or booking_number" in info.value.text


def test_iftmcs_fills_ul150_and_puts_every_container_under_the_bl() -> None:
    messages = _map("iftmcs", _example("iftmcs-d95b-bill-of-lading.edi"))
    [shipment] = _records(messages, "shipment")
    assert (shipment["form"], shipment["bl_number"], shipment["direction"]) == ("UL150", "ONEYYOKG04567800", "export")
    assert {c["bl_number"] for c in _records(messages, "container")} == {"ONEYYOKG04567800"}


def test_iftmcs_without_rff_bm_takes_the_bl_number_from_the_document_number() -> None:
    raw = _example("iftmcs-d95b-bill-of-lading.edi").replace(b"RFF+BM:ONEYYOKG04567800'", b"RFF+AAS:X'")
    [shipment] = _records(_map("iftmcs", raw), "shipment")
    assert shipment["bl_number"] == "ONEYYOKG04567800"  # BGM 1004 of the B/L document


def test_iftman_opens_an_import_deal_per_bl_with_ul290_and_the_eta() -> None:
    messages = _map("iftman", _example("iftman-d95b-arrival-notices.edi"))
    shipments = _records(messages, "shipment")
    # import + UL290 + B/L is what makes Cyber Port open the import deal; one per B/L.
    assert [(s["bl_number"], s["direction"], s["form"]) for s in shipments] == [
        ("NYKS2261048301", "import", "UL290"),
        ("NYKS2261048355", "import", "UL290"),
    ]
    call = _records(messages, "vessel_call")[0]
    assert call["eta"] == "2026-12-03T14:00:00+09:00" and call["port_of_discharge"] == "JPTYO"
    assert "etd" not in call  # the departure from Shanghai is not this call's ETD
    containers = _records(messages, "container")
    assert [(c["number"], c["bl_number"]) for c in containers] == [
        ("NYKU4812362", "NYKS2261048301"),
        ("TCLU7045181", "NYKS2261048301"),
        ("NYKU7200648", "NYKS2261048355"),
    ]
    assert containers[2]["reefer_temp_c"] == -20.0


def test_iftman_without_a_bl_number_is_map_2() -> None:
    raw = _example("iftman-d95b-arrival-notices.edi").replace(b"RFF+BM:NYKS2261048355'", b"RFF+AAS:X'")
    with pytest.raises(GatewayError) as info:
        _map("iftman", raw)
    assert info.value.code == "MAP-2" and info.value.position.message_number == 2


def test_iftsta_kind_comes_from_the_status_code_and_unknown_codes_stay_status() -> None:
    events = _records(_map("iftsta", _example("iftsta-d95b-import-events.edi")), "container_event")
    assert [(e["container"], e["kind"], e["status_code"]) for e in events] == [
        ("NYKU4812362", "discharged", "UV"),
        ("TCLU7045181", "discharged", "UV"),
        ("NYKU4812362", "status", "CT"),  # not in the table: kept as a status, not MAP-3
        ("NYKU4812362", "gate_out", "OA"),
    ]
    assert events[3]["occurred_at"] == "2026-12-04T16:55:00+09:00" and events[3]["facility"] == "OI5"
    assert {e["bl_number"] for e in events} == {"NYKS2261048301"}  # from CNI: the deal of the B/L


def test_iftsta_status_without_equipment_makes_no_event() -> None:
    events = _records(_map("iftsta", _example("iftsta-d95b-export-events.edi")), "container_event")
    # the vessel departure (VD) names no container; an event for it would be MAP-2 and lose the whole report
    assert [e["kind"] for e in events] == ["gate_in", "loaded"]
    assert events[0]["booking_number"] == "YOKG04567800"


def test_iftdgn_containers_carry_their_dangerous_goods_and_the_dg_form() -> None:
    containers = _records(_map("iftdgn", _example("iftdgn-d95b-dangerous-goods.edi")), "container")
    assert [(c["number"], c["form"], c["booking_number"]) for c in containers] == [
        ("ONEU0098716", "DG", "UKBG01234500"),
        ("TGBU5302919", "DG", "UKBG01234500"),
    ]
    assert containers[0]["dangerous_goods"] == [
        {"un_number": "1263", "imdg_class": "3", "packing_group": "III", "flash_point_c": 23.0}
    ]
    assert containers[1]["dangerous_goods"] == [{"un_number": "3480", "imdg_class": "9"}]


def test_cuscar_makes_one_import_shipment_per_bl() -> None:
    messages = _map("cuscar", _example("cuscar-d95b-import-cargo-report.edi"))
    shipments = _records(messages, "shipment")
    assert [(s["bl_number"], s["direction"]) for s in shipments] == [
        ("NYKS2261048301", "import"),
        ("NYKS2261048355", "import"),
    ]
    assert shipments[1]["consignee"]["name"] == "MARUHAMA SUISAN CO LTD"
    assert [(c["number"], c["bl_number"]) for c in _records(messages, "container")] == [
        ("NYKU4812362", "NYKS2261048301"),
        ("NYKU7200648", "NYKS2261048355"),
    ]


def test_cuscar_direction_is_left_open_for_another_document_type() -> None:
    raw = _example("cuscar-d95b-import-cargo-report.edi").replace(b"BGM+933+", b"BGM+785+")
    shipments = _records(_map("cuscar", raw), "shipment")
    assert all("direction" not in s for s in shipments)  # a manifest of unknown direction is not MAP-3


def test_cusres_export_permit() -> None:
    [status] = _records(_map("cusres", _example("cusres-d95b-export-permit.edi")), "customs_status")
    # export_permitted is what lets the terminal load the containers
    assert (status["status"], status["booking_number"], status["declaration_number"]) == (
        "export_permitted",
        "YOKG04567800",
        "40123456780",
    )
    assert status["containers"] == ["SEGU6120933", "ONEU1234566", "ONEU7654329"]


def test_cusres_inspection_then_import_permit_for_the_bl() -> None:
    statuses = _records(_map("cusres", _example("cusres-d95b-import-inspection-then-permit.edi")), "customs_status")
    assert [(s["status"], s["bl_number"]) for s in statuses] == [
        ("inspection", "NYKS2261048301"),
        ("import_permitted", "NYKS2261048301"),
    ]


def test_cusres_unknown_response_code_is_map_3_not_a_guess() -> None:
    raw = _example("cusres-d95b-export-permit.edi").replace(b"GIS+EP::ZZZ'", b"GIS+ZZ::ZZZ'")
    with pytest.raises(GatewayError) as info:
        _map("cusres", raw)
    assert info.value.code == "MAP-3" and "'ZZ'" in info.value.text


def test_aperak_says_accepted_or_rejected_with_the_error_codes() -> None:
    """Breaks if a partner's rejection (BGM 27) reads as accepted, or its ERC codes are lost."""
    accepted, rejected = _records(
        _map("aperak", _example("aperak-d95b-si-accepted-and-rejected.edi")), "acknowledgement"
    )
    assert (accepted["of_reference"], accepted["accepted"], accepted["errors"]) == ("SI-KWT-26-0412", True, [])
    assert (rejected["of_reference"], rejected["accepted"]) == ("SI-KWT-26-0412-A1", False)
    assert [e["code"] for e in rejected["errors"]] == ["13", "12"]
