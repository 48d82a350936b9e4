"""Writing EDIFACT: escape with the release character, fill control counts, read back identically.

Used for acknowledgements (CONTRL, APERAK) and for re-serialising parsed interchanges; what it writes, the
tokenizer reads back to the same segments (the round-trip tests prove it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gateway.edifact.syntax import DEFAULT, REPERTOIRES, Delimiters
from gateway.edifact.tokenizer import Element, Repeated, Segment

SegmentLike = Segment | Sequence[object]  # a Segment, or [tag, element, ...]


def escape(value: str, d: Delimiters) -> str:
    if d.release is None:
        bad = [c for c in d.service if c in value]
        if bad:
            raise ValueError(f"{value!r} holds {bad[0]!r} and the delimiters have no release character")
        return value
    if d.release in value:
        value = value.replace(d.release, d.release * 2)
    for ch in (d.component, d.element, d.segment, d.repetition):
        if ch and ch in value:
            value = value.replace(ch, d.release + ch)
    return value


def _element(value: Element | Repeated, d: Delimiters) -> str:
    if isinstance(value, Repeated):
        if d.repetition is None:
            raise ValueError("a repeated element needs syntax 4 delimiters with a repetition separator")
        return d.repetition.join(_element(v, d) for v in value)
    if isinstance(value, str):
        return escape(value, d)
    return d.component.join(escape(c, d) for c in value)


def segment_text(segment: SegmentLike, d: Delimiters = DEFAULT) -> str:
    tag, elements = (segment.tag, segment.elements) if isinstance(segment, Segment) else (segment[0], segment[1:])
    parts = [str(tag), *(_element(e, d) for e in elements)]  # type: ignore[arg-type]
    return d.element.join(parts) + d.segment


def write(
    segments: Iterable[SegmentLike], d: Delimiters = DEFAULT, *, una: bool = True, newline: bool = False
) -> bytes:
    """Serialise segments as they are (counts untouched); encoded in the UNB's repertoire."""
    out: list[str] = [d.una()] if una else []
    codec = "latin-1"  # bare messages: no UNB names a repertoire
    for seg in segments:
        if (seg.tag if isinstance(seg, Segment) else seg[0]) == "UNB":
            syntax = seg.element(1) if isinstance(seg, Segment) else _first(seg[1])
            codec = REPERTOIRES.get(syntax, ("latin-1", None))[0]
        out.append(segment_text(seg, d))
    sep = "\n" if newline and d.segment != "\n" else ""
    return (sep.join(out) + sep).encode(codec)


def _first(value: object) -> str:
    return value[0] if isinstance(value, list) else str(value)


def interchange(
    unb: Sequence[object],
    messages: Iterable[tuple[Sequence[object], Sequence[SegmentLike]]],
    d: Delimiters = DEFAULT,
    *,
    una: bool = True,
    newline: bool = True,
) -> bytes:
    """An interchange with UNT and UNZ counts and references filled in.

    ``unb`` is ``["UNB", syntax, sender, recipient, datetime, reference, ...]``; each message is the UNH as
    ``["UNH", reference, identifier]`` and its body segments (between UNH and UNT).
    """
    reference = _first(unb[5])
    segments: list[SegmentLike] = [list(unb)]
    count = 0
    for unh, body in messages:
        count += 1
        segments.append(list(unh))
        segments.extend(body)
        segments.append(["UNT", str(len(body) + 2), _first(unh[1])])
    segments.append(["UNZ", str(count), reference])
    return write(segments, d, una=una, newline=newline)
