"""Coded errors: every failure a message can meet has a stable code, a plain sentence and a position.

Codes are grouped by the step that raises them, so an operator can tell from the code alone where to look:

``EDI-nn``  EDIFACT syntax; ``nn`` is the ISO 9735 syntax error code (the one a CONTRL would carry).
``FMT-n``   the payload's format could not be recognised or decoded.
``MAP-n``   no mapping applies, or a mapping could not produce a valid canonical record.
``PER-n``   the canonical change could not be persisted (a business rule in the model refused it).
``OUT-n``   an outbound delivery could not be rendered or sent.
``INT-n``   a bug: the gateway itself failed; the input is kept and can be reprocessed after a fix.

The table below is the single list of codes; ``docs/errors.md`` is generated from it by hand and must agree
(a test checks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CODES: dict[str, str] = {
    "EDI-12": "invalid value",
    "EDI-13": "missing: a mandatory segment, element or component is absent",
    "EDI-15": "segment not supported in this position",
    "EDI-16": "too many constituents: more elements or components than defined",
    "EDI-17": "no agreement: unsupported syntax identifier or version",
    "EDI-21": "invalid character for the character set",
    "EDI-26": "duplicate detected: a message or group reference used twice in one interchange",
    "EDI-28": "control references do not match (UNB/UNZ or UNH/UNT)",
    "EDI-29": "control count does not match (UNT segment count or UNZ message count)",
    "EDI-33": "invalid segment: unparsable or in an impossible place",
    "EDI-35": "too many repetitions of a segment, group or element",
    "EDI-37": "invalid type of character: letters in a numeric element, digits in an alphabetic one",
    "EDI-39": "data element too long",
    "FMT-1": "unrecognised payload: not EDIFACT, XML, JSON or CSV",
    "FMT-2": "format recognised but not supported by this gateway yet",
    "FMT-3": "payload is empty",
    "FMT-4": "XML is not well-formed",
    "FMT-5": "XML refused for safety: a DTD or entity declaration, too deep or too large",
    "FMT-6": "XML does not validate against its schema",
    "FMT-7": "no schema is known for this XML document type",
    "FMT-8": "CSV cannot be read: undecodable bytes, no header, or a row longer than the header",
    "FMT-9": "JSON is not well-formed (or not UTF-8)",
    "FMT-10": "JSON refused for safety: too large, too deep, an oversized number, NaN/Infinity or a repeated key",
    "FMT-11": 'no handler for this JSON document: no known "type"',
    "FMT-12": "a JSON document does not validate against its schema",
    "MAP-1": "no mapping in routes.yaml matches this message",
    "MAP-2": "a required value is missing from the input",
    "MAP-3": "a value is invalid (for example an ISO 6346 check digit)",
    "MAP-4": "a conversion failed (date, number or unit)",
    "PER-1": "the canonical change conflicts with stored data",
    "PER-2": "the message refers to a deal the store does not know (yet)",
    "PER-3": "the message refers to a container the store does not know",
    "OUT-1": "the outbound payload could not be rendered",
    "OUT-2": "the sink refused or failed to take the payload",
    "OUT-10": "a NACCS item value is longer than its byte length in the message encoding",
    "OUT-11": "a NACCS item value holds a character the message encoding cannot encode",
    "OUT-12": "a NACCS item value has the wrong type of character for its item (an, n or j)",
    "OUT-13": "a mandatory NACCS item has no value",
    "OUT-14": "the NACCS message is longer than 700,000 bytes",
    "OUT-15": "the values do not fit the NACCS layout: an unknown item or more occurrences than it repeats",
    "OUT-16": "a NACCS input common header field is invalid (too long, not half-width, unsupported encoding)",
    "OUT-20": "a NACCS output message cannot be read (header, length, encoding or result codes)",
    "OUT-21": "the parts of a split NACCS output message do not fit together",
    "INT-1": "internal error: a bug in the gateway; the raw input is kept for reprocessing",
}


@dataclass(frozen=True)
class Position:
    """Where in the input a problem is: a segment (EDIFACT), a path (XML) or a row (CSV)."""

    segment_number: int | None = None  # 1-based ordinal in the payload (UNB = 1; UNA not counted)
    segment_tag: str | None = None
    element: int | None = None  # 1-based data element position within the segment
    component: int | None = None  # 1-based component position within the element
    message_number: int | None = None  # 1-based ordinal of the UNH..UNT message in the payload
    path: str | None = None  # XML path or CSV "row N, column C"
    mapping_line: int | None = None  # line in the mapping file that was being applied

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class GatewayError(Exception):
    """A failure with a code from :data:`CODES`, a sentence for people and where it happened."""

    code: str
    text: str
    position: Position = field(default_factory=Position)
    step: str = ""

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unregistered error code {self.code!r}")
        super().__init__(f"{self.code}: {self.text}")

    def as_dict(self) -> dict[str, Any]:
        """The shape used by ``ingest --json``, the message store and the API."""
        pos = self.position
        segment = None
        if pos.segment_tag or pos.segment_number:
            segment = {"tag": pos.segment_tag, "number": pos.segment_number}
        position = {k: v for k, v in pos.as_dict().items() if k not in ("segment_tag", "segment_number")}
        return {
            "code": self.code,
            "text": self.text,
            "step": self.step,
            "segment": segment,
            "position": position or None,
        }


class ConfigError(Exception):
    """A configuration or mapping file is invalid; the message names file, line and key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))
