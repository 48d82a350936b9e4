"""Streaming EDIFACT tokenizer: bytes in, numbered segments out, memory flat whatever the file size.

It reads the input in chunks, cuts segments at unescaped terminators (a terminator preceded by an odd run of
release characters is data), honours a UNA at the start of any interchange, skips whitespace and line breaks
between segments, and decodes each segment once in the repertoire its UNB declares. Elements come out in
pydifact's ``Segment.elements`` shape: a string, or a list of component strings.

Two paths give the same segments. The block path takes up to ``BLOCK`` bytes of whole segments at once: one
decode, one repertoire search, one release-character search and one regular expression that cuts the block and
proves every tag well formed, so Python does no per-segment work beyond building the ``Segment``. Any block that
is not clean (a character problem, a repetition, an odd tag, an empty segment, a multi-byte repertoire, a UNA
or UNB in it) goes through the per-segment loop, which finds and reports exactly what is wrong.
"""

from __future__ import annotations

import functools
import io
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate, count, repeat
from operator import add
from typing import BinaryIO

from gateway.edifact.syntax import DEFAULT, LEVEL_B, REPERTOIRES, Delimiters, syntax_error
from gateway.errors import GatewayError

Element = str | list[str]  # pydifact's shape: a simple value, or the components of a composite
CHUNK = 1 << 20
BLOCK = 1 << 16  # bytes the block path takes at once: small enough that a block's segments stay cheap to hold
_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"


class Repeated(list[Element]):
    """A syntax-4 element given several times (split on the repetition separator)."""


Value = Element | Repeated


class Segment:
    """One segment: its tag, its elements (pydifact's shape), where it stands and what was wrong with its characters.

    The tokenizer's common path keeps only the text and splits it into elements when someone first asks:
    validation works on the text, so a payload that is only validated is never split element by element.
    """

    __slots__ = ("_delimiters", "_elements", "errors", "number", "offset", "raw", "tag")

    def __init__(
        self,
        tag: str,
        elements: list[Value] | None,
        number: int = 0,
        offset: int = 0,
        errors: list[GatewayError] | None = None,
        raw: str | None = None,
        delimiters: Delimiters | None = None,
    ) -> None:
        self.tag = tag
        self._elements = elements
        self.number = number  # 1-based ordinal in the payload; UNA is not a segment
        self.offset = offset  # byte offset of the tag in the payload
        self.errors = errors  # character problems; the segment is still read
        self.raw = raw  # the segment's text without terminator (None when it holds repetitions)
        self._delimiters = delimiters  # to split raw on demand

    @property
    def elements(self) -> list[Value]:
        if self._elements is None:
            assert self.raw is not None and self._delimiters is not None
            d = self._delimiters
            if d.release and d.release in self.raw:
                self._elements = _split_escaped(self.raw, d)[0][1:]
            else:
                elem, comp = d.element, d.component
                self._elements = [
                    (_composite(p.split(comp)) if p.endswith(comp) else p.split(comp)) if comp in p else p
                    for p in self.raw.split(elem)[1:]
                ]
        return self._elements

    def element(self, index: int, component: int = 1) -> str:
        """Element ``index``, component ``component`` (both 1-based); "" when absent."""
        elements = self._elements if self._elements is not None else self.elements
        if index < 1 or index > len(elements):
            return ""
        value = elements[index - 1]
        if isinstance(value, Repeated):
            value = value[0] if value else ""
        if isinstance(value, str):
            return value if component == 1 else ""
        return value[component - 1] if component <= len(value) else ""

    def as_list(self) -> list[object]:
        """``[tag, element, ...]`` as `gateway edifact parse --json` prints it."""
        return [self.tag, *self.elements]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Segment):
            return NotImplemented
        return (self.tag, self.elements, self.number) == (other.tag, other.elements, other.number)

    def __hash__(self) -> int:
        return hash((self.tag, self.number))

    def __repr__(self) -> str:
        return f"Segment({self.tag!r}, {self.elements!r}, number={self.number})"


@dataclass
class Tokenizer:
    """Iterate over the segments of ``stream``; ``delimiters`` and ``syntax`` follow each UNA and UNB."""

    stream: BinaryIO
    delimiters: Delimiters = DEFAULT
    syntax: str = "UNOA"
    check_repertoire: bool = True
    chunk_size: int = CHUNK
    blocks: bool = True  # False: every segment through the per-segment loop (the tests compare both paths)
    # before any UNB (bare messages) the repertoire is unknown: read bytes as Latin-1 and check nothing
    _codec: str = field(default="latin-1", init=False)
    _known: bool = field(default=False, init=False)

    @classmethod
    def from_bytes(cls, data: bytes, **kwargs: object) -> Tokenizer:
        return cls(io.BytesIO(data), **kwargs)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Segment]:
        buf = self.stream.read(self.chunk_size)
        while len(buf) < 16 and (more := self.stream.read(self.chunk_size)):
            buf += more  # enough to see a byte-order mark and a UNA whatever the chunk size
        base = 0  # byte offset of buf[0] in the payload
        pos = len(_BOM) if buf.startswith(_BOM) else 0
        eof = not buf
        number = 0
        d = self.delimiters
        if not buf.lstrip(_WHITESPACE).startswith(b"UNA"):
            d = self._sniff_level_b(buf, pos) or d
            self.delimiters = d
        tags: set[str] = set()
        while True:
            # the slow part of the loop: a UNA, the end of the buffer, the end of the input
            start = _SPACE.match(buf, pos).end()  # type: ignore[union-attr]
            if buf.startswith(b"UNA", start) or (len(buf) - start < 3 and b"UNA".startswith(buf[start:])):
                if len(buf) - start < 9 and not eof:
                    buf, base, pos, eof = self._refill(buf, base, pos)
                    continue
                if len(buf) - start >= 9:  # shorter at the end of the input: a cut-off segment, not a UNA
                    d = self._una(buf, start, base)
                    pos = start + 9
                    continue
            pattern = _segment_pattern(d.segment, d.release)
            before = pos
            codec, check, elem, _comp, rel, rep = self._fast_state(d)
            stop = len(buf)  # the per-segment loop hands back to the block path once past this index
            block_pattern = _block_pattern(d) if self.blocks and codec in _SINGLE_BYTE else None
            if block_pattern is not None:
                limit = min(len(buf), pos + BLOCK)
                hit = min(
                    (i for i in (buf.find(b"UNA", pos, limit), buf.find(b"UNB", pos, limit)) if i >= 0), default=limit
                )
                end = buf.rfind(d.segment.encode("latin-1"), pos, hit) + 1
                if end <= pos:
                    stop = hit  # the segment at pos holds a UNA or UNB, is longer than a block, or is cut off
                else:
                    first = _SPACE.match(buf, pos).end()  # type: ignore[union-attr]
                    block = self._block(block_pattern, buf, first, end, base, number, d)
                    if block is not None:
                        segments, n = block
                        yield from segments
                        number += n
                        pos = end
                        continue
                    stop = end - 1
            separators = ("", elem)  # what may follow a tag: nothing, or the first element
            bad_release = _bad_release_pattern(rel)
            newline_terminator = d.segment == "\n"
            # the per-segment loop: whole segments in this buffer, one regex match each, anchored at pos (a search
            # would try every later position when a segment is cut off: quadratic in a buffer without terminator)
            match = pattern.match
            while pos <= stop and (m := match(buf, pos)) is not None:
                raw = m.group(1)
                if raw[:3] == b"UNA":
                    break  # a new service string advice: the slow part reads it
                start = m.start(1)
                pos = m.end()
                if not raw:
                    continue  # an empty segment (two terminators in a row)
                if newline_terminator and raw[-1:] == b"\r":
                    raw = raw[:-1]
                number += 1
                try:
                    text = raw.decode(codec)
                except UnicodeDecodeError:
                    text = ""
                if (
                    text
                    and (not rep or rep not in text)
                    and (check is None or not check.search(text))
                    and (not rel or rel not in text or not bad_release.search(text))
                ):
                    tag = text[:3]
                    if (tag in tags or _is_tag(tag, tags)) and text[3:4] in separators:
                        segment = Segment(tag, None, number, base + start, None, text, d)
                    else:
                        segment = self._segment(raw, number, base + start, d)
                else:
                    segment = self._segment(raw, number, base + start, d)
                if segment.tag == "UNB":
                    self._start_interchange(segment)
                    codec, check = self._fast_state(d)[:2]
                yield segment
            if pos != before:
                continue  # segments were read (or a UNA follows them): look again from where they ended
            start = _SPACE.match(buf, pos).end()  # type: ignore[union-attr]
            if not eof:
                buf, base, pos, eof = self._refill(buf, base, pos)
                continue
            tail = buf[start:].strip(_WHITESPACE)
            if tail:
                number += 1
                raise syntax_error(
                    "13",
                    f"the payload ends inside segment {number} without its terminator {d.segment!r}",
                    segment_number=number,
                    segment_tag=tail[:3].decode("latin-1"),
                )
            return

    def _block(
        self, pattern: re.Pattern[str], buf: bytes, pos: int, end: int, base: int, number: int, d: Delimiters
    ) -> tuple[Iterator[Segment], int] | None:
        """The segments of ``buf[pos:end]`` (whole segments) and their count; None if any needs a closer look.

        Only a block with nothing to report qualifies: each search below errs on the strict side, and what it
        refuses the per-segment loop reads, reporting whatever is actually wrong. Offsets count characters,
        which are bytes in the single-byte repertoires this path is used for.
        """
        codec, check, _elem, _comp, rel, rep = self._fast_state(d)
        try:
            text = buf[pos:end].decode(codec)
        except UnicodeDecodeError:
            return None
        if (
            (check is not None and check.search(text))
            or (rep and rep in text)
            or (rel and rel in text and _misplaced_release(text, rel))
        ):
            return None
        units = pattern.findall(text)  # (text, tag, terminator and the whitespace after it) for each segment
        if not units:
            return None
        raws, tags, tails = zip(*units, strict=True)
        sizes = list(map(add, map(len, raws), map(len, tails)))
        if sum(sizes) != len(text):
            return None  # the matches do not tile the block: some segment is not plain
        offsets = accumulate(sizes, initial=base + pos)
        interned = map(sys.intern, tags)  # one string per tag, not one per segment: an interchange is held whole
        segments = map(Segment, interned, repeat(None), count(number + 1), offsets, repeat(None), raws, repeat(d))
        return segments, len(units)

    def _fast_state(self, d: Delimiters) -> _Fast:
        check = _repertoire(self.syntax, d.service) if self.check_repertoire and self._known else None
        return self._codec, check, d.element, d.component, d.release or "", d.repetition or ""

    # -- reading -----------------------------------------------------------------------------------------
    def _refill(self, buf: bytes, base: int, pos: int) -> tuple[bytes, int, int, bool]:
        chunk = self.stream.read(self.chunk_size)
        return buf[pos:] + chunk, base + pos, 0, not chunk

    def _sniff_level_b(self, buf: bytes, pos: int) -> Delimiters | None:
        head = buf[pos:].lstrip(_WHITESPACE)
        if head.startswith(b"UNB\x1d"):
            return LEVEL_B
        return None

    def _una(self, buf: bytes, pos: int, base: int) -> Delimiters:
        una = buf[pos : pos + 9].decode("latin-1")
        used = [c for i, c in enumerate(una[3:9]) if not (i in (3, 4) and c == " ")]  # release, repetition
        if len(una) < 9 or len(set(used)) < len(used):
            raise syntax_error("12", f"the service string advice {una!r} is incomplete or repeats a character")
        d = Delimiters.from_una(una)
        if any(
            c.isalnum() for c in (d.component, d.element, d.decimal, d.release or "", d.repetition or "", d.segment)
        ):
            raise syntax_error("12", f"UNA service characters {una[3:]!r} must not be letters or digits")
        self.delimiters = d
        return d

    def _start_interchange(self, unb: Segment) -> None:
        syntax = unb.element(1, 1)
        if syntax not in REPERTOIRES:
            raise syntax_error(
                "17",
                f"syntax identifier {syntax or '(none)'} is not one this gateway reads (UNOA-UNOK, UNOW, UNOY)",
                segment_number=unb.number,
                segment_tag="UNB",
                element=1,
                component=1,
            )
        self.syntax = syntax
        self._codec = REPERTOIRES[syntax][0]
        self._known = True

    # -- one segment -------------------------------------------------------------------------------------
    def _segment(self, raw: bytes, number: int, offset: int, d: Delimiters) -> Segment:
        try:
            text = raw.decode(self._codec)
        except UnicodeDecodeError as exc:
            raise syntax_error(
                "21",
                f"byte 0x{raw[exc.start]:02x} in segment {number} is outside the {self.syntax} repertoire",
                segment_number=number,
                segment_tag=raw[:3].decode("latin-1"),
            ) from None
        check = self.check_repertoire and self._known and not text.startswith("UNB")
        pattern = _repertoire(self.syntax, d.service) if check else None
        errors: list[GatewayError] = []
        if pattern is not None:
            bad = pattern.search(text)
            if bad is not None:
                errors.append(self._bad_character(text, bad.start(), number, d))
        parts: list[Value]
        if d.release and d.release in text:
            parts, bad_release = _split_escaped(text, d)
            if bad_release is not None:
                errors.append(self._bad_character(text, bad_release, number, d, release=True))
        else:
            comp = d.component
            parts = [_composite(p.split(comp)) if comp in p else p for p in text.split(d.element)]
            if d.repetition and d.repetition in text:
                parts = [_repeats(p, d) if isinstance(p, str) else p for p in parts]
        first = parts[0]
        tag = first if isinstance(first, str) else str(first[0])  # syntax 4 allows tag:occurrence
        if len(tag) != 3 or not tag.isalnum() or not tag.isupper():
            raise syntax_error(
                "33", f"segment {number} starts with {tag[:10]!r}, not a segment tag", segment_number=number
            )
        plain = None if (d.repetition and d.repetition in text) else text
        return Segment(tag, parts[1:], number, offset, errors or None, plain)

    def _bad_character(self, text: str, index: int, number: int, d: Delimiters, release: bool = False) -> GatewayError:
        before = text[:index]
        element = before.count(d.element)
        component = before.rsplit(d.element, 1)[-1].count(d.component) + 1
        what = (
            f"release character {d.release!r} before {text[index + 1]!r}, which is not a service character"
            if release
            else f"character {text[index]!r} in segment {number} is not in the {self.syntax} repertoire"
        )
        return syntax_error(
            "21",
            what,
            segment_number=number,
            segment_tag=text[:3],
            element=element or None,
            component=component if element else None,
        )


_SPACE = re.compile(rb"[ \t\r\n]*")
# codec, repertoire check, element and component separators, release and repetition characters ("" if none)
_Fast = tuple[str, "re.Pattern[str] | None", str, str, str, str]


def _is_tag(tag: str, known: set[str]) -> bool:
    if len(tag) == 3 and tag.isalnum() and tag.isupper():
        known.add(tag)
        return True
    return False


@functools.cache
def _segment_pattern(terminator: str, release: str | None) -> re.Pattern[bytes]:
    """Whitespace, then one segment up to its unescaped terminator (a release character escapes any next byte)."""
    t = re.escape(terminator.encode("latin-1"))
    if release:
        r = re.escape(release.encode("latin-1"))
        plain = b"[^" + r + t + b"]*"
        body = plain + b"(?:" + r + b"." + plain + b")*"  # the unrolled loop: fast in the re engine
    else:
        body = b"[^" + t + b"]*"
    return re.compile(b"[ \t\r\n]*(" + body + b")" + t, re.S)


_SINGLE_BYTE = frozenset({"ascii", "latin-1"} | {f"iso8859-{n}" for n in range(2, 10)})
_plus_one = functools.partial(add, 1)


@functools.cache
def _block_pattern(d: Delimiters) -> re.Pattern[str] | None:
    """One plain segment: a tag of upper-case ASCII letters and digits, its elements, the terminator, whitespace.

    Groups: the segment's text, its tag, the terminator and whitespace. None when a service character is
    whitespace, which the block path does not try to tell apart from the whitespace between segments.
    """
    used = [c for c in (d.component, d.element, d.release, d.repetition, d.segment) if c]
    if any(c in " \t\r\n" for c in used):
        return None
    t, e = re.escape(d.segment), re.escape(d.element)
    if d.release:
        r = re.escape(d.release)
        body = f"[^{r}{t}]*(?:{r}.[^{r}{t}]*)*"
    else:
        body = f"[^{t}]*"
    return re.compile(f"((?=[0-9]{{0,2}}[A-Z])([A-Z0-9]{{3}})(?:{e}{body})?)({t}[ \t\r\n]*)", re.S)


def _misplaced_release(text: str, release: str) -> bool:
    """Whether an odd run of release characters stands before a letter or digit (what _bad_release_pattern finds).

    Searching for the runs themselves is much faster over a whole block than that pattern, which must try
    every position.
    """
    return any(len(run) % 2 == 0 for run in _release_runs(release).findall(text))  # the run and one character


@functools.cache
def _release_runs(release: str) -> re.Pattern[str]:
    r = re.escape(release)
    return re.compile(f"{r}{r}*[A-Za-z0-9]")  # a literal first: the re engine then skips ahead to each one


@functools.cache
def _bad_release_pattern(release: str) -> re.Pattern[str]:
    """A release character (not itself released) before a letter or digit: ISO 9735 forbids it."""
    r = re.escape(release or "?")
    return re.compile(f"(?:^|[^{r}])(?:{r}{r})*{r}[A-Za-z0-9]")


@functools.cache
def _repertoire(syntax: str, service: str) -> re.Pattern[str] | None:
    """Characters outside ``syntax``'s repertoire, the interchange's own service characters excepted."""
    allowed = REPERTOIRES.get(syntax, ("", None))[1]
    if allowed is None:
        return None
    return re.compile(allowed.pattern[:-1] + "".join(re.escape(c) for c in service) + "]")


def _composite(components: list[str]) -> Element:
    """Trailing empty components are not data (ISO 9735 lets senders omit them); pydifact drops them too."""
    while len(components) > 1 and not components[-1]:
        components.pop()
    return components if len(components) > 1 else components[0]


def _repeats(part: str, d: Delimiters) -> Value:
    assert d.repetition is not None
    if d.repetition not in part:
        return part
    return Repeated(part.split(d.repetition))


@functools.cache
def _escapes(release: str, element: str, component: str, repetition: str | None) -> re.Pattern[str]:
    """A release character with the character it releases, or a delimiter: what :func:`_split_escaped` acts on."""
    delimiters = element + component + (repetition or "")
    return re.compile(f"({re.escape(release)}.)|([{re.escape(delimiters)}])", re.DOTALL)


def _split_escaped(text: str, d: Delimiters) -> tuple[list[Value], int | None]:
    """Split one segment where the release character occurs (the slow path).

    Also returns the index of the first release character that precedes a letter or digit (ISO 9735 lets it
    precede only service characters; before other punctuation it is tolerated and taken literally). A release
    character at the very end is taken literally. Walks the delimiters and escapes only (a regular expression
    finds them), copying the text between them in slices.
    """
    bad_release: int | None = None
    elements: list[Value] = []
    components: list[str] = []
    repeats: list[Element] | None = None
    current: list[str] = []
    release, elem, comp, rep = d.release, d.element, d.component, d.repetition
    assert release is not None

    def close_element() -> Element:
        return _composite([*components, "".join(current)]) if components else "".join(current)

    pos = 0
    for match in _escapes(release, elem, comp, rep).finditer(text):
        start = match.start()
        if start > pos:
            current.append(text[pos:start])
        pos = match.end()
        escaped = match.group(1)
        if escaped is not None:
            if bad_release is None and escaped[1].isalnum():
                bad_release = start
            current.append(escaped[1])
            continue
        ch = match.group(2)
        if ch == elem:
            value: Value = close_element()
            if repeats is not None:
                repeats.append(value)  # type: ignore[arg-type]
                value = Repeated(repeats)
                repeats = None
            elements.append(value)
            components, current = [], []
        elif ch == comp:
            components.append("".join(current))
            current = []
        else:  # the repetition separator
            repeats = (repeats or []) + [close_element()]
            components, current = [], []
    if pos < len(text):
        current.append(text[pos:])
    last: Value = close_element()
    if repeats is not None:
        repeats.append(last)  # type: ignore[arg-type]
        last = Repeated(repeats)
    elements.append(last)
    return elements, bad_release
