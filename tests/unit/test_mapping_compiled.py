"""The mapping engine's speed-ups keep its results: compiled plans, dates read by slicing, fields read once."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

import pytest

from gateway.edifact.envelope import read_all
from gateway.mapping import engine, functions
from gateway.mapping.functions import _DATE_FORMATS, _DIGIT_LAYOUTS, _parsed
from gateway.mapping.language import load_mapping

ROOT = Path(__file__).resolve().parents[2]
COPARN = ROOT / "mappings" / "edifact" / "coparn.yaml"


def _strptime(value: str, pattern: str) -> datetime | str:
    try:
        return datetime.strptime(value, pattern)
    except ValueError:
        return "error"


def _sliced(value: str, code: str, pattern: str) -> datetime | str:
    try:
        return _parsed(value, code, pattern)
    except ValueError:
        return "error"


@pytest.mark.parametrize("code", sorted(_DATE_FORMATS))
def test_sliced_dates_read_as_strptime_does(code: str) -> None:
    """If the digit-slicing path accepted a date strptime rejects (month 13, hour 24, 29 February of a common
    year) or read one differently (%y's century), a DTM would map to another time than before."""
    pattern = _DATE_FORMATS[code]
    length, year_digits = _DIGIT_LAYOUTS[code]
    rng = random.Random(code)
    values = ["20260229", "20240229", "２０２６１２０１", " 2026120", "2026-1-1", "6912310000", "6801010000"]
    for _ in range(6000):
        size = rng.choice([length - 1, length, length, length + 1])
        values.append("".join(rng.choice("0123456789") for _ in range(size)))
        year = rng.choice(["2026", "1999", "0000", "9999"])[-year_digits:]
        values.append(year + "".join(f"{rng.randint(0, 62):02d}" for _ in range((length - year_digits) // 2)))
    for value in values:
        assert _sliced(value, code, pattern) == _strptime(value, pattern), value


def test_a_mapping_is_compiled_once_per_kind_of_source() -> None:
    """If the plan were rebuilt for each message, mapping would cost the interpretation it was made to save."""
    mapping = load_mapping(COPARN)
    raw = (ROOT / "mappings" / "edifact" / "examples" / "coparn-d95b-two-messages.edi").read_bytes()
    _, messages = read_all(raw)
    first = engine.apply(mapping, messages[0])
    plan = mapping._plan[True]
    second = engine.apply(mapping, messages[1])
    assert mapping._plan[True] is plan and list(mapping._plan) == [True]
    assert first.records and second.records


def test_a_skip_if_missing_field_is_converted_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The container number decides whether the record is kept and is its value: if it were read twice, each
    container would pay the ISO 6346 check twice in the mapping."""
    calls: list[str] = []
    real, doc = functions.REGISTRY["container_number"]

    def counted(value: str, arg: str | None, opts: functions.Options) -> str:
        calls.append(value)
        return real(value, arg, opts)

    monkeypatch.setitem(functions.REGISTRY, "container_number", (counted, doc))
    mapping = load_mapping(COPARN)  # compiled after the patch: the plan binds the converter
    raw = (ROOT / "mappings" / "edifact" / "examples" / "coparn-d95b-two-messages.edi").read_bytes()
    _, messages = read_all(raw)
    containers = [r for msg in messages for r in engine.apply(mapping, msg).records if r.entity == "container"]
    assert containers and len(calls) == len(containers)
