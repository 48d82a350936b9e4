"""Segment tables of the D.00B container messages whose group structure was corrected (CODECO, COPARN).

The messages are written for these tests after the D.00B segment tables; each uses groups that the earlier
tables did not have (the transport group's nested LOC-DTM group, the goods item and equipment sub-groups), so
it is refused by the old structure and accepted by the corrected one.
"""

from __future__ import annotations

from tests.unit.edifact.tables import syntax_codes as _codes

CODECO_GATE_IN = [
    "CODECO:D:00B:UN",
    "BGM+34+GI0001+9",
    "DTM+137:200101011200:203",
    "RFF+BN:BK0001",
    "TDT+20+V001+1++CARRIER:172:20",
    "DTM+133:200101021200:203",  # SG2: DTM right after TDT
    "RFF+VON:V001E",  # SG2: RFF after DTM
    "LOC+9+JPTYO:139:6",  # SG3 LOC-DTM nested in SG2
    "DTM+178:200101021800:203",
    "LOC+11+NLRTM:139:6",  # SG3 repeats
    "NAD+MS+TERMINAL:160:20",
    "GID+1+10:CT",
    "TMP+2+20:CEL",  # SG7 TMP-RNG in the goods item group
    "RNG+5+CEL:18:22",
    "SGP+ABCU1234567+10",
    "DGS+IMD+3+1993",  # SG8 DGS-FTX-MEA-SG9
    "MEA+AAE+AAA+KGM:900",
    "CTA+HE+:DG OFFICER",
    "EQD+CN+ABCU1234567+22G1:102:5++2+5",
    "RFF+BN:BK0001",
    "DTM+7:200101021200:203",
    "MEA+AAE+G+KGM:12000",
    "SEL+S123456+CA",
    "DAM+1+CD",  # SG11 DAM-COD
    "TDT+1++3",  # SG12 TDT-DTM-SG13
    "DTM+133:200101021100:203",
    "LOC+165+JPTYO:139:6",
    "NAD+CF+CARRIER:160:20",  # NAD in the equipment group
    "DGS+IMD+3+1993",  # SG14 DGS-FTX-MEA-SG15
    "FTX+AAD+++FLAMMABLE LIQUID, N.O.S.",
    "TMP+2+20:CEL",  # SG16 TMP-RNG closes the equipment group
    "RNG+5+CEL:18:22",
    "CNT+16:1",
]


def test_codeco_d00b_transport_goods_and_equipment_groups() -> None:
    assert _codes(CODECO_GATE_IN) == []


def test_codeco_d00b_equipment_group_stays_mandatory() -> None:
    codes = _codes(["CODECO:D:00B:UN", "BGM+34+GI0001+9", "NAD+MS+TERMINAL:160:20", "CNT+16:0"])
    assert codes and codes[0][0] == "13"


COPARN_RELEASE = [
    "COPARN:D:00B:UN",
    "BGM+126+RL0001+9",
    "TMD+3",
    "DTM+137:200101011200:203",
    "RFF+BN:BK0001",
    "TDT+20+V001+1++CARRIER:172:20",
    "DTM+133:200101021200:203",  # SG2: DTM then RFF
    "RFF+VON:V001E",
    "LOC+9+JPUKB:139:6",  # SG3 LOC-DTM nested in SG2
    "DTM+133:200101021200:203",
    "LOC+11+NLRTM:139:6",
    "NAD+CA+CARRIER:160:20",
    "CTA+IC+:OPS DESK",
    "COM+81312345678:TE",
    "RFF+AAO:CUST01",  # SG4: RFF and DTM after the contact group
    "GID+1+10:CT",
    "NAD+CZ+SHIPPER",  # SG7 NAD-DTM-RFF
    "MEA+AAE+G+KGM:1000",
    "DOC+710",  # SG8 DOC-DTM-LOC
    "SGP+ABCU1234567+10",  # SG9 SGP-MEA
    "DGS+IMD+3+1993",  # SG10 DGS-FTX-MEA-SG11
    "CTA+HE+:DG OFFICER",
    "TMP+2+20:CEL",  # SG12 TMP-RNG
    "EQD+CN+ABCU1234567+22G1:102:5++2+5",
    "RFF+BN:BK0001",
    "EQN+1",
    "MEA+AAE+G+KGM:12000",
    "TMP+2+20:CEL",  # SG14 TMP-RNG between DIM and SEL
    "RNG+5+CEL:18:22",
    "SEL+S123456+CA",
    "FTX+AAA+++TEXTILES",
    "DGS+IMD+3+1993",  # SG15 DGS-FTX-MEA-SG16
    "MOA+64:1000:USD",
    "DAM+1+CD",  # SG17 DAM-COD
    "TDT+1++3",  # SG18 TDT-DTM-SG19
    "LOC+165+JPUKB:139:6",
    "DTM+133:200101021100:203",
    "NAD+BJ+HAULIER",  # SG20 NAD-DTM-CTA-COM-RFF
    "RFF+AAO:HL01",
    "CNT+16:1",
]


def test_coparn_d00b_transport_goods_and_equipment_groups() -> None:
    assert _codes(COPARN_RELEASE) == []


def test_coparn_d00b_equipment_group_stays_mandatory() -> None:
    codes = _codes(["COPARN:D:00B:UN", "BGM+126+RL0001+9", "NAD+CA+CARRIER:160:20", "CNT+16:0"])
    assert codes and codes[0][0] == "13"


def test_iftsta_d00b_status_group_carries_transport_equipment_and_goods_groups() -> None:
    assert (
        _codes(
            [
                "IFTSTA:D:00B:UN",
                "BGM+23+ST0001+9",
                "DTM+137:200101011200:203",
                "CNI+1+BL0001",
                "STS+1+ZZZ",
                "RFF+BN:BK0001",
                "DTM+334:200101021200:203",
                "NAD+CA+CARRIER:160:20",  # the party is a plain NAD in the status group
                "LOC+175+JPTYO:139:6",
                "TDT+20+V001+1++CARRIER:172:20",  # SG6 TDT-DTM-RFF-SG7
                "DTM+133:200101021200:203",
                "RFF+VON:V001E",
                "LOC+9+JPTYO:139:6",  # SG7 LOC-DTM
                "DTM+178:200101021800:203",
                "EQD+CN+ABCU1234567+22G1:102:5",  # SG8 EQD-MEA-DIM-SEL-RFF-TPL-TMD-SG9
                "SEL+S123456+CA",
                "RFF+BN:BK0001",
                "TMD+3",
                "EQA+CH+CHAS001",
                "GID+1+10:CT",  # SG10 GID-HAN-SGP-DGS-FTX-SG11..13
                "SGP+ABCU1234567+10",
                "DGS+IMD+3+1993",
                "MEA+AAE+G+KGM:1000",
            ]
        )
        == []
    )
