"""Mappings: every mapping's examples map to their expected canonical JSON; errors name the mapping line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway import edifact
from gateway.errors import ConfigError, GatewayError
from gateway.mapping.engine import apply
from gateway.mapping.examples import run_examples
from gateway.mapping.functions import REGISTRY
from gateway.mapping.language import load_mapping
from tests.conftest import REPO

MAPPING_FILES = sorted((REPO / "mappings").rglob("*.yaml"))
COPARN_MAPPING = REPO / "mappings" / "edifact" / "coparn.yaml"


def _map(mapping_path: Path, raw: bytes) -> list[dict[str, object]]:
    mapping = load_mapping(mapping_path)
    return [apply(mapping, msg).as_json() for msg in edifact.read(raw)[1]]


@pytest.mark.parametrize("path", MAPPING_FILES, ids=lambda p: p.name)
def test_every_mapping_example_maps_to_its_expected_json(path: Path) -> None:
    results = run_examples(path)
    assert results and all(r.ok for r in results), [r.detail for r in results if not r.ok]


def test_a_wrong_expectation_is_reported_with_its_path(tmp_path: Path) -> None:
    for name in ("coparn.yaml", "examples"):
        src = COPARN_MAPPING.parent / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name)
        else:
            shutil.copy(src, tmp_path / name)
    expect = tmp_path / "examples" / "coparn-d95b-two-messages.json"
    expect.write_text(expect.read_text().replace('"ONE APUS"', '"ONE APEX"', 1))
    [result] = run_examples(tmp_path / "coparn.yaml")
    assert not result.ok and result.detail.startswith(
        'messages[0].records[0].vessel_name: expected "ONE APEX", got "ONE APUS"'
    )


def test_coparn_example_carries_what_conpas_needs(coparn: bytes) -> None:
    messages = _map(COPARN_MAPPING, coparn)
    containers = [r for m in messages for r in m["records"] if r["entity"] == "container"]  # type: ignore[attr-defined]
    assert [c["number"] for c in containers] == ["CSQU3054383", "MSCU1234566", "TGHU8765436"]
    reefer, dg = containers[1], containers[2]
    assert reefer["gross_kg"] == 18200.0  # TNE converted to kg
    assert reefer["reefer_temp_c"] == -18.0
    assert dg["dangerous_goods"] == [
        {"un_number": "1263", "imdg_class": "3", "packing_group": "III", "flash_point_c": 23.0}
    ]
    assert dg["oog"] == {"height": 30.0}


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


def test_bad_check_digit_is_map_3_with_segment_and_mapping_line(coparn: bytes) -> None:
    with pytest.raises(GatewayError) as info:
        _map(COPARN_MAPPING, coparn.replace(b"MSCU1234566", b"MSCU1234567"))
    err = info.value
    assert err.code == "MAP-3" and "check digit" in err.text
    assert (err.position.segment_tag, err.position.segment_number, err.position.message_number) == ("EQD", 18, 1)
    assert err.position.mapping_line == _line_of(COPARN_MAPPING, "number: {seg: EQD+CN")


def test_missing_required_value_is_map_2(coparn: bytes) -> None:
    without_booking = coparn.replace(b"RFF+BN:ONEYTYOA12346'", b"RFF+AAA:X'")
    with pytest.raises(GatewayError) as info:
        _map(COPARN_MAPPING, without_booking)
    assert info.value.code == "MAP-2" and info.value.position.message_number == 2
    assert info.value.position.mapping_line == _line_of(
        COPARN_MAPPING, "booking_number: {seg: RFF+BN, el: 1.2, required"
    )


def test_unknown_code_in_a_table_is_map_3(coparn: bytes) -> None:
    with pytest.raises(GatewayError) as info:
        _map(COPARN_MAPPING, coparn.replace(b"CSQU3054383+45G1:102:5++2+5'", b"CSQU3054383+45G1:102:5++2+7'"))
    assert info.value.code == "MAP-3" and "'7'" in info.value.text


def test_unit_conversion_failure_is_map_4(coparn: bytes) -> None:
    with pytest.raises(GatewayError) as info:
        _map(COPARN_MAPPING, coparn.replace(b"KGM:24500", b"XXX:24500"))
    assert info.value.code == "MAP-4" and "XXX" in info.value.text


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text("mapping: t\nformat: edifact\nrecords:\n" + body)
    return path


def test_unknown_function_is_refused_on_load_with_a_hint(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "  - entity: booking\n    fields:\n      booking_number: {seg: RFF+BN, el: 1.2, convert: wieght_kg}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_mapping(path)
    [problem] = info.value.problems
    assert (
        problem.startswith(f"{path}:6: records[0].fields.booking_number.convert")
        and "did you mean 'weight_kg'" in problem
    )


def test_unknown_canonical_field_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "  - entity: container\n    each: EQD+CN\n    fields:\n      numbr: {seg: EQD+CN, el: 2.1}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_mapping(path)
    assert info.value.problems == [
        f"{path}:7: records[0].fields.numbr: ContainerRecord has no field 'numbr'; did you mean 'number'?"
    ]


def test_bad_selector_and_element_path(tmp_path: Path) -> None:
    path = _write(tmp_path, "  - entity: booking\n    fields:\n      booking_number: {seg: rff, el: 0.1}\n")
    with pytest.raises(ConfigError) as info:
        load_mapping(path)
    text = "\n".join(info.value.problems)
    assert "segment selector" in text and "element path" in text


def test_every_function_is_documented_for_analysts() -> None:
    guide = (REPO / "docs" / "mappings.md").read_text(encoding="utf-8")
    missing = [name for name in REGISTRY if f"`{name}`" not in guide]
    assert not missing, f"docs/mappings.md does not describe {missing}"


def test_every_record_type_can_be_part_of_a_mapped_message() -> None:
    """Breaks if a record type is added to RECORD_TYPES but not to the MappedMessage union (it would be refused)."""
    from typing import get_args

    from gateway.canonical import RECORD_TYPES, AnyRecord

    union = get_args(get_args(AnyRecord)[0])
    assert set(union) == set(RECORD_TYPES.values())


def test_a_time_without_offset_is_in_the_mappings_timezone(tmp_path: Path) -> None:
    """Breaks if an XML or CSV time without an offset is taken as UTC (Japanese times would be 9 hours off)."""
    from gateway.mapping.examples import canonical

    (tmp_path / "m.yaml").write_text(
        "mapping: t\nformat: xml\nmessage: E\nissued_at: {xpath: Issued}\nrecords:\n"
        "  - entity: container_event\n    fields:\n      container: {value: CSQU3054383}\n"
        "      kind: {value: gate_in}\n      occurred_at: {xpath: At}\n",
        encoding="utf-8",
    )
    doc = canonical(
        load_mapping(tmp_path / "m.yaml"), b"<E><Issued>2026-01-01T09:00:00</Issued><At>2026-01-01T10:00:00</At></E>"
    )
    [message] = doc["messages"]
    assert message["issued_at"] == "2026-01-01T09:00:00+09:00"
    assert message["records"][0]["occurred_at"] == "2026-01-01T10:00:00+09:00"
