"""What `gateway edifact parse` and `gateway edifact validate` print, built while streaming the input."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from typing import BinaryIO

from gateway.edifact.contrl import MessageReport
from gateway.edifact.envelope import Interchange, Reader
from gateway.edifact.tokenizer import Repeated, Segment, Tokenizer, Value
from gateway.edifact.validator import validate


def _json_value(value: Value) -> object:
    if isinstance(value, Repeated):
        return {"repeat": [_json_value(v) for v in value]}
    return value


def segment_json(seg: Segment) -> str:
    return json.dumps([seg.tag, *(_json_value(e) for e in seg.elements)], ensure_ascii=False)


def parse_json(stream: BinaryIO) -> Iterator[str]:
    """``{"interchanges": [{"header": {...}, "segments": [[tag, element, ...], ...]}]}``, in pieces."""
    tokenizer = Tokenizer(stream, check_repertoire=False)
    yield '{"interchanges": ['
    first_interchange = True
    open_ = False
    first_segment = True
    for seg in tokenizer:
        if seg.tag == "UNB" or not open_:
            if open_:
                yield "]}"
            header = Interchange(seg, tokenizer.delimiters).header_fields() if seg.tag == "UNB" else None
            yield ("" if first_interchange else ", ") + '{"header": ' + json.dumps(header) + ', "segments": ['
            first_interchange, open_, first_segment = False, True, True
        yield ("" if first_segment else ", ") + segment_json(seg)
        first_segment = False
        if seg.tag == "UNZ":
            yield "]}"
            open_ = False
    if open_:
        yield "]}"
    yield "]}\n"


def validation(stream: BinaryIO, agreed_versions: Collection[str] | None = None) -> tuple[Reader, list[MessageReport]]:
    """Read and validate every message; the reader keeps the interchanges (with their envelope errors)."""
    reader = Reader(Tokenizer(stream), allow_bare=True)
    reports = [MessageReport(m, validate(m, agreed_versions=agreed_versions)) for m in reader]
    return reader, reports
