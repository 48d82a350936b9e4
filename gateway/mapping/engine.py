"""Applies a mapping file to one input message and returns its canonical records.

The engine knows records, fields, code tables, conversions and errors; how a format selects and reads is the
business of its :class:`~gateway.mapping.sources.Source`. Failures are :class:`GatewayError` with a MAP code,
the input position (segment, XPath or row) and the mapping line, so an analyst can go straight from the
dashboard to the line to change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast, get_args
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from gateway.canonical import RECORD_TYPES, MappedMessage, Record
from gateway.edifact.envelope import Message as EdifactMessage
from gateway.errors import GatewayError
from gateway.mapping.functions import REGISTRY, ConversionError, Options
from gateway.mapping.language import FieldSpec, Mapping, RecordSpec, element_path
from gateway.mapping.sources import EdifactSource, Source, matches, selector_parts  # noqa: F401 - matches is re-exported

Loc = tuple[str | int, ...]


# A compiled field: (run, group, node) → its value. ``group`` is the current ``each`` group (or None), ``node``
# the node a nested field reads from (or None). Each mapping is compiled once into these closures, with its
# selectors, element paths, code tables and converters bound, so a message costs no interpretation.
Getter = Callable[["_Apply", Any, Any], Any]


class _Apply:
    """One message being mapped: its source, and the errors that name the input position and mapping line."""

    def __init__(self, mapping: Mapping, source: Source, options: Options) -> None:
        self.mapping = mapping
        self.source = source
        self.options = options
        # the same source, when the plan reads segments (only then is it used as one)
        self.segments = cast(EdifactSource, source)

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

    def record_error(self, exc: ValidationError, spec: RecordSpec, loc: Loc, group: Any) -> GatewayError:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        code = "MAP-2" if err["type"] == "missing" else "MAP-3"
        top = err["loc"][0] if err["loc"] else None
        where = (*loc, "fields", top) if top in spec.fields else loc
        label = f"{spec.entity}.{field}" if field else spec.entity
        return self.error(code, f"{label}: {err['msg']}", where, group)


@dataclass(frozen=True)
class _RecordPlan:
    spec: RecordSpec
    loc: Loc
    record_type: type[Record]
    fields: tuple[tuple[str, Getter], ...]
    # the optional variants of those fields: a value they find is the field's value too (read only once)
    skip_if_missing: tuple[tuple[str, Getter], ...]


@dataclass(frozen=True)
class _Plan:
    records: tuple[_RecordPlan, ...]
    issued_at: Getter | None
    reference: Getter | None
    options: Options
    zone: ZoneInfo


def _plan(mapping: Mapping, edifact: bool) -> _Plan:
    """The mapping's compiled form, made on first use and kept with the loaded mapping. ``edifact``: the
    source is an :class:`EdifactSource`, so the plan reads segments directly with pre-parsed selectors."""
    plans = mapping._plan
    if plans is None:
        plans = mapping._plan = {}
    plan = plans.get(edifact)
    if plan is None:
        plan = plans[edifact] = _compile(mapping, edifact)
    assert isinstance(plan, _Plan)
    return plan


def _compile(mapping: Mapping, edifact: bool) -> _Plan:
    records = []
    for i, spec in enumerate(mapping.records):
        loc: Loc = ("records", i)
        records.append(
            _RecordPlan(
                spec,
                loc,
                RECORD_TYPES[spec.entity],
                tuple(
                    (name, _compile_value(field, (*loc, "fields", name), edifact))
                    for name, field in spec.fields.items()
                ),
                tuple(
                    (name, _compile_value(_optional(spec.fields[name]), (*loc, "fields", name), edifact))
                    for name in spec.skip_if_missing
                ),
            )
        )
    top = {
        key: None if getattr(mapping, key) is None else _compile_value(getattr(mapping, key), (key,), edifact)
        for key in ("issued_at", "reference")
    }
    options = mapping.function_options
    return _Plan(tuple(records), top["issued_at"], top["reference"], options, ZoneInfo(options.timezone))


def _compile_fields(
    specs: dict[str, FieldSpec], loc: Loc, edifact: bool
) -> Callable[[_Apply, Any, Any], dict[str, Any]]:
    getters = tuple((name, _compile_value(spec, (*loc, name), edifact)) for name, spec in specs.items())

    def fields(run: _Apply, group: Any, node: Any) -> dict[str, Any]:
        out = {}
        for name, get in getters:
            value = get(run, group, node)
            if value is not None:
                out[name] = value
        return out

    return fields


def _compile_value(spec: FieldSpec, loc: Loc, edifact: bool) -> Getter:
    finish = _compile_finish(spec, loc, edifact)
    if spec.first is not None:
        alternatives = tuple(_compile_value(alt, (*loc, "first", j), edifact) for j, alt in enumerate(spec.first))

        def first(run: _Apply, group: Any, node: Any) -> Any:
            for alt in alternatives:
                found = alt(run, group, node)
                if found is not None:
                    return found
            return finish(run, None, node, group, node)

        return first
    if spec.value is not None:
        constant = spec.value
        return lambda run, group, node: constant
    read = _compile_read(spec, loc, finish, edifact)
    select = spec.seg or spec.xpath or spec.column  # FieldSpec.select, without the property call
    if select is not None:
        whole = spec.scope == "message"
        if edifact:
            assert isinstance(select, str)
            plain = spec.el if finish is _as_read and spec.fields is None and not spec.all else None
            return _compile_segments(select, whole, spec.all, read, finish, plain)
        if spec.all:

            def every(run: _Apply, group: Any, node: Any) -> Any:
                nodes = run.source.find(select, group, node, whole)
                items = [read(run, found, group, node) for found in nodes]
                return [i for i in items if i is not None] or finish(run, None, None, group, node)

            return every

        def one(run: _Apply, group: Any, node: Any) -> Any:
            nodes = run.source.find(select, group, node, whole)
            return read(run, nodes[0], group, node) if nodes else finish(run, None, None, group, node)

        return one
    if spec.fields is not None:
        inner = _compile_fields(spec.fields, (*loc, "fields"), edifact)

        def built(run: _Apply, group: Any, node: Any) -> Any:
            if node is None:
                return finish(run, inner(run, group, None) or None, None, group, node)
            return read(run, node, group, node)

        return built
    return lambda run, group, node: read(run, node, group, node)


def _compile_segments(
    select: str, whole: bool, every: bool, read: Reader, finish: Finisher, plain: str | None
) -> Getter:
    """A field selecting segments of an :class:`EdifactSource`, its selector parsed once. ``plain``: the field
    only reads this element of the first segment (no table, conversion, default or requirement)."""
    tag, qualifiers = selector_parts(select)
    if plain is not None:
        index, component = element_path(plain)

        def text(run: _Apply, group: Any, node: Any) -> Any:
            nodes = run.segments.select(select, tag, qualifiers, group, whole)
            return (nodes[0].element(index, component) or None) if nodes else None

        return text
    if every:

        def segments(run: _Apply, group: Any, node: Any) -> Any:
            nodes = run.segments.select(select, tag, qualifiers, group, whole)
            items = [read(run, found, group, node) for found in nodes]
            return [i for i in items if i is not None] or finish(run, None, None, group, node)

        return segments

    def segment(run: _Apply, group: Any, node: Any) -> Any:
        nodes = run.segments.select(select, tag, qualifiers, group, whole)
        return read(run, nodes[0], group, node) if nodes else finish(run, None, None, group, node)

    return segment


# read(run, selected node, group, scope node) and finish(run, raw, node, group, scope node)
Reader = Callable[[_Apply, Any, Any, Any], Any]
Finisher = Callable[[_Apply, Any, Any, Any, Any], Any]


def _compile_read(spec: FieldSpec, loc: Loc, finish: Finisher, edifact: bool) -> Reader:
    """The value of ``spec`` at one selected node."""
    if spec.fields is not None:
        inner = _compile_fields(spec.fields, (*loc, "fields"), edifact)

        def nested(run: _Apply, node: Any, group: Any, scope_node: Any) -> Any:
            if node is None:
                return finish(run, None, None, group, scope_node)
            return inner(run, group, node) or None

        return nested
    path = spec.el
    if edifact and path is not None:
        index, component = element_path(path)

        def element(run: _Apply, node: Any, group: Any, scope_node: Any) -> Any:
            if node is None:
                return finish(run, None, None, group, scope_node)
            return finish(run, node.element(index, component) or None, node, group, scope_node)

        return element

    def text(run: _Apply, node: Any, group: Any, scope_node: Any) -> Any:
        if node is None:
            return finish(run, None, None, group, scope_node)
        return finish(run, run.source.read(node, path), node, group, scope_node)

    return text


def _compile_finish(spec: FieldSpec, loc: Loc, edifact: bool) -> Finisher:
    """Translate, convert, default and require one value."""
    table, default, required = spec.map, spec.default, spec.required
    convert = REGISTRY[spec.convert][0] if spec.convert is not None else None
    arg_from = spec.arg_from
    arg_path = element_path(arg_from) if edifact and arg_from else None
    where = f" ({spec.select}{f' element {spec.el}' if spec.el else ''})" if spec.select else ""
    if table is None and convert is None and default is None and not required:
        return _as_read

    def finish(run: _Apply, raw: Any, node: Any, group: Any, scope_node: Any) -> Any:
        value = raw
        if value is not None and table is not None:
            if value in table:
                value = table[value]
            elif default is not None:
                value = default
            else:
                known = ", ".join(map(str, table))
                raise run.field_error("MAP-3", f"code {value!r} is not in the table ({known})", (*loc, "map"), node)
        elif value is not None and convert is not None:
            if node is None or not arg_from:
                arg = None
            elif arg_path is not None:
                arg = node.element(*arg_path) or None
            else:
                arg = run.source.read(node, arg_from)
            try:
                value = convert(str(value), arg, run.options)
            except ConversionError as exc:
                raise run.field_error(exc.code, str(exc), (*loc, "convert"), node) from None
        if value is None:
            value = default
        if value is None and required:
            raise run.error("MAP-2", f"required value {loc[-1]!r} is missing{where}", loc, node or scope_node or group)
        return value

    return finish


def _as_read(run: _Apply, raw: Any, node: Any, group: Any, scope_node: Any) -> Any:
    """The finish of a field with no table, conversion, default or requirement: the value as read."""
    return raw


def _records(run: _Apply, plan: _Plan) -> list[Record]:
    out: list[Record] = []
    source = run.source
    for record in plan.records:
        spec = record.spec
        groups = source.groups(spec.each, spec.until) if spec.each else [None]
        for group in groups:
            if spec.if_present and not source.find(spec.if_present, group, None, group is None):
                continue
            known = _present(run, group, record.skip_if_missing)
            if known is None:
                continue
            values: dict[str, Any] = {}
            for name, get in record.fields:
                value = known[name] if name in known else get(run, group, None)
                if value is not None:
                    values[name] = value
            values["entity"] = spec.entity
            try:
                made = record.record_type.model_validate(values)
            except ValidationError as exc:
                raise run.record_error(exc, spec, record.loc, group) from None
            out.append(_localised(made, plan.zone))
    return out


def _present(run: _Apply, group: Any, fields: tuple[tuple[str, Getter], ...]) -> dict[str, Any] | None:
    """The values of ``fields``, or None when one has none (its record is left out)."""
    known: dict[str, Any] = {}
    for name, get in fields:
        value = get(run, group, None)
        if value is None:
            return None
        known[name] = value
    return known


def _optional(field: FieldSpec) -> FieldSpec:
    """The field without ``required`` (to test whether it has a value)."""
    return field.model_copy(update={"required": False})


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
    plan = _plan(mapping, isinstance(source, EdifactSource))
    run = _Apply(mapping, source, plan.options)
    records = _records(run, plan)
    issued_at = (plan.issued_at(run, None, None) if plan.issued_at else None) or source.issued_at
    reference = (plan.reference(run, None, None) if plan.reference else None) or source.reference
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
        mapped.issued_at = mapped.issued_at.replace(tzinfo=plan.zone)
    return mapped


def apply(mapping: Mapping, msg: EdifactMessage) -> MappedMessage:
    """The canonical records of one EDIFACT message."""
    return apply_source(mapping, EdifactSource(msg))
