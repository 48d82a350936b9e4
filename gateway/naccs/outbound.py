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
(the item is left blank; the layout's mandatory check then says OUT-13).

Problems are found when the file is loaded (``file:line: items.X: text``): unknown keys, an item the layout
does not have, a list source for a single item, a root that does not exist, an unknown conversion.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
LIST_SEGMENT = "containers"  # deal.containers.<name>: one value per container of the deal

Convert = Literal["upper", "yyyymmdd", "hhmm", "int", "decimal1", "decimal3", "iso_size_type"]


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
    "int": lambda v: round(float(v)),
    "decimal1": _decimal(1),
    "decimal3": _decimal(3),
    "iso_size_type": lambda v: str(v).upper()[:4],
}


class ItemSource(BaseModel):
    """Where one layout item's value comes from: a canonical field (``from``) or a constant (``const``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: str | None = Field(default=None, alias="from", pattern=r"^[a-z_]+(\.[A-Za-z0-9_]+)*$")
    const: str | int | None = None
    convert: Convert | None = None
    codes: dict[str, str] | None = None  # canonical value → NACCS code; a value not listed is left as it is
    default: str | None = None  # when the field is empty

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"from": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one_source(self) -> ItemSource:
        if (self.from_ is None) == (self.const is None):
            raise ValueError("give exactly one of from or const")
        if self.from_ is not None and self.from_.split(".", 1)[0] not in ROOTS:
            raise ValueError(f"a source starts at one of {', '.join(ROOTS)}")
        return self

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
    entries = {e.id: e for e in walk(lay.items)}
    top = {e.id for e in lay.items}
    problems = []
    for item_id, spec in mapping.items.items():
        loc = ("items", item_id)
        entry = entries.get(item_id)
        if entry is None or item_id not in top:
            known = ", ".join(sorted(top))
            why = "is inside a group (groups are not mapped yet)" if entry else "is not an item of the layout"
            problems.append(source.problem(loc, f"{item_id} {why} {lay.business} (items: {known})"))
            continue
        if isinstance(entry, Group):
            problems.append(source.problem(loc, f"{item_id} is a group; groups are not mapped yet"))
            continue
        assert isinstance(entry, Item)
        if spec.is_list and entry.repeat == 1:
            problems.append(source.problem(loc, f"{item_id} is a single item; {spec.from_} gives a list"))
    if problems:
        raise ConfigError(problems)
    return mapping


@cache
def cached_mapping(path: Path) -> OutboundMapping:
    return load_outbound_mapping(path)


def _walk(value: Any, names: list[str]) -> Any:
    for name in names:
        if value is None:
            return None
        value = value.get(name) if isinstance(value, Mapping) else getattr(value, name, None)
    return value


def values_for(mapping: OutboundMapping, roots: Mapping[str, Any]) -> dict[str, Any]:
    """The layout values (item id → value or list) from the canonical rows in ``roots``.

    A conversion that cannot be made (a text where a number is expected) is a ``ValueError`` naming the item.
    """
    out: dict[str, Any] = {}
    for item_id, spec in mapping.items.items():
        if spec.const is not None:
            out[item_id] = spec.const
            continue
        assert spec.from_ is not None
        root, *names = spec.from_.split(".")
        if spec.is_list:
            containers = sorted(_walk(roots.get("deal"), [LIST_SEGMENT]) or [], key=lambda c: c.number)
            out[item_id] = [_convert(item_id, spec, _walk(c, names[1:])) for c in containers]
        else:
            out[item_id] = _convert(item_id, spec, _walk(roots.get(root), names))
    return out


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
