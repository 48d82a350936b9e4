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
XML mappings select with ``xpath`` (relative to the record's element), CSV mappings with ``column``.
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


def _text(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class FieldSpec(Spec):
    """Where one canonical field comes from; see docs/mappings.md for every key."""

    seg: str | None = None  # EDIFACT segment selector; absent inside `fields` = the parent's segment
    el: ElementRef | None = None  # element[.component] of the selected segment
    xpath: str | None = None  # XML: an XPath from the record's element (or the parent's node inside `fields`)
    column: str | list[str] | None = None  # CSV: a column by its header, or alternative headers
    scope: Literal["group", "message"] = "group"  # inside `each`: search the group or the whole message
    all: bool = False  # every matching segment, as a list
    first: list[FieldSpec] | None = None  # alternatives; the first that yields a value wins
    value: str | int | float | bool | None = None  # a constant
    map: dict[str, Any] | None = None  # code-list translation; an unlisted code is MAP-3 unless `default`
    convert: str | None = None  # a function of gateway/mapping/functions.py
    # passed to `convert`: an element of the same segment (EDIFACT), an XPath from the selected node (XML),
    # a column (CSV)
    arg_from: Annotated[str, BeforeValidator(_text)] | None = None
    default: Any = None
    required: bool = False
    fields: dict[str, FieldSpec] | None = None  # build an object (or, with `all`, a list of objects)

    @field_validator("seg")
    @classmethod
    def _seg(cls, v: str | None) -> str | None:
        if v is not None:
            Selector(v)
        return v

    @field_validator("el")
    @classmethod
    def _el(cls, v: str | None) -> str | None:
        if v is not None:
            element_path(v)
        return v

    @property
    def select(self) -> str | list[str] | None:
        """What the field selects with, whatever the format."""
        return self.seg or self.xpath or self.column

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
    each: str | None = None  # one record per segment group starting with this selector (XML: per element)
    until: list[str] = ["CNT", "UNT"]  # tags that end a group besides the next `each` segment
    if_present: str | None = None  # produce the record only when this selector matches (in scope)
    # leave the record out (instead of MAP-2) when one of these fields has no value, e.g. an EQD without number
    skip_if_missing: list[str] = []
    fields: dict[str, FieldSpec]


class CsvOptions(Spec):
    """How a CSV file is read; ``auto`` detects."""

    encoding: str = "auto"  # auto: UTF-8 (with or without BOM), else CP932 (Shift_JIS from Japanese Excel)
    delimiter: str = "auto"  # auto: the one of , ; TAB | that splits the header line most consistently
    header_row: int = Field(default=1, ge=1)  # 1-based line of the header; lines above it are skipped

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, v: str) -> str:
        if v != "auto":
            import codecs

            codecs.lookup(v)  # LookupError → a validation error naming the key
        return v

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, v: str) -> str:
        if v != "auto" and len(v) != 1:
            raise ValueError("delimiter is one character, or auto")
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
    namespaces: dict[str, str] = {}  # XML: prefix → namespace URI, for the XPaths
    csv: CsvOptions = CsvOptions()
    issued_at: FieldSpec | None = None  # when the document was issued: orders messages about the same things
    reference: FieldSpec | None = None  # XML: the document's reference (EDIFACT: UNH 1; CSV: the row)
    records: list[RecordSpec] = Field(min_length=1)
    examples: list[Example] = []

    _source: YamlSource | None = PrivateAttr(default=None)
    _plan: Any = PrivateAttr(default=None)  # the engine's compiled form, made on first use

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
    if mapping.format == "csv" and mapping.message is None:
        problems.append(source.problem(("message",), "a CSV mapping names the kind of list it reads, e.g. CONTAINERS"))
    check = _FormatCheck(mapping, source, problems)
    for key in ("issued_at", "reference"):
        spec = getattr(mapping, key)
        if spec is not None:
            check.field((key,), spec, top=True)
    for i, record in enumerate(mapping.records):
        check.record(("records", i), record)
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
        for j, name in enumerate(record.skip_if_missing):
            if name not in record.fields:
                loc = ("records", i, "skip_if_missing", j)
                problems.append(source.problem(loc, f"no field {name!r} in this record"))
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


class _FormatCheck:
    """The keys a field may use depend on the format: ``seg``/``el`` for EDIFACT, ``xpath`` for XML,
    ``column`` for CSV. Checked once the file's shape is valid, so each problem names its line."""

    _KEYS = {"edifact": ("seg", "el"), "xml": ("xpath",), "csv": ("column",)}

    def __init__(self, mapping: Mapping, source: YamlSource, problems: list[str]) -> None:
        self.format = mapping.format
        self.namespaces = mapping.namespaces
        self.source = source
        self.problems = problems

    def problem(self, loc: tuple[str | int, ...], text: str) -> None:
        self.problems.append(self.source.problem(loc, text))

    def selector(self, loc: tuple[str | int, ...], text: str) -> None:
        try:
            if self.format == "edifact":
                Selector(text)
            elif self.format == "xml":
                from lxml import etree

                etree.XPath(text, namespaces=self.namespaces)
        except Exception as exc:  # Selector raises ValueError, lxml XPathSyntaxError
            self.problem(loc, f"{text!r}: {exc}")

    def record(self, loc: tuple[str | int, ...], record: RecordSpec) -> None:
        for key in ("each", "if_present"):
            value = getattr(record, key)
            if value is None:
                continue
            if self.format == "csv" and key == "each":
                self.problem((*loc, key), "a CSV mapping makes its records from each row; it has no `each`")
            elif self.format != "csv":
                self.selector((*loc, key), value)
        for name, spec in record.fields.items():
            self.field((*loc, "fields", name), spec, top=True)

    def field(self, loc: tuple[str | int, ...], spec: FieldSpec, *, top: bool) -> None:
        own = self._KEYS[self.format]
        for fmt, keys in self._KEYS.items():
            for key in keys:
                if fmt != self.format and getattr(spec, key) is not None:
                    self.problem(
                        (*loc, key), f"`{key}` is for {fmt} mappings; this one reads {self.format} ({', '.join(own)})"
                    )
        if spec.xpath is not None and self.format == "xml":
            self.selector((*loc, "xpath"), spec.xpath)
        if spec.arg_from is not None:
            if self.format == "edifact":
                try:
                    element_path(spec.arg_from)
                except ValueError as exc:
                    self.problem((*loc, "arg_from"), str(exc))
            elif self.format == "xml":
                self.selector((*loc, "arg_from"), spec.arg_from)
        for j, alt in enumerate(spec.first or []):
            self.field((*loc, "first", j), alt, top=top)
        for name, inner in (spec.fields or {}).items():
            self.field((*loc, "fields", name), inner, top=False)
