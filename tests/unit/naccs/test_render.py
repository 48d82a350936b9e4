"""Rendering rules and every refusal: too long in bytes, outside the encoding, wrong type, missing, too big, unknown."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from gateway.errors import GatewayError
from gateway.naccs.frame import InputHeader
from gateway.naccs.layout import Layout
from gateway.naccs.render import render, render_message


def make(*items: dict[str, Any], business: str = "TST") -> Layout:
    return Layout.model_validate({"business": business, "name": "test", "status": "provisional", "items": list(items)})


LAYOUT = make(
    {"id": "code", "name": "コード", "length": 5, "type": "an", "mandatory": "M"},
    {"id": "qty", "name": "数量", "length": 6, "type": "n"},
    {"id": "weight", "name": "重量", "length": 8, "type": "n", "decimals": 3},
    {"id": "count", "name": "件数", "length": 4, "type": "n", "pad": "zero"},
    {"id": "note", "name": "記事", "length": 10, "type": "j"},
    {"id": "seals", "name": "シール", "length": 3, "type": "an", "repeat": 2},
    {
        "group": "ctr",
        "name": "コンテナ",
        "repeat": 2,
        "items": [
            {"id": "cno", "name": "コンテナ番号", "length": 11, "type": "an", "mandatory": "M"},
            {"id": "size", "name": "サイズ", "length": 2, "type": "n"},
        ],
    },
)


def lines(data: bytes) -> list[bytes]:
    assert data.endswith(b"\r\n")
    return data[:-2].split(b"\r\n")


def error(values: dict[str, Any], layout: Layout = LAYOUT) -> GatewayError:
    with pytest.raises(GatewayError) as err:
        render(layout, values)
    return err.value


def test_justification_padding_and_blanks() -> None:
    """an left/space, n right/space, zero pad on request, j left, repeats and groups blank when not given.

    Would break if a default changed (README documents them) or an absent item were written as zeros.
    """
    out = lines(render(LAYOUT, {"code": "AB", "qty": 12, "weight": Decimal("1.5"), "count": 7, "note": "東京"}))
    assert out == [
        b"AB   ",
        b"    12",
        b"     1.5",
        b"0007",
        "東京".encode("euc_jp") + b"      ",
        b"   ",
        b"   ",
        b" " * 11,
        b"  ",
        b" " * 11,
        b"  ",
    ]


def test_absent_zero_padded_item_is_blank_not_zero() -> None:
    """Blank means 'not entered' for every type; would break if zero padding filled an absent item."""
    assert lines(render(LAYOUT, {"code": "A"}))[3] == b"    "


def test_repeats_and_groups() -> None:
    """Lists fill occurrences in order; would break if occurrences were reordered or the unused ones dropped."""
    out = lines(render(LAYOUT, {"code": "A", "seals": ["S1", "S2"], "ctr": [{"cno": "MSCU1234565", "size": 40}]}))
    assert out[5:] == [b"S1 ", b"S2 ", b"MSCU1234565", b"40", b" " * 11, b"  "]


def test_omit_unused_group_occurrences() -> None:
    """A group with omit_unused writes only the occurrences up to the last one given."""
    layout = make(
        {"id": "a", "name": "A", "length": 1, "type": "an"},
        {
            "group": "g",
            "name": "G",
            "repeat": 5,
            "omit_unused": True,
            "items": [{"id": "b", "name": "B", "length": 2, "type": "an"}],
        },
    )
    assert render(layout, {"g": [{"b": "x"}, None, {"b": "y"}]}) == b" \r\nx \r\n  \r\ny \r\n"
    assert render(layout, {}) == b" \r\n"


def test_fullwidth_space_padding() -> None:
    """pad: fullwidth_space pads a j item with U+3000 (2 bytes each); would break if it padded with ASCII spaces."""
    layout = make({"id": "n", "name": "名", "length": 8, "type": "j", "pad": "fullwidth_space"})
    assert render(layout, {"n": "港"}) == ("港" + "\u3000" * 3).encode("euc_jp") + b"\r\n"
    assert render(layout, {}) == ("\u3000" * 4).encode("euc_jp") + b"\r\n"


def test_too_long_in_bytes_is_out_10_never_truncated() -> None:
    """6 kanji are 6 characters but 12 bytes: refused for a 10-byte j item. Would break if length counted
    characters or a value were cut to fit.
    """
    err = error({"code": "A", "note": "東京港大井埠"})
    assert err.code == "OUT-10"
    assert "TST" in err.text and "note" in err.text and "12 bytes" in err.text
    assert err.position.path == "TST/note"
    assert error({"code": "ABCDEF"}).code == "OUT-10"
    assert error({"code": "A", "qty": 1234567}).code == "OUT-10"


@pytest.mark.parametrize(("item", "value"), [("note", "髙橋"), ("note", "①"), ("code", "😀")])
def test_character_outside_the_encoding_is_out_11(item: str, value: str) -> None:
    """EUC-JP cannot write 髙, ① or an emoji; would break if such characters were replaced by '?' silently."""
    err = error({"code": "A", item: value})
    assert err.code == "OUT-11"
    assert item in err.text and repr(value[0]) in err.text


@pytest.mark.parametrize(
    ("values", "item"),
    [
        ({"qty": "12a"}, "qty"),
        ({"qty": "-5"}, "qty"),
        ({"qty": "1.5"}, "qty"),  # no decimals allowed
        ({"weight": "1.2345"}, "weight"),  # more than 3 decimals
        ({"qty": "１２"}, "qty"),  # full-width digits
        ({"note": "ABC"}, "note"),  # half-width in j
        ({"note": "ｱｲ"}, "note"),  # half-width kana in j (2 bytes in EUC-JP, still half-width)
        ({"code": "東"}, "code"),  # kanji in an
        ({"code": "A\r\nB"}, "code"),  # a CRLF would break the frame
        ({"qty": 1.5}, "qty"),  # floats are refused: give a string or Decimal
        ({"qty": True}, "qty"),
    ],
)
def test_wrong_type_is_out_12(values: dict[str, Any], item: str) -> None:
    """Type rules of naccs/README.md; would break if a rule were relaxed or values were converted."""
    err = error({"code": "A", **values})
    assert err.code == "OUT-12", err
    assert item in err.text


def test_missing_mandatory_is_out_13() -> None:
    """M items, M items inside a given group occurrence, the first occurrence of an M repeat or group.

    Would break if a blank mandatory item were sent (NACCS would refuse it after the fact).
    """
    err = error({})
    assert err.code == "OUT-13" and "code" in err.text
    assert error({"code": "  "}).code == "OUT-13"
    inner = error({"code": "A", "ctr": [{"size": 20}]})
    assert inner.code == "OUT-13" and "ctr[1].cno" in inner.text
    group = make(
        {
            "group": "g",
            "name": "G",
            "repeat": 3,
            "mandatory": "M",
            "items": [{"id": "b", "name": "B", "length": 1, "type": "an"}],
        }
    )
    assert error({"g": []}, group).code == "OUT-13"
    repeated = make({"id": "r", "name": "R", "length": 2, "type": "an", "repeat": 3, "mandatory": "M"})
    assert error({"r": [None, "x"]}, repeated).code == "OUT-13"
    assert render(repeated, {"r": ["ab"]}) == b"ab\r\n  \r\n  \r\n"


def test_f_items_render_like_c() -> None:
    """F (mandatory under a condition) is not checked by the renderer; would break if it were treated as M."""
    layout = make({"id": "f", "name": "F", "length": 1, "type": "an", "mandatory": "F"})
    assert render(layout, {}) == b" \r\n"


def test_message_over_700000_bytes_is_out_14() -> None:
    """A business part that makes the message exceed 700,000 bytes is refused at render time."""
    layout = make({"id": "big", "name": "大", "length": 1000, "type": "an", "repeat": 700})
    err = error({}, layout)
    assert err.code == "OUT-14" and "700,000" in err.text


@pytest.mark.parametrize(
    "values",
    [
        {"code": "A", "colour": "red"},
        {"code": "A", "seals": ["a", "b", "c"]},
        {"code": "A", "qty": [1]},
        {"code": "A", "ctr": [{"cno": "X", "extra": 1}]},
        {"code": "A", "ctr": [{}, {}, {}]},
        {"code": "A", "ctr": "MSCU"},
    ],
)
def test_values_that_do_not_fit_the_layout_are_out_15(values: dict[str, Any]) -> None:
    """An unknown key or too many occurrences is refused; would break if a misspelt mapping key were ignored."""
    assert error(values).code == "OUT-15"


def test_render_message_checks_the_business_code() -> None:
    """A header for another business is OUT-16; would break if an EDA layout could go out headed ECR."""
    header = InputHeader("ECR", "ABCDE", "001")
    with pytest.raises(GatewayError) as err:
        render_message(LAYOUT, {"code": "A"}, header)
    assert err.value.code == "OUT-16"
    message = render_message(LAYOUT, {"code": "A"}, InputHeader("TST", "ABCDE", "001"))
    assert message[3:8] == b"TST  "


def test_shift_jis_encoding() -> None:
    """The encoding is configurable; kanji count 2 bytes in Shift_JIS too. Would break if EUC-JP were hard-wired."""
    out = render(LAYOUT, {"code": "A", "note": "東京"}, encoding="shift_jis")
    assert lines(out)[4] == "東京".encode("shift_jis") + b"      "
