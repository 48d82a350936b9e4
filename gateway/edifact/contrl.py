"""CONTRL, the syntax acknowledgement: accepted (UCI action 7) or rejected with UCM/UCS/UCD detail.

One CONTRL answers one interchange. Sender and recipient are swapped, the reference is the gateway's own.
Element positions in UCD count the segment tag as position 1 (ISO 9735), so element 1 after the tag is 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.edifact import writer
from gateway.edifact.envelope import Interchange, Message
from gateway.edifact.syntax import REPERTOIRES, Delimiters
from gateway.edifact.tokenizer import Repeated
from gateway.edifact.validator import Problem
from gateway.errors import GatewayError

ACCEPTED, REJECTED = "7", "4"
NO_AGREEMENT = "17"  # a message-level answer (UCM), not a segment's


@dataclass
class MessageReport:
    message: Message
    problems: Sequence[Problem] | None  # structure and element problems; None: no definition to validate by

    @property
    def envelope_errors(self) -> list[GatewayError]:
        return self.message.errors

    @property
    def rejected(self) -> bool:
        return bool(self.problems or self.message.errors)

    @property
    def found(self) -> Sequence[Problem]:
        return self.problems or []


def _code(error: GatewayError) -> str:
    return error.code.removeprefix("EDI-")


def _inside(error: GatewayError) -> bool:
    """A character error inside the message body is reported at its segment (UCS/UCD), others on the UCM."""
    return error.code == "EDI-21" and error.position.segment_number is not None and error.position.element is not None


def _as_problems(report: MessageReport) -> list[Problem]:
    out = []
    first = report.message.segments[0].number
    by_number = {s.number: s for s in report.message.segments}
    for e in report.envelope_errors:
        if _inside(e):
            number = e.position.segment_number or first
            out.append(
                Problem(
                    _code(e), e.text, by_number[number], number - first + 1, e.position.element, e.position.component
                )
            )
    return out


def segments(interchange: Interchange, reports: Sequence[MessageReport]) -> list[list[object]]:
    """The CONTRL body (UCI, then UCM/UCS/UCD per rejected message), without UNH/UNT."""
    h = interchange.header
    sender = [h.element(2, 1), h.element(2, 2)] if h.element(2, 2) else h.element(2, 1)
    recipient = [h.element(3, 1), h.element(3, 2)] if h.element(3, 2) else h.element(3, 1)
    uci: list[object] = ["UCI", interchange.reference, sender, recipient]
    if interchange.errors:
        uci += [REJECTED, _code(interchange.errors[0])]
        return [uci]
    uci.append(REJECTED if reports and all(r.rejected for r in reports) else ACCEPTED)
    body: list[list[object]] = [uci]
    for report in reports:
        if not report.rejected:
            continue
        unh = report.message.header
        identifier = unh.elements[1] if len(unh.elements) > 1 else ""
        ucm: list[object] = ["UCM", report.message.reference, identifier, REJECTED]
        message_level = [_code(e) for e in report.envelope_errors if not _inside(e)]
        message_level += [p.code for p in report.found if p.code == NO_AGREEMENT]
        if message_level:
            ucm.append(message_level[0])
        body.append(ucm)
        detail = [p for p in report.found if p.code != NO_AGREEMENT] + _as_problems(report)
        for problem in sorted(detail, key=lambda p: p.message_position):
            if problem.element is None:
                body.append(["UCS", str(problem.message_position), problem.code])
            else:
                body.append(["UCS", str(problem.message_position)])
                where: object = str(problem.element + 1)
                if problem.component is not None:
                    where = [str(problem.element + 1), str(problem.component)]
                body.append(["UCD", problem.code, where])
    return body


def build(
    interchange: Interchange,
    reports: Sequence[MessageReport],
    *,
    reference: str,
    now: datetime,
    delimiters: Delimiters | None = None,
) -> bytes:
    """A whole CONTRL interchange back to the sender of ``interchange``."""
    h = interchange.header
    version = interchange.syntax_version if interchange.syntax_version in ("1", "2", "3", "4") else "3"
    syntax_id = interchange.syntax if interchange.syntax in REPERTOIRES else "UNOA"
    syntax = [syntax_id, version]
    when = [now.strftime("%Y%m%d" if version == "4" else "%y%m%d"), now.strftime("%H%M")]
    unb = [
        "UNB",
        syntax,
        h.elements[2] if len(h.elements) > 2 else "",
        h.elements[1] if len(h.elements) > 1 else "",
        when,
        reference,
    ]
    identifier = ["CONTRL", "4", "1", "UN"] if version == "4" else ["CONTRL", "D", "3", "UN"]
    unb, body = _plain(unb), [_plain(seg) for seg in segments(interchange, reports)]
    echoed = [v for seg in [unb, *body] for v in _strings(seg)]
    if not all(_fits(v, syntax_id) for v in echoed):
        # the partner's own ids or references fall outside its declared repertoire: answer in one that holds them
        syntax_id = "UNOC" if all(_fits(v, "UNOC") for v in echoed) else "UNOY"
        unb[1] = [syntax_id, "3" if version in ("1", "2") else version]
    return writer.interchange(unb, [(["UNH", "1", identifier], body)], delimiters or Delimiters())


def _plain(value: Any) -> Any:
    """Echoed partner values without syntax-4 repetitions (the acknowledgement may use other delimiters)."""
    if isinstance(value, Repeated):
        return _plain(value[0]) if value else ""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _fits(value: str, syntax: str) -> bool:
    codec, refused = REPERTOIRES[syntax]
    try:
        value.encode(codec)
    except UnicodeEncodeError:
        return False
    return refused is None or not refused.search(value)
