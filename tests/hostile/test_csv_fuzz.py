"""CSV hostile input: the reader (``gateway/formats/csv.py``) and the pipeline with both CSV mappings.

``tests/unit/formats/test_csv.py`` covers the reader's named cases (encodings, delimiters, long rows). Here mutated
example lists (mappings/csv/examples: CP932 with a comma, UTF-8 with a BOM and semicolons) and any bytes go to the
reader with every option set, and through ``Gateway.accept`` on the NYK channel (container-list.yaml,
``bad_rows: reject``) and the NMOT channel (nxtport-nmot.yaml, ``bad_rows: skip``). What would break: an exception
other than FMT-8 from the reader (the csv module's own errors: a field over its size limit), or a file ending INT-1.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.app import Gateway
from gateway.errors import GatewayError
from gateway.formats import csv as csvformat
from tests.hostile.conftest import CSV_SEEDS, assert_coded, bounded, hostile
from tests.hostile.pipeline import accept_and_check

EXAMPLES = 500


@bounded(EXAMPLES)
@given(
    hostile(CSV_SEEDS),
    st.sampled_from(["auto", "utf-8", "cp932", "shift_jis"]),
    st.sampled_from(["auto", ",", ";", "\t", "|"]),
    st.integers(1, 3),
)
def test_the_reader_gives_a_table_or_fmt_8(data: bytes, encoding: str, delimiter: str, header_row: int) -> None:
    """500 examples, each read with one encoding, delimiter and header row."""
    try:
        csvformat.read(data, encoding=encoding, delimiter=delimiter, header_row=header_row)
    except GatewayError as err:
        assert_coded(err.code, "FMT")


@bounded(EXAMPLES)
@given(hostile(CSV_SEEDS), st.sampled_from(["nyk-lists", "nmot-lists"]))
def test_a_hostile_csv_file_ends_done_or_failed_with_a_code(
    pipeline_gateway: Gateway, data: bytes, channel: str
) -> None:
    """500 examples through Gateway.accept on SQLite, on one of the two CSV channels."""
    accept_and_check(pipeline_gateway, data, channel)


@pytest.mark.parametrize(
    ("raw", "rows"),
    [
        (b"a,b\n" + b"x" * 200_000 + b",y\n", None),  # a cell over the csv module's 131,072-character limit
        (b'a,b\n"' + b"x" * 200_000 + b"\n", None),  # an unterminated quote running to the end
        (b"a,b\rc,d\n1,2\n", 2),  # a lone CR (old Mac line end) inside the file
        (b"a,b\n\x00,\x00\n", 1),
    ],
    ids=["huge-cell", "unterminated-quote", "lone-cr", "nul"],
)
def test_pathological_cells_are_read_or_fmt_8(raw: bytes, rows: int | None) -> None:
    """A cell larger than the csv module's field size limit, or a lone CR, raised _csv.Error from the reader
    (INT-1 in the pipeline) before the reader caught it as FMT-8 and read with ``newline=""``."""
    if rows is None:
        with pytest.raises(GatewayError) as err:
            csvformat.read(raw)
        assert err.value.code == "FMT-8" and "field limit" in err.value.text
    else:
        table = csvformat.read(raw)
        assert table.headers == ["a", "b"] and len(table.rows) == rows
