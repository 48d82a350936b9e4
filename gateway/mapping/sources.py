"""One input message as the mapping engine reads it, whatever its format.

The engine (``engine.py``) knows records, fields, conversions and errors; a source knows how its format
selects and reads: EDIFACT segments by ``TAG+Q1`` selectors and element paths, XML nodes by XPath, CSV cells
by column header. Each source answers the same four questions, so a mapping language feature works the same
way in all three formats.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache, lru_cache
from typing import Any, Protocol

from lxml import etree

from gateway.edifact.envelope import Message as EdifactMessage
from gateway.edifact.tokenizer import Segment
from gateway.errors import Position
from gateway.mapping.language import Selector, element_path


class Source(Protocol):
    """What the engine asks of an input message.

    A *node* is what a selector picks (a segment, an XML element or attribute value, a CSV cell); a *group*
    is what ``each`` makes one record of (a list of segments, an XML element).
    """

    number: int  # 1-based ordinal of the message in its payload (CSV: the row's line number)
    reference: str
    type: str
    issued_at: datetime | None  # from the envelope, when the format has one

    def groups(self, each: str, until: Sequence[str]) -> list[Any]: ...

    def find(self, selector: str | list[str], group: Any, node: Any, whole: bool) -> list[Any]:
        """Nodes matching ``selector``: in the parent ``node`` (XML), else the ``group``, else (or when
        ``whole``) the whole message."""
        ...

    def read(self, node: Any, path: str | None) -> str | None:
        """The text at ``path`` of ``node`` (an element path for EDIFACT, an XPath for XML, a column for CSV),
        or of the node itself when ``path`` is None."""
        ...

    def position(self, node: Any) -> Position: ...


# --- EDIFACT ---------------------------------------------------------------------------------------------


@cache
def _selector(text: str) -> Selector:
    return Selector(text)


Qualifiers = tuple[tuple[int, str], ...]


@cache
def selector_parts(text: str) -> tuple[str, Qualifiers]:
    """A selector's tag and its non-empty qualifiers with their element positions."""
    sel = _selector(text)
    return sel.tag, tuple((i, q) for i, q in enumerate(sel.qualifiers, start=1) if q)


@cache
def _path(value: str) -> tuple[int, int]:
    return element_path(value)


def matches(seg: Segment, sel: Selector) -> bool:
    if seg.tag != sel.tag:
        return False
    return all(not q or seg.element(i, 1) == q for i, q in enumerate(sel.qualifiers, start=1))


_NOTHING: list[Segment] = []  # what a selector of an absent tag finds (shared: the engine only reads it)


class EdifactSource:
    """One UNH..UNT message. Groups are runs of segments; nested fields search the group, not a segment."""

    def __init__(self, msg: EdifactMessage) -> None:
        self.msg = msg
        self.number = msg.number
        self.reference = msg.reference
        self.type = msg.type
        self.issued_at = _unb_time(msg)
        # per pool (the message, or one group by its id): its segments by tag (a field looks only at its tag's),
        # and what each selector found there (fields of one record often read the same segment). The pool is
        # kept with them, so its id is not reused while this source lives.
        self._pools: dict[int, tuple[Sequence[Segment], dict[str, list[Segment]], dict[str, list[Segment]]]] = {}

    def groups(self, each: str, until: Sequence[str]) -> list[Any]:
        tag, qualifiers = selector_parts(each)
        groups: list[list[Segment]] = []
        current: list[Segment] | None = None
        for seg in self.msg.segments:
            if seg.tag == tag and all(seg.element(i, 1) == q for i, q in qualifiers):
                current = [seg]
                groups.append(current)
            elif current is not None and seg.tag in until:
                current = None
            elif current is not None:
                current.append(seg)
        return groups

    def find(self, selector: str | list[str], group: Any, node: Any, whole: bool) -> list[Any]:
        """The segments ``selector`` picks; the list is this source's own (the engine only reads it)."""
        assert isinstance(selector, str)
        return self.select(selector, *selector_parts(selector), group, whole)

    def select(self, selector: str, tag: str, qualifiers: Qualifiers, group: Any, whole: bool) -> list[Segment]:
        """:meth:`find` with the selector already parsed (by :func:`selector_parts`)."""
        pool = self.msg.segments if whole or group is None else group
        cached = self._pools.get(id(pool))
        if cached is None:
            index: dict[str, list[Segment]] = {}
            for seg in pool:
                index.setdefault(seg.tag, []).append(seg)
            cached = self._pools[id(pool)] = (pool, index, {})
        found = cached[2].get(selector)
        if found is not None:
            return found
        same_tag = cached[1].get(tag)
        if same_tag is None:  # most selectors of a mapping find nothing in a given message or group
            found = _NOTHING
        elif not qualifiers:
            found = same_tag
        elif len(qualifiers) == 1:  # the usual selector, e.g. RFF+BN: no generator per segment
            ((i, q),) = qualifiers
            found = [s for s in same_tag if s.element(i, 1) == q]
        elif len(qualifiers) == 2:  # e.g. MEA+AAE+VGM
            (i, q), (j, r) = qualifiers
            found = [s for s in same_tag if s.element(i, 1) == q and s.element(j, 1) == r]
        else:
            found = [s for s in same_tag if all(s.element(i, 1) == q for i, q in qualifiers)]
        cached[2][selector] = found
        return found

    def read(self, node: Any, path: str | None) -> str | None:
        if path is None or node is None:
            return None
        text: str = node.element(*_path(path))
        return text or None

    def position(self, node: Any) -> Position:
        if isinstance(node, list):
            node = node[0] if node else None
        if node is None:
            return Position(message_number=self.number)
        return Position(segment_number=node.number, segment_tag=node.tag, message_number=self.number)


def _unb_time(msg: EdifactMessage) -> datetime | None:
    """The interchange's preparation date and time (UNB 4: YYMMDD in syntax 1-3, CCYYMMDD in 4), without a
    zone: the engine gives it the mapping's timezone."""
    header = msg.interchange.header
    return _prepared_at(header.element(4, 1) + header.element(4, 2))


@lru_cache(maxsize=64)
def _prepared_at(text: str) -> datetime | None:
    """Read once per interchange, not once per message (a naive datetime is immutable, so it can be shared)."""
    for pattern in ("%y%m%d%H%M", "%Y%m%d%H%M"):
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    return None


# --- XML -------------------------------------------------------------------------------------------------


class XmlSource:
    """One XML document. XPaths are relative to the parent node, else the record's element, else the root."""

    def __init__(self, root: Any, *, namespaces: Mapping[str, str], reference: str, type: str) -> None:
        self.root = root
        self.namespaces = dict(namespaces)
        self.number = 1
        self.reference = reference
        self.type = type
        self.issued_at: datetime | None = None
        self._compiled: dict[str, etree.XPath] = {}

    def xpath(self, context: Any, expression: str) -> list[Any]:
        compiled = self._compiled.get(expression)
        if compiled is None:
            compiled = self._compiled[expression] = etree.XPath(expression, namespaces=self.namespaces)
        result = compiled(context)
        if isinstance(result, list):
            return result
        if isinstance(result, bool):
            return [str(result).lower()] if result else []
        return [result] if result not in (None, "") else []

    def groups(self, each: str, until: Sequence[str]) -> list[Any]:
        return [n for n in self.xpath(self.root, each) if isinstance(n, etree._Element)]

    def find(self, selector: str | list[str], group: Any, node: Any, whole: bool) -> list[Any]:
        assert isinstance(selector, str)
        context = self.root if whole else node if isinstance(node, etree._Element) else group
        return self.xpath(self.root if context is None else context, selector)

    def read(self, node: Any, path: str | None) -> str | None:
        if node is None:
            return None
        if path is not None:
            if not isinstance(node, etree._Element):
                return None
            found = self.xpath(node, path)
            node = found[0] if found else None
            if node is None:
                return None
        text = "".join(str(t) for t in node.itertext()) if isinstance(node, etree._Element) else str(node)
        text = " ".join(text.split())
        return text or None

    def position(self, node: Any) -> Position:
        if isinstance(node, str) and hasattr(node, "getparent"):  # an attribute or text() result
            node = node.getparent()
        if not isinstance(node, etree._Element):
            return Position(message_number=1)
        return Position(path=f"{readable_path(node)} (line {node.sourceline})", message_number=1)


def readable_path(node: Any) -> str:
    """``/Booking/Container[2]/Number``: local names, with a position where siblings share the name."""
    steps = []
    while node is not None:
        name = etree.QName(node).localname
        parent = node.getparent()
        same = [s for s in parent if s.tag == node.tag] if parent is not None else [node]
        steps.append(f"{name}[{same.index(node) + 1}]" if len(same) > 1 else name)
        node = parent
    return "/" + "/".join(reversed(steps))


# --- CSV -------------------------------------------------------------------------------------------------


def header_key(name: str) -> str:
    """Headers compare without case, surrounding spaces or full-width forms (ＣＯＮＴＡＩＮＥＲ = container)."""
    return unicodedata.normalize("NFKC", name).strip().casefold()


class CsvSource:
    """One data row of a CSV file; ``column`` names a header (or alternatives), matched by :func:`header_key`."""

    def __init__(self, row: Mapping[str, str], *, line: int, type: str) -> None:
        self.row = row  # header_key → cell
        self.number = line
        self.reference = f"row {line}"
        self.type = type
        self.issued_at: datetime | None = None

    def cell(self, column: str | list[str]) -> tuple[str, str] | None:
        for name in [column] if isinstance(column, str) else column:
            value = self.row.get(header_key(name), "").strip()
            if value:
                return name, value
        return None

    def groups(self, each: str, until: Sequence[str]) -> list[Any]:
        return [None]

    def find(self, selector: str | list[str], group: Any, node: Any, whole: bool) -> list[Any]:
        found = self.cell(selector)
        return [found] if found else []

    def read(self, node: Any, path: str | None) -> str | None:
        if path is not None:
            found = self.cell(path)
            return found[1] if found else None
        return node[1] if node else None

    def position(self, node: Any) -> Position:
        column = f", column {node[0]!r}" if isinstance(node, tuple) else ""
        return Position(path=f"row {self.number}{column}", message_number=self.number)
