"""Applies a mapping file to one input message and returns its canonical records.

The engine knows records, fields, code tables, conversions and errors; how a format selects and reads is the
business of its :class:`~gateway.mapping.sources.Source`. Failures are :class:`GatewayError` with a MAP code,
the input position (segment, XPath or row) and the mapping line, so an analyst can go straight from the
dashboard to the line to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, get_args
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from gateway.canonical import RECORD_TYPES, MappedMessage, Record
from gateway.edifact.envelope import Message as EdifactMessage
from gateway.errors import GatewayError
from gateway.mapping.functions import REGISTRY, ConversionError, Options
from gateway.mapping.language import FieldSpec, Mapping, RecordSpec
from gateway.mapping.sources import EdifactSource, Source, matches  # noqa: F401 - matches is re-exported

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class _Scope:
    group: Any  # the current `each` group, or None
    node: Any  # the node a nested field reads from, or None
    loc: Loc


class _Apply:
    def __init__(self, mapping: Mapping, source: Source) -> None:
        self.mapping = mapping
        self.source = source
        self.options: Options = mapping.function_options

    def field_error(self, code: str, text: str, loc: Loc, node: Any) -> GatewayError:
        """An error about one field's value: the text starts with the field's name."""
        names = [
            str(part) for part in loc if isinstance(part, str) and part not in ("fields", "first", "map", "convert")
        ]
        return self.error(code, f"{names[-1]}: {text}" if names else text, loc, node)

    def error(self, code: str, text: str, loc: Loc, node: Any) -> GatewayError:
        pos = self.source.position(node)
        pos = type(pos)(**{**pos.as_dict(), "mapping_line": self.mapping.line_of(loc)})
        return GatewayError(code, f"{self.mapping.path.name}: {text}", pos, step="map")

    def message_value(self, key: str) -> Any:
        spec = getattr(self.mapping, key)
        return None if spec is None else self.value(spec, _Scope(None, None, (key,)), (key,))

    def records(self) -> list[Record]:
        out: list[Record] = []
        for i, spec in enumerate(self.mapping.records):
            loc: Loc = ("records", i)
            groups = self.source.groups(spec.each, spec.until) if spec.each else [None]
            for group in groups:
                scope = _Scope(group, None, loc)
                if spec.if_present and not self.source.find(spec.if_present, group, None, group is None):
                    continue
                if any(self.missing(spec, name, scope) for name in spec.skip_if_missing):
                    continue
                out.append(self.record(spec, scope))
        return out

    def missing(self, spec: RecordSpec, name: str, scope: _Scope) -> bool:
        field = _optional(spec.fields[name])
        return self.value(field, scope, (*scope.loc, "fields", name)) is None

    def record(self, spec: RecordSpec, scope: _Scope) -> Record:
        values = self.fields(spec.fields, scope, (*scope.loc, "fields"))
        try:
            record = RECORD_TYPES[spec.entity].model_validate({**values, "entity": spec.entity})
            return _localised(record, ZoneInfo(self.options.timezone))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            code = "MAP-2" if err["type"] == "missing" else "MAP-3"
            top = err["loc"][0] if err["loc"] else None
            loc = (*scope.loc, "fields", top) if top in spec.fields else scope.loc
            label = f"{spec.entity}.{field}" if field else spec.entity
            raise self.error(code, f"{label}: {err['msg']}", loc, scope.group) from None

    def fields(self, specs: dict[str, FieldSpec], scope: _Scope, loc: Loc) -> dict[str, Any]:
        out = {}
        for name, spec in specs.items():
            value = self.value(spec, scope, (*loc, name))
            if value is not None:
                out[name] = value
        return out

    def value(self, spec: FieldSpec, scope: _Scope, loc: Loc) -> Any:
        if spec.first is not None:
            for j, alt in enumerate(spec.first):
                found = self.value(alt, scope, (*loc, "first", j))
                if found is not None:
                    return found
            return self.finish(spec, None, scope.node, scope, loc)
        if spec.value is not None:
            return spec.value
        select = spec.seg or spec.xpath or spec.column  # FieldSpec.select, without the property call
        if select is not None:
            nodes = self.source.find(select, scope.group, scope.node, spec.scope == "message")
            if spec.all:
                items = [self.read(spec, node, scope, loc) for node in nodes]
                return [i for i in items if i is not None] or self.finish(spec, None, None, scope, loc)
            node = nodes[0] if nodes else None
            return self.read(spec, node, scope, loc) if nodes else self.finish(spec, None, None, scope, loc)
        if spec.fields is not None and scope.node is None:
            return self.finish(spec, self.fields(spec.fields, scope, (*loc, "fields")) or None, None, scope, loc)
        return self.read(spec, scope.node, scope, loc)

    def read(self, spec: FieldSpec, node: Any, scope: _Scope, loc: Loc) -> Any:
        """The value of ``spec`` at one selected node."""
        if node is None:
            return self.finish(spec, None, None, scope, loc)
        if spec.fields is not None:
            inner = _Scope(scope.group, node, loc)
            return self.fields(spec.fields, inner, (*loc, "fields")) or None
        raw = self.source.read(node, spec.el)
        return self.finish(spec, raw, node, scope, loc)

    def finish(self, spec: FieldSpec, raw: Any, node: Any, scope: _Scope, loc: Loc) -> Any:
        """Translate, convert, default and require one value."""
        value = raw
        if value is not None and spec.map is not None:
            if value in spec.map:
                value = spec.map[value]
            elif spec.default is not None:
                value = spec.default
            else:
                known = ", ".join(map(str, spec.map))
                raise self.field_error("MAP-3", f"code {value!r} is not in the table ({known})", (*loc, "map"), node)
        elif value is not None and spec.convert is not None:
            fn, _doc = REGISTRY[spec.convert]
            arg = self.source.read(node, spec.arg_from) if (node is not None and spec.arg_from) else None
            try:
                value = fn(str(value), arg, self.options)
            except ConversionError as exc:
                raise self.field_error(exc.code, str(exc), (*loc, "convert"), node) from None
        if value is None:
            value = spec.default
        if value is None and spec.required:
            where = f" ({spec.select}{f' element {spec.el}' if spec.el else ''})" if spec.select else ""
            raise self.error(
                "MAP-2", f"required value {loc[-1]!r} is missing{where}", loc, node or scope.node or scope.group
            )
        return value


_OPTIONAL: dict[int, tuple[FieldSpec, FieldSpec]] = {}


def _optional(field: FieldSpec) -> FieldSpec:
    """The field without ``required`` (to test whether it has a value), made once per field of a loaded mapping."""
    made = _OPTIONAL.get(id(field))
    if made is None or made[0] is not field:
        made = _OPTIONAL[id(field)] = (field, field.model_copy(update={"required": False}))
    return made[1]


@cache
def _datetime_fields(record_type: type[Record]) -> tuple[str, ...]:
    """The fields of a record type that can hold a date-time."""
    return tuple(
        name
        for name, info in record_type.model_fields.items()
        if info.annotation is datetime or datetime in get_args(info.annotation)
    )


def _localised(record: Record, zone: ZoneInfo) -> Record:
    """A date-time read without an offset (``2026-12-01T09:00`` in XML or CSV) is in the mapping's timezone."""
    for name in _datetime_fields(type(record)):
        value = getattr(record, name)
        if isinstance(value, datetime) and value.tzinfo is None:
            setattr(record, name, value.replace(tzinfo=zone))
    return record


def apply_source(mapping: Mapping, source: Source) -> MappedMessage:
    """The canonical records of one input message of any format."""
    run = _Apply(mapping, source)
    records = run.records()
    issued_at = run.message_value("issued_at") or source.issued_at
    reference = run.message_value("reference") or source.reference
    mapped = MappedMessage.model_validate(
        {
            "number": source.number,
            "reference": str(reference),
            "type": source.type,
            "issued_at": issued_at,
            "records": records,
        }
    )
    if mapped.issued_at is not None and mapped.issued_at.tzinfo is None:
        mapped.issued_at = mapped.issued_at.replace(tzinfo=ZoneInfo(mapping.function_options.timezone))
    return mapped


def apply(mapping: Mapping, msg: EdifactMessage) -> MappedMessage:
    """The canonical records of one EDIFACT message."""
    return apply_source(mapping, EdifactSource(msg))
