"""Read NACCS output messages: output common header, result codes, outcome; reassemble split messages.

A NACCS output message is the 398-byte output common header, CRLF, then its body. A result notice (kind
``R``) starts its body with lines of result codes, up to five 15-character codes ``xxxxx-xxxx-xxxx`` on a
line; ``00000-0000-0000`` is success. The first letter of a code says its class (U qualification, S single
item, R item relation, E business condition, W warning, M instruction, L logic, A common); a W code is a
warning, not a failure. The lines after the codes are the business's output items, kept as text.

A long output comes in parts: the same hand-over information and input identification number, a split
sequence 1, 2, ... and the last-part flag ``E`` on the last one. :class:`Reassembler` holds parts until a
message is whole. It also keys on the output information code, because one input can cause several outputs
(a result notice and forms), each split on its own.

Whatever the bytes, :func:`parse_part`, :func:`parse_reply` and :meth:`Reassembler.add` return a result or
raise :class:`gateway.errors.GatewayError` (OUT-20 unreadable, OUT-21 parts that do not fit together).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from gateway.errors import GatewayError
from gateway.naccs.frame import CRLF, DEFAULT_ENCODING, HEADER_LENGTH, OutputHeader, check_encoding, parse_output_header

SUCCESS_CODE = "00000-0000-0000"
CODES_PER_LINE = 5
CODE_CLASSES = {
    "U": "qualification",
    "S": "single item",
    "R": "item relation",
    "E": "business condition",
    "W": "warning",
    "M": "instruction",
    "L": "logic",
    "A": "common",
}
# One result code: a 5-character result code, the item abbreviation (項目略称, "0000" when none; a 3-letter
# abbreviation is space-padded) and a 4-character position (which occurrence of a repeating item, as far as is
# known; "0000" when none).
_CODE = r"[0-9A-Z]{5}-[0-9A-Z ]{4}-[0-9A-Z ]{4}"
_CODE_LINE = re.compile(rf"(?:{_CODE})(?: ?{_CODE}){{0,{CODES_PER_LINE - 1}}} *")
_ONE_CODE = re.compile(r"([0-9A-Z]{5})-([0-9A-Z ]{4})-([0-9A-Z ]{4})")


class Outcome(StrEnum):
    SUCCESS = "success"
    WARNING = "warning"  # only W codes (besides 00000): not a failure
    ERROR = "error"


@dataclass(frozen=True)
class ResultCode:
    code: str  # 5 characters, e.g. "00000", "S0010", "W0001"
    item: str  # item abbreviation or "0000"
    position: str  # 4 characters

    @property
    def text(self) -> str:
        return f"{self.code}-{self.item}-{self.position}"

    @property
    def is_success(self) -> bool:
        return self.code == "00000"

    @property
    def is_warning(self) -> bool:
        return self.code.startswith("W")

    @property
    def category(self) -> str:
        """The class named by the first letter (``success`` for 00000, ``unknown`` for a letter not listed)."""
        return "success" if self.is_success else CODE_CLASSES.get(self.code[0], "unknown")


def classify(codes: Iterable[ResultCode]) -> Outcome:
    """SUCCESS when every code is 00000, WARNING when every other code is a W code, else ERROR."""
    problems = [c for c in codes if not c.is_success]
    if not problems:
        return Outcome.SUCCESS
    if all(c.is_warning for c in problems):
        return Outcome.WARNING
    return Outcome.ERROR


@dataclass(frozen=True)
class ReplyPart:
    """One output message as received: its header and its body bytes (after the header's CRLF)."""

    header: OutputHeader
    body: bytes
    raw: bytes = field(repr=False)

    @property
    def key(self) -> tuple[str, str, str]:
        """What the parts of one split message share: hand-over information, input id, output code."""
        return (self.header.handover, self.header.input_id, self.header.output_code)

    @property
    def sequence(self) -> int:
        return self.header.split_sequence or 1

    @property
    def is_whole(self) -> bool:
        """True for a message that was not split: sequence 1 (or blank) and the last-part flag set, or both blank."""
        h = self.header
        return (h.split_sequence in (None, 1) and h.last_part) or (h.split_sequence is None and not h.last_part)


@dataclass(frozen=True)
class Reply:
    """A whole output message (parts joined): header of the first part, result codes, outcome, output lines."""

    header: OutputHeader
    parts: int
    codes: tuple[ResultCode, ...]
    outcome: Outcome | None  # None for a message without result codes (a form, an inquiry result)
    lines: tuple[str, ...]  # the body lines after the result codes, without their CRLF
    body: bytes = field(repr=False)

    @property
    def handover(self) -> str:
        """The hand-over information: the correlation id the input message set."""
        return self.header.handover


def parse_part(data: bytes, encoding: str = DEFAULT_ENCODING) -> ReplyPart:
    """One output message (whole or a part of a split one): its header and body; OUT-20 if unreadable."""
    header = parse_output_header(data, encoding)
    return ReplyPart(header=header, body=data[HEADER_LENGTH + len(CRLF) :], raw=data)


def parse_reply(data: bytes, encoding: str = DEFAULT_ENCODING) -> Reply:
    """A message that was not split; OUT-21 for a part of a split message (use :class:`Reassembler`)."""
    part = parse_part(data, encoding)
    if not part.is_whole:
        raise GatewayError(
            "OUT-21",
            f"NACCS output {part.header.output_code or '(no code)'} for hand-over information "
            f"{part.header.handover!r} is part {part.sequence} of a split message; reassemble it first",
        )
    return assemble([part], encoding)


def assemble(parts: Sequence[ReplyPart], encoding: str = DEFAULT_ENCODING) -> Reply:
    """Join ``parts`` (in split sequence order, the last one flagged E) into a :class:`Reply`."""
    codec = check_encoding(encoding)
    if not parts:
        raise GatewayError("OUT-21", "no NACCS output parts to assemble")
    ordered = sorted(parts, key=lambda p: p.sequence)
    first = ordered[0]
    body = b"".join(p.body for p in ordered)
    try:
        text = body.decode(codec)
    except UnicodeDecodeError as exc:
        raise GatewayError(
            "OUT-20",
            f"NACCS output {first.header.output_code or '(no code)'}: body byte {exc.start} is not valid {codec}",
        ) from None
    lines = text.split("\r\n")
    if lines and lines[-1] == "":
        lines.pop()
    codes: list[ResultCode] = []
    rest = 0
    if first.header.kind == "R":
        while rest < len(lines) and _CODE_LINE.fullmatch(lines[rest]):
            codes.extend(ResultCode(*m.groups()) for m in _ONE_CODE.finditer(lines[rest]))
            rest += 1
        if not codes:
            raise GatewayError(
                "OUT-20",
                f"NACCS result notice {first.header.output_code or '(no code)'} for hand-over information "
                f"{first.header.handover!r} has no result code line",
            )
    header = replace(first.header, last_part=True, message_length=sum(p.header.message_length for p in ordered))
    return Reply(
        header=header,
        parts=len(ordered),
        codes=tuple(codes),
        outcome=classify(codes) if codes else None,
        lines=tuple(lines[rest:]),
        body=body,
    )


class Reassembler:
    """Holds the parts of split output messages until each is whole. Pure: the caller stores parts if it must.

    ``add`` returns the :class:`Reply` when the part completes a message (the part flagged E and every part
    before it are present), else None. The same part twice is harmless; a different part with the same
    sequence, a part numbered after the last part, or a second last part is OUT-21 (nothing is changed then).
    """

    def __init__(self, encoding: str = DEFAULT_ENCODING) -> None:
        self.encoding = check_encoding(encoding)
        self._parts: dict[tuple[str, str, str], dict[int, ReplyPart]] = {}

    def add(self, part: ReplyPart | bytes) -> Reply | None:
        if isinstance(part, bytes):
            part = parse_part(part, self.encoding)
        if part.is_whole and part.key not in self._parts:
            return assemble([part], self.encoding)
        held = self._parts.get(part.key, {})
        seq = part.sequence
        name = (
            f"NACCS output {part.header.output_code or '(no code)'} for hand-over information {part.header.handover!r}"
        )
        if seq in held:
            if held[seq].raw == part.raw:
                return None
            raise GatewayError("OUT-21", f"{name}: part {seq} arrived twice with different contents")
        last = next((s for s, p in held.items() if p.header.last_part), None)
        if last is not None and seq > last:
            raise GatewayError("OUT-21", f"{name}: part {seq} comes after the last part {last}")
        if last is not None and part.header.last_part:
            raise GatewayError("OUT-21", f"{name}: parts {last} and {seq} are both flagged as the last part")
        if part.header.last_part and any(s > seq for s in held):
            raise GatewayError("OUT-21", f"{name}: part {seq} is flagged last but part {max(held)} came before it")
        held = {**held, seq: part}
        self._parts[part.key] = held
        last = next((s for s, p in held.items() if p.header.last_part), None)
        if last is None or len(held) != last or set(held) != set(range(1, last + 1)):
            return None
        del self._parts[part.key]
        return assemble(list(held.values()), self.encoding)

    def pending(self) -> dict[tuple[str, str, str], list[int]]:
        """For each incomplete message (hand-over information, input id, output code): the sequences held."""
        return {key: sorted(parts) for key, parts in self._parts.items()}
