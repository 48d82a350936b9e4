"""Applies a mapping file to one EDIFACT message and returns its canonical records.

Failures are :class:`GatewayError` with a MAP code, the input segment and the mapping line, so an analyst can go
straight from the dashboard to the line to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import ValidationError

from gateway.canonical import RECORD_TYPES, MappedMessage, Record
from gateway.edifact.envelope import Message as EdifactMessage
from gateway.edifact.tokenizer import Segment
from gateway.errors import GatewayError, Position
from gateway.mapping.functions import REGISTRY, ConversionError, Options
from gateway.mapping.language import FieldSpec, Mapping, RecordSpec, Selector, element_path

Loc = tuple[str | int, ...]


@cache
def _selector(text: str) -> Selector:
    return Selector(text)


@cache
def _path(value: str | int) -> tuple[int, int]:
    return element_path(value)


def matches(seg: Segment, sel: Selector) -> bool:
    if seg.tag != sel.tag:
        return False
    return all(not q or seg.element(i, 1) == q for i, q in enumerate(sel.qualifiers, start=1))


@dataclass(frozen=True)
class _Scope:
    message: list[Segment]
    group: list[Segment] | None  # the current `each` group
    segment: Segment | None  # the segment a nested field reads from
    loc: Loc


class _Apply:
    def __init__(self, mapping: Mapping, msg: EdifactMessage) -> None:
        self.mapping = mapping
        self.msg = msg
        self.options: Options = mapping.function_options

    def error(self, code: str, text: str, loc: Loc, seg: Segment | None) -> GatewayError:
        pos = Position(
            segment_number=seg.number if seg else None,
            segment_tag=seg.tag if seg else None,
            message_number=self.msg.number,
            mapping_line=self.mapping.line_of(loc),
        )
        return GatewayError(code, f"{self.mapping.path.name}: {text}", pos, step="map")

    def records(self) -> list[Record]:
        out: list[Record] = []
        for i, spec in enumerate(self.mapping.records):
            loc: Loc = ("records", i)
            for group in self.groups(spec):
                scope = _Scope(self.msg.segments, group, None, loc)
                if spec.if_present and not self.find(scope, _selector(spec.if_present), "group"):
                    continue
                out.append(self.record(spec, scope))
        return out

    def groups(self, spec: RecordSpec) -> list[list[Segment] | None]:
        if spec.each is None:
            return [None]
        start = _selector(spec.each)
        groups: list[list[Segment] | None] = []
        current: list[Segment] | None = None
        for seg in self.msg.segments:
            if matches(seg, start):
                current = [seg]
                groups.append(current)
            elif current is not None and seg.tag in spec.until:
                current = None
            elif current is not None:
                current.append(seg)
        return groups

    def record(self, spec: RecordSpec, scope: _Scope) -> Record:
        values = self.fields(spec.fields, scope, (*scope.loc, "fields"))
        first_seg = scope.group[0] if scope.group else None
        try:
            return RECORD_TYPES[spec.entity].model_validate({**values, "entity": spec.entity})
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            code = "MAP-2" if err["type"] == "missing" else "MAP-3"
            top = err["loc"][0] if err["loc"] else None
            loc = (*scope.loc, "fields", top) if top in spec.fields else scope.loc
            raise self.error(code, f"{spec.entity}.{field}: {err['msg']}", loc, first_seg) from None

    def fields(self, specs: dict[str, FieldSpec], scope: _Scope, loc: Loc) -> dict[str, Any]:
        out = {}
        for name, spec in specs.items():
            value = self.value(spec, scope, (*loc, name))
            if value is not None:
                out[name] = value
        return out

    def find(self, scope: _Scope, sel: Selector, where: str) -> list[Segment]:
        pool = scope.group if (where == "group" and scope.group is not None) else scope.message
        return [s for s in pool if matches(s, sel)]

    def value(self, spec: FieldSpec, scope: _Scope, loc: Loc) -> Any:
        if spec.first is not None:
            for j, alt in enumerate(spec.first):
                found = self.value(alt, scope, (*loc, "first", j))
                if found is not None:
                    return found
            return self.finish(spec, None, scope.segment, scope, loc)
        if spec.value is not None:
            return spec.value
        if spec.seg is not None:
            segments = self.find(scope, _selector(spec.seg), spec.scope)
            if spec.all:
                items = [self.read(spec, seg, scope, loc) for seg in segments]
                return [i for i in items if i is not None] or self.finish(spec, None, None, scope, loc)
            seg = segments[0] if segments else None
            return self.read(spec, seg, scope, loc) if seg else self.finish(spec, None, None, scope, loc)
        if spec.fields is not None and scope.segment is None:
            return self.finish(spec, self.fields(spec.fields, scope, (*loc, "fields")) or None, None, scope, loc)
        return self.read(spec, scope.segment, scope, loc)

    def read(self, spec: FieldSpec, seg: Segment | None, scope: _Scope, loc: Loc) -> Any:
        """The value of ``spec`` at one selected segment."""
        if seg is None:
            return self.finish(spec, None, None, scope, loc)
        if spec.fields is not None:
            inner = _Scope(scope.message, scope.group, seg, loc)
            return self.fields(spec.fields, inner, (*loc, "fields")) or None
        raw: Any = None
        if spec.el is not None:
            raw = seg.element(*_path(spec.el)) or None
        return self.finish(spec, raw, seg, scope, loc)

    def finish(self, spec: FieldSpec, raw: Any, seg: Segment | None, scope: _Scope, loc: Loc) -> Any:
        """Translate, convert, default and require one value."""
        value = raw
        if value is not None and spec.map is not None:
            if value in spec.map:
                value = spec.map[value]
            elif spec.default is not None:
                value = spec.default
            else:
                known = ", ".join(map(str, spec.map))
                raise self.error("MAP-3", f"code {value!r} is not in the table ({known})", (*loc, "map"), seg)
        elif value is not None and spec.convert is not None:
            fn, _doc = REGISTRY[spec.convert]
            arg = seg.element(*_path(spec.arg_from)) or None if (seg and spec.arg_from) else None
            try:
                value = fn(str(value), arg, self.options)
            except ConversionError as exc:
                raise self.error(exc.code, str(exc), (*loc, "convert"), seg) from None
        if value is None:
            value = spec.default
        if value is None and spec.required:
            where = f" ({spec.seg} element {spec.el})" if spec.seg else ""
            raise self.error("MAP-2", f"required value {loc[-1]!r} is missing{where}", loc, seg or scope.segment)
        return value


def apply(mapping: Mapping, msg: EdifactMessage) -> MappedMessage:
    """The canonical records of one EDIFACT message."""
    records = _Apply(mapping, msg).records()
    return MappedMessage.model_validate(
        {"number": msg.number, "reference": msg.reference, "type": msg.type, "records": records}
    )
