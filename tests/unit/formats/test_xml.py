"""The hardened XML parser and the schema catalog (gateway/formats/xml.py) with the gateway's own XML forms.

Partners' XML is untrusted: every hostile shape must be refused with its code before anything reads it, and
every document the gateway accepts must validate against the schema its root element names and map with the
mapping written for it (mappings/xml/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.errors import GatewayError
from gateway.formats import xml
from gateway.mapping.examples import canonical
from gateway.mapping.language import load_mapping
from tests.conftest import REPO

MAPPINGS = REPO / "mappings" / "xml"
GATEWAY_FORMS = {
    # mapping file → (namespace, root element) of the document it reads
    "shipping-instruction.yaml": ("urn:jp:port-gateway:xml:shipping-instruction:1", "ShippingInstruction"),
    "booking-confirmation.yaml": ("urn:jp:port-gateway:xml:booking-confirmation:1", "BookingConfirmation"),
    "gate-in-slip.yaml": ("urn:jp:port-gateway:xml:gate-in-slip:1", "GateInSlip"),
    "arrival-notice.yaml": ("urn:jp:port-gateway:xml:arrival-notice:1", "ArrivalNotice"),
    "vgm.yaml": ("urn:jp:port-gateway:xml:vgm:1", "VgmDeclaration"),
    "dg-declaration.yaml": ("urn:jp:port-gateway:xml:dg-declaration:1", "DangerousGoodsDeclaration"),
}
EXAMPLES = [(name, ex.input) for name in GATEWAY_FORMS for ex in load_mapping(MAPPINGS / name).examples]
VGM_EXAMPLE = MAPPINGS / "examples" / "vgm-sm1-and-sm2.xml"


def _code(raw: bytes, **limits: int) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        xml.parse(raw, **limits)
    return info.value


# --- hostile and broken input: FMT-4 and FMT-5 -----------------------------------------------------------


def test_external_entity_is_refused() -> None:
    """XXE: an entity naming a local file. If this passed, a partner could read the gateway's files."""
    raw = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>'
    err = _code(raw)
    assert err.code == "FMT-5"
    assert "root:" not in err.text


def test_billion_laughs_is_refused() -> None:
    """Nested entity expansion: if this passed, one small document could exhaust the gateway's memory."""
    lol = b'<!ENTITY l0 "lol">' + b"".join(
        b'<!ENTITY l%d "%s">' % (i, b"".join(b"&l%d;" % (i - 1) for _ in range(10))) for i in range(1, 10)
    )
    raw = b'<?xml version="1.0"?><!DOCTYPE a [' + lol + b"]><a>&l9;</a>"
    assert _code(raw).code == "FMT-5"


def test_external_dtd_is_refused() -> None:
    """A DOCTYPE naming an external DTD: if this passed, the parser could be made to fetch a URL or a file."""
    raw = b'<?xml version="1.0"?><!DOCTYPE a SYSTEM "http://example.invalid/a.dtd"><a>x</a>'
    assert _code(raw).code == "FMT-5"


def test_internal_dtd_without_entities_is_refused() -> None:
    """Any DTD at all: business documents need none, and a DTD is where entity tricks live."""
    raw = b'<?xml version="1.0"?><!DOCTYPE a [<!ELEMENT a (#PCDATA)>]><a>x</a>'
    assert _code(raw).code == "FMT-5"


def test_too_deep_is_refused_with_the_line() -> None:
    """Nesting past the limit: if this passed, a deeply nested document could exhaust the stack."""
    raw = b"<a>\n" + b"<b>" * 20 + b"</b>" * 20 + b"</a>"
    err = _code(raw, max_depth=10)
    assert err.code == "FMT-5"
    assert "deeper than 10" in err.text
    assert err.position.path == "line 2"


def test_too_large_is_refused_before_parsing() -> None:
    """Size past the limit: if this passed, one huge upload would be read into memory whole."""
    err = _code(b"<a>" + b"x" * 200 + b"</a>", max_bytes=100)
    assert (err.code, err.step) == ("FMT-5", "parse")
    assert "limit is 100" in err.text


@pytest.mark.parametrize(
    "raw",
    [
        b"<a><b></a>",  # mismatched tags
        b"<a>unterminated",  # no end tag
        b'<?xml version="1.0"?>\n<a x="1" x="2"/>',  # duplicate attribute
        b"<a>\xff\xfe</a>",  # not UTF-8
    ],
)
def test_not_well_formed_is_fmt4_with_a_position(raw: bytes) -> None:
    """Broken XML: if this were not FMT-4 with line and column, the partner could not find the fault."""
    err = _code(raw)
    assert err.code == "FMT-4"
    assert err.position.path and err.position.path.startswith("line ")


def test_a_safe_document_parses() -> None:
    """The hardening must not refuse ordinary documents (with Japanese text and a processing instruction)."""
    root = xml.parse('<?xml version="1.0" encoding="UTF-8"?><?pi x?><a xmlns="urn:x"><b>東京</b></a>'.encode())
    assert xml.document_type(root) == ("urn:x", "a")
    assert root[0].text == "東京"


# --- the schema catalog: FMT-6 and FMT-7 -------------------------------------------------------------------


def test_catalog_lists_every_gateway_form() -> None:
    """xsd/catalog.yaml must name a schema for each of the gateway's own forms, and each file must exist."""
    entries = {(e.namespace, e.root): e.schema for e in xml.load_catalog()}
    for namespace, root in GATEWAY_FORMS.values():
        assert entries[(namespace, root)].is_file(), (namespace, root)


def test_schema_violation_is_fmt6_with_path_and_line() -> None:
    """A bad container number in a VGM: if this passed, a malformed number would reach the mapping and CONPAS."""
    raw = VGM_EXAMPLE.read_bytes().replace(b"<ContainerNumber>MSCU1234566", b"<ContainerNumber>MSCU12345")
    root = xml.parse(raw)
    with pytest.raises(GatewayError) as info:
        xml.catalog().validate(root)
    err = info.value
    assert err.code == "FMT-6"
    assert "vgm.xsd" in err.text
    line = next(i for i, text in enumerate(raw.decode().splitlines(), 1) if "MSCU12345<" in text)
    assert err.position.path == f"/VgmDeclaration/Vgm[2]/ContainerNumber (line {line})"


def test_time_without_offset_is_fmt6() -> None:
    """The gateway's forms require an offset on every time: a zoneless time would be stored as UTC, 9 hours off."""
    raw = VGM_EXAMPLE.read_bytes().replace(b"2026-11-29T11:00:00+09:00", b"2026-11-29T11:00:00")
    with pytest.raises(GatewayError) as info:
        xml.catalog().validate(xml.parse(raw))
    assert info.value.code == "FMT-6"
    assert "IssuedAt" in (info.value.position.path or "")


def test_unknown_weight_unit_is_fmt6() -> None:
    """Weights carry KGM, TNE or LBR: if another unit passed, the mapping would fail later with a vaguer MAP-4."""
    raw = VGM_EXAMPLE.read_bytes().replace(b'unit="TNE"', b'unit="GRM"')
    with pytest.raises(GatewayError) as info:
        xml.catalog().validate(xml.parse(raw))
    assert info.value.code == "FMT-6"


def test_unknown_document_is_fmt7() -> None:
    """A root no schema names: if this passed, unvalidated XML would reach a mapping."""
    root = xml.parse(b'<Invoice xmlns="urn:example:invoice"><ID>1</ID></Invoice>')
    with pytest.raises(GatewayError) as info:
        xml.catalog().validate(root)
    assert info.value.code == "FMT-7"
    assert "{urn:example:invoice}Invoice" in info.value.text


def test_same_root_in_another_namespace_is_fmt7() -> None:
    """Documents are told apart by namespace and name: a VgmDeclaration of another namespace is not ours."""
    root = xml.parse(VGM_EXAMPLE.read_bytes().replace(b"urn:jp:port-gateway:xml:vgm:1", b"urn:other:vgm"))
    with pytest.raises(GatewayError) as info:
        xml.catalog().validate(root)
    assert info.value.code == "FMT-7"


# --- each own example validates and maps ------------------------------------------------------------------


@pytest.mark.parametrize(("mapping", "example"), EXAMPLES, ids=[str(e) for _, e in EXAMPLES])
def test_own_example_validates_against_its_schema(mapping: str, example: Path) -> None:
    """Each example of a gateway form is valid against the schema its root names: if not, the example (or the
    schema) no longer describes what the gateway accepts."""
    root = xml.parse((MAPPINGS / example).read_bytes())
    assert xml.document_type(root) == GATEWAY_FORMS[mapping]
    xml.catalog().validate(root)


@pytest.mark.parametrize(("mapping", "example"), EXAMPLES, ids=[str(e) for _, e in EXAMPLES])
def test_own_example_maps_to_its_expected_json(mapping: str, example: Path) -> None:
    """Each example maps to the canonical JSON next to it: if not, the mapping changed what it produces."""
    spec = load_mapping(MAPPINGS / mapping)
    expect = next(e.expect for e in spec.examples if e.input == example)
    got = canonical(spec, (MAPPINGS / example).read_bytes())
    assert got == json.loads((MAPPINGS / expect).read_text(encoding="utf-8"))


def _records(mapping: str) -> list[dict]:
    spec = load_mapping(MAPPINGS / mapping)
    return canonical(spec, (MAPPINGS / spec.examples[0].input).read_bytes())["messages"][0]["records"]


def test_forms_follow_the_domain() -> None:
    """Which Cyber Port form each document fills: if this breaks, deals get the wrong forms (or none)."""
    shipment = {
        m: next(r for r in _records(m) if r["entity"] == "shipment")
        for m in GATEWAY_FORMS
        if m in ("shipping-instruction.yaml", "booking-confirmation.yaml", "arrival-notice.yaml")
    }
    assert shipment["shipping-instruction.yaml"]["form"] == "UL040"
    assert (shipment["booking-confirmation.yaml"]["form"], shipment["booking-confirmation.yaml"]["direction"]) == (
        "UL050",
        "export",
    )
    assert (shipment["arrival-notice.yaml"]["form"], shipment["arrival-notice.yaml"]["direction"]) == (
        "UL290",
        "import",
    )
    assert {r.get("form") for r in _records("vgm.yaml")} == {"VGM"}
    assert {r.get("form") for r in _records("dg-declaration.yaml")} == {"DG"}


def test_japanese_names_survive_validation_and_mapping() -> None:
    """Shipper and consignee names in kanji: if the schema or mapping mangled them, Cyber Port would show garbage."""
    si = next(r for r in _records("shipping-instruction.yaml") if r["entity"] == "shipment")
    assert si["shipper"]["name"] == "株式会社東和精機"
    an = next(r for r in _records("arrival-notice.yaml") if r["entity"] == "shipment")
    assert an["consignee"]["name"] == "株式会社関西家具センター"


def test_gate_in_slip_gives_delivery_time_and_terminal() -> None:
    """The CONPAS pre-notification needs delivery time and terminal: if lost, the UL090 slip is incomplete."""
    first = _records("gate-in-slip.yaml")[0]
    assert (first["terminal_code"], first["delivery_at"]) == ("OHI-T5", "2026-11-30T09:00:00+09:00")


def test_vgm_gives_mass_method_and_party_per_container() -> None:
    """SOLAS VGM: tonnes become kg, and a container's own responsible party wins over the declaration's."""
    sm1, sm2 = _records("vgm.yaml")
    assert (sm1["vgm_kg"], sm1["vgm_method"], sm1["vgm_party"]) == (26380.0, "SM1", "株式会社東和精機")
    assert (sm2["vgm_kg"], sm2["vgm_method"], sm2["vgm_party"]) == (24810.0, "SM2", "日本海運通関株式会社")


def test_bad_check_digit_passes_the_schema_but_not_the_mapping() -> None:
    """The XSD checks the shape of a container number, the mapping its ISO 6346 check digit (MAP-3)."""
    raw = VGM_EXAMPLE.read_bytes().replace(b"MSCU1234566", b"MSCU1234567")
    xml.catalog().validate(xml.parse(raw))
    with pytest.raises(GatewayError) as info:
        canonical(load_mapping(MAPPINGS / "vgm.yaml"), raw)
    assert info.value.code == "MAP-3"
