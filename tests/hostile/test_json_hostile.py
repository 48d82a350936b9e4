"""JSON hostile input: the reader (``gateway/formats/json.py``), the type dispatch and the pipeline.

Already proven in ``tests/integration/test_conpas_answer_inbound.py`` (over HTTP, through the pipeline, not
repeated): ``test_hostile_or_broken_json_posted_over_http_is_refused_with_fmt`` (100,000-deep nesting, 65 levels
inside an answer, a 100,000-digit integer, NaN and a repeated key: FMT-10) and
``test_a_json_document_over_the_size_limit_is_refused`` (FMT-10 over MAX_BYTES). Added here: numbers too large
for a double, lone surrogates, brackets inside strings (the depth scan must skip them), and mutated answers and
any bytes through the reader and ``Gateway.accept``.
"""

from __future__ import annotations

import pytest
from hypothesis import given

from gateway.app import Gateway
from gateway.errors import GatewayError
from gateway.formats import json as jsonformat
from tests.hostile.conftest import JSON_SEEDS, assert_coded, bounded, hostile
from tests.hostile.pipeline import accept_and_check

EXAMPLES = 500
ANSWER = b'{"type": "conpas.prematching_answer", "container_number": "CSQU3054383", "prematching_result": %s}'


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (ANSWER % b"1e999", "FMT-10"),  # read as float('inf') before the fix
        (ANSWER % b"-1e400", "FMT-10"),
        (ANSWER % b"1.7976931348623157e308", None),  # the largest double is a number
        (ANSWER % (b"0." + b"1" * 100_000), None),  # a long fraction is only rounded
        (ANSWER % b'"\\ud800"', "FMT-9"),  # a lone surrogate: no UTF-8 text
        (ANSWER % b'"\\ud83d\\ude00"', None),  # a surrogate pair is an emoji
        (ANSWER % b'"\\u0000"', None),
        (b'{"type": "conpas.prematching_answer", "x": "' + b"[" * 100_000 + b'"}', None),  # brackets in a string
        (b'{"type": "conpas.prematching_answer", "x": "\\"' + b"[" * 100 + b'"}', None),  # after an escaped quote
        (b'{"a": "' + b"\\\\" * 50_000 + b'"}', None),  # many escapes: the depth scan stays linear
    ],
    ids=["inf", "minus-inf", "max-double", "long-fraction", "lone-surrogate", "pair", "nul", "brackets", "esc", "bs"],
)
def test_numbers_and_strings_at_the_edges(raw: bytes, code: str | None) -> None:
    """Breaks if 1e999 reads as infinity (stored as a number no JSON or PostgreSQL column can hold) or a lone
    surrogate passes (a str that cannot be encoded to UTF-8 when stored), or brackets inside strings count."""
    if code is None:
        jsonformat.parse(raw)
        return
    with pytest.raises(GatewayError) as err:
        jsonformat.parse(raw)
    assert err.value.code == code


@bounded(EXAMPLES)
@given(hostile(JSON_SEEDS))
def test_the_reader_and_type_dispatch_give_a_result_or_a_coded_error(data: bytes) -> None:
    """500 examples (mutated CONPAS answers and any bytes)."""
    try:
        jsonformat.kind(jsonformat.parse(data))
    except GatewayError as err:
        assert_coded(err.code, "FMT")


@bounded(EXAMPLES)
@given(hostile(JSON_SEEDS))
def test_a_hostile_json_document_ends_done_or_failed_with_a_code(pipeline_gateway: Gateway, data: bytes) -> None:
    """500 examples through Gateway.accept on SQLite (no container is known: a valid answer is PER-3)."""
    accept_and_check(pipeline_gateway, data)
