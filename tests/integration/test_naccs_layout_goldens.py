"""Every NACCS business with an outbound mapping, rendered from a deal through the real renderer, byte-exact.

The golden files (tests/integration/golden/naccs_<business>.bin) are checked item by item too: each expected
item is sliced out of the message at the offset its layout gives and compared with hand-written bytes (a kanji
value in EUC-JP included), so a golden file cannot silently hold a wrong rendering.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.model import Booking, Container, Deal, Delivery, Message, VesselCall
from gateway.naccs.layout import Group, Item, layout
from gateway.store import outbox
from tests.conftest import write_config
from tests.integration.test_naccs_routes import naccs_route

GOLDEN = Path(__file__).parent / "golden"
BUSINESSES = ("EDA", "IDA", "ACL01", "BKR", "MFR")
KANJI = "精密機械部品"  # 6 characters, 12 bytes in EUC-JP


def goods(n: int) -> list[dict[str, Any]]:
    return [
        {
            "hs_code": f"847989{i:03}",
            "description": f"machine part {i}",
            "origin_country": "JP",
            "quantity": 10 + i,
            "quantity_unit": "PCE",
            "currency": "JPY",
            "value": 150000.5 + i,
            "other_law_codes": ["A1", "B2"],
        }
        for i in range(1, n + 1)
    ]


@pytest.fixture
def gw(tmp_path: Path, database_url: str) -> Iterator[Gateway]:
    routes = {f"naccs-{b.lower()}": naccs_route(b, "shipment.updated") for b in BUSINESSES}
    gateway = Gateway(config_mod.load(write_config(tmp_path, database_url, routes=routes)))
    yield gateway
    gateway.close()


def make_deal(gw: Gateway, n_goods: int = 2) -> int:
    with gw.sessions.begin() as s:
        call = VesselCall(
            natural_key="ONEY|012E|9999999",
            vessel_name="ONE APUS",
            call_sign="JXYZ9",
            voyage="012E",
            carrier_scac="oney",
            port_of_loading="JPTYO",
            port_of_discharge="USLAX",
            etd=datetime(2026, 3, 1, 15, 30, tzinfo=UTC),  # 2026-03-02 in Japan
            eta=datetime(2026, 2, 20, 16, 0, tzinfo=UTC),  # 2026-02-21 in Japan
        )
        deal = Deal(
            deal_number="DL-00000000AB",
            direction="export",
            bl_number="ONEYTYOB0002",
            booking_number="ONEYTYOA54321",
            carrier_scac="oney",
            declaration_number=None,
            details={
                "shipper": {"name": "NIPPON KIKAI KK", "code": "1234567890123", "address": "1-2-3 MINATO TOKYO"},
                "consignee": {"name": "ACME INC", "code": "US0000000001", "address": "1 MAIN ST LOS ANGELES"},
                "notify_party": {"name": "ACME LOGISTICS", "address": "2 DOCK RD"},
                "forwarder": {"code": "FWD01"},
                "place_of_receipt": "1AW01",
                "place_of_delivery": "USLAX",
                "port_of_loading": "JPTYO",
                "package_count": 120,
                "package_type": "CT",
                "gross_kg": 10250.5,
                "volume_m3": 33.2,
                "description": "MACHINE PARTS",
                "customs_office": "1W",
                "bonded_area": "1AW02",
                "remarks_ja": KANJI,
                "goods": goods(n_goods),
                "equipment": [{"size_type": "45g1", "quantity": 2, "full_empty": "full"}],
            },
        )
        booking = Booking(booking_number="ONEYTYOA54321", carrier_scac="oney", deal=deal, vessel_call=call)
        s.add_all([call, deal, booking])
        for number, seal in (("MSCU1234566", "SL001"), ("CSQU3054383", "SL002")):
            s.add(
                Container(
                    number=number,
                    deal=deal,
                    booking=booking,
                    iso_size_type="45G1",
                    seals=[{"number": seal, "issuer": "CA"}],
                    full_empty="full",
                    cargo_kg=5125.25,
                )
            )
        s.flush()
        return deal.id


def render_all(gw: Gateway, deal_id: int) -> dict[str, Delivery]:
    with gw.sessions.begin() as s:
        outbox.emit(s, "shipment.updated", gw.config.routes, {"direction": "export"}, message_id=None, deal_id=deal_id)
    with gw.sessions.begin() as s:  # fixed keys: fixed hand-over information in the golden files
        for d in s.scalars(select(Delivery)):
            d.idempotency_key = f"{d.route:0<32}"[:32].replace("-", "0")
    gw.dispatcher.drain()
    with gw.sessions() as s:
        return {d.route.removeprefix("naccs-").upper(): d for d in s.scalars(select(Delivery))}


def offsets(business: str) -> dict[str, tuple[int, int]]:
    """Item path (``lines[1].hs_code``, ``shipper_address[2]``) → (offset in the message, length)."""
    out: dict[str, tuple[int, int]] = {}
    pos = 400  # 398-byte common header + CRLF

    def entries(items: Any, prefix: str) -> None:
        nonlocal pos
        for e in items:
            for occ in range(1, e.repeat + 1):
                if isinstance(e, Group):
                    entries(e.items, f"{prefix}{e.id}[{occ}].")
                else:
                    assert isinstance(e, Item)
                    key = f"{prefix}{e.id}" + (f"[{occ}]" if e.repeat > 1 else "")
                    out[key] = (pos, e.length)
                    pos += e.length + 2

    entries(layout(business).items, "")
    return out


def j(text: str, length: int) -> bytes:
    return text.encode("euc_jp").ljust(length, b" ")


EXPECTED: dict[str, dict[str, bytes]] = {
    "EDA": {
        "value_class": b"L",
        "customs_office": b"1W",
        "exporter_name": b"NIPPON KIKAI KK".ljust(70),
        "bonded_area": b"1AW01",
        "cargo_reference": b"ONEYTYOB0002".ljust(35),
        "gross_weight": b" 10250.500",
        "departure_date": b"20260302",
        "shipper_remarks": j(KANJI, 70),
        "lines[1].hs_code": b"847989001",
        "lines[1].description": b"MACHINE PART 1".ljust(40),
        "lines[2].quantity_1": b"12".rjust(12),
        "lines[2].basic_price_amount": b"150002.50".rjust(18),
        "lines[1].other_law_codes[2]": b"B2",
        "lines[3].hs_code": b" " * 9,
        "lines[50].excise_exemption_class": b" ",
    },
    "IDA": {
        "declaration_kind": b"C",
        "importer_name": b"ACME INC".ljust(70),
        "bonded_area": b"1AW02",
        "bl_numbers[1]": b"ONEYTYOB0002".ljust(35),
        "bl_numbers[2]": b" " * 35,
        "arrival_date": b"20260221",
        "importer_remarks": j(KANJI, 70),
        "lines[2].origin_country": b"JP",
        "lines[2].dutiable_value": b"150003".rjust(18),  # 150002.5 whole yen, half up
        "lines[99].excise_codes[5]": b" " * 10,
    },
    "ACL01": {
        "process_kind": b"9",
        "vessel_code": b"JXYZ9    ",
        "loading_port_code": b"JPTYO",
        "carrier_code": b"ONEY",
        "shipper_address[1]": b"1-2-3 MINATO TOKYO".ljust(35),
        "notify_name": b"ACME LOGISTICS".ljust(70),
        "containers[1].container_number": b"CSQU3054383 ",
        "containers[1].seal_number": b"SL002".ljust(15),
        "containers[2].container_number": b"MSCU1234566 ",
        "containers[2].container_weight": b"  5125.250",
        "containers[3].container_number": b" " * 12,
        "remarks_japanese": j(KANJI, 140),
    },
    "BKR": {
        "carrier_code": b"ONEY",
        "booking_number": b"ONEYTYOA54321".ljust(35),
        "discharge_port_code": b"USLAX",
        "forwarder_code": b"FWD01",
        "equipment[1].size_type": b"45G1",
        "equipment[1].quantity": b"  2",
        "equipment[1].full_empty": b"5",
        "equipment[2].size_type": b"    ",
        "remarks": j(KANJI, 140),
    },
    "MFR": {
        "carrier_code": b"ONEY",
        "arrival_date": b"20260221",
        "container_operator": b"ONEY",
        "bills[1].bl_number": b"ONEYTYOB0002".ljust(35),
        "bills[1].consignee_address[1]": b"1 MAIN ST LOS ANGELES".ljust(35),
        "bills[1].weight_unit": b"KGM",
        "bills[1].container_numbers[1]": b"CSQU3054383 ",
        "bills[1].container_numbers[2]": b"MSCU1234566 ",
        "bills[1].remarks": j(KANJI, 70),
        "bills[2].bl_number": b" " * 35,
    },
}


@pytest.mark.parametrize("business", BUSINESSES)
def test_layout_rendered_byte_exact_from_a_deal(gw: Gateway, business: str) -> None:
    """Golden message per business, and the listed items sliced out at their layout offsets. Breaks when the
    outbound mapping, a group's order or count, a conversion, the kanji byte length or the padding change."""
    deliveries = render_all(gw, make_deal(gw))
    d = deliveries[business]
    assert d.status == "done", d.last_error
    with gw.sessions() as s:
        raw = s.get_one(Message, d.message_id).raw
    where = offsets(business)
    assert len(raw) == 400 + layout(business).size
    for path, want in EXPECTED[business].items():
        start, length = where[path]
        assert len(want) == length, path
        assert raw[start : start + length] == want, path
        assert raw[start + length : start + length + 2] == b"\r\n", path
    golden = GOLDEN / f"naccs_{business.lower()}.bin"
    assert raw == golden.read_bytes()


def test_too_many_group_elements_are_refused_with_out_15(gw: Gateway) -> None:
    """51 goods lines for EDA's 50: the delivery dies with OUT-15 naming the group, nothing is sent or cut.
    Breaks if elements beyond the repeat count are dropped silently."""
    d = render_all(gw, make_deal(gw, n_goods=51))["EDA"]
    assert d.status == "dead" and d.message_id is None
    assert d.last_error is not None and d.last_error["code"] == "OUT-15"
    assert "lines" in d.last_error["text"] and "51" in d.last_error["text"]


@pytest.fixture(autouse=True)
def _password(naccs_password: str) -> None:
    """Every NACCS route here sends with a password from the environment."""
