"""NACCS business layouts as data: ``naccs/layouts/<BUSINESS>.yaml``, validated when loaded.

A layout is the ordered list of a business's input items (業務個別項目): item id, name, byte length, type
(``an`` half-width alphanumeric, ``n`` numeric, ``j`` kanji / double-byte), justification and padding, whether
it is mandatory (``M``), conditional (``C``) or mandatory under a condition the layout does not express
(``F``), and how often it repeats; repeating groups hold items of their own. The format is described in
``naccs/README.md``. A transcribed layout is a data change, not a code change.

Loading goes through :class:`gateway.yamlsource.YamlSource` (duplicate keys refused, lines remembered) and
pydantic models with unknown keys refused; every problem is reported as ``file:line: items[3] (CNO): text``
in a :class:`gateway.errors.ConfigError`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from gateway.errors import ConfigError
from gateway.yamlsource import YamlSource, dotted

ROOT = Path(os.environ.get("GATEWAY_NACCS_LAYOUTS", Path(__file__).resolve().parents[2] / "naccs" / "layouts"))

ItemType = Literal["an", "n", "j"]
Justify = Literal["left", "right"]
Pad = Literal["space", "zero", "fullwidth_space"]
Status = Literal["provisional", "partial", "transcribed"]

ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"


class Item(BaseModel):
    """One fixed-length item, written ``repeat`` times in a row (each occurrence its length, then CRLF)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1)
    abbr: str | None = Field(default=None, pattern=r"^[A-Z0-9]{2,4}$")  # NACCS item abbreviation (項目略称)
    length: int = Field(gt=0, le=100_000)
    type: ItemType
    mandatory: Literal["M", "C", "F"] = "C"
    justify: Justify | None = None  # default: an/j left, n right
    pad: Pad | None = None  # default: space (see naccs/README.md)
    repeat: int = Field(default=1, ge=1, le=9999)
    decimals: int = Field(default=0, ge=0)  # n only: digits allowed after one decimal point
    note: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Item:
        if self.type == "j" and self.length % 2:
            raise ValueError(f"a j (double-byte) item needs an even byte length, not {self.length}")
        if self.pad == "zero" and self.type != "n":
            raise ValueError("pad: zero is for n items only")
        if self.pad == "fullwidth_space" and self.type != "j":
            raise ValueError("pad: fullwidth_space is for j items only")
        if self.decimals and self.type != "n":
            raise ValueError("decimals is for n items only")
        if self.decimals and self.decimals + 2 > self.length:
            raise ValueError(f"decimals {self.decimals} leaves no room for a digit and the point in {self.length}")
        return self

    @property
    def justification(self) -> Justify:
        if self.justify is not None:
            return self.justify
        return "right" if self.type == "n" else "left"

    @property
    def padding(self) -> Pad:
        return self.pad or "space"

    @property
    def size(self) -> int:
        """Bytes this item takes in the business part, CRLFs included."""
        return (self.length + 2) * self.repeat


class Group(BaseModel):
    """A repeating group: its items (and nested groups), written ``repeat`` times in a row.

    ``mandatory: M`` means the first occurrence must be given; mandatory items inside a group are checked in
    every occurrence that is given. Occurrences not given are written blank (spaces), unless ``omit_unused``
    says the business lets the unused occurrences at the end be left out.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1)
    repeat: int = Field(ge=1, le=9999)
    mandatory: Literal["M", "C"] = "C"
    omit_unused: bool = False
    note: str = ""
    items: list[Entry] = Field(min_length=1)

    @property
    def id(self) -> str:
        return self.group

    @property
    def size(self) -> int:
        return sum(e.size for e in self.items) * self.repeat


def _entry_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "group" if "group" in value else "item"
    return "group" if isinstance(value, Group) else "item"


Entry = Annotated[Annotated[Item, Tag("item")] | Annotated[Group, Tag("group")], Discriminator(_entry_kind)]
Group.model_rebuild()


class Layout(BaseModel):
    """One business's input layout (the business part after the common header)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    business: str = Field(pattern=r"^[A-Z0-9]{3,5}$")
    name: str = Field(min_length=1)
    status: Status
    sources: list[str] = Field(default_factory=list)
    note: str = ""
    items: list[Entry] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Layout:
        seen: set[str] = set()
        for entry in walk(self.items):
            if entry.id in seen:
                raise ValueError(f"item id {entry.id!r} is used twice")
            seen.add(entry.id)
        return self

    @property
    def size(self) -> int:
        """Bytes of the business part when every occurrence is written."""
        return sum(e.size for e in self.items)

    def by_abbr(self, abbr: str) -> Item | None:
        """The item a result code's item abbreviation (e.g. ``CNO``) names, if the layout records it."""
        abbr = abbr.strip()
        return next((e for e in walk(self.items) if isinstance(e, Item) and e.abbr == abbr), None)


def walk(entries: Sequence[Item | Group]) -> Iterator[Item | Group]:
    """Every item and group, depth first, in layout order."""
    for entry in entries:
        yield entry
        if isinstance(entry, Group):
            yield from walk(entry.items)


def load_layout(path: Path) -> Layout:
    """Read and validate one layout file; ConfigError naming the file, line and item on any problem."""
    source = YamlSource.read(path)
    try:
        layout = Layout.model_validate(source.data if source.data is not None else {})
    except ValidationError as exc:
        raise ConfigError([_describe(source, err) for err in exc.errors()]) from None
    if path.stem != layout.business:
        raise ConfigError([source.problem(("business",), f"business {layout.business} does not match the file name")])
    return layout


def load_layouts(root: Path = ROOT) -> dict[str, Layout]:
    """Every ``*.yaml`` under ``root``, by business code; all files' problems are reported together."""
    layouts: dict[str, Layout] = {}
    problems: list[str] = []
    for path in sorted(root.glob("*.yaml")):
        try:
            layout = load_layout(path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        layouts[layout.business] = layout
    if problems:
        raise ConfigError(problems)
    return layouts


@cache
def _default_layouts() -> dict[str, Layout]:
    return load_layouts(ROOT)


def layout(business: str) -> Layout:
    """The layout of ``business`` from ``naccs/layouts`` (loaded once); KeyError if there is none."""
    return _default_layouts()[business]


def _describe(source: YamlSource, err: Any) -> str:
    """``file:line: items[3] (CNO): message``: the pydantic location mapped onto the file's own keys."""
    data: Any = source.data
    loc: list[str | int] = []
    item_id: str | None = None
    previous: Any = None
    for part in err["loc"]:
        if part in ("item", "group") and isinstance(previous, int):
            previous = part
            continue  # the union tag of an entry: the file has no such level
        previous = part
        loc.append(part)
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        data = data[part] if in_list or (isinstance(data, dict) and part in data) else None
        if isinstance(data, dict):
            ident = data.get("id", data.get("group"))
            if isinstance(ident, str):
                item_id = ident
    msg = str(err["msg"])
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required key is missing"
    elif "input" in err and not isinstance(err["input"], dict | list):
        msg = f"{msg} (got {err['input']!r})"
    where = f" ({item_id})" if item_id else ""
    return f"{source.path}:{source.line_of(loc)}: {dotted(loc) or '(top level)'}{where}: {msg}"
