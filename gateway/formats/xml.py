"""Inbound XML: parsed with lxml hardened against hostile input, then validated against its XSD.

Partners' XML is untrusted. The parser resolves no entities, loads no DTD, touches no network, and refuses a
document that declares a DTD at all (XXE and billion laughs live there; business documents have no use for
one), one nested deeper than ``MAX_DEPTH`` or larger than ``MAX_BYTES``. A document is then validated with
xmlschema against the schema its root element names in the catalog (``xsd/catalog.yaml`` and routes.yaml
``xml.schemas``); schemas load from local files only.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import xmlschema
import yaml
from lxml import etree

from gateway.errors import GatewayError, Position

MAX_BYTES = 50_000_000
MAX_DEPTH = 100
CATALOG = Path(__file__).resolve().parents[2] / "xsd" / "catalog.yaml"
# libxml2's own safety limits (huge_tree off): a text node, attribute value or buffer over 10 MB, a name over 50,000
# characters, nesting past 256; refused for safety (FMT-5) like the limits above, not reported as broken XML
_LIBXML2_LIMITS = ("resource limit exceeded", "huge", "too long", "excessive depth", "amplification")


def parse(raw: bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """The root element of a safe, well-formed document; FMT-4 (not well-formed) or FMT-5 (refused) else."""
    if len(raw) > max_bytes:
        raise GatewayError("FMT-5", f"the XML document is {len(raw)} bytes; the limit is {max_bytes}", step="parse")
    depth = 0
    try:
        events = etree.iterparse(
            io.BytesIO(raw),
            events=("start", "end"),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            remove_pis=True,
        )
        for event, element in events:
            if event == "start":
                depth += 1
                if depth > max_depth:
                    raise GatewayError(
                        "FMT-5",
                        f"the XML document nests deeper than {max_depth} elements",
                        Position(path=f"line {element.sourceline}"),
                        step="parse",
                    )
            else:
                depth -= 1
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        text = exc.msg or str(exc)
        if "entity" in text.lower() or "doctype" in text.lower():
            raise GatewayError(
                "FMT-5", f"the XML document uses entities or a DTD, which are refused: {text}", step="parse"
            ) from None
        if any(mark in text.lower() for mark in _LIBXML2_LIMITS):
            raise GatewayError(
                "FMT-5",
                f"the XML document is refused: it exceeds a limit of the parser: {text}",
                Position(path=f"line {line}, column {column}"),
                step="parse",
            ) from None
        raise GatewayError(
            "FMT-4",
            f"the XML document is not well-formed: {text}",
            Position(path=f"line {line}, column {column}"),
            step="parse",
        ) from None
    root = events.root
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None:
        raise GatewayError(
            "FMT-5", "the XML document declares a DTD (<!DOCTYPE>); DTDs and entities are refused", step="parse"
        )
    return root


def document_type(root: Any) -> tuple[str, str]:
    """(namespace, local name) of the root element: what the catalog and the mapping rules match on."""
    qname = etree.QName(root)
    return qname.namespace or "", qname.localname


@dataclass(frozen=True)
class SchemaEntry:
    namespace: str
    root: str
    schema: Path


def load_catalog(path: Path = CATALOG) -> list[SchemaEntry]:
    """The gateway's own schemas: ``xsd/catalog.yaml`` lists namespace, root element and schema file."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return [
        SchemaEntry(e["namespace"], e["root"], (path.parent / e["schema"]).resolve()) for e in doc.get("schemas", [])
    ]


@cache
def _schema(path: Path) -> xmlschema.XMLSchemaBase:
    # local files only: no remote imports, and the schema documents themselves are parsed defused
    return xmlschema.XMLSchema10(str(path), allow="local", defuse="always")


@cache
def catalog(extra: tuple[SchemaEntry, ...] = ()) -> SchemaCatalog:
    """The gateway's own catalog followed by the schemas routes.yaml adds (loaded once per set)."""
    return SchemaCatalog([*load_catalog(), *extra])


class SchemaCatalog:
    """Finds the schema of a document by its root element's namespace and name."""

    def __init__(self, entries: Iterable[SchemaEntry]) -> None:
        self.entries: Sequence[SchemaEntry] = list(entries)

    def find(self, namespace: str, root: str) -> SchemaEntry | None:
        return next((e for e in self.entries if (e.namespace, e.root) == (namespace, root)), None)

    def validate(self, root: Any) -> None:
        """FMT-7 when no schema is known for the document, FMT-6 with path and line for the first violation."""
        namespace, name = document_type(root)
        entry = self.find(namespace, name)
        if entry is None:
            known = ", ".join(f"{{{e.namespace}}}{e.root}" for e in self.entries) or "none"
            raise GatewayError(
                "FMT-7", f"no schema in the catalog for {{{namespace}}}{name} (known: {known})", step="validate"
            )
        schema = _schema(entry.schema)
        for error in schema.iter_errors(root):
            elem = error.elem
            line = getattr(elem, "sourceline", None)
            path = error.path or ""
            where = f"{path} (line {line})" if line else path
            reason = error.reason or error.message
            raise GatewayError(
                "FMT-6",
                f"the document does not validate against {entry.schema.name}: {reason}",
                Position(path=where or None),
                step="validate",
            )
