"""Every mapping example through the whole gateway as deployed by the repository's routes.yaml.

The mapping examples prove each mapping alone; this proves the same files are accepted end to end on both
databases: recognised, validated (EDIFACT definitions, XSDs), routed to their mapping by routes.yaml, mapped and
persisted. The files are fed in business order (a customs permit needs its booking first), as they would arrive.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.model import Deal, Event, Form, Message
from tests.conftest import REPO

EXAMPLES = sorted(p for p in REPO.glob("mappings/*/examples/*") if p.suffix in (".edi", ".xml", ".csv"))
CHANNEL = {".edi": "carrier-drops", ".xml": "xml-drops"}
FIRST = ("iftmbf", "iftmbc", "iftmin", "coparn", "iftmcs")  # bookings and B/Ls before what refers to them
UBL_SCHEMAS = {
    "Waybill": "UBL-Waybill-2.5.xsd",
    "ForwardingInstructions": "UBL-ForwardingInstructions-2.5.xsd",
    "TransportationStatus": "UBL-TransportationStatus-2.5.xsd",
}


def _order(path: Path) -> tuple[int, str]:
    rank = next((i for i, prefix in enumerate(FIRST) if path.name.startswith(prefix)), len(FIRST))
    return rank, path.name


def _channel(path: Path) -> str:
    if path.suffix == ".csv":
        return "nmot-lists" if path.name.startswith("nmot") else "nyk-lists"
    return CHANNEL[path.suffix]


def _gateway(tmp_path: Path, database_url: str, ubl_xsdrt: Path) -> Gateway:
    cfg = config_mod.load(REPO / "routes.yaml")
    schemas = [
        config_mod.XmlSchemaConfig(
            namespace=f"urn:oasis:names:specification:ubl:schema:xsd:{doc}-2", root=doc, xsd=ubl_xsdrt / "maindoc" / f
        )
        for doc, f in UBL_SCHEMAS.items()
    ]
    return Gateway(
        cfg.model_copy(
            update={
                "database": cfg.database.model_copy(update={"url": database_url}),
                "xml": cfg.xml.model_copy(update={"schemas": schemas}),
                "routes": {},  # deliveries are outbound's business; here only what is stored counts
            }
        )
    )


def test_every_example_is_accepted_end_to_end(tmp_path: Path, database_url: str, ubl_xsdrt: Path) -> None:
    """Breaks if a mapping's example passes alone but routes.yaml, validation or persisting refuses it."""
    assert len(EXAMPLES) >= 30
    gw = _gateway(tmp_path, database_url, ubl_xsdrt)
    try:
        refused = {}
        for path in sorted(EXAMPLES, key=_order):
            result = gw.accept(path.read_bytes(), channel=_channel(path), filename=path.name)
            if result.status != "accepted":
                refused[path.name] = result.errors
        assert refused == {}
        with gw.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Message).where(Message.status == "done")) == len(EXAMPLES)
            forms = set(s.scalars(select(Form.type_code)))
            assert {"UL040", "UL050", "UL090", "UL150", "UL290", "VGM", "DG"} <= forms
            kinds = set(s.scalars(select(Event.kind)))
            for kind in ("container.gate_in", "container.gate_out", "container.loaded", "container.discharged"):
                assert kind in kinds
            assert {"customs.status", "acknowledgement.received", "shipment.updated"} <= kinds
            assert {"export", "import"} <= set(s.scalars(select(Deal.direction)))
    finally:
        gw.close()
