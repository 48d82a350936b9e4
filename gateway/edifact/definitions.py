"""Message definitions, loaded from the repository's ``edifact/`` folder (data written by this project).

``edifact/README.md`` describes the file format. :func:`load` reads every directory once; :func:`problems`
checks that the definitions are internally consistent (every segment a message uses is defined, every group
starts with a mandatory trigger segment used once, formats parse), which the test suite and
``gateway edifact check-definitions`` run.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(os.environ.get("GATEWAY_EDIFACT_DEFINITIONS", Path(__file__).resolve().parents[2] / "edifact"))
SERVICE_TAGS = {"UNH", "UNT", "UNS", "UCI", "UCM", "UCS", "UCD", "UCF", "UNB", "UNZ", "UNG", "UNE"}

_SIMPLE = re.compile(r"^(\w+) (M|C)(?:\*(\d+))? (an|a|n)(\.\.)?(\d+)$")
_COMPOSITE = re.compile(r"^([CS]\d{3}) (M|C)(?:\*(\d+))? \[(.+)\]$")
_SEGMENT_ENTRY = re.compile(r"^([A-Z][A-Z0-9]{2}) (M|C) (\d+)$")
_GROUP_ENTRY = re.compile(r"^(SG\d+) (M|C) (\d+)$")


@dataclass(frozen=True, slots=True)
class ElementDef:
    id: str
    mandatory: bool
    kind: str = "an"  # a | n | an (simple elements)
    max_length: int = 0
    fixed: bool = False  # aN / nN: exactly N
    repeat: int = 1
    components: tuple[ElementDef, ...] = ()

    @property
    def composite(self) -> bool:
        return bool(self.components)


@dataclass(frozen=True, slots=True)
class SegmentDef:
    tag: str
    name: str
    elements: tuple[ElementDef, ...]


@dataclass(frozen=True, slots=True)
class Entry:
    """A segment (``group`` is None) or a segment group (its entries in ``children``) of a message table."""

    tag: str  # segment tag, or the group's name (SG1...)
    mandatory: bool
    max_repeat: int
    children: tuple[Entry, ...] = ()
    trigger: str = ""  # the tag that starts this entry: its own, or its group's first segment

    def __post_init__(self) -> None:
        object.__setattr__(self, "trigger", self.children[0].trigger if self.children else self.tag)

    @property
    def is_group(self) -> bool:
        return bool(self.children)


@dataclass(frozen=True)
class MessageDef:
    type: str
    directory: str
    name: str
    structure: tuple[Entry, ...]

    @functools.cached_property
    def tags(self) -> frozenset[str]:
        found: set[str] = set()

        def walk(entries: tuple[Entry, ...]) -> None:
            for e in entries:
                walk(e.children) if e.is_group else found.add(e.tag)

        walk(self.structure)
        return frozenset(found)


@dataclass
class Definitions:
    segments: dict[str, dict[str, SegmentDef]]  # directory → tag → definition ("service-v3", "D95B", ...)
    messages: dict[tuple[str, str], MessageDef]  # (directory, type) → definition
    codes: dict[str, dict[str, str]]  # data element id → code → name
    problems: list[str]

    def message(self, directory: str, message_type: str) -> MessageDef | None:
        return self.messages.get((directory, message_type))

    def segment(self, directory: str, tag: str, syntax_version: str = "3") -> SegmentDef | None:
        if tag in SERVICE_TAGS:
            service = self.segments.get(f"service-v{syntax_version}") or self.segments.get("service-v3", {})
            found = service.get(tag)
            if found is not None:
                return found
        return self.segments.get(directory, {}).get(tag)


def parse_element(text: str) -> ElementDef:
    m = _COMPOSITE.match(text)
    if m:
        components = tuple(parse_element(c.strip()) for c in m.group(4).split(","))
        return ElementDef(m.group(1), m.group(2) == "M", repeat=int(m.group(3) or 1), components=components)
    m = _SIMPLE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not 'ID M|C FORMAT' nor 'ID M|C [components]'")
    ident, status, repeat, kind, dots, length = m.groups()
    return ElementDef(ident, status == "M", kind, int(length), fixed=not dots, repeat=int(repeat or 1))


def _entries(items: list[Any], where: str, problems: list[str]) -> tuple[Entry, ...]:
    out = []
    for item in items or []:
        if isinstance(item, dict) and len(item) == 1:
            ((key, children),) = item.items()
            m = _GROUP_ENTRY.match(str(key))
            if not m:
                problems.append(f"{where}: {key!r} is not 'SGn M|C N'")
                continue
            kids = _entries(children if isinstance(children, list) else [], f"{where} {m.group(1)}", problems)
            out.append(Entry(m.group(1), m.group(2) == "M", int(m.group(3)), kids))
        else:
            m = _SEGMENT_ENTRY.match(str(item))
            if not m:
                problems.append(f"{where}: {item!r} is not 'TAG M|C N'")
                continue
            out.append(Entry(m.group(1), m.group(2) == "M", int(m.group(3))))
    return tuple(out)


@functools.cache
def load(root: Path = ROOT) -> Definitions:
    defs = Definitions({}, {}, {}, [])
    for path in sorted(root.glob("**/*.yaml")):
        rel = path.relative_to(root)
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            defs.problems.append(f"{rel}: not valid YAML: {exc}")
            continue
        if rel.name == "codes.yaml":
            for element, spec in doc.items():
                if isinstance(spec, dict) and isinstance(spec.get("codes"), dict):
                    defs.codes[str(element)] = {str(k): str(v) for k, v in spec["codes"].items()}
        elif "segments" in doc:
            directory = str(doc.get("directory") or rel.parent.name)
            table = defs.segments.setdefault(directory, {})
            for tag, spec in (doc.get("segments") or {}).items():
                if str(tag) in table:
                    defs.problems.append(f"{rel}: {tag} is already defined for {directory} in another file")
                    continue
                try:
                    elements = tuple(parse_element(str(e)) for e in spec.get("elements") or [])
                except ValueError as exc:
                    defs.problems.append(f"{rel}: {tag}: {exc}")
                    continue
                table[str(tag)] = SegmentDef(str(tag), str(spec.get("name", "")), elements)
        elif "structure" in doc:
            directory = str(doc.get("directory") or rel.parent.name)
            structure = _entries(doc["structure"], f"{rel}", defs.problems)
            msg = MessageDef(str(doc["message"]), directory, str(doc.get("name", "")), structure)
            defs.messages[(directory, msg.type)] = msg
    defs.problems.extend(_consistency(defs))
    return defs


def _consistency(defs: Definitions) -> list[str]:
    problems = []
    for (directory, mtype), msg in sorted(defs.messages.items()):
        where = f"{directory}/{mtype}"
        if msg.type != "CONTRL" and (
            not msg.structure or msg.structure[0].tag != "UNH" or msg.structure[-1].tag != "UNT"
        ):
            problems.append(f"{where}: a message table starts with UNH and ends with UNT")
        for tag in sorted(msg.tags):
            if defs.segment(directory, tag) is None and tag not in SERVICE_TAGS:
                problems.append(f"{where}: segment {tag} is not defined in {directory}/segments.yaml")

        problems.extend(_group_problems(msg.structure, where))
    return problems


def _group_problems(entries: tuple[Entry, ...], where: str) -> list[str]:
    out = []
    for e in entries:
        if e.max_repeat < 1:
            out.append(f"{where}: {e.tag} repeats at most {e.max_repeat} times")
        if e.is_group:
            first = e.children[0]
            if first.is_group or not first.mandatory or first.max_repeat != 1:
                out.append(f"{where}: {e.tag} must start with a mandatory segment used once")
            out.extend(_group_problems(e.children, where))
    return out


def problems(root: Path = ROOT) -> list[str]:
    return load(root).problems
