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
from gateway.mapping.engine import apply
from gateway.mapping.language import Mapping, load_mapping


def canonical(mapping: Mapping, raw: bytes) -> dict[str, Any]:
    """The canonical JSON of one input, as examples are written."""
    _, messages = edifact.read(raw)
    return {"messages": [apply(mapping, m).as_json() for m in messages]}


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
