"""Byte-exact golden tests: each layout's filled example (examples.py) rendered and compared with golden/*.txt.

The golden files are EUC-JP, CRLF after every item. golden/CYH.txt was written by hand item by item (the
expected lines are also spelt out below); the others were written from the examples by following
naccs/README.md's rules with a separate throwaway writer, not with gateway.naccs.render, and read by eye.
Kanji values make the byte lengths count: a 70-byte j item holding 10 kanji is 20 bytes + 50 spaces.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.naccs.frame import InputHeader
from gateway.naccs.layout import layout
from gateway.naccs.render import render, render_message
from tests.unit.naccs.examples import EXAMPLES

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("business", sorted(EXAMPLES))
def test_layout_renders_byte_exact(business: str) -> None:
    """Would break on any change of an item's length, order, padding, justification, repeat or encoding."""
    expected = (GOLDEN / f"{business}.txt").read_bytes()
    got = render(layout(business), EXAMPLES[business])
    if got != expected:  # show the first differing item line, not two 40 KB blobs
        for number, (a, b) in enumerate(zip(got.split(b"\r\n"), expected.split(b"\r\n"), strict=False), 1):
            assert a == b, f"{business} line {number}: {a!r} != {b!r}"
    assert got == expected
    assert len(got) == layout(business).size


def test_every_line_of_every_golden_is_its_item_length() -> None:
    """Independent of the renderer: the golden files themselves have one line per item occurrence, each exactly
    its byte length. Would break if a golden file were regenerated wrongly.
    """
    from gateway.naccs.layout import Group, Item

    def lengths(entries: list[Item | Group]) -> list[int]:
        out: list[int] = []
        for e in entries:
            if isinstance(e, Group):
                out += lengths(e.items) * e.repeat
            else:
                out += [e.length] * e.repeat
        return out

    for business in EXAMPLES:
        lines = (GOLDEN / f"{business}.txt").read_bytes().split(b"\r\n")
        assert lines[-1] == b""
        assert [len(line) for line in lines[:-1]] == lengths(layout(business).items), business


def test_cyh_golden_spelt_out() -> None:
    """The CYH golden as reasoned item by item; would break if the file and this reasoning disagreed."""
    lines = [
        "9",
        "MSCU1234565 ",
        "20250401",
        "0930",
        " ",
        "3FZX9    ",
        "025E      ",
        "MSCU",
        "TYO123456" + " " * 26,
        "5",
        "45G1",
        "SL001" + " " * 10,
        "SL002" + " " * 10,
        " " * 15,
        "   23450.5",  # n: right-justified, space-padded
        "     23460",
        " ",
        " " * 5,
        "USLAX",
        " " * 5,
        "冷凍貨物　要温度管理" + " " * 50,  # 10 double-byte characters = 20 bytes in EUC-JP
    ]
    expected = b"".join(line.encode("euc_jp") + b"\r\n" for line in lines)
    assert (GOLDEN / "CYH.txt").read_bytes() == expected
    assert expected.count(b"\xce\xe4\xc5\xe0") == 1  # 冷凍 in EUC-JP


def test_whole_message_with_header() -> None:
    """Header + CRLF + golden business part, length at 392 = len(message), business code taken from the layout.

    Would break if render_message framed the business part differently from build_message.
    """
    header = InputHeader("", "ABCDE", "001", password="PASSWORD", handover="DL-0123456789", input_id="1")
    message = render_message(layout("CYH"), EXAMPLES["CYH"], header)
    business = (GOLDEN / "CYH.txt").read_bytes()
    assert message[3:8] == b"CYH  "
    assert message[219:245] == b"DL-0123456789".ljust(26)
    assert message[400:] == business
    assert int(message[392:398]) == len(message) == 400 + len(business)
