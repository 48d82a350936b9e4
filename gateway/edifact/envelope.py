"""Envelopes: UNB [UNG] UNH..UNT [UNE] UNZ, several interchanges per file, every count and reference checked.

The reader consumes the tokenizer's stream and yields each message as soon as its UNT is read, so memory holds
one message at a time. Problems a CONTRL reports per message (UNT count, UNT reference) are attached to the
message; problems of the interchange (UNZ count or reference, a missing UNZ) to the interchange, which is
complete when its ``end`` is set. A structure the reader cannot follow at all raises.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from gateway.edifact.syntax import Delimiters
from gateway.edifact.tokenizer import Segment, Tokenizer
from gateway.errors import GatewayError, Position


def _error(
    code: str, text: str, seg: Segment | None, element: int | None = None, message_number: int | None = None
) -> GatewayError:
    pos = Position(
        segment_number=seg.number if seg else None,
        segment_tag=seg.tag if seg else None,
        element=element,
        message_number=message_number,
    )
    return GatewayError(f"EDI-{code}", text, pos, step="validate")


@dataclass
class Interchange:
    header: Segment  # the UNB (a synthetic one for bare messages)
    delimiters: Delimiters
    end: Segment | None = None  # the UNZ once read
    message_count: int = 0
    group_count: int = 0
    errors: list[GatewayError] = field(default_factory=list)

    @functools.cached_property
    def syntax(self) -> str:
        return self.header.element(1, 1)

    @functools.cached_property
    def syntax_version(self) -> str:
        return self.header.element(1, 2)

    @functools.cached_property
    def sender(self) -> str:
        return self.header.element(2, 1)

    @functools.cached_property
    def recipient(self) -> str:
        return self.header.element(3, 1)

    @functools.cached_property
    def reference(self) -> str:
        return self.header.element(5, 1)

    def header_fields(self) -> dict[str, str]:
        h = self.header
        return {
            "syntax": self.syntax,
            "syntax_version": self.syntax_version,
            "sender": self.sender,
            "sender_qualifier": h.element(2, 2),
            "recipient": self.recipient,
            "recipient_qualifier": h.element(3, 2),
            "date": h.element(4, 1),
            "time": h.element(4, 2),
            "reference": self.reference,
        }


@dataclass
class Message:
    number: int  # 1-based ordinal in the payload
    interchange: Interchange
    segments: list[Segment]  # UNH .. UNT inclusive
    group: Segment | None = None  # the UNG when the message sits in a functional group
    errors: list[GatewayError] = field(default_factory=list)
    header: Segment = field(init=False, repr=False, compare=False)  # the UNH
    reference: str = field(init=False, compare=False)
    type: str = field(init=False, compare=False)
    version: str = field(init=False, compare=False)  # the directory, e.g. D95B (version D + release 95B)

    def __post_init__(self) -> None:
        """The UNH fields are read here, not on first use: every message needs them, and Python 3.11's
        cached_property takes a lock on each first access, a cost the reader paid once per message."""
        h = self.header = self.segments[0]
        self.reference = h.element(1)
        self.type = h.element(2, 1)
        self.version = h.element(2, 2) + h.element(2, 3)


_MESSAGE_ENDS = frozenset({"UNH", "UNZ", "UNB", "UNE"})
# duplicate message references (26) are looked for among the first this many messages of an interchange
DUPLICATE_CHECK_LIMIT = 100_000


class Reader:
    """Iterate over the messages of one payload; ``interchanges`` fills as the reader goes."""

    def __init__(self, segments: Iterable[Segment], *, allow_bare: bool = False) -> None:
        self.tokenizer = segments if isinstance(segments, Tokenizer) else None  # its delimiters follow each UNA
        self.segments = iter(segments)
        self.allow_bare = allow_bare
        self.interchanges: list[Interchange] = []
        self._pushed: Segment | None = None
        self._count = 0
        self._last: Segment | None = None

    @classmethod
    def from_bytes(cls, raw: bytes, *, allow_bare: bool = False) -> Reader:
        return cls(Tokenizer.from_bytes(raw), allow_bare=allow_bare)

    def _rest(self) -> Iterator[Segment]:
        """The segments still to read, the pushed-back one first."""
        if self._pushed is None:
            return self.segments  # the common case: no extra generator between tokenizer and reader
        pushed, self._pushed = self._pushed, None
        return itertools.chain((pushed,), self.segments)

    def _next(self) -> Segment | None:
        seg = next(self._rest(), None)
        if seg is not None:
            self._last = seg
        return seg

    def __iter__(self) -> Iterator[Message]:
        while (seg := self._next()) is not None:
            if seg.tag == "UNB":
                yield from self._interchange(seg)
            elif seg.tag == "UNH" and self.allow_bare:
                self._pushed = seg
                yield from self._bare()
            elif seg.tag == "UNH":
                raise _error("13", "the payload starts with UNH: UNB is missing (bare messages are not allowed)", seg)
            else:
                raise _error("33", f"{seg.tag} stands outside any interchange (expected UNB)", seg)

    def _bare(self) -> Iterator[Message]:
        tokenizer = self.tokenizer
        unb = Segment("UNB", [["UNOA", "3"], "", "", ["", ""], ""], 0, 0)
        inter = Interchange(unb, tokenizer.delimiters if tokenizer else Delimiters())
        self.interchanges.append(inter)
        while (unh := self._next()) is not None and unh.tag == "UNH":
            yield self._message(unh, inter, None)
        if unh is not None:
            raise _error("33", f"{unh.tag} follows bare messages", unh)

    def _interchange(self, unb: Segment) -> Iterator[Message]:
        delimiters = self.tokenizer.delimiters if self.tokenizer else Delimiters()
        inter = Interchange(unb, delimiters, errors=list(unb.errors or []))
        self.interchanges.append(inter)
        group: Segment | None = None
        group_messages = 0
        message_refs: set[str] = set()
        group_refs: set[str] = set()
        while True:
            seg = self._next()
            if seg is None:
                inter.errors.append(_error("13", "the interchange ends without UNZ", self._last))
                return
            if seg.tag != "UNH":
                inter.errors.extend(seg.errors or [])  # character problems of envelope segments
            if seg.tag == "UNZ":
                inter.end = seg
                if group is not None:
                    inter.errors.append(_error("13", "functional group has no UNE", seg))
                counted = inter.group_count or inter.message_count
                if seg.element(1) != str(counted):
                    inter.errors.append(
                        _error(
                            "29", f"UNZ counts {seg.element(1) or 'nothing'}, the interchange holds {counted}", seg, 1
                        )
                    )
                if seg.element(2) != inter.reference:
                    inter.errors.append(
                        _error("28", f"UNZ reference {seg.element(2)!r} differs from UNB's {inter.reference!r}", seg, 2)
                    )
                return
            if seg.tag == "UNG":
                group, group_messages = seg, 0
                inter.group_count += 1
                if seg.element(5) in group_refs:
                    inter.errors.append(_error("26", f"group reference {seg.element(5)!r} is used twice", seg, 5))
                group_refs.add(seg.element(5))
            elif seg.tag == "UNE":
                if group is None:
                    inter.errors.append(_error("33", "UNE without UNG", seg))
                    continue
                if seg.element(1) != str(group_messages):
                    inter.errors.append(
                        _error("29", f"UNE counts {seg.element(1)}, the group holds {group_messages}", seg, 1)
                    )
                if seg.element(2) != group.element(5):
                    inter.errors.append(_error("28", "UNE reference differs from UNG's", seg, 2))
                group = None
            elif seg.tag == "UNH":
                group_messages += 1
                inter.message_count += 1
                msg = self._message(seg, inter, group)
                if msg.reference in message_refs:
                    text = f"message reference {msg.reference!r} is used twice in the interchange"
                    msg.errors.append(_error("26", text, seg, 1, message_number=msg.number))
                if len(message_refs) < DUPLICATE_CHECK_LIMIT:  # memory stays flat on huge interchanges
                    message_refs.add(msg.reference)
                yield msg
            elif seg.tag in ("UNB", "UNA"):
                inter.errors.append(_error("13", "the interchange ends without UNZ", seg))
                self._pushed = seg
                return
            else:
                inter.errors.append(_error("33", f"{seg.tag} stands outside any UNH..UNT message", seg))

    def _message(self, unh: Segment, inter: Interchange, group: Segment | None) -> Message:
        self._count += 1
        msg = Message(self._count, inter, [unh], group, errors=list(unh.errors or []))
        segments, errors = msg.segments, msg.errors
        ends = _MESSAGE_ENDS
        for seg in self._rest():  # the hot loop: one iteration per segment of the message body
            tag = seg.tag
            if tag in ends:
                errors.append(_error("13", f"message {msg.reference!r} has no UNT", seg))
                self._pushed = seg
                return msg
            segments.append(seg)
            if seg.errors:
                errors.extend(seg.errors)
            if tag == "UNT":
                break
        else:
            self._last = segments[-1]
            errors.append(_error("13", f"message {msg.reference!r} has no UNT", segments[-1]))
            return msg
        self._last = unt = segments[-1]
        if unt.element(1) != str(len(msg.segments)):
            msg.errors.append(
                _error(
                    "29",
                    f"UNT counts {unt.element(1) or 'nothing'} segments, message {msg.reference!r} "
                    f"has {len(msg.segments)}",
                    unt,
                    1,
                    message_number=msg.number,
                )
            )
        if unt.element(2) != msg.reference:
            msg.errors.append(
                _error(
                    "28",
                    f"UNT reference {unt.element(2)!r} differs from UNH's {msg.reference!r}",
                    unt,
                    2,
                    message_number=msg.number,
                )
            )
        return msg


def read_all(raw: bytes, *, allow_bare: bool = False) -> tuple[list[Interchange], list[Message]]:
    """Every interchange and message of a payload held in memory (the pipeline's case)."""
    reader = Reader.from_bytes(raw, allow_bare=allow_bare)
    messages = list(reader)
    return reader.interchanges, messages


def all_errors(interchanges: list[Interchange], messages: list[Message]) -> list[GatewayError]:
    """Every envelope and character problem, in payload order."""
    errors = [e for m in messages for e in m.errors] + [e for i in interchanges for e in i.errors]
    return sorted(errors, key=lambda e: e.position.segment_number or 0)


def first_error(interchanges: list[Interchange], messages: list[Message]) -> GatewayError | None:
    """The earliest problem in payload order, for a one-line rejection."""
    errors = all_errors(interchanges, messages)
    return errors[0] if errors else None
