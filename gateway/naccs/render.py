"""Render a business layout from item values into the business part of a NACCS EDI message.

Every item is exactly its byte length in the message encoding, followed by CRLF; a repeating item or group is
written as many times as it repeats (occurrences not given are blank). Nothing is ever cut short: a value that
does not fit is a coded error naming the layout, the item (and occurrence) and the reason.

Values (``values`` of :func:`render`):

- an item: a ``str``, an ``int`` or a ``Decimal`` (``None`` or ``""`` = not given);
- a repeating item (``repeat`` > 1): a list of such values, at most ``repeat`` long;
- a group: a list of mappings (one per occurrence, at most ``repeat``), or one mapping for the first.

Character rules per type (see ``naccs/README.md``):

- ``an``: half-width printable characters (U+0020..U+007E);
- ``n``: digits; with ``decimals: k`` one decimal point and at most k digits after it;
- ``j``: double-byte characters only: each one 2 bytes in the message encoding and not a half-width kana.
  Half-width characters in a ``j`` item are refused, not converted.

Errors: OUT-10 too long in bytes, OUT-11 a character the encoding cannot write, OUT-12 a wrong character for
the type, OUT-13 a mandatory item without a value, OUT-14 a message over 700,000 bytes, OUT-15 an unknown
item or too many occurrences.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from gateway.errors import GatewayError, Position
from gateway.naccs.frame import (
    CRLF,
    DEFAULT_ENCODING,
    HEADER_LENGTH,
    MAX_MESSAGE_BYTES,
    InputHeader,
    build_message,
    check_encoding,
)
from gateway.naccs.layout import Group, Item, Layout


def render(layout: Layout, values: Mapping[str, Any], encoding: str = DEFAULT_ENCODING) -> bytes:
    """The business part of ``layout`` filled from ``values``, in ``encoding`` (EUC-JP by default)."""
    codec = check_encoding(encoding)
    out = bytearray()
    _Renderer(layout, codec, out).entries(layout.items, values, "")
    total = HEADER_LENGTH + len(CRLF) + len(out)
    if total > MAX_MESSAGE_BYTES:
        raise GatewayError(
            "OUT-14",
            f"NACCS layout {layout.business}: the message would be {total:,} bytes, the limit is {MAX_MESSAGE_BYTES:,}",
            Position(path=layout.business),
        )
    return bytes(out)


def render_message(
    layout: Layout, values: Mapping[str, Any], header: InputHeader, encoding: str = DEFAULT_ENCODING
) -> bytes:
    """A whole input message: common header (business code from the layout when blank), CRLF, business part."""
    if not header.business_code:
        header = dataclasses.replace(header, business_code=layout.business)
    elif header.business_code.strip() != layout.business:
        raise GatewayError(
            "OUT-16",
            f"input common header business code {header.business_code!r} is not the layout's {layout.business}",
            Position(path="header/business_code"),
        )
    return build_message(header, render(layout, values, encoding), encoding)


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class _Renderer:
    def __init__(self, layout: Layout, codec: str, out: bytearray) -> None:
        self.layout = layout
        self.codec = codec
        self.out = out
        self.fullwidth_space = "\u3000".encode(codec)

    def error(self, code: str, path: str, entry: Item | Group, reason: str) -> GatewayError:
        return GatewayError(
            code,
            f"NACCS layout {self.layout.business} item {path} ({entry.name}): {reason}",
            Position(path=f"{self.layout.business}/{path}"),
        )

    def entries(self, entries: Sequence[Item | Group], values: Mapping[str, Any], prefix: str) -> None:
        if not isinstance(values, Mapping):
            raise GatewayError(
                "OUT-15",
                f"NACCS layout {self.layout.business}: values at {prefix or '(top level)'} must be a mapping of "
                f"item ids, not {type(values).__name__}",
                Position(path=f"{self.layout.business}/{prefix}"),
            )
        known = {e.id for e in entries}
        unknown = sorted(str(k) for k in values if k not in known)
        if unknown:
            raise GatewayError(
                "OUT-15",
                f"NACCS layout {self.layout.business}: no item {', '.join(unknown)}"
                f"{' in ' + prefix.rstrip('.') if prefix else ''}",
                Position(path=f"{self.layout.business}/{prefix}{unknown[0]}"),
            )
        for entry in entries:
            path = f"{prefix}{entry.id}"
            value = values.get(entry.id)
            if isinstance(entry, Group):
                self.group(entry, value, path)
            else:
                self.item_occurrences(entry, value, path)

    def occurrences(self, entry: Item | Group, value: Any, path: str, kind: type | tuple[type, ...]) -> list[Any]:
        """``value`` as a list of occurrences, at most ``entry.repeat`` long."""
        if value is None:
            return []
        if isinstance(value, kind):
            return [value]
        if not isinstance(value, list | tuple):
            raise self.error("OUT-15", path, entry, f"expects a list of occurrences, not {type(value).__name__}")
        if len(value) > entry.repeat:
            raise self.error("OUT-15", path, entry, f"{len(value)} occurrences given, it repeats {entry.repeat}")
        return list(value)

    def group(self, group: Group, value: Any, path: str) -> None:
        given = self.occurrences(group, value, path, Mapping)
        blank = [occ is None or (isinstance(occ, Mapping) and not occ) for occ in given]
        if group.mandatory == "M" and (not given or blank[0]):
            raise self.error("OUT-13", path, group, "mandatory group has no first occurrence")
        count = group.repeat
        if group.omit_unused:
            count = max((i + 1 for i, b in enumerate(blank) if not b), default=0)
        for index in range(count):
            occ = given[index] if index < len(given) and not blank[index] else None
            occ_path = f"{path}[{index + 1}]."
            if occ is None:
                self.blank_entries(group.items)
            else:
                self.entries(group.items, occ, occ_path)

    def blank_entries(self, entries: Sequence[Item | Group]) -> None:
        for entry in entries:
            for _ in range(entry.repeat):
                if isinstance(entry, Group):
                    self.blank_entries(entry.items)
                else:
                    self.out += self.blank(entry) + CRLF

    def item_occurrences(self, item: Item, value: Any, path: str) -> None:
        if item.repeat == 1:
            if isinstance(value, list | tuple):
                raise self.error("OUT-15", path, item, "does not repeat; give one value, not a list")
            self.item(item, value, path)
            return
        given = self.occurrences(item, value, path, (str, int, Decimal))
        if item.mandatory == "M" and (not given or _absent(given[0])):
            raise self.error("OUT-13", path, item, "mandatory item has no value in its first occurrence")
        for index in range(item.repeat):
            occ = given[index] if index < len(given) else None
            self.item(item, occ, f"{path}[{index + 1}]", check_mandatory=False)

    def blank(self, item: Item) -> bytes:
        if item.padding == "fullwidth_space":
            return self.fullwidth_space * (item.length // len(self.fullwidth_space))
        return b" " * item.length

    def item(self, item: Item, value: Any, path: str, *, check_mandatory: bool = True) -> None:
        if _absent(value):
            if check_mandatory and item.mandatory == "M":
                raise self.error("OUT-13", path, item, "mandatory item has no value")
            self.out += self.blank(item) + CRLF
            return
        text = self.text(item, value, path)
        raw = self.encode(item, text, path)
        self.check_type(item, text, path)
        if len(raw) > item.length:
            raise self.error(
                "OUT-10",
                path,
                item,
                f"value is {len(raw)} bytes in {self.codec}, the item has {item.length} (never truncated)",
            )
        fill = item.length - len(raw)
        if item.padding == "zero":
            pad = b"0" * fill
        elif item.padding == "fullwidth_space":
            pad = self.fullwidth_space * (fill // len(self.fullwidth_space)) + b" " * (fill % len(self.fullwidth_space))
        else:
            pad = b" " * fill
        self.out += (raw + pad if item.justification == "left" else pad + raw) + CRLF

    def text(self, item: Item, value: Any, path: str) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise self.error(
                "OUT-12", path, item, f"a {type(value).__name__} is not a value; give a string, int or Decimal"
            )
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise self.error("OUT-12", path, item, f"{value} is not a number that can be written")
            return format(value, "f")
        return str(value)

    def encode(self, item: Item, text: str, path: str) -> bytes:
        try:
            return text.encode(self.codec)
        except UnicodeEncodeError as exc:
            char = exc.object[exc.start]
            raise self.error(
                "OUT-11",
                path,
                item,
                f"character {char!r} (U+{ord(char):04X}) at position {exc.start + 1} cannot be written in {self.codec}",
            ) from None

    def check_type(self, item: Item, text: str, path: str) -> None:
        if item.type == "an":
            for pos, ch in enumerate(text, 1):
                if not (" " <= ch <= "~"):
                    raise self.error(
                        "OUT-12", path, item, f"character {ch!r} at position {pos} is not half-width (type an)"
                    )
        elif item.type == "n":
            whole, point, fraction = text.partition(".")
            digits_ok = (
                whole.isascii() and whole.isdigit() and (not point or (fraction.isascii() and fraction.isdigit()))
            )
            if not digits_ok:
                raise self.error("OUT-12", path, item, f"{text!r} is not digits (type n)")
            if point and len(fraction) > item.decimals:
                allowed = f"at most {item.decimals} decimals" if item.decimals else "no decimal point"
                raise self.error(
                    "OUT-12", path, item, f"{text!r} has {len(fraction)} decimals, the item allows {allowed}"
                )
        else:
            for pos, ch in enumerate(text, 1):
                if len(ch.encode(self.codec)) != 2 or unicodedata.east_asian_width(ch) == "H":
                    raise self.error(
                        "OUT-12",
                        path,
                        item,
                        f"character {ch!r} at position {pos} is not a double-byte (full-width) character (type j)",
                    )
