"""NACCS declarations from inbound messages alone: IFTMIN → EDA and BKR, IFTMAN → IDA, through the real pipeline.

The goods lines (``deal.details.goods``) and the equipment (``deal.details.equipment``) come from the inbound
mappings' ``goods_item`` and ``equipment`` records (GID and EQD groups); nothing is put into the store by hand.
Items are checked by byte slices of the rendered business part, computed from the layout files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.model import Deal, Delivery, Message
from gateway.naccs.layout import Group, Item, layout
from tests.conftest import REPO, write_config

EXAMPLES = REPO / "mappings/edifact/examples"
HEADER = 400  # the input common header (398 bytes) and its CRLF
ENCODING = "euc_jp"


def naccs_route(business: str, direction: str) -> dict[str, Any]:
    return {
        "on": "shipment.updated",
        "when": {"direction": direction},
        "render": "naccs",
        "naccs": {
            "business": business,
            "mapping": str(REPO / f"naccs/mappings/{business}.yaml"),
            "user_code": "ABCDE",
            "user_id": "001",
            "password_env": "TEST_NACCS_PASSWORD",
            "system_id": "1",
        },
        "to": {"type": "folder", "path": f"outbox/naccs-{business.lower()}"},
        "retry": {"max_attempts": 1, "initial_delay": "1s", "jitter": 0},
    }


@pytest.fixture
def gw(tmp_path: Path, database_url: str) -> Iterator[Gateway]:
    mappings = [
        {"match": {"format": "edifact", "message": kind}, "use": str(REPO / f"mappings/edifact/{kind.lower()}.yaml")}
        for kind in ("IFTMIN", "IFTMAN")
    ]
    routes = {
        "naccs-eda": naccs_route("EDA", "export"),
        "naccs-bkr": naccs_route("BKR", "export"),
        "naccs-ida": naccs_route("IDA", "import"),
    }
    gateway = Gateway(config_mod.load(write_config(tmp_path, database_url, mappings=mappings, routes=routes)))
    yield gateway
    gateway.close()


def iftmin(*, issued: str = "202611241605", second_item: bool = True) -> bytes:
    """The IFTMIN example, optionally with a second goods item (GID+2) and another issue time."""
    text = (EXAMPLES / "iftmin-d95b-shipping-instruction.edi").read_text(encoding="ascii")
    text = text.replace("DTM+137:202611241605:203'", f"DTM+137:{issued}:203'")
    text = text.replace("KW2611240031", f"KW{issued[2:]}")  # an interchange reference of its own
    if second_item:
        extra = "GID+2+60:PK'\nLOC+27+DE'\nPIA+5+731815:HS'\nFTX+AAA+++HEXAGON BOLTS'\nMEA+WT+G+KGM:480'\n"
        text = text.replace("EQD+CN+SEGU6120933", extra + "EQD+CN+SEGU6120933", 1)
        text = text.replace("UNT+52+SI0412", "UNT+57+SI0412")
    return text.encode("ascii")


def iftman_first() -> bytes:
    """The first arrival notice of the IFTMAN example (the one naming customs office and bonded area)."""
    text = (EXAMPLES / "iftman-d95b-arrival-notices.edi").read_text(encoding="ascii")
    head, _, _ = text.partition("UNH+AN0002")
    return (head + "UNZ+1+NY2612010045'\n").encode("ascii")


def rendered(gateway: Gateway, route: str) -> bytes:
    gateway.dispatcher.drain()
    with gateway.sessions() as s:
        delivery = s.scalars(select(Delivery).where(Delivery.route == route)).one()
        assert delivery.status == "done", delivery.last_error
        return s.get_one(Message, delivery.message_id).raw


def item_slice(business: str, item_id: str, occurrence: int = 0) -> slice:
    """Where an item (of occurrence ``occurrence`` of its group) sits in the whole message, CRLF excluded."""
    offset = HEADER
    for entry in layout(business).items:
        if isinstance(entry, Item):
            if entry.id == item_id:
                return slice(offset, offset + entry.length)
            offset += entry.size
            continue
        assert isinstance(entry, Group)
        inner = offset + occurrence * sum(e.size for e in entry.items)
        for sub in entry.items:
            if sub.id == item_id:
                assert isinstance(sub, Item)
                return slice(inner, inner + sub.length)
            inner += sub.size
        offset += entry.size
    raise KeyError(item_id)


def value(raw: bytes, business: str, item_id: str, occurrence: int = 0) -> str:
    return raw[item_slice(business, item_id, occurrence)].decode(ENCODING)


def test_eda_lines_carry_the_goods_of_the_iftmin(gw: Gateway) -> None:
    """An IFTMIN with two GID groups renders an EDA whose first two declaration lines are those goods (HS code,
    upper-case description) and whose third line is blank. Breaks if the IFTMIN goods_item records stop
    reaching deal.details.goods, if a field name of the goods vocabulary and the EDA mapping drift apart
    (OUT-13 on the mandatory hs_code), or if the customs office (LOC+22) is no longer mapped."""
    assert gw.accept(iftmin(), channel="drops").status == "accepted"
    raw = rendered(gw, "naccs-eda")
    assert value(raw, "EDA", "customs_office") == "2A"
    assert value(raw, "EDA", "bonded_area") == "JPYOK"
    assert value(raw, "EDA", "cargo_reference").rstrip() == "ONEYYOKG04567800"
    assert value(raw, "EDA", "hs_code", 0) == "846693   "
    assert value(raw, "EDA", "description", 0) == "MACHINE TOOL PARTS, NON-HAZARDOUS".ljust(40)
    assert value(raw, "EDA", "basic_price_currency", 0) == "JPY"
    assert value(raw, "EDA", "basic_price_amount", 0).strip() == "8650000.00"
    assert value(raw, "EDA", "vessel_code").rstrip() == "9V7845"
    assert value(raw, "EDA", "hs_code", 1) == "731815   "
    assert value(raw, "EDA", "description", 1) == "HEXAGON BOLTS".ljust(40)
    assert value(raw, "EDA", "hs_code", 2).strip() == ""


def test_bkr_equipment_from_the_iftmin_containers(gw: Gateway) -> None:
    """BKR's equipment lines are the IFTMIN's EQDs by size-type: 22G1 x1 and 45G1 x2, full (5). Breaks if the
    equipment records stop being summed per size-type or stop reaching deal.details.equipment.

    The example's forwarder code (NAD+FW KWTLOG, the sender's own id) is 6 bytes where BKR's 海貨業者コード has 5,
    which is OUT-10, so the forwarder gets a 5-character code here."""
    payload = iftmin().replace(b"NAD+FW+KWTLOG::ZZZ", b"NAD+FW+KWT01::ZZZ")
    assert gw.accept(payload, channel="drops").status == "accepted"
    raw = rendered(gw, "naccs-bkr")
    lines = [
        (value(raw, "BKR", "size_type", i), value(raw, "BKR", "quantity", i), value(raw, "BKR", "full_empty", i))
        for i in range(3)
    ]
    assert lines == [("22G1", "  1", "5"), ("45G1", "  2", "5"), ("    ", "   ", " ")]


def test_ida_from_an_arrival_notice(gw: Gateway) -> None:
    """An IFTMAN (import) renders an IDA: customs office, bonded area and the goods line with its origin.
    Breaks if IFTMAN's goods_item, LOC+22 or LOC+14 mapping is lost, or origin_country is renamed on one side."""
    assert gw.accept(iftman_first(), channel="drops").status == "accepted"
    raw = rendered(gw, "naccs-ida")
    assert (value(raw, "IDA", "customs_office"), value(raw, "IDA", "bonded_area")) == ("1A", "1AW01")
    assert value(raw, "IDA", "bl_numbers").rstrip() == "NYKS2261048301"
    assert value(raw, "IDA", "hs_code", 0) == "200830   "
    assert value(raw, "IDA", "origin_country", 0) == "CN"
    assert value(raw, "IDA", "description", 0).rstrip() == "CANNED MANDARIN ORANGES"


def goods(gateway: Gateway) -> list[str]:
    with gateway.sessions() as s:
        deal = s.scalars(select(Deal).where(Deal.bl_number == "ONEYYOKG04567800")).one()
        return [g["hs_code"] for g in deal.details["goods"]]


def test_goods_is_replaced_as_a_whole_list_by_a_newer_message_only(gw: Gateway) -> None:
    """deal.details.goods is one value for "newer wins": a newer S/I with one goods item replaces the list of
    two (no merging by position), a late older S/I with two items leaves the newer list alone. Breaks if the
    details merge starts merging lists element-wise or lets an older message overwrite."""
    assert gw.accept(iftmin(issued="202611241605"), channel="drops").status == "accepted"
    assert goods(gw) == ["846693", "731815"]
    assert gw.accept(iftmin(issued="202611251000", second_item=False), channel="drops").status == "accepted"
    assert goods(gw) == ["846693"]
    assert gw.accept(iftmin(issued="202611231200"), channel="drops").status == "accepted"
    assert goods(gw) == ["846693"]


@pytest.fixture(autouse=True)
def _password(naccs_password: str) -> None:
    """Every NACCS route here sends with a password from the environment."""
