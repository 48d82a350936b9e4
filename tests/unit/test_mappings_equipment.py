"""Equipment-message mappings (COPRAR, COARRI, CODECO, COREOR, COPINO, BAPLIE, MOVINS, VERMAS): the values each
one must get right for the deal timeline, the UL090 gate-in slip and the VGM form, read from its example."""

from __future__ import annotations

from typing import Any

from gateway import edifact
from gateway.mapping.engine import apply
from gateway.mapping.language import load_mapping
from tests.conftest import REPO

EDIFACT = REPO / "mappings" / "edifact"


def _records(mapping: str, example: str) -> list[list[dict[str, Any]]]:
    """The records of every message of an example input, as the example's expected JSON has them."""
    loaded = load_mapping(EDIFACT / mapping)
    raw = (EDIFACT / "examples" / example).read_bytes()
    return [apply(loaded, msg).as_json()["records"] for msg in edifact.read(raw)[1]]


def _of(records: list[dict[str, Any]], entity: str) -> list[dict[str, Any]]:
    return [r for r in records if r["entity"] == entity]


def test_codeco_bgm_34_is_gate_in_and_36_gate_out_with_the_gate_time_in_japan_time() -> None:
    """A wrong kind or time would put the container in or out of the terminal at the wrong moment."""
    gate_in, gate_out = _records("codeco.yaml", "codeco-d95b-gate-in-out.edi")
    [event] = _of(gate_in, "container_event")
    assert (event["container"], event["kind"], event["occurred_at"]) == (
        "ONEU0123450",
        "gate_in",
        "2026-12-01T09:32:00+09:00",
    )
    assert (event["location"], event["facility"], event["booking_number"]) == ("JPTYO", "OHI4", "ONEYTYOA23456")
    full, empty = _of(gate_out, "container_event")
    assert full["kind"] == empty["kind"] == "gate_out"
    assert full["occurred_at"] == "2026-12-02T14:15:00+09:00"
    assert (full["full_empty"], empty["full_empty"]) == ("full", "empty")


def test_codeco_references_stay_with_their_own_container() -> None:
    """Reading RFF+BN/BM message-wide would give the import box the empty's booking and the empty the B/L."""
    _, gate_out = _records("codeco.yaml", "codeco-d95b-gate-in-out.edi")
    full, empty = _of(gate_out, "container_event")
    assert full.get("bl_number") == "NYKS612345678" and "booking_number" not in full
    assert empty.get("booking_number") == "NYKSTYO0887123" and "bl_number" not in empty


def test_codeco_gives_the_events_booking_its_carrier() -> None:
    """A container event has no carrier: without the booking record the store would open a second deal for
    the booking under an empty carrier when the gate report has no TDT+20."""
    _, gate_out = _records("codeco.yaml", "codeco-d95b-gate-in-out.edi")
    assert _of(gate_out, "booking") == [
        {"entity": "booking", "booking_number": "NYKSTYO0887123", "carrier_scac": "NYKS"}
    ]


def test_coarri_loading_report_is_loaded_and_discharge_report_discharged_with_crane_time() -> None:
    """BGM 46 / 44 decide the kind of every container's event; DTM+203 is when the crane moved it."""
    loading, discharge = _records("coarri.yaml", "coarri-d95b-load-discharge.edi")
    loaded = _of(loading, "container_event")
    assert [(e["container"], e["kind"]) for e in loaded] == [("MOLU4550124", "loaded"), ("TRHU3344550", "loaded")]
    assert loaded[0]["occurred_at"] == "2026-12-03T11:24:00+09:00"
    [discharged] = _of(discharge, "container_event")
    assert (discharged["kind"], discharged["occurred_at"], discharged["bl_number"]) == (
        "discharged",
        "2026-12-03T06:42:00+09:00",
        "MOLU56012345678",
    )
    # the terminal comes from the header LOC's element 3 even when a container's LOC+9 comes first
    assert discharged["facility"] == loaded[0]["facility"] == "PC18"


def test_coprar_loading_order_gives_bookings_and_discharge_order_import_shipments() -> None:
    """Without the bookings (export) or B/L shipments (import) the containers would have no deal."""
    loading, discharge = _records("coprar.yaml", "coprar-d95b-load-discharge-orders.edi")
    assert {b["booking_number"] for b in _of(loading, "booking")} == {"ONEYTYOA31001", "ONEYTYOA31015"}
    shipments = _of(discharge, "shipment")
    assert [(s["bl_number"], s["direction"]) for s in shipments] == [
        ("ONEYSHAB7720045", "import"),
        ("ONEYSHAB7720046", "import"),
    ]
    containers = {c["number"]: c for c in _of(loading, "container")}
    assert containers["SEGU4711201"]["gross_kg"] == 16400.0  # TNE converted to kg
    assert containers["SEGU4711201"]["dangerous_goods"] == [
        {"un_number": "1760", "imdg_class": "8", "packing_group": "II"}
    ]
    assert containers["TRIU8770145"]["reefer_temp_c"] == -25.0
    assert containers["ONEU2047111"]["terminal_code"] == "OHI4"
    assert [c["bl_number"] for c in _of(discharge, "container")] == ["ONEYSHAB7720045", "ONEYSHAB7720046"]


def test_coreor_releases_each_container_under_its_bl_at_the_document_time() -> None:
    """The released event needs the B/L (to find the import deal) and the release time (DTM+137)."""
    [records] = _records("coreor.yaml", "coreor-d95b-import-release.edi")
    events = _of(records, "container_event")
    assert [(e["container"], e["kind"], e["bl_number"]) for e in events] == [
        ("NYKU9003186", "released", "NYKS612345690"),
        ("DFSU6400219", "released", "NYKS612345690"),
    ]
    assert {e["occurred_at"] for e in events} == {"2026-12-06T09:15:00+09:00"}
    [shipment, *_] = _of(records, "shipment")
    assert shipment["direction"] == "import" and shipment["consignee"]["name"] == "YOKOHAMA TRADING CO LTD"


def test_copino_gives_every_container_the_trucks_delivery_time() -> None:
    """delivery_at is the CONPAS gate-in time on the UL090 slip; the terminal code comes from LOC+88."""
    first, second = _records("copino.yaml", "copino-d95b-truck-delivery.edi")
    containers = _of(first, "container")
    assert [(c["number"], c["delivery_at"]) for c in containers] == [
        ("SZLU9021563", "2026-12-04T10:30:00+09:00"),
        ("GESU5512030", "2026-12-04T10:30:00+09:00"),
    ]
    assert {c["booking_number"] for c in containers} == {"ONEYTYOA31022"}
    [reefer] = _of(second, "container")
    assert (reefer["delivery_at"], reefer["terminal_code"]) == ("2026-12-04T14:00:00+09:00", "OHI4")


def test_baplie_reads_weights_vgm_reefer_oog_and_dg_per_stowage_cell() -> None:
    """The bayplan's per-cell MEA+WT / MEA+VGM, TMP, DIM and DGS must land on the right container."""
    [records] = _records("baplie.yaml", "baplie-d95b-departure-bayplan.edi")
    [call] = _of(records, "vessel_call")
    assert (call["voyage"], call["port_of_loading"], call["port_of_discharge"], call["etd"]) == (
        "046E",
        "JPTYO",
        "JPNGO",
        "2026-12-07T23:00:00+09:00",
    )
    containers = {c["number"]: c for c in _of(records, "container")}
    assert len(containers) == 5
    assert (containers["MOAU6612043"]["gross_kg"], containers["MOAU6612043"]["vgm_kg"]) == (29400.0, 29450.0)
    assert containers["MOAU6612043"]["reefer_temp_c"] == -18.0
    assert containers["TCLU9087123"]["gross_kg"] == 18720.0  # TNE converted to kg
    assert containers["TCLU9087123"]["oog"] == {"front": 30.0, "right": 20.0, "left": 20.0, "height": 45.0}
    assert containers["CXDU1122339"]["dangerous_goods"][0]["un_number"] == "1263"
    assert containers["NYKU5151518"]["full_empty"] == "empty"
    # SMDG's dummy RFF+BM:1 must not become a B/L number
    assert not any("bl_number" in c for c in containers.values())


def test_movins_cells_do_not_run_into_the_next_instruction_block() -> None:
    """HAN ends a cell's group: the discharge container keeps its own B/L and weight, not the last load's."""
    [records] = _records("movins.yaml", "movins-d95b-stowage-instructions.edi")
    containers = {c["number"]: c for c in _of(records, "container")}
    assert list(containers) == ["BEAU5033180", "ONEU6881204", "MNBU3017649", "TGHU6129380"]
    assert containers["MNBU3017649"]["reefer_temp_c"] == 5.0
    assert containers["ONEU6881204"]["dangerous_goods"] == [{"un_number": "1950", "imdg_class": "2.1"}]
    discharge = containers["TGHU6129380"]
    assert (discharge["bl_number"], discharge["gross_kg"]) == ("ONEYSHAB7720101", 19800.0)
    assert "booking_number" not in discharge


def test_vermas_gives_vgm_kg_method_party_and_the_vgm_form() -> None:
    """The VGM form needs the mass in kg, the SOLAS method (DOC SM1/SM2) and the responsible party."""
    [records] = _records("vermas.yaml", "vermas-d16a-vgm-two-methods.edi")
    weighed, calculated = _of(records, "container")
    assert (weighed["number"], weighed["vgm_kg"], weighed["vgm_method"]) == ("ONEU2047111", 29120.0, "SM1")
    assert (calculated["vgm_kg"], calculated["vgm_method"]) == (18655.0, "SM2")  # TNE converted to kg
    assert weighed["vgm_party"] == "TOKYO SEIKI CO LTD"
    assert weighed["form"] == calculated["form"] == "VGM"
    assert weighed["booking_number"] == "ONEYTYOA31001"
