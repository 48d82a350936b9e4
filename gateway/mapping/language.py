"""The mapping file format (``mappings/**/*.yaml``): what an analyst writes, validated on load.

A mapping names the records it produces for every business message; each record lists its canonical fields
and where each comes from. ``docs/mappings.md`` is the analyst's guide. In short::

    records:
      - entity: container          # a canonical record type (gateway/canonical.py)
        each: EQD+CN               # one record per segment group starting at EQD with qualifier CN
        fields:
          number: {seg: EQD+CN, el: 2.1, convert: container_number, required: true}
          gross_kg: {seg: MEA+AAE+G, el: 3.2, convert: weight_kg, arg_from: 3.1}

A selector ``TAG+Q1+Q2`` picks segments whose first components of elements 1, 2, ... equal Q1, Q2 (an empty
qualifier matches anything); ``el: E.C`` is element E, component C (1-based, as in the message guides).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, field_validator

from gateway.canonical import RECORD_TYPES, Record
from gateway.errors import ConfigError
from gateway.mapping.functions import REGISTRY, Options
from gateway.yamlsource import YamlSource

_SELECTOR = re.compile(r"^[A-Z][A-Z0-9]{2}(\+[A-Z0-9 ]*)*$")
_ELEMENT = re.compile(r"^[1-9][0-9]*(\.[1-9][0-9]*)?$")


class Selector:
    """``TAG+Q1+Q2``: a segment tag and the qualifiers its elements must start with."""

    __slots__ = ("qualifiers", "tag", "text")

    def __init__(self, text: str) -> None:
        if not _SELECTOR.match(text):
            raise ValueError(f"{text!r} is not a segment selector such as RFF+BN or MEA+AAE+VGM")
        tag, *quals = text.split("+")
        self.text, self.tag, self.qualifiers = text, tag, quals

    def __repr__(self) -> str:
        return f"Selector({self.text!r})"


def _element_text(value: Any) -> Any:
    # YAML reads `el: 2.1` as a number; components from 10 up must be quoted ("2.10")
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


ElementRef = Annotated[str, BeforeValidator(_element_text)]


def element_path(value: str | int) -> tuple[int, int]:
    text = str(value)
    if not _ELEMENT.match(text):
        raise ValueError(f"{text!r} is not an element path such as 2 or 2.1")
    el, _, comp = text.partition(".")
    return int(el), int(comp or 1)


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class FieldSpec(Spec):
    """Where one canonical field comes from; see docs/mappings.md for every key."""

    seg: str | None = None  # segment selector; absent inside `fields` = the parent's segment
    el: ElementRef | None = None  # element[.component] of the selected segment
    scope: Literal["group", "message"] = "group"  # inside `each`: search the group or the whole message
    all: bool = False  # every matching segment, as a list
    first: list[FieldSpec] | None = None  # alternatives; the first that yields a value wins
    value: str | int | float | bool | None = None  # a constant
    map: dict[str, Any] | None = None  # code-list translation; an unlisted code is MAP-3 unless `default`
    convert: str | None = None  # a function of gateway/mapping/functions.py
    arg_from: ElementRef | None = None  # element of the same segment that is passed to `convert`
    default: Any = None
    required: bool = False
    fields: dict[str, FieldSpec] | None = None  # build an object (or, with `all`, a list of objects)

    @field_validator("seg")
    @classmethod
    def _seg(cls, v: str | None) -> str | None:
        if v is not None:
            Selector(v)
        return v

    @field_validator("el", "arg_from")
    @classmethod
    def _el(cls, v: str | None) -> str | None:
        if v is not None:
            element_path(v)
        return v

    @field_validator("convert")
    @classmethod
    def _convert(cls, v: str | None) -> str | None:
        if v is not None and v not in REGISTRY:
            near = difflib.get_close_matches(v, sorted(REGISTRY), n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise ValueError(f"unknown function {v!r}{hint} (known: {', '.join(sorted(REGISTRY))})")
        return v


class RecordSpec(Spec):
    entity: str
    each: str | None = None  # one record per segment group that starts with this selector
    until: list[str] = ["CNT", "UNT"]  # tags that end a group besides the next `each` segment
    if_present: str | None = None  # produce the record only when this selector matches (in scope)
    fields: dict[str, FieldSpec]

    @field_validator("each", "if_present")
    @classmethod
    def _selector(cls, v: str | None) -> str | None:
        if v is not None:
            Selector(v)
        return v


class Example(Spec):
    input: Path
    expect: Path


class Mapping(Spec):
    mapping: str  # a name for logs and the dashboard
    description: str = ""
    format: Literal["edifact", "xml", "csv"]
    message: str | None = None  # EDIFACT message type this mapping is written for
    options: dict[str, str] = {}  # timezone, decimal_mark: see gateway/mapping/functions.py Options
    records: list[RecordSpec] = Field(min_length=1)
    examples: list[Example] = []

    _source: YamlSource | None = PrivateAttr(default=None)

    @property
    def path(self) -> Path:
        return self._source.path if self._source else Path("<memory>")

    def line_of(self, loc: tuple[str | int, ...]) -> int | None:
        return self._source.line_of(loc) if self._source else None

    @property
    def function_options(self) -> Options:
        return Options(**self.options)


def load_mapping(path: Path) -> Mapping:
    """Load and check one mapping file; every problem names the file, line and key."""
    source = YamlSource.read(path)
    mapping = source.validate(Mapping)
    mapping._source = source
    problems: list[str] = []
    try:
        mapping.function_options  # noqa: B018 - validates option names
    except TypeError:
        problems.append(source.problem(("options",), f"valid options are {', '.join(Options.__annotations__)}"))
    for i, record in enumerate(mapping.records):
        record_type = RECORD_TYPES.get(record.entity)
        if record_type is None:
            problems.append(
                source.problem(
                    ("records", i, "entity"),
                    f"unknown entity {record.entity!r} (known: {', '.join(sorted(RECORD_TYPES))})",
                )
            )
            continue
        _check_fields(source, ("records", i, "fields"), record.fields, record_type, problems)
    for j, example in enumerate(mapping.examples):
        for key in ("input", "expect"):
            if not (path.parent / getattr(example, key)).is_file():
                problems.append(source.problem(("examples", j, key), "example file does not exist"))
    if problems:
        raise ConfigError(problems)
    return mapping


def _check_fields(
    source: YamlSource,
    loc: tuple[str | int, ...],
    fields: dict[str, FieldSpec],
    record_type: type[BaseModel] | None,
    problems: list[str],
) -> None:
    """Every field a mapping fills must exist in the canonical record it builds."""
    if record_type is None:
        return
    valid = [f for f in record_type.model_fields if f != "entity"]
    for name, spec in fields.items():
        if name not in valid:
            near = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            problems.append(source.problem((*loc, name), f"{record_type.__name__} has no field {name!r}{hint}"))
            continue
        if spec.fields is not None:
            _check_fields(source, (*loc, name, "fields"), spec.fields, _nested(record_type, name), problems)


def _nested(record_type: type[BaseModel], name: str) -> type[BaseModel] | None:
    import typing

    ann: Any = record_type.model_fields[name].annotation
    stack = [ann]
    while stack:
        ann = stack.pop()
        if isinstance(ann, type) and issubclass(ann, Record):
            return ann
        stack.extend(typing.get_args(ann))
    return None
