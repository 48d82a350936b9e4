"""EDIFACT interchanges → segments grouped into messages, with every envelope count and reference checked.

A stop-gap around pydifact's tokenizer: the next issue replaces it with the gateway's own streaming engine
(`edifact/` message definitions, CONTRL). What it already guarantees, and what the mappings rely on:
segments are ``(tag, elements)`` in pydifact's ``Segment.elements`` shape, each with its 1-based number in the
payload (UNB = 1), and every envelope problem is a :class:`GatewayError` with its ISO 9735 code.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

from pydifact.parser import Parser

from gateway.errors import GatewayError, Position

Element = str | list[str]

# Which Python codec reads each UNB syntax identifier's repertoire.
CHARSETS = {
    "UNOA": "ascii",
    "UNOB": "ascii",
    "UNOC": "latin-1",
    "UNOD": "iso8859-2",
    "UNOE": "iso8859-5",
    "UNOF": "iso8859-7",
    "UNOG": "iso8859-3",
    "UNOH": "iso8859-4",
    "UNOI": "iso8859-6",
    "UNOJ": "iso8859-8",
    "UNOK": "iso8859-9",
    "UNOW": "utf-8",
    "UNOY": "utf-8",
}
_SYNTAX = re.compile(rb"UNB.(UNO[A-Z])")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Segment:
    tag: str
    elements: list[Element]
    number: int  # 1-based ordinal in the payload, UNB = 1 (UNA is not a segment)

    def element(self, index: int, component: int = 1) -> str:
        """Element ``index`` (1-based), component ``component`` (1-based); "" when absent."""
        if index < 1 or index > len(self.elements):
            return ""
        value = self.elements[index - 1]
        if isinstance(value, str):
            return value if component == 1 else ""
        return value[component - 1] if component <= len(value) else ""


@dataclass
class EdifactMessage:
    number: int  # 1-based ordinal of the message in the payload
    reference: str
    type: str
    version: str  # directory, e.g. D95B
    segments: list[Segment] = field(default_factory=list)  # UNH .. UNT inclusive


@dataclass
class Interchange:
    syntax: str
    syntax_version: str
    sender: str
    recipient: str
    reference: str
    messages: list[EdifactMessage] = field(default_factory=list)

    @property
    def message_types(self) -> list[str]:
        return sorted({m.type for m in self.messages})


def sender_id(raw: bytes) -> str | None:
    """The UNB sender identification, read cheaply before the payload is stored (for partner lookup)."""
    head = raw[:600].lstrip(_BOM).lstrip()
    text = head.decode("latin-1")
    sep, term, release = "+", "'", "?"
    if text.startswith("UNA") and len(text) >= 9:
        sep, term, release = text[4], text[8], text[6]
    start = text.find("UNB" + sep)
    if start < 0:
        return None
    end = text.find(term, start)
    parts = _split_unescaped(text[start : end if end > 0 else len(text)], sep, release)
    if len(parts) < 3:
        return None
    comp = text[3] if text.startswith("UNA") else ":"
    return _split_unescaped(parts[2], comp, release)[0] or None


def _split_unescaped(text: str, sep: str, release: str) -> list[str]:
    out, cur, i = [], "", 0
    while i < len(text):
        ch = text[i]
        if ch == release and i + 1 < len(text):
            cur += text[i + 1]
            i += 2
            continue
        if ch == sep:
            out.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    out.append(cur)
    return out


def decode(raw: bytes) -> str:
    """Bytes → text in the repertoire the UNB declares; a byte outside it is EDI-21."""
    body = raw.removeprefix(_BOM)
    m = _SYNTAX.search(body[:600])
    syntax = m.group(1).decode() if m else "UNOA"
    codec = CHARSETS.get(syntax)
    if codec is None:
        raise GatewayError("EDI-17", f"syntax identifier {syntax} is not supported", step="parse")
    try:
        return body.decode(codec)
    except UnicodeDecodeError as exc:
        raise GatewayError(
            "EDI-21",
            f"byte 0x{body[exc.start]:02x} at offset {exc.start} is outside the {syntax} character set",
            step="parse",
        ) from None


def parse(raw: bytes) -> list[Interchange]:
    """Parse every interchange in ``raw`` and check its envelopes."""
    return envelopes(tokenise(raw))


def tokenise(raw: bytes) -> list[Segment]:
    """The payload's segments, numbered from UNB = 1."""
    text = decode(raw).strip()
    if not text:
        raise GatewayError("FMT-3", "the payload is empty", step="parse")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [
                Segment(seg.tag, list(seg.elements), n)
                for n, seg in enumerate((s for s in Parser().parse(text) if s.tag != "UNA"), start=1)
            ]
    except Exception as exc:  # pydifact signals bad input with many exception types; all mean "not EDIFACT"
        raise GatewayError("EDI-33", f"the payload cannot be tokenised as EDIFACT: {exc}", step="parse") from None


def envelopes(segments: list[Segment]) -> list[Interchange]:
    """Group segments into interchanges and messages, checking every control count and reference."""
    return _Envelopes(segments).interchanges()


class _Envelopes:
    """Walks UNB [UNG] UNH..UNT [UNE] UNZ and checks each control count and reference."""

    def __init__(self, segments: list[Segment]) -> None:
        self.segments = segments
        self.i = 0

    def error(self, code: str, text: str, seg: Segment | None, element: int | None = None) -> GatewayError:
        pos = Position(
            segment_number=seg.number if seg else None,
            segment_tag=seg.tag if seg else None,
            element=element,
        )
        return GatewayError(code, text, pos, step="validate")

    def interchanges(self) -> list[Interchange]:
        found: list[Interchange] = []
        while self.i < len(self.segments):
            found.append(self.interchange(message_offset=sum(len(x.messages) for x in found)))
        return found

    def next(self) -> Segment | None:
        seg = self.segments[self.i] if self.i < len(self.segments) else None
        self.i += 1
        return seg

    def interchange(self, message_offset: int) -> Interchange:
        unb = self.next()
        if unb is None or unb.tag != "UNB":
            raise self.error("EDI-13", "the interchange does not start with UNB", unb)
        inter = Interchange(
            syntax=unb.element(1, 1),
            syntax_version=unb.element(1, 2),
            sender=unb.element(2, 1),
            recipient=unb.element(3, 1),
            reference=unb.element(5, 1),
        )
        groups = 0
        while True:
            seg = self.next()
            if seg is None:
                raise self.error("EDI-13", "the interchange ends without UNZ", self.segments[-1])
            if seg.tag == "UNZ":
                counted = groups or len(inter.messages)
                if seg.element(1) != str(counted):
                    raise self.error(
                        "EDI-29",
                        f"UNZ counts {seg.element(1) or 'nothing'}, the interchange holds {counted}",
                        seg,
                        1,
                    )
                if seg.element(2) != inter.reference:
                    raise self.error(
                        "EDI-28", f"UNZ reference {seg.element(2)!r} differs from UNB's {inter.reference!r}", seg, 2
                    )
                return inter
            if seg.tag in ("UNG", "UNE"):
                groups += seg.tag == "UNG"
                continue
            if seg.tag != "UNH":
                raise self.error("EDI-33", f"{seg.tag} stands outside any UNH..UNT message", seg)
            inter.messages.append(self.message(seg, message_offset + len(inter.messages) + 1))

    def message(self, unh: Segment, number: int) -> EdifactMessage:
        msg = EdifactMessage(
            number=number,
            reference=unh.element(1),
            type=unh.element(2, 1),
            version=unh.element(2, 2) + unh.element(2, 3),
            segments=[unh],
        )
        while True:
            seg = self.next()
            if seg is None or seg.tag in ("UNZ", "UNH"):
                raise self.error("EDI-13", f"message {msg.reference!r} has no UNT", seg or unh)
            msg.segments.append(seg)
            if seg.tag == "UNT":
                break
        unt = msg.segments[-1]
        if unt.element(1) != str(len(msg.segments)):
            raise self.error(
                "EDI-29",
                f"UNT counts {unt.element(1) or 'nothing'} segments, message {msg.reference!r} has {len(msg.segments)}",
                unt,
                1,
            )
        if unt.element(2) != msg.reference:
            raise self.error("EDI-28", f"UNT reference {unt.element(2)!r} differs from UNH's {msg.reference!r}", unt, 2)
        return msg
