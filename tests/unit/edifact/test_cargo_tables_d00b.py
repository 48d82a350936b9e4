"""Segment tables of the D.00B customs and booking/instruction messages (CUSCAR, CUSRES, IFTM*) as corrected
against the UN/EDIFACT directory.

Each valid message is written for these tests and goes through the groups that the corrected table changed, so
it was refused by the earlier table; each misplaced segment is one the corrected table puts elsewhere.
"""

from __future__ import annotations

from tests.unit.edifact.tables import syntax_codes as _codes

CUSCAR_MANIFEST = [
    "CUSCAR:D:00B:UN",
    "BGM+85+MF0001+9",
    "DTM+137:200101011200:203",
    "NAD+CA+CARRIER:160:20",
    "TDT+20+V001+1++CARRIER:172:20",
    "LOC+60+JPTYO:139:6",
    "EQD+CN+ABCU1234567+22G1+2+5",
    "MEA+AAE+G+KGM:12000",
    "SEL+S123456+CA",
    "LOC+9+CNSHA:139:6",  # SG5: LOC before the TMP-RNG group
    "TMP+2+20:CEL",
    "CNI+1+BL0001",
    "RFF+BM:BL0001",
    "TDT+20+V001",  # SG9 in SG8: TDT-LOC-DTM-MEA
    "LOC+9+CNSHA:139:6",
    "MEA+AAE+G+KGM:12000",
    "RFF+XP:PREV0001",  # SG10 RFF-TSR nested in SG9
    "TSR+30",
    "NAD+CN+CONSIGNEE",  # SG11: NAD-DTM-RFF
    "DTM+7:200101011200:203",
    "RFF+ABO:C0001",
    "GID+1+10:CT",
    "FTX+AAA+++CANNED FISH",
    "SGP+ABCU1234567+10",
    "LOC+27+JPTYO:139:6",  # SG14: LOC and TMD after CST's place
    "TMD+3",
    "GIS+23",  # SG15 GIS-DTM-DOC-PAC-MEA
    "DTM+7:200101011200:203",
    "DOC+380+INV0001",
    "MEA+AAE+G+KGM:12000",
]


def test_cuscar_d00b_equipment_transport_party_and_goods_groups() -> None:
    """The equipment group's LOC, the nested transport reference group (RFF-TSR), the party DTM and the goods
    item group's LOC/TMD and GIS-DTM-DOC group: a D.00B manifest using them would be refused without them."""
    assert _codes(CUSCAR_MANIFEST) == []


def test_cuscar_d00b_document_is_no_group_of_the_consignment_reference() -> None:
    """DOC right after the consignment's transport group belongs nowhere (the earlier table had a DOC group
    there); taking it would let a document float free of its goods item."""
    message = [*CUSCAR_MANIFEST[:17], "DOC+380+INV0001", *CUSCAR_MANIFEST[17:]]
    assert _codes(message) == [("15", 18, "DOC")]


CUSRES_RESPONSE = [
    "CUSRES:D:00B:UN",
    "BGM+962+RS0001+9",
    "DTM+137:200101011200:203",
    "NAD+DT+DECLARANT",
    "CTA+IC+:CUSTOMS DESK",
    "RFF+ABT:DEC0001",  # SG3 RFF-DTM-LOC, nothing nested
    "DTM+182:200101011200:203",
    "LOC+41+JPTYO:139:6",
    "ERP+1",  # SG4 ERP-RFF-ERC-FTX at the top level
    "ERC+12",
    "TAX+7+VAT",  # SG5 TAX-MOA-GIS
    "MOA+124:1000",
    "DOC+830+DEC0001",  # SG6 document group at the top level
    "DTM+182:200101011200:203",
    "NAD+CN+CONSIGNEE",  # SG7
    "MOA+40:1000",  # SG9 MOA-CUX
    "CST+1+0302:122",  # SG11 CST-FTX with SG12 TAX-MOA-GIS-MEA-RFF
    "TAX+5+CUD",
    "MOA+124:100",
    "ERP+1",  # SG13
    "ERC+12",
    "CNT+5:1",
    "AUT+AUTH0001",
]


def test_cusres_d00b_flat_reference_group_and_top_level_document_group() -> None:
    """The reference group is flat and the error, duty and document groups follow it at the top level, the
    document group carrying customs status and duty lines; a D.00B response laid out so would be refused by the
    earlier nesting."""
    assert _codes(CUSRES_RESPONSE) == []


def test_cusres_d00b_error_group_comes_before_the_duty_group() -> None:
    """The error group (SG4) precedes the duty group (SG5); an ERP after TAX at the top level is out of
    place."""
    message = [*CUSRES_RESPONSE[:8], "TAX+7+VAT", "ERP+1", *CUSRES_RESPONSE[12:]]
    assert _codes(message) == [("15", 10, "ERP")]


CUSRES_DOCUMENT = ["CUSRES:D:00B:UN", "BGM+962+RS0001+9", "DOC+830+DEC0001"]


def test_cusres_d00b_duty_lines_of_a_customs_status_repeat_up_to_999999() -> None:
    """The duty group SG12 (TAX-MOA-GIS-MEA-RFF) under a customs status line repeats up to 999999 times, as the
    BizTalk D.00B schema has it; the earlier table (99999, from a source that cuts six-digit repeats to five)
    refused a response with 100,000 duty lines under one CST with EDI-35 at the last of them."""
    message = [*CUSRES_DOCUMENT, "CST+1+0302:122", *["TAX+5+CUD"] * 100_000]
    assert _codes(message) == []


def test_cusres_d00b_duty_lines_straight_under_the_document_stay_at_99() -> None:
    """The six-digit bound belongs to SG12 only: duty lines right under DOC are the document's duty group SG10,
    which repeats 99 times, so the 100th of them is refused with EDI-35. Had the larger bound gone to SG10 (or to
    the top-level SG5) such a response would pass."""
    message = [*CUSRES_DOCUMENT, *["TAX+5+CUD"] * 99, "CST+1+0302:122"]
    assert _codes(message) == []
    message = [*CUSRES_DOCUMENT, *["TAX+5+CUD"] * 100, "CST+1+0302:122"]
    assert _codes(message) == [("35", 103, "TAX")]


IFTMIN_INSTRUCTION = [
    "IFTMIN:D:00B:UN",
    "BGM+340+SI0001+9",
    "DTM+137:200101011200:203",
    "TDT+20+V001+1++CARRIER:172:20",
    "LOC+9+JPTYO:139:6",
    "NAD+CZ+SHIPPER",
    "TCC+FRT",  # SG14: TCC-CUX
    "CUX+2:JPY:4",
    "GID+1+10:CT",
    "HAN+HWC",  # SG18: HAN repeats
    "HAN+KEC",
    "FTX+AAA+++MACHINE PARTS",
    "PCD+3:10",  # SG18: PCD after FTX
    "NAD+CZ+SHIPPER",  # SG19 NAD-DTM-LOC
    "LOC+5+JPTYO:139:6",
    "MEA+AAE+G+KGM:1000",
    "PCI+33E",  # SG23 repeats
    "PCI+33E",
    "SGP+ABCU1234567+10",  # SG29 SGP-MEA
    "DGS+IMD+3+1993",  # SG32
    "EQD+CN+ABCU1234567+22G1+2+5",
    "RFF+BN:BK0001",  # SG37: RFF after FTX
    "TCC+FRT",  # SG38: TCC-CUX
    "CUX+2:JPY:4",
    "DGS+IMD+3+1993",  # SG42 DGS-FTX-SG43 in the equipment group
    "FTX+AAD+++FLAMMABLE LIQUID, N.O.S.",
    "CTA+HE+:DG OFFICER",
]


def test_iftmin_d00b_goods_and_equipment_groups_as_published() -> None:
    """The party charge group's CUX, the goods item group's repeated HAN, PCD and party LOC, PCI up to 999, the
    equipment group's RFF and its dangerous goods group SG42: an instruction using them is accepted."""
    assert _codes(IFTMIN_INSTRUCTION) == []


def test_iftmin_d00b_split_goods_group_has_no_sequence() -> None:
    """IFTMIN's SGP group is SGP-MEA: a SEQ after SGP (IFTMCS has one there, IFTMIN not) is refused as a segment
    the message does not have."""
    message = [*IFTMIN_INSTRUCTION[:19], "SEQ++1", *IFTMIN_INSTRUCTION[19:]]
    assert _codes(message) == [("33", 20, "SEQ")]


IFTMCS_CONTRACT = [
    "IFTMCS:D:00B:UN",
    "BGM+705+BL0001+9",
    "DTM+137:200101011200:203",
    "CNT+7:1000:KGM",
    "GDS+1",  # header ends CNT, GDS: no DOC
    "RFF+BN:BK0001",
    "NAD+CZ+SHIPPER",
    "GID+1+10:CT",
    "SGP+ABCU1234567+10",  # SG27 SGP-SEQ-SG28
    "SEQ++1",
    "MEA+AAE+G+KGM:1000",
    "EQD+CN+ABCU1234567+22G1+2+5",  # SG35
    "RFF+BN:BK0001",
    "NAD+CF+CARRIER",  # SG37
    "EQA+CH+CHAS0001",  # SG38
    "DGS+IMD+3+1993",  # SG39 DGS-FTX-SG40
    "CTA+HE+:DG OFFICER",
]


def test_iftmcs_d00b_split_goods_sequence_and_equipment_groups() -> None:
    """IFTMCS has SGP-SEQ, an optional party group and an equipment group numbered SG35 with parties, attached
    equipment and dangerous goods: a contract status message without NAD before the goods is valid too."""
    assert _codes(IFTMCS_CONTRACT) == []
    assert _codes([m for m in IFTMCS_CONTRACT if not m.startswith("NAD+CZ")]) == []


def test_iftmcs_d00b_header_has_no_document_segment() -> None:
    """IFTMCS D.00B has no header DOC (IFTMIN has): a DOC after CNT is refused."""
    message = [*IFTMCS_CONTRACT[:4], "DOC+705", *IFTMCS_CONTRACT[4:]]
    assert _codes(message) == [("15", 5, "DOC")]


IFTMAN_ARRIVAL = [
    "IFTMAN:D:00B:UN",
    "BGM+632+AN0001+9",
    "DTM+137:200101011200:203",
    "TDT+20+V001+1++CARRIER:172:20",
    "LOC+8+JPTYO:139:6",
    "NAD+CN+CONSIGNEE",
    "GID+1+10:CT",
    "NAD+CN+CONSIGNEE",  # SG19 NAD-DTM-LOC
    "LOC+8+JPTYO:139:6",
    "SGP+ABCU1234567+10",  # SG27 SGP-SG28
    "MEA+AAE+G+KGM:1000",
    "EQD+CN+ABCU1234567+22G1+2+5",
    "RFF+BN:BK0001",
    "NAD+CN+CONSIGNEE",  # SG37 NAD-DTM-LOC
    "LOC+8+JPTYO:139:6",
    "DGS+IMD+3+1993",  # SG39
]


def test_iftman_d00b_party_groups_carry_locations() -> None:
    """IFTMAN's goods and equipment party groups carry LOC and its equipment group has RFF and a dangerous goods
    group; an arrival notice using them is accepted."""
    assert _codes(IFTMAN_ARRIVAL) == []


def test_iftman_d00b_split_goods_group_has_no_sequence() -> None:
    """Only IFTMCS has SEQ after SGP; in IFTMAN a SEQ there is refused."""
    message = [*IFTMAN_ARRIVAL[:10], "SEQ++1", *IFTMAN_ARRIVAL[10:]]
    assert _codes(message) == [("33", 11, "SEQ")]


IFTMBF_BOOKING = [
    "IFTMBF:D:00B:UN",
    "BGM+335+BK0001+9",
    "DTM+137:200101011200:203",
    "TDT+20+V001+1++CARRIER:172:20",
    "LOC+9+JPTYO:139:6",
    "DTM+133:200101021200:203",  # SG8 DTM repeats
    "DTM+132:200101051200:203",
    "NAD+CZ+SHIPPER",
    "CPI+4",  # SG14 CPI-RFF
    "RFF+CT:CONTRACT1",
    "GID+1+10:CT",
    "FTX+AAA+++MACHINE PARTS",
    "PCD+3:10",  # SG16: PCD
    "PCI+33E",  # SG21 PCI-RFF-DTM-GIN
    "GIN+BN+SN0001",
    "EQD+CN++22G1+2",
    "RFF+BN:BK0001",  # SG32: RFF
    "NAD+CZ+SHIPPER",
    "DGS+IMD+3+1993",  # SG35 DGS-FTX-SG36
    "FTX+AAD+++FLAMMABLE LIQUID, N.O.S.",
]


def test_iftmbf_d00b_charge_goods_and_equipment_groups() -> None:
    """The charge payment group's RFF, the goods item group's PCD and GIN, and the equipment group's RFF and
    dangerous goods group SG35: a booking using them is accepted."""
    assert _codes(IFTMBF_BOOKING) == []


def test_iftmbf_d00b_goods_identity_belongs_to_the_package_group() -> None:
    """GIN follows PCI (SG21); right after a goods item reference group (SG20 RFF-DTM) it is out of place."""
    message = [*IFTMBF_BOOKING[:13], "RFF+CU:REF1", "GIN+BN+SN0001", *IFTMBF_BOOKING[16:]]
    assert ("15", 15, "GIN") in _codes(message)


IFTMBC_CONFIRMATION = [
    "IFTMBC:D:00B:UN",
    "BGM+770+BK0001+9",
    "DTM+137:200101011200:203",
    "RFF+BN:BK0001",
    "TDT+20+V001+1++CARRIER:172:20",
    "LOC+9+JPTYO:139:6",
    "DTM+133:200101021200:203",  # SG4 DTM repeats
    "DTM+132:200101051200:203",
    "NAD+CZ+SHIPPER",
    "CTA+IC+:BOOKING DESK",  # SG7 CTA-COM in the party group
    "COM+0312345678:TE",
    "TSR+30",  # SG8 follows
    "GID+1+10:CT",
    "PCD+3:10",  # SG9: PCD
    "DGS+IMD+3+1993",  # SG15 DGS-FTX-SG16-SG17
    "CTA+HE+:DG OFFICER",
    "MEA+AAE+AAA+KGM:900",
    "EQD+CN++22G1+2",  # SG18 with RNG and RFF
    "RNG+5+CEL:18:22",
    "RFF+BN:BK0001",
    "NAD+CZ+SHIPPER",
    "DGS+IMD+3+1993",  # SG20 DGS-FTX-SG21
    "CTA+HE+:DG OFFICER",
]


def test_iftmbc_d00b_party_contact_and_dangerous_goods_groups() -> None:
    """The party group's contact group SG7, the goods item group's PCD and DGS sub-groups, and the equipment
    group's RNG, RFF and dangerous goods group: a confirmation using them is accepted."""
    assert _codes(IFTMBC_CONFIRMATION) == []


def test_iftmbc_d00b_contact_comes_before_the_service_requirements() -> None:
    """In the party group the contact group SG7 precedes the service group SG8; a CTA after TSR is out of
    place."""
    message = [*IFTMBC_CONFIRMATION[:9], "TSR+30", "CTA+IC+:BOOKING DESK", *IFTMBC_CONFIRMATION[12:]]
    assert _codes(message) == [("15", 11, "CTA")]
