"""goods_item and equipment records go into the lists of their shipment (gateway/canonical.py MappedMessage)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gateway.canonical import MappedMessage, ShipmentRecord


def mapped(*records: dict[str, Any]) -> MappedMessage:
    return MappedMessage.model_validate({"number": 1, "reference": "R1", "type": "CUSCAR", "records": list(records)})


def test_parts_go_to_the_shipment_they_name_and_equipment_is_summed() -> None:
    """Two B/Ls: each goods item lands in its own shipment, in order; equal equipment adds up. Breaks if parts
    attach by position instead of by key, or the equipment entries stop being summed per size-type."""
    msg = mapped(
        {"entity": "shipment", "bl_number": "BL1"},
        {"entity": "shipment", "bl_number": "BL2"},
        {"entity": "goods_item", "bl_number": "BL2", "hs_code": "030617"},
        {"entity": "goods_item", "bl_number": "BL1", "hs_code": "200830"},
        {"entity": "goods_item", "bl_number": "BL1", "hs_code": "200990"},
        {"entity": "equipment", "bl_number": "BL1", "size_type": "45G1", "full_empty": "full"},
        {"entity": "equipment", "bl_number": "BL1", "size_type": "45G1", "full_empty": "full", "quantity": 2},
    )
    first, second = msg.records
    assert isinstance(first, ShipmentRecord) and isinstance(second, ShipmentRecord)
    assert [g.hs_code for g in first.goods or []] == ["200830", "200990"]
    assert [g.hs_code for g in second.goods or []] == ["030617"]
    assert [(e.size_type, e.quantity) for e in first.equipment or []] == [("45G1", 3)]
    assert second.equipment is None
    assert "bl_number" not in msg.as_json()["records"][0]["goods"][0]  # the key is not kept in the item
    assert MappedMessage.model_validate(msg.as_json()).as_json() == msg.as_json()  # stored JSON reloads as is


def test_a_part_without_its_shipment_is_refused() -> None:
    """A goods item naming a B/L the message has no shipment for, or unkeyed among two shipments, is an error,
    never dropped silently. Breaks if _shipment_of falls back to some shipment."""
    with pytest.raises(ValidationError, match="needs the shipment 'BL9'"):
        mapped({"entity": "shipment", "bl_number": "BL1"}, {"entity": "goods_item", "bl_number": "BL9"})
    with pytest.raises(ValidationError, match="needs exactly one shipment"):
        mapped(
            {"entity": "shipment", "bl_number": "BL1"},
            {"entity": "shipment", "bl_number": "BL2"},
            {"entity": "goods_item", "hs_code": "1"},
        )
