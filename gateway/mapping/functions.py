"""The small registry of conversions a mapping file may name in ``convert:``; nothing else is callable.

Each function takes the selected text, the optional argument read from ``arg_from`` (a unit, a date format
code) and the mapping's options; it returns the converted value or raises :class:`ConversionError`.
``docs/mappings.md`` lists them for analysts; a test keeps the two in step.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from gateway import iso6346


class ConversionError(ValueError):
    """A value could not be converted; ``code`` is MAP-3 (invalid value) or MAP-4 (conversion failed)."""

    def __init__(self, text: str, code: str = "MAP-4") -> None:
        super().__init__(text)
        self.code = code


@dataclass(frozen=True)
class Options:
    timezone: str = "Asia/Tokyo"  # EDIFACT times carry no zone; Japanese ports run on JST
    decimal_mark: str = "."


Converter = Callable[[str, str | None, Options], Any]
REGISTRY: dict[str, tuple[Converter, str]] = {}


def converter(name: str, doc: str) -> Callable[[Converter], Converter]:
    def register(fn: Converter) -> Converter:
        REGISTRY[name] = (fn, doc)
        return fn

    return register


@converter("container_number", "ISO 6346 container number: spaces removed, upper case, check digit verified")
def container_number(value: str, _arg: str | None, _opts: Options) -> str:
    number = value.replace(" ", "").upper()
    reason = iso6346.problem(number)
    if reason:
        raise ConversionError(reason, code="MAP-3")
    return number


# DTM format codes (UN/EDIFACT 2379) → strptime patterns
_DATE_FORMATS = {
    "102": "%Y%m%d",
    "201": "%y%m%d%H%M",
    "203": "%Y%m%d%H%M",
    "204": "%Y%m%d%H%M%S",
}


# the same codes as slices of a string of exactly that many ASCII digits: (length, year digits)
_DIGIT_LAYOUTS = {"102": (8, 4), "201": (10, 2), "203": (12, 4), "204": (14, 4)}


def _parsed(value: str, code: str, pattern: str) -> datetime:
    """``datetime.strptime(value, pattern)``, read by slicing when ``value`` is all digits at the format's full
    length (then strptime could only split it this way). Anything else, or a date slicing finds impossible, goes
    to strptime itself, so what it accepts and rejects is unchanged."""
    length, year_digits = _DIGIT_LAYOUTS[code]
    if len(value) == length and value.isascii() and value.isdigit():
        year = int(value[:year_digits])
        if year_digits == 2:
            year += 1900 if year >= 69 else 2000  # strptime's %y rule
        rest = [int(value[i : i + 2]) for i in range(year_digits, length, 2)] + [0, 0, 0]
        try:
            return datetime(year, rest[0], rest[1], rest[2], rest[3], rest[4])
        except ValueError:
            pass
    return datetime.strptime(value, pattern)


@converter("datetime", "EDIFACT date/time; arg_from names the DTM format code (102, 201, 203, 204)")
def edifact_datetime(value: str, fmt: str | None, opts: Options) -> datetime:
    code = fmt or {8: "102", 12: "203", 14: "204"}.get(len(value), "")
    pattern = _DATE_FORMATS.get(code)
    if pattern is None:
        raise ConversionError(f"date format code {code or '(none)'} is not supported (102, 201, 203, 204)")
    try:
        return _parsed(value, code, pattern).replace(tzinfo=ZoneInfo(opts.timezone))
    except ValueError:
        raise ConversionError(f"{value!r} is not a date in format {code} ({pattern})") from None


@converter("iso_datetime", "ISO 8601 date or date-time (XML, CSV); without an offset, the mapping's timezone")
def iso_datetime(value: str, _arg: str | None, opts: Options) -> datetime:
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConversionError(f"{value!r} is not an ISO 8601 date or date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(opts.timezone))


_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
MAX_DIGITS = 18  # EDIFACT's longest numeric element (n..18); beyond it a value is no weight, length or count


def _decimal(value: str, opts: Options) -> Decimal:
    """Digits with an optional sign and decimal mark, at most ``MAX_DIGITS`` of them: no exponent, no NaN or
    Infinity (Decimal would take them, and rounding them later raised InvalidOperation: a crash, not MAP-4)."""
    text = value.strip().replace(opts.decimal_mark, ".") if opts.decimal_mark != "." else value.strip()
    if "," in text and "." not in text:
        text = text.replace(",", ".")  # EDIFACT allows either mark
    if not _PLAIN_NUMBER.fullmatch(text):
        raise ConversionError(f"{value[:40]!r} is not a number")
    if sum(c.isdigit() for c in text) > MAX_DIGITS:
        raise ConversionError(f"{value[:40]!r} has more than {MAX_DIGITS} digits")
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ConversionError(f"{value[:40]!r} is not a number") from None


@converter("number", "a decimal number; either decimal mark is accepted")
def number(value: str, _arg: str | None, opts: Options) -> float:
    return float(_decimal(value, opts))


_KG_PER_UNIT = {"KGM": Decimal(1), "KG": Decimal(1), "TNE": Decimal(1000), "LBR": Decimal("0.45359237")}
_CM_PER_UNIT = {"CMT": Decimal(1), "MTR": Decimal(100), "MMT": Decimal("0.1"), "INH": Decimal("2.54")}


def _scaled(
    value: str, unit: str | None, factors: dict[str, Decimal], default: str, digits: int, opts: Options
) -> float:
    """``value`` in ``unit`` (``default`` when absent) converted by its factor in ``factors``."""
    factor = factors.get((unit or default).upper())
    if factor is None:
        raise ConversionError(f"unit {unit!r} is not one of {', '.join(factors)}")
    return float(round(_decimal(value, opts) * factor, digits))


@converter("weight_kg", "a weight in kilograms; arg_from names the unit (KGM, TNE, LBR; KGM when absent)")
def weight_kg(value: str, unit: str | None, opts: Options) -> float:
    return _scaled(value, unit, _KG_PER_UNIT, "KGM", 3, opts)


@converter("temperature_c", "a temperature in °C; arg_from names the unit (CEL, FAH; CEL when absent)")
def temperature_c(value: str, unit: str | None, opts: Options) -> float:
    degrees = _decimal(value, opts)
    match (unit or "CEL").upper():
        case "CEL":
            return float(degrees)
        case "FAH":
            return float(round((degrees - 32) * 5 / 9, 1))
        case other:
            raise ConversionError(f"temperature unit {other!r} is not CEL or FAH")


@converter("length_cm", "a length in centimetres; arg_from names the unit (CMT, MTR, MMT, INH; CMT when absent)")
def length_cm(value: str, unit: str | None, opts: Options) -> float:
    return _scaled(value, unit, _CM_PER_UNIT, "CMT", 1, opts)


@converter("upper", "upper case, surrounding spaces removed")
def upper(value: str, _arg: str | None, _opts: Options) -> str:
    return value.strip().upper()
