"""Mapping examples as data: each mapping ships inputs and the canonical JSON they must map to.

`gateway mappings test` runs them all, so a partner-specific mapping is added with its examples and proven
without touching Python.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway import edifact
from gateway.errors import ConfigError, GatewayError
from gateway.formats import csv as csvformat
from gateway.formats import xml as xmlformat
from gateway.mapping.engine import apply_source
from gateway.mapping.language import Mapping, load_mapping
from gateway.mapping.sources import CsvSource, EdifactSource, Source, XmlSource


def canonical(mapping: Mapping, raw: bytes) -> dict[str, Any]:
    """The canonical JSON of one input, as examples are written (CSV: one message per data row).

    XML is parsed with the same hardening as in the pipeline, but not schema-validated here: the example
    tests the mapping, ``gateway ingest`` tests the whole path."""
    if mapping.format == "xml":
        root = xmlformat.parse(raw)
        name = xmlformat.document_type(root)[1]
        sources: list[Source] = [XmlSource(root, namespaces=mapping.namespaces, reference=name, type=name)]
    elif mapping.format == "csv":
        opts = mapping.csv
        table = csvformat.read(raw, encoding=opts.encoding, delimiter=opts.delimiter, header_row=opts.header_row)
        sources = [CsvSource(row, line=line, type=mapping.message or "CSV") for line, row in table.rows]
    else:
        sources = [EdifactSource(m) for m in edifact.read(raw)[1]]
    return {"messages": [apply_source(mapping, s).as_json() for s in sources]}


@dataclass(frozen=True)
class ExampleResult:
    mapping: Path
    input: Path | None
    ok: bool
    detail: str = ""


def run_examples(path: Path) -> list[ExampleResult]:
    try:
        mapping = load_mapping(path)
    except ConfigError as exc:
        return [ExampleResult(path, None, False, "\n".join(exc.problems))]
    if not mapping.examples:
        return [ExampleResult(path, None, False, "the mapping ships no example")]
    results = []
    for ex in mapping.examples:
        source, expect = path.parent / ex.input, path.parent / ex.expect
        try:
            got = canonical(mapping, source.read_bytes())
        except GatewayError as err:
            results.append(ExampleResult(path, source, False, f"{err.code}: {err.text}"))
            continue
        wanted = json.loads(expect.read_text(encoding="utf-8"))
        if got == wanted:
            results.append(ExampleResult(path, source, True))
        else:
            results.append(ExampleResult(path, source, False, _first_difference(wanted, got)))
    return results


def _first_difference(wanted: Any, got: Any, where: str = "") -> str:
    if isinstance(wanted, dict) and isinstance(got, dict):
        for key in sorted(set(wanted) | set(got)):
            if wanted.get(key) != got.get(key):
                return _first_difference(wanted.get(key), got.get(key), f"{where}.{key}" if where else key)
    if isinstance(wanted, list) and isinstance(got, list) and len(wanted) == len(got):
        for i, (w, g) in enumerate(zip(wanted, got, strict=True)):
            if w != g:
                return _first_difference(w, g, f"{where}[{i}]")
    expected, actual = json.dumps(wanted, ensure_ascii=False), json.dumps(got, ensure_ascii=False)
    return f"{where or '(document)'}: expected {expected}, got {actual}"
