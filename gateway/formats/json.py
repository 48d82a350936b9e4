"""Inbound JSON: decoded strictly, and refused when hostile before anything is built from it.

Partners' JSON is untrusted. A document larger than ``MAX_BYTES`` or nested deeper than ``MAX_DEPTH`` arrays and
objects is refused (FMT-10) before it is decoded, so a 100,000-deep ``[[[[...`` cannot exhaust the recursion of
the decoder. Numbers longer than Python's integer digit limit, ``NaN``/``Infinity`` and an object with the same
key twice (which reader's value wins is a matter of taste) are refused too (FMT-10), as is a number too large for
a double (``1e999`` would read as infinity); anything else that is not UTF-8 JSON is FMT-9 with line and column,
and so is an escaped lone surrogate (``"\\ud800"``: no UTF-8 text, it cannot be stored).

Which document it is (``kind``): the gateway reads JSON documents that say what they are in a ``"type"`` key
(``TYPES``), one object or a non-empty list of objects of the same type. Anything else is FMT-11 ("no handler
for this JSON document"). The type key is the gateway's own convention: CONPAS publishes no interface
specification, so a CONPAS pre-matching answer arriving as a message of its own carries
``"type": "conpas.prematching_answer"`` next to the fields of ``schemas/conpas-answer.schema.json``. Naming the
type, rather than guessing it from a schema match, lets an invalid answer be reported as an invalid answer
(FMT-12, with its JSON path) instead of as an unknown document.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from gateway.errors import GatewayError, Position

MAX_BYTES = 10_000_000
MAX_DEPTH = 64
TYPES = {"conpas.prematching_answer": "CONPAS-ANSWER"}  # "type" key → message type

# a string (skipped: brackets inside it do not nest) or a bracket; the string pattern is the unrolled loop, linear
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


def _where(raw: bytes, offset: int) -> str:
    line = raw.count(b"\n", 0, offset) + 1
    column = offset - raw.rfind(b"\n", 0, offset)
    return f"line {line}, column {column}"


def _refused(text: str, path: str | None = None) -> GatewayError:
    return GatewayError("FMT-10", text, Position(path=path), step="parse")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _refused(f"the JSON document has the key {key!r} twice in one object")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise _refused(f"the JSON document holds {name}, which is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise _refused(f"the JSON document holds the number {text[:40]}, too large for a double")
    return number


def parse(raw: bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """The decoded document; FMT-9 (not well-formed) or FMT-10 (refused: size, depth, numbers, duplicate keys)."""
    if len(raw) > max_bytes:
        raise _refused(f"the JSON document is {len(raw)} bytes; the limit is {max_bytes}")
    depth = 0
    for token in _TOKEN.finditer(raw):
        char = token.group()
        if char in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                where = _where(raw, token.start())
                raise _refused(f"the JSON document nests deeper than {max_depth} arrays and objects", where)
        elif char in (b"]", b"}"):
            depth -= 1
    try:
        text = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GatewayError(
            "FMT-9", f"the JSON document is not UTF-8: {exc.reason} at byte {exc.start}", step="parse"
        ) from None
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise GatewayError(
            "FMT-9",
            f"the JSON document is not well-formed: {exc.msg}",
            Position(path=f"line {exc.lineno}, column {exc.colno}"),
            step="parse",
        ) from None
    except (ValueError, RecursionError) as exc:  # an integer over the digit limit; depth is checked above
        raise _refused(f"the JSON document is refused: {exc}") from None
    if "\\u" in text:  # an escaped lone surrogate (\ud800) decodes to a str that UTF-8 cannot encode
        try:
            json.dumps(document, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise GatewayError(
                "FMT-9", f"the JSON document escapes a lone surrogate ({exc.object[exc.start]!r})", step="parse"
            ) from None
    return document


def kind(document: Any) -> tuple[str, list[dict[str, Any]]]:
    """(message type, the documents) of a decoded payload: one object or a non-empty list of objects whose
    ``"type"`` is the same known type. FMT-11 naming what was found (and where, in a list) otherwise."""
    items = document if isinstance(document, list) else [document]
    found: set[str] = set()
    for i, item in enumerate(items):
        path = f"$[{i}]" if isinstance(document, list) else "$"
        name = item.get("type") if isinstance(item, dict) else None
        if not isinstance(name, str) or name not in TYPES:
            what = f'"type": {json.dumps(name)}' if isinstance(item, dict) and "type" in item else _shape(item)
            raise GatewayError(
                "FMT-11",
                f"no handler for this JSON document ({what}; known types: {', '.join(sorted(TYPES))})",
                Position(path=path),
                step="parse",
            )
        found.add(TYPES[name])
    if not found:
        raise GatewayError("FMT-11", "no handler for this JSON document (an empty list)", step="parse")
    if len(found) > 1:
        raise GatewayError(
            "FMT-11", f"no handler for this JSON document (a list mixing {', '.join(sorted(found))})", step="parse"
        )
    return found.pop(), items


def _shape(item: Any) -> str:
    if isinstance(item, dict):
        return 'an object without a "type" key'
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(item), "null")
