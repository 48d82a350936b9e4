"""Container numbers: a wrong check digit must never reach the canonical model."""

import pytest

from gateway import iso6346


@pytest.mark.parametrize("number", ["CSQU3054383", "MSCU1234566", "TGHU8765436", "NYKU3001000"])
def test_valid_numbers_pass(number: str) -> None:
    assert iso6346.problem(number) is None


def test_check_digit_of_the_standard_example() -> None:
    # ISO 6346's own worked example: CSQU305438 has check digit 3 (10 → 0 rule not involved)
    assert iso6346.check_digit("CSQU305438") == 3


@pytest.mark.parametrize(
    ("number", "reason"),
    [("CSQU3054384", "check digit 4"), ("CSQ3054383", "not shaped"), ("csqu3054383", "not shaped"), ("", "not shaped")],
)
def test_invalid_numbers_say_why(number: str, reason: str) -> None:
    problem = iso6346.problem(number)
    assert problem is not None and reason in problem
    with pytest.raises(ValueError):
        iso6346.require_valid(number)
