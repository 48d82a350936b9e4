"""Validation of one message against its definition: structure, then each segment's elements.

Errors carry the ISO 9735 code a CONTRL reports (domain.md §6) and the position: the segment's number in the
payload and in the message (UNH = 1, as UCS counts), the element and component (1-based after the tag).

- Structure: segments in table order, groups triggered by their first segment, mandatory entries present
  (13), repetitions within bounds (35), unknown tags (33) and known tags out of place (15).
- Elements: too many elements or components (16), mandatory ones missing (13), too long (39), characters of
  the wrong type for a numeric element (37), codes outside a listed code list (12).

Lengths of numeric values do not count a sign or the decimal mark; fixed lengths are enforced as maxima only,
because carriers commonly send ``TMP+2+-18:CEL`` against an ``n3`` temperature. The decimal mark follows
``syntax.decimal_marks``: in syntax versions 1-3 with a UNA only the UNA's mark is numeric (the other one is a
37), otherwise comma and full stop both are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from gateway.edifact.definitions import Definitions, ElementDef, Entry, MessageDef, SegmentDef, load
from gateway.edifact.envelope import Message
from gateway.edifact.syntax import Delimiters, decimal_marks
from gateway.edifact.tokenizer import Repeated, Segment
from gateway.errors import GatewayError, Position

_NUMERIC = re.compile(r"^-?([0-9]+([.,][0-9]*)?|[.,][0-9]+)$")  # ASCII digits only (\d admits others)
_DIGITS = frozenset("0123456789")


@dataclass(frozen=True)
class Problem:
    code: str  # ISO 9735 syntax error code, e.g. "13"
    text: str
    segment: Segment
    message_position: int  # UNH = 1
    element: int | None = None
    component: int | None = None

    def as_error(self, message_number: int) -> GatewayError:
        pos = Position(
            segment_number=self.segment.number,
            segment_tag=self.segment.tag,
            element=self.element,
            component=self.component,
            message_number=message_number,
        )
        return GatewayError(f"EDI-{self.code}", self.text, pos, step="validate")


class _Structure:
    """Greedy descent over the message table; segments that fit nowhere are reported and skipped."""

    def __init__(self, segments: list[Segment]) -> None:
        self.segments = segments
        self.tags = [s.tag for s in segments]
        self.pos = 0
        self.problems: list[Problem] = []

    def here(self) -> Segment:
        return self.segments[min(self.pos, len(self.segments) - 1)]

    def problem(self, code: str, text: str, seg: Segment | None = None) -> None:
        seg = seg or self.here()
        self.problems.append(Problem(code, text, seg, seg.number - self.segments[0].number + 1))

    def level(self, entries: tuple[Entry, ...]) -> None:
        tags, n = self.tags, len(self.tags)
        for entry in entries:
            count = 0
            trigger = entry.trigger
            while self.pos < n and tags[self.pos] == trigger:
                count += 1
                if count > entry.max_repeat:
                    what = f"group {entry.tag}" if entry.is_group else entry.tag
                    self.problem("35", f"{what} repeats more than {entry.max_repeat} times", self.segments[self.pos])
                if entry.is_group:
                    self.pos += 1  # the trigger
                    self.level(entry.children[1:])
                else:
                    self.pos += 1
            if count == 0 and entry.mandatory:
                what = (
                    f"group {entry.tag} (starting with {entry.trigger})" if entry.is_group else f"segment {entry.tag}"
                )
                self.problem("13", f"mandatory {what} is missing before {self.here().tag}")


def _structure(msg: Message, definition: MessageDef) -> list[Problem]:
    """Structure problems; the verdict depends only on the tag sequence, so valid sequences are remembered."""
    key = (id(definition), tuple([s.tag for s in msg.segments]))
    if key in _VALID_SEQUENCES:
        return []
    problems = _walk_structure(msg, definition)
    if not problems and len(_VALID_SEQUENCES) < 4096:
        _VALID_SEQUENCES.add(key)
    return problems


_VALID_SEQUENCES: set[tuple[int, tuple[str, ...]]] = set()


def _walk_structure(msg: Message, definition: MessageDef) -> list[Problem]:
    segments = list(msg.segments)
    skipped: list[Problem] = []
    for _ in range(len(segments)):
        walker = _Structure(segments)
        walker.level(definition.structure)
        if walker.pos >= len(segments):
            return sorted(skipped + walker.problems, key=lambda p: p.segment.number)
        stray = segments[walker.pos]
        position = stray.number - msg.segments[0].number + 1
        if stray.tag in definition.tags:
            skipped.append(Problem("15", f"{stray.tag} is not allowed in this position", stray, position))
        else:
            skipped.append(Problem("33", f"{stray.tag} is not a segment of {definition.type}", stray, position))
        segments = segments[: walker.pos] + segments[walker.pos + 1 :]
    return skipped


def _value_problem(value: str, spec: ElementDef, marks: str = ".,") -> tuple[str, str] | None:
    if spec.kind == "n":
        if not _NUMERIC.match(value):
            return "37", f"{value!r} is not numeric ({spec.id})"
        if len(marks) == 1 and (other := "," if marks == "." else ".") in value:
            return "37", f"{value!r} has the decimal mark {other!r} but the UNA declares {marks!r} ({spec.id})"
        digits = sum(ch in _DIGITS for ch in value)
        if digits > spec.max_length:
            return "39", f"{spec.id} is at most {spec.max_length} digits, got {digits}"
        return None
    if len(value) > spec.max_length:
        return "39", f"{spec.id} is at most {spec.max_length} characters, got {len(value)}"
    if spec.kind == "a" and any(ch in _DIGITS for ch in value):
        return "37", f"{value!r} holds digits but {spec.id} is alphabetic"
    return None


def _fast_pattern(definition: SegmentDef, d: Delimiters, released: bool = True, marks: str = ".,") -> re.Pattern[str]:
    """A regular expression that matches only segments with nothing to report (the common case, checked in C).

    It errs on the strict side: whatever it refuses goes through the element-by-element check, which finds the
    actual problem or none. With ``released=False`` it is the simpler (faster) pattern for text that holds no
    release character; ``marks`` are the decimal marks numeric values may use.
    """
    key = (definition.tag, id(definition), d.element, d.component, (d.release or "") if released else "", marks)
    found = _FAST.get(key)
    if found is not None:
        return found
    release = d.release if released else None
    separators = re.escape(d.element + d.component + (release or ""))
    escaped = f"|{re.escape(release)}." if release else ""
    value = f"(?:[^{separators}]{escaped})" if release else f"[^{separators}]"  # one character of a value

    def simple(spec: ElementDef, may_be_empty: bool) -> str:
        low = "0" if (may_be_empty or not spec.mandatory) else "1"
        if spec.kind == "n":
            digits = f"[0-9]{{{low},{spec.max_length}}}"
            mark = re.escape(marks)
            decimal = (
                f"(?=[0-9{mark}]{{2,{spec.max_length + 1}}}(?:[{re.escape(d.element + d.component)}]|$))"
                f"[0-9]*[{mark}][0-9]*"
            )
            return f"(?:(?:-(?=[0-9{mark}]))?(?:{decimal}|{digits}))"
        letters = (
            (f"(?:[^{separators}0-9]{escaped})" if release else f"[^{separators}0-9]") if spec.kind == "a" else value
        )
        return f"{letters}{{{low},{spec.max_length}}}"

    def element(spec: ElementDef) -> str:
        if not spec.composite:
            return simple(spec, not spec.mandatory)
        comps = spec.components
        sep_c = re.escape(d.component)
        # components up to the last mandatory one must be given; the rest are nested optional groups
        last = max((i for i, c in enumerate(comps) if c.mandatory), default=0)
        tail = ""
        for comp in reversed(comps[last + 1 :]):
            tail = f"(?:{sep_c}{simple(comp, not comp.mandatory)}{tail})?"
        head = "".join(f"{sep_c}{simple(c, not c.mandatory)}" for c in comps[1 : last + 1])
        first = simple(comps[0], not comps[0].mandatory)
        body = first + head + tail
        if spec.mandatory:
            return f"(?=(?:{sep_c})*{value}){body}" if not comps[0].mandatory else body  # some component given
        return f"(?:{body})?"

    sep = re.escape(d.element)
    specs = definition.elements
    last_mandatory = max((i for i, e in enumerate(specs) if e.mandatory), default=-1)
    tail = ""
    for i in range(len(specs) - 1, last_mandatory, -1):
        tail = f"(?:{sep}{element(specs[i])}{tail})?"
    head = "".join(f"{sep}{element(specs[i])}" for i in range(last_mandatory + 1))
    pattern = re.compile(re.escape(definition.tag) + head + tail)
    _FAST[key] = pattern
    return pattern


_FAST: dict[tuple[str, int, str, str, str, str], re.Pattern[str]] = {}
Matcher = Callable[[str], re.Match[str] | None]
REMEMBERED = 4096  # texts found valid that are remembered, per segment tag and context


class _Checker:
    """One tag's definition and fast checks in one context, and how many of its valid texts are remembered."""

    __slots__ = ("definition", "plain", "released", "remembered")

    def __init__(self, definition: SegmentDef, d: Delimiters, marks: str) -> None:
        self.definition = definition
        self.plain: Matcher = _fast_pattern(definition, d, False, marks).fullmatch
        self.released: Matcher = _fast_pattern(definition, d, True, marks).fullmatch
        self.remembered = 0


class _Context:
    """Per directory, syntax version, delimiters and decimal marks: the checkers, built on demand, and the segment
    texts already found valid. A text starts with its tag, so one set serves every tag: the common segment
    costs one set lookup."""

    __slots__ = ("checkers", "valid")

    def __init__(self) -> None:
        self.checkers: dict[str, _Checker | None] = {}
        self.valid: set[str] = set()


_CONTEXTS: dict[tuple[int, str, str, Delimiters, str], _Context] = {}
_UNSEEN: Any = object()


def _elements(
    seg: Segment, definition: SegmentDef, position: int, codes: dict[str, dict[str, str]], marks: str = ".,"
) -> list[Problem]:
    out: list[Problem] = []
    specs = definition.elements
    if len(seg.elements) > len(specs):
        out.append(
            Problem(
                "16", f"{seg.tag} has {len(seg.elements)} elements, at most {len(specs)}", seg, position, len(specs) + 1
            )
        )
    for index, spec in enumerate(specs, start=1):
        raw = seg.elements[index - 1] if index <= len(seg.elements) else ""
        repeats = list(raw) if isinstance(raw, Repeated) else [raw]
        if len(repeats) > spec.repeat:
            out.append(
                Problem("35", f"{spec.id} repeats {len(repeats)} times, at most {spec.repeat}", seg, position, index)
            )
        for value in repeats:
            out.extend(_element(seg, position, index, spec, value, codes, marks))
    return out


def _element(
    seg: Segment,
    position: int,
    index: int,
    spec: ElementDef,
    value: object,
    codes: dict[str, dict[str, str]],
    marks: str,
) -> list[Problem]:
    out: list[Problem] = []
    if not spec.composite:
        if isinstance(value, list):
            out.append(Problem("16", f"{spec.id} is a simple element but has components", seg, position, index, 2))
            value = value[0]
        text = str(value)
        if not text:
            if spec.mandatory:
                out.append(Problem("13", f"mandatory {spec.id} is missing", seg, position, index))
            return out
        found = _value_problem(text, spec, marks) or _code_problem(text, spec, codes)
        if found:
            out.append(Problem(found[0], found[1], seg, position, index))
        return out
    components = [value] if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    if not any(components):
        if spec.mandatory:
            out.append(Problem("13", f"mandatory composite {spec.id} is missing", seg, position, index))
        return out
    if len(components) > len(spec.components):
        out.append(
            Problem(
                "16",
                f"{spec.id} has {len(components)} components, at most {len(spec.components)}",
                seg,
                position,
                index,
                len(spec.components) + 1,
            )
        )
    for c, cspec in enumerate(spec.components, start=1):
        text = str(components[c - 1]) if c <= len(components) else ""
        if not text:
            if cspec.mandatory:
                out.append(Problem("13", f"mandatory {cspec.id} of {spec.id} is missing", seg, position, index, c))
            continue
        found = _value_problem(text, cspec, marks) or _code_problem(text, cspec, codes)
        if found:
            out.append(Problem(found[0], found[1], seg, position, index, c))
    return out


def _code_problem(value: str, spec: ElementDef, codes: dict[str, dict[str, str]]) -> tuple[str, str] | None:
    listed = codes.get(spec.id)
    if listed is not None and value not in listed:
        return "12", f"{value!r} is not a code of {spec.id}"
    return None


def validate(
    msg: Message,
    definitions: Definitions | None = None,
    *,
    check_codes: bool = False,
    agreed_versions: Collection[str] | None = None,
) -> list[Problem] | None:
    """Problems of ``msg``; None when no definition exists for its type and directory (not validated).

    ``agreed_versions`` are the directories the partner agreement allows (e.g. ``{"D02A"}``); another one is
    a code 17 (no agreement) on the message.
    """
    defs = definitions or load()
    if agreed_versions and msg.version not in agreed_versions:
        text = f"{msg.type} {msg.version} is not in the agreement ({', '.join(sorted(agreed_versions))})"
        return [Problem("17", text, msg.header, 1, 2)]
    definition = defs.message(msg.version, msg.type)
    if definition is None:
        return None
    codes = defs.codes if check_codes else {}
    problems = _structure(msg, definition)
    syntax_version = msg.interchange.syntax_version or "3"
    delimiters = msg.interchange.delimiters
    marks = decimal_marks(delimiters, syntax_version)
    version = msg.version
    key = (id(defs), version, syntax_version, delimiters, marks)
    context = _CONTEXTS.get(key) or _CONTEXTS.setdefault(key, _Context())
    checkers, valid = context.checkers, context.valid
    if codes:
        valid = set()  # texts were found valid without their codes checked
    release = delimiters.release
    for position, seg in enumerate(msg.segments, start=1):
        raw = seg.raw
        if raw in valid:
            continue  # the same text passed before (LOC, NAD, TDT... repeat from message to message)
        tag = seg.tag
        checker = checkers.get(tag, _UNSEEN)
        if checker is _UNSEEN:
            seg_def = defs.segment(version, tag, syntax_version)
            checker = checkers[tag] = _Checker(seg_def, delimiters, marks) if seg_def else None
        if checker is None:
            continue
        if raw is not None and not codes and (checker.released if release and release in raw else checker.plain)(raw):
            if checker.remembered < REMEMBERED:
                checker.remembered += 1
                valid.add(raw)
            continue  # nothing to report, proven by one regular expression
        problems.extend(_elements(seg, checker.definition, position, codes, marks))
    return sorted(problems, key=lambda p: (p.message_position, p.element or 0, p.component or 0))
