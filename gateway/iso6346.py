"""ISO 6346 container numbers: owner code (3 letters), category (U, J or Z), 6 digits, check digit."""

from __future__ import annotations

import re

_SHAPE = re.compile(r"^[A-Z]{3}[UJZ][0-9]{6}[0-9]$")
# Letter values skip multiples of 11 (11, 22, 33), as the standard prescribes.
_LETTER_VALUES = {
    letter: value
    for letter, value in zip(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        [v for v in range(10, 39) if v % 11 != 0],
        strict=True,
    )
}


def check_digit(first_ten: str) -> int:
    """The check digit of the first ten characters (owner, category, serial)."""
    total = 0
    for i, ch in enumerate(first_ten):
        value = int(ch) if ch.isdigit() else _LETTER_VALUES[ch]
        total += value * (2**i)
    return total % 11 % 10


def problem(number: str) -> str | None:
    """Why ``number`` is not a valid ISO 6346 container number, or None when it is."""
    if not _SHAPE.match(number):
        return f"{number!r} is not shaped like a container number (AAAU1234567)"
    expected = check_digit(number[:10])
    if int(number[10]) != expected:
        return f"{number!r} has check digit {number[10]}, ISO 6346 gives {expected}"
    return None


def require_valid(number: str) -> None:
    reason = problem(number)
    if reason:
        raise ValueError(reason)
