"""CSV reading: encodings from Japanese spreadsheets, delimiters, line numbers people can find."""

from __future__ import annotations

import pytest

from gateway.errors import GatewayError
from gateway.formats import csv as csvformat

HEADER = "コンテナ番号,荷主\r\n"
ROW = "NYKU5123455,港南通商株式会社\r\n"


@pytest.mark.parametrize(
    ("raw", "encoding"),
    [
        ((HEADER + ROW).encode("cp932"), "cp932"),  # Excel on Japanese Windows
        ((HEADER + ROW).encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + (HEADER + ROW).encode("utf-8"), "utf-8-sig"),  # Excel's "CSV UTF-8"
    ],
)
def test_japanese_text_reads_the_same_in_every_encoding(raw: bytes, encoding: str) -> None:
    """Breaks if CP932 is tried before UTF-8 (it would mangle UTF-8 kanji) or the BOM lands in the header."""
    table = csvformat.read(raw)
    assert table.encoding == encoding
    assert table.headers == ["コンテナ番号", "荷主"]
    assert table.rows == [(2, {"コンテナ番号": "NYKU5123455", "荷主": "港南通商株式会社"})]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_found_from_the_header(delimiter: str) -> None:
    raw = delimiter.join(["Container No", "Booking No", "Seal"]).encode() + b"\nNYKU5123455" + delimiter.encode() * 2
    assert csvformat.read(raw).delimiter == delimiter


def test_line_numbers_count_blank_lines_and_quoted_line_breaks() -> None:
    """Breaks if a row's number drifts from the line a person sees in the spreadsheet."""
    raw = b'a,b\n1,"two\nlines"\n\n3,x\n'
    assert [line for line, _ in csvformat.read(raw).rows] == [3, 5]


def test_bytes_in_no_supported_encoding_are_fmt_8_with_the_offset() -> None:
    with pytest.raises(GatewayError) as info:
        csvformat.read(b"a,b\n\x82\xff,1\n")
    assert info.value.code == "FMT-8" and info.value.position.path == "byte 4"


def test_a_row_longer_than_the_header_is_fmt_8_naming_the_row() -> None:
    with pytest.raises(GatewayError) as info:
        csvformat.read(b"a,b\n1,2\n1,2,3\n")
    assert info.value.code == "FMT-8" and info.value.position.path == "row 3"


def test_a_header_of_one_column_is_fmt_8() -> None:
    with pytest.raises(GatewayError) as info:
        csvformat.read(b"justone\nvalue\n")
    assert info.value.code == "FMT-8"
