"""EDIFACT hostile input: tokenizer, envelope reader, validator and CONTRL builder, then the whole pipeline.

``tests/unit/edifact/test_properties.py`` already feeds any bytes (500 examples) to the envelope reader alone;
here mutated real interchanges (every example under mappings/edifact/examples and samples/) go through reading,
validating and acknowledging, and through ``Gateway.accept``. What would break: an exception other than a coded
GatewayError from the EDIFACT engine (a crash in the channel thread), or a payload ending INT-1 (a bug) instead
of failed with an EDI-/MAP-/PER- code.
"""

from __future__ import annotations

from datetime import datetime

from hypothesis import given

from gateway.app import Gateway
from gateway.edifact.contrl import MessageReport, build
from gateway.edifact.envelope import read_all
from gateway.edifact.validator import validate
from gateway.errors import GatewayError
from tests.hostile.conftest import EDIFACT_SEEDS, assert_coded, bounded, hostile
from tests.hostile.pipeline import accept_and_check

EXAMPLES = 600


@bounded(EXAMPLES)
@given(hostile(EDIFACT_SEEDS))
def test_read_validate_and_acknowledge_give_a_result_or_a_coded_error(data: bytes) -> None:
    """600 examples (mutated interchanges and raw bytes)."""
    try:
        interchanges, messages = read_all(data, allow_bare=True)
    except GatewayError as err:
        assert_coded(err.code, "EDI")
        return
    reports = [MessageReport(m, validate(m) or []) for m in messages]
    for inter in interchanges:
        build(inter, [r for r in reports if r.message.interchange is inter], reference="F", now=datetime(2026, 1, 1))


@bounded(EXAMPLES)
@given(hostile(EDIFACT_SEEDS))
def test_a_hostile_interchange_ends_done_or_failed_with_a_code(pipeline_gateway: Gateway, data: bytes) -> None:
    """600 examples through Gateway.accept on SQLite."""
    accept_and_check(pipeline_gateway, data)
