"""Inbound CSV: container and booking lists from carriers' spreadsheets.

Japanese spreadsheets are saved as CP932 (Shift_JIS with Microsoft's extensions) more often than as UTF-8,
and Excel adds a byte-order mark to UTF-8. ``auto`` tries UTF-8 (BOM or not) first, because CP932 would
accept many UTF-8 byte strings and mangle them, then CP932. The delimiter is the one of ``, ; TAB |`` that
splits the header line into the most columns. Rows are returned with their line numbers, so that an error
names the row and column a person sees in the spreadsheet.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from gateway.errors import GatewayError, Position
from gateway.mapping.sources import header_key

DELIMITERS = (",", ";", "\t", "|")


def decode(raw: bytes, encoding: str = "auto") -> tuple[str, str]:
    """(text, encoding used); FMT-8 with the byte offset when the bytes are not in the encoding."""
    if encoding != "auto":
        candidates = [encoding]
    elif raw.startswith(b"\xef\xbb\xbf"):
        candidates = ["utf-8-sig"]
    else:
        candidates = ["utf-8", "cp932"]
    first_error: UnicodeDecodeError | None = None
    for name in candidates:
        try:
            return raw.decode(name), name
        except UnicodeDecodeError as exc:
            first_error = first_error or exc
    assert first_error is not None
    tried = " or ".join(candidates)
    raise GatewayError(
        "FMT-8",
        f"the CSV file is not {tried}: byte {first_error.start} ({raw[first_error.start : first_error.start + 1]!r})",
        Position(path=f"byte {first_error.start}"),
        step="parse",
    )


def sniff_delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    if counts[best] == 0:
        raise GatewayError("FMT-8", "the CSV header has one column only; no delimiter found", step="parse")
    return best


@dataclass(frozen=True)
class Table:
    encoding: str
    delimiter: str
    headers: list[str]  # as written in the file
    rows: list[tuple[int, dict[str, str]]]  # (line number, header_key → cell)


def read(raw: bytes, *, encoding: str = "auto", delimiter: str = "auto", header_row: int = 1) -> Table:
    """The header and data rows; blank lines are skipped, a row longer than the header is FMT-8."""
    text, used = decode(raw, encoding)
    lines = text.splitlines(keepends=True)
    if len(lines) < header_row:
        raise GatewayError("FMT-8", f"the CSV file has no header at line {header_row}", step="parse")
    delim = sniff_delimiter(lines[header_row - 1]) if delimiter == "auto" else delimiter
    # newline="": the csv module sees the line breaks as written, so a lone CR ends a line as splitlines() did
    reader = csv.reader(io.StringIO("".join(lines[header_row - 1 :]), newline=""), delimiter=delim)
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        headers = [h.strip() for h in next(reader)]
        keys = [header_key(h) for h in headers]
        for values in reader:
            # line_num counts physical lines, so a quoted cell with a line break keeps the numbers right
            line = header_row - 1 + reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) > len(keys):
                raise GatewayError(
                    "FMT-8",
                    f"row {line} has {len(values)} cells, the header {len(keys)}",
                    Position(path=f"row {line}"),
                    step="parse",
                )
            rows.append((line, dict(zip(keys, values, strict=False))))
    except csv.Error as exc:  # a cell over the csv module's field size limit (131,072 characters)
        line = header_row - 1 + reader.line_num
        raise GatewayError(
            "FMT-8", f"the CSV file cannot be read at row {line}: {exc}", Position(path=f"row {line}"), step="parse"
        ) from None
    return Table(used, delim, headers, rows)
