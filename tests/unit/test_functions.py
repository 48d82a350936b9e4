"""Conversions named by mapping files: units, dates and check digits."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.mapping.functions import (
    ConversionError,
    Options,
    container_number,
    edifact_datetime,
    length_cm,
    number,
    temperature_c,
    weight_kg,
)

OPTS = Options()


@pytest.mark.parametrize(
    ("value", "unit", "kg"),
    [("24500", "KGM", 24500.0), ("18.2", "TNE", 18200.0), ("1000", "LBR", 453.592), ("12,5", None, 12.5)],
)
def test_weight_kg(value: str, unit: str | None, kg: float) -> None:
    assert weight_kg(value, unit, OPTS) == kg


def test_temperatures() -> None:
    assert temperature_c("-18", "CEL", OPTS) == -18.0
    assert temperature_c("0", "FAH", OPTS) == -17.8
    with pytest.raises(ConversionError):
        temperature_c("1", "KEL", OPTS)


def test_dates_are_jst_by_default() -> None:
    jst = ZoneInfo("Asia/Tokyo")
    assert edifact_datetime("202612011800", "203", OPTS) == datetime(2026, 12, 1, 18, 0, tzinfo=jst)
    assert edifact_datetime("20261201", "102", OPTS) == datetime(2026, 12, 1, tzinfo=jst)
    assert edifact_datetime("20261201", None, OPTS) == datetime(2026, 12, 1, tzinfo=jst)  # format from the length
    with pytest.raises(ConversionError):
        edifact_datetime("20261399", "102", OPTS)
    with pytest.raises(ConversionError):
        edifact_datetime("2026", "999", OPTS)


def test_container_number_normalises_and_checks() -> None:
    assert container_number("csqu 305438 3", None, OPTS) == "CSQU3054383"
    with pytest.raises(ConversionError) as info:
        container_number("CSQU3054384", None, OPTS)
    assert info.value.code == "MAP-3"


def test_numbers_and_lengths() -> None:
    assert number("3,25", None, OPTS) == 3.25
    assert length_cm("0.3", "MTR", OPTS) == 30.0
    with pytest.raises(ConversionError):
        number("abc", None, OPTS)


@pytest.mark.parametrize(
    "value", ["NaN", "sNaN", "Infinity", "-inf", "1e308", "1E3", "99999999999999999999999999", "0x10", "1_000"]
)
def test_numbers_are_plain_digits_of_a_bounded_length(value: str) -> None:
    """Breaks if NaN, Infinity, an exponent or a 26-digit number got past the number conversions: weight_kg and
    length_cm then raised decimal.InvalidOperation (INT-1, a crash) and `number` stored inf or nan."""
    for convert in (number, weight_kg, length_cm, temperature_c):
        with pytest.raises(ConversionError):
            convert(value, None, OPTS)
    assert weight_kg("999999999999999999", None, OPTS) == 999999999999999999.0  # 18 digits: the most allowed
