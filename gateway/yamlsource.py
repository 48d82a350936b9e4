"""YAML that remembers where each key came from, and pydantic errors turned into ``file:line: key: problem``.

routes.yaml and every mapping file load through here, so a typo anywhere is reported the same way: the file,
the line, the dotted key, what is wrong and, for an unknown key, the nearest valid one.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from gateway.errors import ConfigError

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. YAML 1.1 would read a route's `on:` key as True."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class YamlSource:
    """A parsed YAML document plus the line of every key and list item in it."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        try:
            node = yaml.compose(text, Loader=_Loader)
            self.data: Any = yaml.load(text, Loader=_Loader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 1
            raise ConfigError([f"{path}:{line}: not valid YAML: {exc}"]) from exc
        self.lines: dict[Loc, int] = {}
        self.problems: list[str] = []
        if node is not None:
            self._index(node, ())
        if self.problems:
            raise ConfigError(self.problems)

    @classmethod
    def read(cls, path: Path) -> YamlSource:
        try:
            return cls(path, path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc

    def _index(self, node: yaml.Node, loc: Loc) -> None:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in seen:
                    self.problems.append(
                        f"{self.path}:{key_node.start_mark.line + 1}: {dotted((*loc, key))}: key given twice"
                    )
                seen.add(key)
                self.lines[(*loc, key)] = key_node.start_mark.line + 1
                self._index(value_node, (*loc, key))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._index(item, (*loc, i))

    def line_of(self, loc: Sequence[str | int]) -> int:
        """The line of ``loc``, or of its nearest ancestor that exists in the file."""
        path = tuple(loc)
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def problem(self, loc: Sequence[str | int], text: str) -> str:
        return f"{self.path}:{self.line_of(loc)}: {dotted(loc) or '(top level)'}: {text}"

    def validate(self, model: type[M], context: dict[str, Any] | None = None) -> M:
        """Validate the document into ``model``; every problem becomes one ``file:line: key: text`` line."""
        try:
            return model.model_validate(self.data if self.data is not None else {}, context=context)
        except ValidationError as exc:
            raise ConfigError([self._describe(model, err) for err in exc.errors()]) from None

    def _describe(self, model: type[BaseModel], err: Any) -> str:
        loc, owner = _data_loc(model, tuple(err["loc"]))
        if err["type"] == "extra_forbidden" and owner is not None:
            key = str(loc[-1])
            valid = sorted(owner.model_fields)
            near = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            return self.problem(loc, f"unknown key{hint} (valid keys: {', '.join(valid)})")
        msg = str(err["msg"])
        if err["type"] == "missing":
            msg = "required key is missing"
        elif "input" in err and not isinstance(err["input"], dict | list):
            msg = f"{msg} (got {err['input']!r})"
        return self.problem(loc, msg)


def dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _data_loc(model: type[BaseModel], loc: Loc) -> tuple[Loc, type[BaseModel] | None]:
    """Strip pydantic's union tags from an error location and find the model that owns its last key.

    pydantic puts the chosen member of a tagged union into ``loc`` (``channels.x.folder.pol``); the file has no
    such level, so it is dropped here.
    """
    data_loc: list[str | int] = []
    ann: Any = model
    owner: type[BaseModel] | None = None
    for part in loc:
        ann = _unwrap(ann)
        members = _union_members(ann)
        if members:
            tagged = {_tag_of(m): m for m in members}
            if part in tagged:
                ann = tagged[part]
                continue
            ann = members[0]
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            owner = ann
            field = ann.model_fields.get(str(part))
            ann = field.annotation if field is not None else None
        elif typing.get_origin(ann) in (dict, list):
            ann = typing.get_args(ann)[-1]
        else:
            ann = None
        data_loc.append(part)
    return tuple(data_loc), owner


def _unwrap(ann: Any) -> Any:
    while typing.get_origin(ann) is typing.Annotated:
        ann = typing.get_args(ann)[0]
    members = [a for a in _union_members(ann) if a is not type(None)]
    if len(members) == 1:
        return _unwrap(members[0])
    return ann


def _union_members(ann: Any) -> list[Any]:
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        return [_unwrap(a) for a in typing.get_args(ann)]
    return []


def _tag_of(member: Any) -> Any:
    if isinstance(member, type) and issubclass(member, BaseModel) and "type" in member.model_fields:
        args = typing.get_args(member.model_fields["type"].annotation)
        return args[0] if args else None
    return None
