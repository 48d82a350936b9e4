"""Segment tables of transport messages whose group structure was corrected (D.00B IFTDGN and COREOR, D.95B COREOR).

The messages below are written for these tests; each uses a group that the earlier tables did not have, so it
is refused by the old structure and accepted by the corrected one.
"""

from __future__ import annotations

from tests.unit.edifact.tables import syntax_codes as _codes


def test_iftdgn_d00b_transport_group_nests_locations_and_goods_carry_dangerous_goods_detail() -> None:
    assert (
        _codes(
            [
                "IFTDGN:D:00B:UN",
                "BGM+890+DG0001+9",
                "DTM+137:200101011200:203",
                "TDT+20+V001+1++CARRIER:172:20",
                "DTM+132:200101021200:203",
                "RFF+VM:9123456",
                "LOC+9+JPTYO:139:6",
                "DTM+178:200101021800:203",
                "NAD+CA+CARRIER:160:20",
                "CNI+1+BL0001",
                "TDT+20+V001",
                "LOC+11+JPOSA:139:6",
                "GID+1+10:CT",
                "SGP+ABCU1234567+10",
                "MEA+AAE+G+KGM:1000",
                "DGS+IMD+3+1993",
                "FTX+AAD+++FLAMMABLE LIQUID, N.O.S.",
                "MEA+AAE+AAA+KGM:900",
                "LOC+147+0010182",
                "SGP+ABCU1234567+10",
            ]
        )
        == []
    )


def test_coreor_d00b_goods_and_equipment_groups() -> None:
    assert (
        _codes(
            [
                "COREOR:D:00B:UN",
                "BGM+129+RO0001+9",
                "TDT+20+V001+1++CARRIER:172:20",
                "LOC+9+JPTYO:139:6",
                "NAD+CF+CARRIER:160:20",
                "GID+1+10:CT",
                "NAD+CZ+SHIPPER",
                "DGS+IMD+3+1993",
                "FTX+AAD+++FLAMMABLE LIQUID, N.O.S.",
                "TMP+2+20:CEL",
                "RNG+5+CEL:18:22",
                "EQD+CN+ABCU1234567+22G1+2",
                "RFF+BN:BK0001",
                "TMP+2+20:CEL",
                "RNG+5+CEL:18:22",
                "SEL+S123456+CA",
                "TDT+1++3",
                "LOC+99+JPYOK:139:6",
                "DTM+400:200101031200:203",
                "NAD+BJ+HAULIER",
                "CNT+16:1",
            ]
        )
        == []
    )


def test_coreor_d00b_equipment_group_stays_mandatory() -> None:
    codes = _codes(
        [
            "COREOR:D:00B:UN",
            "BGM+129+RO0001+9",
            "TDT+20+V001+1++CARRIER:172:20",
            "NAD+CF+CARRIER:160:20",
            "CNT+16:0",
        ]
    )
    assert codes and codes[0][0] == "13"


COREOR_D95B_GOODS = [
    "COREOR:D:95B:UN",
    "BGM+129+RO0001+9",
    "TDT+20+V001+1++CARRIER:172:20",
    "NAD+CF+CARRIER:160:20",
    "GID+1+10:CT",
    "NAD+CZ+SHIPPER",  # SG4 NAD-DTM-RFF
    "RFF+BN:BK0001",
    "MEA+AAE+G+KGM:1000",  # MEA and PCI belong to the goods item group, after SG4
    "PCI+33E",
    "SGP+ABCU1234567+10",
    "EQD+CN+ABCU1234567+22G1+2",
    "RFF+BN:BK0001",
    "CNT+16:1",
]


def test_coreor_d95b_goods_item_measurements_follow_the_party_group() -> None:
    """In D.95B COREOR MEA and PCI are goods item segments that follow the goods party group (NAD-DTM-RFF): a
    release order giving the goods' weight after a shipper NAD was refused while the table put them inside SG4,
    and so was one giving the weight of a goods item with no party at all."""
    assert _codes(COREOR_D95B_GOODS) == []
    without_party = [s for i, s in enumerate(COREOR_D95B_GOODS) if i not in (5, 6)]
    assert _codes(without_party) == []


def test_coreor_d95b_goods_parties_come_before_the_goods_measurements() -> None:
    """MEA and PCI close the goods item's party groups: a second party after them is out of place. The earlier
    table kept MEA and PCI inside the party group and so took the second NAD as a new party group."""
    message = [
        *COREOR_D95B_GOODS[:5],
        "NAD+CZ+SHIPPER",
        "MEA+AAE+G+KGM:1000",
        "NAD+CN+CONSIGNEE",
        *COREOR_D95B_GOODS[9:],
    ]
    assert _codes(message) == [("15", 8, "NAD")]
