"""Outbound mappings: which canonical field fills which item of a NACCS business layout.

One YAML file per business under ``naccs/mappings/`` (format in ``naccs/mappings/README.md``)::

    business: ECR                  # the layout (naccs/layouts/ECR.yaml)
    items:
      process_kind: {const: "9"}
      cargo_reference: deal.bl_number          # shorthand for {from: deal.bl_number}
      container_numbers: {from: deal.containers.number}   # a list, for a repeating item
      gross_weight: {from: container.gross_kg, convert: decimal3}
      full_empty: {from: container.full_empty, codes: {full: "5", empty: "4"}}

A source path starts at ``deal``, ``container``, ``booking`` or ``vessel_call``; each further name is an
attribute or a key of a JSON column (``deal.details.exporter.name``). ``deal.containers`` is the deal's
containers (in number order); a name after it is taken from each, giving a list. A missing value is ``None``
(the item is left blank; the layout's mandatory check then says OUT-13). A source that holds a JSON list gives
a list (for a repeating item).

A repeating group of the layout maps with ``each`` (a path giving a list: one group occurrence per element;
``deal.containers`` in number order, a JSON list such as ``deal.details.goods`` in its own order, a single
object as one occurrence) and ``items`` (the group's items; their sources may start at ``item``, the current
element, as well as at the roots)::

    lines:
      each: deal.details.goods
      items:
        hs_code: item.hs_code
        description: {from: item.description, convert: upper}

More elements than the group repeats is not cut: the renderer refuses it with OUT-15.

Problems are found when the file is loaded (``file:line: items.X: text``): unknown keys, an item the layout
does not have (or not in that group), a list source for a single item, a root that does not exist (``item``
outside a group), a group mapped like an item or an item like a group, an unknown conversion.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.errors import ConfigError
from gateway.naccs.layout import Group, Item, Layout, layout, walk
from gateway.yamlsource import YamlSource

JST = timezone(timedelta(hours=9))
ROOTS = ("deal", "container", "booking", "vessel_call")
ITEM_ROOT = "item"  # inside a group mapping: the current element of ``each``
LIST_SEGMENT = "containers"  # deal.containers.<name>: one value per container of the deal

Convert = Literal["upper", "yyyymmdd", "hhmm", "int", "decimal1", "decimal2", "decimal3", "iso_size_type"]


def _decimal(places: int) -> Callable[[Any], Any]:
    quantum = Decimal(1).scaleb(-places)
    return lambda v: Decimal(str(v)).quantize(quantum, rounding=ROUND_HALF_UP)


def _local(v: Any) -> datetime:
    if not isinstance(v, datetime):
        raise TypeError(f"expected a date and time, got {v!r}")
    return (v if v.tzinfo else v.replace(tzinfo=UTC)).astimezone(JST)


CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "upper": lambda v: str(v).upper(),
    "yyyymmdd": lambda v: _local(v).strftime("%Y%m%d"),  # Japan time, as NACCS dates are
    "hhmm": lambda v: _local(v).strftime("%H%M"),
    "int": lambda v: int(_decimal(0)(v)),  # half up, like the decimals (round() goes half to even)
    "decimal1": _decimal(1),
    "decimal2": _decimal(2),
    "decimal3": _decimal(3),
    "iso_size_type": lambda v: str(v).upper(),  # never cut: a longer code is OUT-10 at render, as any value
}


class ItemSource(BaseModel):
    """Where one layout item's value comes from: a canonical field (``from``) or a constant (``const``).

    For a group of the layout: ``each`` (the list, one occurrence per element) and ``items`` (the group's items,
    whose sources may start at ``item``, the current element).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: str | None = Field(default=None, alias="from", pattern=r"^[a-z_]+(\.[A-Za-z0-9_]+)*$")
    const: str | int | None = None
    convert: Convert | None = None
    codes: dict[str, str] | None = None  # canonical value → NACCS code; a value not listed is left as it is
    default: str | None = None  # when the field is empty
    each: str | None = Field(default=None, pattern=r"^[a-z_]+(\.[A-Za-z0-9_]+)*$")
    items: dict[str, ItemSource] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"from": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one_source(self) -> ItemSource:
        if self.each is not None or self.items is not None:
            if self.each is None or not self.items:
                raise ValueError("a group mapping needs both each (a list source) and items")
            extra = [k for k in ("from", "const", "convert", "codes", "default") if self._given(k)]
            if extra:
                raise ValueError(f"a group mapping has each and items only, not {', '.join(extra)}")
            if self.each.split(".", 1)[0] not in ROOTS:
                raise ValueError(f"each starts at one of {', '.join(ROOTS)}")
            return self
        if (self.from_ is None) == (self.const is None):
            raise ValueError("give exactly one of from or const")
        if self.from_ is not None and self.from_.split(".", 1)[0] not in (*ROOTS, ITEM_ROOT):
            raise ValueError(f"a source starts at one of {', '.join(ROOTS)} (or {ITEM_ROOT} inside a group)")
        return self

    def _given(self, key: str) -> bool:
        return getattr(self, "from_" if key == "from" else key) is not None

    @property
    def is_group(self) -> bool:
        return self.each is not None

    @property
    def is_list(self) -> bool:
        parts = (self.from_ or "").split(".")
        return len(parts) > 2 and parts[0] == "deal" and parts[1] == LIST_SEGMENT


class OutboundMapping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    business: str = Field(pattern=r"^[A-Z0-9]{3,5}$")
    layout: str | None = None  # the layout file's business code, when it differs from ``business``
    note: str = ""
    items: dict[str, ItemSource] = Field(min_length=1)

    @property
    def layout_name(self) -> str:
        return self.layout or self.business


def load_outbound_mapping(path: Path, layouts: Mapping[str, Layout] | None = None) -> OutboundMapping:
    """Read and check one outbound mapping against its layout; ConfigError with ``file:line`` problems."""
    source = YamlSource.read(path)
    mapping = source.validate(OutboundMapping)
    try:
        lay = layouts[mapping.layout_name] if layouts is not None else layout(mapping.layout_name)
    except KeyError:
        raise ConfigError([source.problem(("business",), f"no NACCS layout {mapping.layout_name}")]) from None
    problems = _check_items(source, lay.business, lay.items, mapping.items, ("items",))
    if problems:
        raise ConfigError(problems)
    return mapping


def _check_items(
    source: YamlSource,
    business: str,
    entries: Sequence[Item | Group],
    specs: Mapping[str, ItemSource],
    loc: tuple[str, ...],
    group: Group | None = None,
) -> list[str]:
    """Problems of ``specs`` against the layout ``entries`` (the top level, or the items of ``group``)."""
    here = {e.id: e for e in entries}
    everywhere = {e.id: e for e in walk(entries)}
    where = f"group {group.id} of {business}" if group else f"the layout {business}"
    problems = []
    for item_id, spec in specs.items():
        item_loc = (*loc, item_id)
        entry = here.get(item_id)
        if entry is None:
            known = ", ".join(sorted(here))
            inside = item_id in everywhere
            why = "is inside a group of (map it under the group's items)" if inside else "is not an item of"
            problems.append(source.problem(item_loc, f"{item_id} {why} {where} (items: {known})"))
            continue
        if isinstance(entry, Group):
            if group is not None:
                problems.append(source.problem(item_loc, f"{item_id}: nested groups are not mapped"))
            elif not spec.is_group:
                problems.append(
                    source.problem(
                        item_loc, f"{item_id} is a group (repeats {entry.repeat}); map it with each and items"
                    )
                )
            else:
                assert spec.items is not None
                problems += _check_items(source, business, entry.items, spec.items, (*item_loc, "items"), entry)
            continue
        if spec.is_group:
            problems.append(
                source.problem(item_loc, f"{item_id} is an item, not a group; each and items are for groups")
            )
            continue
        if spec.is_list and entry.repeat == 1:
            problems.append(source.problem(item_loc, f"{item_id} is a single item; {spec.from_} gives a list"))
        if group is None and (spec.from_ or "").split(".", 1)[0] == ITEM_ROOT:
            problems.append(
                source.problem(item_loc, f"{item_id}: {ITEM_ROOT} is the element of a group's each; no group here")
            )
    return problems


@cache
def cached_mapping(path: Path) -> OutboundMapping:
    return load_outbound_mapping(path)


def _walk(value: Any, names: list[str]) -> Any:
    for name in names:
        if value is None:
            return None
        if isinstance(value, list | tuple) and name.isdigit():  # a list element by position: seals.0.number
            value = value[int(name)] if int(name) < len(value) else None
        else:
            value = value.get(name) if isinstance(value, Mapping) else getattr(value, name, None)
    return value


def values_for(mapping: OutboundMapping, roots: Mapping[str, Any]) -> dict[str, Any]:
    """The layout values (item id → value or list; a group → list of dicts) from the canonical rows in ``roots``.

    A conversion that cannot be made (a text where a number is expected) is a ``ValueError`` naming the item.
    A group gets one occurrence per element of its ``each``, all of them: more than the layout's repeat count is
    refused by the renderer (OUT-15), never dropped here.
    """
    return _values(mapping.items, roots, "")


def _values(specs: Mapping[str, ItemSource], roots: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item_id, spec in specs.items():
        path = f"{prefix}{item_id}"
        if spec.is_group:
            assert spec.each is not None and spec.items is not None
            out[item_id] = [
                _values(spec.items, {**roots, ITEM_ROOT: element}, f"{path}[{index}].")
                for index, element in enumerate(_elements(spec.each, roots), 1)
            ]
        elif spec.const is not None:
            out[item_id] = spec.const
        else:
            assert spec.from_ is not None
            root, *names = spec.from_.split(".")
            if spec.is_list:
                out[item_id] = [_convert(path, spec, _walk(c, names[1:])) for c in _containers(roots)]
            else:
                value = _walk(roots.get(root), names)
                if isinstance(value, list | tuple):
                    out[item_id] = [_convert(path, spec, v) for v in value]
                else:
                    out[item_id] = _convert(path, spec, value)
    return out


def _containers(roots: Mapping[str, Any]) -> list[Any]:
    return sorted(_walk(roots.get("deal"), [LIST_SEGMENT]) or [], key=lambda c: c.number)


def _elements(each: str, roots: Mapping[str, Any]) -> list[Any]:
    """The elements a group's ``each`` names: the deal's containers in number order, a list as it is, one object
    as one element, nothing as none."""
    root, *names = each.split(".")
    if root == "deal" and names == [LIST_SEGMENT]:
        return _containers(roots)
    value = _walk(roots.get(root), names)
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _convert(item_id: str, spec: ItemSource, value: Any) -> Any:
    if value is None or value == "":
        return spec.default
    if spec.codes is not None:
        value = spec.codes.get(str(value), value)
    if spec.convert is not None:
        try:
            value = CONVERSIONS[spec.convert](value)
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise ValueError(f"item {item_id}: cannot convert {value!r} with {spec.convert}: {exc}") from None
    if isinstance(value, float):
        value = Decimal(str(value))
    return value


def check_mapping_file(path: Path) -> list[str]:
    """Problems of one mapping file (empty when it loads), for routes.yaml's cross checks."""
    try:
        load_outbound_mapping(path)
    except ConfigError as exc:
        return list(exc.problems)
    except ValidationError as exc:  # pragma: no cover - YamlSource.validate turns these into ConfigError
        return [str(exc)]
    return []
