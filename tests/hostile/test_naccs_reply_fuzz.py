"""NACCS output messages: mutated replies read by ``gateway/naccs/reply.py`` and taken through the pipeline.

Already proven in ``tests/unit/naccs/test_reply.py`` (not repeated): any bytes to ``parse_reply``
(``test_any_bytes_give_a_result_or_a_gateway_error``, 400 examples) and a well-formed header with any body
through the reassembler (``test_valid_header_any_body_gives_a_result_or_a_gateway_error``, 400 examples). Added
here: mutations of whole output messages whose length field is then set right again, so that they still look
like NACCS output (``formats.is_naccs_output``) and reach the header fields, the result code lines and, in the
pipeline, the persist step that matches a reply to the delivery it answers.
"""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from gateway.app import Gateway
from gateway.errors import GatewayError
from gateway.naccs.reply import Reassembler, parse_part
from tests.hostile.conftest import NACCS_SEEDS, assert_coded, bounded, mutated
from tests.hostile.pipeline import accept_and_check

EXAMPLES = 500


def framed(data: bytes) -> bytes:
    """``data`` with the header's message length (offset 392, 6 digits) set to its size, when it is long enough."""
    if len(data) < 400 or len(data) > 999_999:
        return data
    return data[:392] + b"%06d" % len(data) + data[398:]


@st.composite
def header_overwritten(draw: st.DrawFn) -> bytes:
    """A seed whose header bytes are overwritten in place (1 to 6 runs: fields keep their offsets) and whose body
    is mutated; the length is set right."""
    rng = random.Random(draw(st.integers(0, 2**63)))
    seed = bytearray(rng.choice(NACCS_SEEDS))
    for _ in range(rng.randint(1, 6)):
        at = rng.choice([3, 8, 15, 29, 51, 115, 219, 245, 248, 249, 253, rng.randrange(398)])
        run = bytes(rng.choice(b" 0123456789ERPMCTU*-\x00\xff\xa4") for _ in range(rng.randint(1, 12)))
        seed[at : at + len(run)] = run[: max(0, 398 - at)]
    body = draw(mutated([bytes(seed[400:]) or b"\r\n"]))
    return framed(bytes(seed[:400]) + body)


NACCS = st.one_of(header_overwritten(), header_overwritten(), mutated(NACCS_SEEDS).map(framed))


@bounded(EXAMPLES)
@given(st.lists(NACCS, min_size=1, max_size=3))
def test_parts_give_a_reply_or_out_20_21(parts: list[bytes]) -> None:
    """500 examples of 1 to 3 mutated parts fed to one reassembler."""
    r = Reassembler()
    for data in parts:
        try:
            parse_part(data)
            r.add(data)
        except GatewayError as err:
            assert_coded(err.code, "OUT")


@bounded(EXAMPLES)
@given(NACCS)
def test_a_hostile_naccs_output_ends_done_or_failed_with_a_code(pipeline_gateway: Gateway, data: bytes) -> None:
    """500 examples through Gateway.accept on SQLite (no delivery waits for them: unmatched replies)."""
    accept_and_check(pipeline_gateway, data)
