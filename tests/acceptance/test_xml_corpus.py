"""UBL documents written by others (../shared/corpus, OASIS UBL release package) through the gateway's XML path.

The corpus stores the UBL 2.5 runtime schemas flattened (``xsdrt__maindoc__UBL-Waybill-2.5.xsd``); their imports
are relative (``../common/...``), so the ``xsdrt/`` tree is rebuilt from MANIFEST ``path_in_repo`` in a temporary
directory (symlinks, never in the repository). Each corpus example of a type the gateway maps must validate with
gateway.formats.xml's catalog and map with mappings/xml/ubl-*.yaml; the repository's own UBL examples must
validate against the same schemas. A missing corpus fails these tests: it is not a reason to skip them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from gateway.formats import xml
from gateway.mapping.examples import canonical
from gateway.mapping.language import load_mapping
from tests.conftest import CORPUS, REPO

UBL_REPO = "kduvekot/ubl-release-package"
MAPPINGS = REPO / "mappings" / "xml"
MAPPED = {
    # UBL document type → the mapping written for it
    "Waybill": "ubl-waybill.yaml",
    "ForwardingInstructions": "ubl-forwarding-instructions.yaml",
    "TransportationStatus": "ubl-transportation-status.yaml",
}


def _ns(doc: str) -> str:
    return f"urn:oasis:names:specification:ubl:schema:xsd:{doc}-2"


def _ubl_rows() -> list[dict[str, str]]:
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.is_file():
        pytest.fail(f"the corpus is missing: no {manifest} (set GATEWAY_TEST_CORPUS)", pytrace=False)
    with open(manifest, encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["repo"] == UBL_REPO]
    if not rows:
        pytest.fail(f"the corpus has no rows of {UBL_REPO}", pytrace=False)
    return rows


@pytest.fixture(scope="module")
def ubl_catalog(ubl_xsdrt: Path) -> xml.SchemaCatalog:
    """A catalog with the maindoc schema of each mapped document type, from the rebuilt xsdrt/ tree."""
    root = ubl_xsdrt.parent
    entries = []
    for doc in MAPPED:
        schema = root / "xsdrt" / "maindoc" / f"UBL-{doc}-2.5.xsd"
        assert schema.is_file(), f"the corpus lacks the UBL {doc} schema"
        entries.append(xml.SchemaEntry(_ns(doc), doc, schema))
    return xml.SchemaCatalog(entries)


def _corpus_example(doc: str) -> Path:
    rows = [r for r in _ubl_rows() if r["path_in_repo"].startswith("xml/") and r["message_type"] == f"XML {doc}"]
    assert rows, f"the corpus has no UBL {doc} example"
    return CORPUS / rows[0]["local_file"]


def _map(doc: str, path: Path) -> dict:
    result = canonical(load_mapping(MAPPINGS / MAPPED[doc]), path.read_bytes())
    (message,) = result["messages"]
    return message


@pytest.mark.parametrize("doc", list(MAPPED))
def test_corpus_example_validates(doc: str, ubl_catalog: xml.SchemaCatalog) -> None:
    """OASIS's own example against OASIS's schema through the gateway's catalog: if this fails, the catalog (or
    the hardened parser) refuses documents that are valid UBL."""
    root = xml.parse(_corpus_example(doc).read_bytes())
    assert xml.document_type(root) == (_ns(doc), doc)
    ubl_catalog.validate(root)


def test_corpus_waybill_maps(ubl_catalog: xml.SchemaCatalog) -> None:
    """The air waybill maps to one shipment keyed by the waybill number; it has no sea leg and no container, so
    no vessel call and no container record. If this breaks, the Waybill mapping reads the wrong elements."""
    msg = _map("Waybill", _corpus_example("Waybill"))
    assert (msg["reference"], msg["issued_at"]) == ("KHN23-44044-1", "2005-06-25T09:00:00Z")
    (shipment,) = msg["records"]
    assert shipment["entity"] == "shipment"
    assert (shipment["bl_number"], shipment["booking_number"]) == ("KHN23-44044-1", "123456789987654321")
    assert shipment["shipper"]["name"] == "Consortial"
    assert shipment["consignee"]["name"] == "IYT Corporation"
    assert shipment["forwarder"]["name"] == "One-Stop Forwarders"
    assert (shipment["port_of_loading"], shipment["port_of_discharge"]) == ("USBOS", "GBBRS")
    assert (shipment["gross_kg"], shipment["volume_m3"], shipment["package_count"]) == (130.0, 2.0, 10)
    assert shipment["description"] == "Acme beeswax"


def test_corpus_forwarding_instructions_map(ubl_catalog: xml.SchemaCatalog) -> None:
    """The forwarding instructions give an export S/I (UL040); without a carrier booking reference the shipment's
    own id keys the deal. If this breaks, the ForwardingInstructions mapping reads the wrong elements."""
    msg = _map("ForwardingInstructions", _corpus_example("ForwardingInstructions"))
    assert (msg["reference"], msg["issued_at"]) == ("KHN23-44044", "2005-06-24T14:20:00Z")
    (shipment,) = msg["records"]
    assert (shipment["booking_number"], shipment["form"], shipment["direction"]) == ("CONS-0001", "UL040", "export")
    assert shipment["shipper"]["name"] == "Consortial"
    assert shipment["consignee"]["name"] == "IYT Corporation"
    assert shipment["place_of_delivery"] == "GBBRS"
    assert shipment["gross_kg"] == 130.0


def test_corpus_transportation_status_maps(ubl_catalog: xml.SchemaCatalog) -> None:
    """The status names equipment CON_TE_1, which is no ISO 6346 container number: no container event, and no
    MAP-3 either (UBL equipment may be a trailer or a pallet). If this breaks, the equipment filter changed."""
    msg = _map("TransportationStatus", _corpus_example("TransportationStatus"))
    assert (msg["reference"], msg["issued_at"]) == ("TS_1", "2011-10-06T09:29:30+01:00")
    assert msg["records"] == []


def _own_examples() -> list[tuple[str, Path]]:
    return [(doc, MAPPINGS / ex.input) for doc, name in MAPPED.items() for ex in load_mapping(MAPPINGS / name).examples]


@pytest.mark.parametrize(("doc", "example"), _own_examples(), ids=lambda v: getattr(v, "name", v))
def test_own_ubl_example_validates(doc: str, example: Path, ubl_catalog: xml.SchemaCatalog) -> None:
    """The repository's UBL examples are valid UBL 2.5: if not, the mappings are proven on documents no UBL
    partner could send."""
    root = xml.parse(example.read_bytes())
    assert xml.document_type(root) == (_ns(doc), doc)
    ubl_catalog.validate(root)


def test_own_ubl_examples_give_containers_and_events() -> None:
    """What the corpus examples cannot show (they carry no ISO 6346 containers): containers with seals, VGM,
    reefer and dangerous goods from Waybill and ForwardingInstructions, status events from TransportationStatus."""
    waybill = _map("Waybill", MAPPINGS / "examples" / "ubl-waybill-sea-tokyo-losangeles.xml")["records"]
    assert [r["entity"] for r in waybill] == ["vessel_call", "shipment", "container"]
    box = waybill[2]
    assert (box["number"], box["vgm_kg"], box["vgm_method"], box["seals"]) == (
        "CSQU3054383",
        22050.0,
        "SM1",
        [{"number": "ONE770011", "issuer": "CA"}],
    )
    fi = _map("ForwardingInstructions", MAPPINGS / "examples" / "ubl-forwarding-instructions-reefer-dg.xml")
    reefer, dg = (r for r in fi["records"] if r["entity"] == "container")
    assert reefer["reefer_temp_c"] == -20.0
    assert dg["dangerous_goods"] == [{"un_number": "3480", "imdg_class": "9"}]
    ts = _map("TransportationStatus", MAPPINGS / "examples" / "ubl-transportation-status-gate-in.xml")["records"]
    assert [(e["container"], e["occurred_at"]) for e in ts] == [
        ("CSQU3054383", "2026-11-30T09:12:00+09:00"),  # the handling unit's own status time, JST when zoneless
        ("MSCU1234566", "2026-11-30T10:31:00+09:00"),  # else the document's transport event
    ]
