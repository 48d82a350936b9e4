"""The decimal mark of numeric values (ISO 9735): the UNA's in syntax versions 1-3, comma or full stop in 4.

What would break: a comma accepted where a syntax 3 UNA declares a full stop (or the reverse), a syntax 4
interchange refused for either mark, the validator's fast path remembering a text across decimal-mark rules,
or a file without a UNA refused for a mark (the documented leniency).
"""

from __future__ import annotations

import pytest

from gateway import edifact
from gateway.edifact import validator
from gateway.edifact.syntax import DEFAULT, Delimiters, decimal_marks

BODY = (
    "UNH+1+COPARN:D:95B:UN:SMDG16'BGM+126+BKG0000001+9'RFF+BN:ONEYTYO0000001'"
    "TDT+20+012E+1++ONEY:172:20+++JD7712:103::ONE APUS'LOC+9+JPTYO:139:6'LOC+11+USLAX:139:6'"
    "DTM+133:202612011800:203'NAD+CA+ONEY:160:20'EQD+CN+CSQU3054383+45G1:102:5++2+5'RFF+BN:ONEYTYO0000001'"
    "MEA+AAE+G+KGM:{weight}'MEA+AAE+VGM+KGM:28350'SEL+SL000001+CA'FTX+AAA+++AUTO PARTS?: SPARE'CNT+16:1'"
    "UNT+16+1'"
)


def interchange(weight: str, *, una: str | None, version: str) -> bytes:
    header = f"UNB+UNOA:{version}+ONEY:ZZZ+JPTYOCY1:ZZZ+261124:0930+DEC1'"
    return ((una or "") + header + BODY.format(weight=weight) + "UNZ+1+DEC1'").encode()


def codes(raw: bytes) -> list[tuple[str, str, int | None, int | None]]:
    _, messages = edifact.read(raw)
    assert [m.errors for m in messages] == [[]]
    found = validator.validate(messages[0]) or []
    return [(p.code, p.segment.tag, p.element, p.component) for p in found]


WRONG_MARK = [("37", "MEA", 3, 2)]


@pytest.mark.parametrize("version", ["1", "2", "3"])
def test_syntax_1_to_3_accept_only_the_mark_the_una_declares(version: str) -> None:
    assert codes(interchange("24500.5", una="UNA:+.? '", version=version)) == []
    assert codes(interchange("24500,5", una="UNA:+.? '", version=version)) == WRONG_MARK
    assert codes(interchange("24500,5", una="UNA:+,? '", version=version)) == []
    assert codes(interchange("24500.5", una="UNA:+,? '", version=version)) == WRONG_MARK
    assert codes(interchange(",5", una="UNA:+.? '", version=version)) == WRONG_MARK
    assert codes(interchange("-24500", una="UNA:+,? '", version=version)) == []  # no mark, nothing to refuse


@pytest.mark.parametrize("una", ["UNA:+.? '", "UNA:+,? '"])
def test_syntax_4_accepts_comma_and_full_stop_whatever_the_una_says(una: str) -> None:
    assert codes(interchange("24500.5", una=una, version="4")) == []
    assert codes(interchange("24500,5", una=una, version="4")) == []


def test_without_una_both_marks_are_accepted() -> None:
    """Leniency: ISO 9735 versions 1-3 default to a comma, but senders without a UNA mostly write a full stop."""
    assert codes(interchange("24500.5", una=None, version="3")) == []
    assert codes(interchange("24500,5", una=None, version="3")) == []


def test_the_remembered_valid_texts_do_not_cross_decimal_mark_rules() -> None:
    """The same segment text is valid under one rule and not under another: the fast path must not mix them."""
    for _ in range(2):  # the second round finds every text remembered from the first
        assert codes(interchange("24500,5", una="UNA:+,? '", version="3")) == []
        assert codes(interchange("24500,5", una="UNA:+.? '", version="3")) == WRONG_MARK
        assert codes(interchange("24500,5", una="UNA:+.? '", version="4")) == []


def test_the_wrong_mark_is_reported_with_its_element_and_code_37() -> None:
    _, [msg] = edifact.read(interchange("24500,5", una="UNA:+.? '", version="3"))
    [problem] = validator.validate(msg) or []
    error = problem.as_error(msg.number)
    assert error.code == "EDI-37" and "','" in problem.text and "'.'" in problem.text
    assert (error.position.segment_number, error.position.element, error.position.component) == (12, 3, 2)


def test_decimal_marks_rule() -> None:
    comma = Delimiters.from_una("UNA:+,? '")
    assert decimal_marks(comma, "3") == "," and decimal_marks(comma, "4") == ".,"
    assert decimal_marks(Delimiters.from_una("UNA:+.? '"), "2") == "."
    assert decimal_marks(DEFAULT, "3") == ".,"  # no UNA
    assert decimal_marks(Delimiters.from_una("UNA:+/? '"), "3") == ".,"  # neither comma nor full stop: lenient
    assert comma.declared and not DEFAULT.declared and Delimiters.from_una("UNA:+.? '") == DEFAULT
