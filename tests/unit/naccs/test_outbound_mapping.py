"""The outbound mapping loader: the repository's mappings load, and every mistake names file, line and item."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway.errors import ConfigError
from gateway.naccs.outbound import load_outbound_mapping, values_for

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("path", sorted((REPO / "naccs/mappings").glob("*.yaml")), ids=lambda p: p.name)
def test_repository_mappings_load(path: Path) -> None:
    """Breaks when a shipped outbound mapping no longer fits its layout (an item renamed in naccs/layouts)."""
    assert load_outbound_mapping(path).items


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "X.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_outbound_mapping(path)
    return info.value.problems


def test_unknown_item_names_file_and_line(tmp_path: Path) -> None:
    """Breaks if an item the layout lacks is accepted, or the problem loses its file:line."""
    out = problems(tmp_path, "business: CYH\nitems:\n  process_kind: {const: '9'}\n  container_nr: container.number\n")
    assert len(out) == 1 and out[0].startswith(f"{tmp_path / 'X.yaml'}:4: items.container_nr:")
    assert "not an item of the layout CYH" in out[0]


@pytest.mark.parametrize(
    ("body", "line", "needle"),
    [
        ("  container_number: {from: container.number, const: '1'}\n", 3, "exactly one of from or const"),
        ("  container_number: ship.number\n", 3, "a source starts at one of"),
        ("  container_number: {from: container.number, convert: lower}\n", 3, "convert"),
        ("  container_number: {from: container.number, fill: x}\n", 3, "unknown key"),
        ("  container_number: deal.containers.number\n", 3, "single item"),
    ],
)
def test_bad_item_sources_are_refused(tmp_path: Path, body: str, line: int, needle: str) -> None:
    """Each shape mistake is refused on load with its line. Breaks if a mistake is only found when sending."""
    out = problems(tmp_path, "business: CYH\nitems:\n" + body)
    assert any(p.startswith(f"{tmp_path / 'X.yaml'}:{line}:") and needle in p for p in out), out


def test_no_such_layout(tmp_path: Path) -> None:
    """Breaks if a mapping for a business without a layout loads."""
    out = problems(tmp_path, "business: ZZZ\nitems:\n  a: {const: '1'}\n")
    assert "no NACCS layout ZZZ" in out[0] and ":1:" in out[0]


def test_values_follow_paths_codes_and_conversions() -> None:
    """Values from attributes, JSON keys, code tables, conversions and the deal's containers in number order.
    Breaks if a path step, a code table or a conversion changes meaning."""
    mapping = load_outbound_mapping(REPO / "naccs/mappings/ECR.yaml")
    deal = SimpleNamespace(
        bl_number="BL1",
        booking_number=None,
        carrier_scac="oney",
        deal_number="DL-1",
        details={"shipper": {"name": "S"}, "gross_kg": 1.0005, "description": "D"},
        containers=[SimpleNamespace(number="B"), SimpleNamespace(number="A")],
    )
    values = values_for(mapping, {"deal": deal, "container": None, "booking": None, "vessel_call": None})
    assert values["cargo_reference"] == "BL1" and values["booking_number"] is None
    assert values["carrier_code"] == "ONEY" and values["exporter_name"] == "S"
    assert values["gross_weight"] == Decimal("1.001") and values["container_numbers"] == ["A", "B"]
    assert values["vessel_code"] is None and values["process_kind"] == "9"


GROUP = "business: EDA\nitems:\n  lines:\n    each: deal.details.goods\n    items:\n"


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        (
            GROUP + "      hs_code: item.hs_code\n      hs_cod: item.x\n",
            7,
            "hs_cod is not an item of group lines of EDA",
        ),
        (GROUP + "      hs_code: {each: deal.x, items: {a: item.a}}\n", 6, "an item, not a group"),
        (GROUP + "      hs_code: {from: item.hs_code, each: deal.x}\n", 6, "both each"),
        ("business: EDA\nitems:\n  lines: deal.details.goods\n", 3, "is a group (repeats 50)"),
        ("business: EDA\nitems:\n  lines: {each: deal.details.goods, items: {}}\n", 3, "both each"),
        ("business: EDA\nitems:\n  hs_code: deal.x\n", 3, "inside a group"),
        ("business: EDA\nitems:\n  cargo_reference: item.bl\n", 3, "no group here"),
        ("business: EDA\nitems:\n  lines: {each: item.goods, items: {hs_code: item.x}}\n", 3, "each starts at"),
        (GROUP + "      hs_code: {from: item.hs_code, fill: 1}\n", 6, "unknown key"),
    ],
)
def test_bad_group_mappings_are_refused(tmp_path: Path, text: str, line: int, needle: str) -> None:
    """A group mapped wrongly is refused on load with file and line. Breaks if group mistakes surface only
    when a message is rendered, or lose their position."""
    out = problems(tmp_path, text)
    assert any(p.startswith(f"{tmp_path / 'X.yaml'}:{line}:") and needle in p for p in out), out


def test_group_values_one_occurrence_per_element() -> None:
    """`each` gives one dict per element, `item` is the element, other roots still work, a JSON list fills a
    repeating item, and nothing is cut at the repeat count (the renderer refuses that). Breaks if elements
    are dropped, reordered or the item root is lost."""
    mapping = load_outbound_mapping(REPO / "naccs/mappings/EDA.yaml")
    goods = [
        {"hs_code": f"847989{i:03}", "description": f"PART {i}", "other_law_codes": ["A1", "B2"]} for i in range(51)
    ]
    deal = SimpleNamespace(bl_number="BL1", deal_number="DL-1", details={"goods": goods}, containers=[])
    values = values_for(mapping, {"deal": deal, "container": None, "booking": None, "vessel_call": None})
    assert len(values["lines"]) == 51
    assert values["lines"][0]["hs_code"] == "847989000" and values["lines"][50]["description"] == "PART 50"
    assert values["lines"][0]["other_law_codes"] == ["A1", "B2"]


def test_each_over_containers_and_a_single_object() -> None:
    """`each: deal.containers` is in container number order; `each: deal` is one occurrence. Breaks if the
    order or the single-object rule changes."""
    acl = load_outbound_mapping(REPO / "naccs/mappings/ACL01.yaml")
    deal = SimpleNamespace(
        bl_number="BL1",
        details={},
        containers=[SimpleNamespace(number="B", seals=[]), SimpleNamespace(number="A", seals=[])],
    )
    roots = {"deal": deal, "container": None, "booking": None, "vessel_call": None}
    assert [c["container_number"] for c in values_for(acl, roots)["containers"]] == ["A", "B"]
    mfr = load_outbound_mapping(REPO / "naccs/mappings/MFR.yaml")
    [bill] = values_for(mfr, roots)["bills"]
    assert bill["bl_number"] == "BL1" and bill["container_numbers"] == ["A", "B"]


def test_conversions_round_half_up_and_never_cut() -> None:
    """Whole numbers round half up like the decimal conversions, and a size-type code is not cut to fit: the
    renderer refuses what is too long (OUT-10). Breaks if ``int`` rounds half to even or a conversion truncates."""
    from gateway.naccs.outbound import CONVERSIONS

    assert CONVERSIONS["int"]("12.5") == 13 and CONVERSIONS["int"](2.5) == 3 and CONVERSIONS["int"]("7") == 7
    assert CONVERSIONS["iso_size_type"]("45g1x") == "45G1X"
