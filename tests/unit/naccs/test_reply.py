"""NACCS output messages: header fields, result codes and outcome, split reassembly, and any bytes → result or error."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import GatewayError
from gateway.naccs.reply import Outcome, Reassembler, ResultCode, classify, parse_part, parse_reply


def output(
    body: str = "00000-0000-0000\r\n",
    *,
    kind: str = "R",
    handover: str = "DL-0123456789/1",
    input_id: str = "0000000042",
    code: str = "*SCYH  ",
    seq: str = "   ",
    last: str = " ",
    subject: str = "CY搬入登録",
    length: int | None = None,
) -> bytes:
    """An output message laid out by hand from domain.md §4's field list (offsets written out, not imported)."""
    header = bytearray(b" " * 398)

    def put(offset: int, size: int, value: str) -> None:
        raw = value.encode("euc_jp")
        assert len(raw) <= size
        header[offset : offset + size] = raw.ljust(size, b" ")

    put(3, 5, "CYH")
    put(8, 7, code)
    put(15, 14, "20250401093012")
    put(29, 5, "ABCDE")
    put(51, 64, "ABCDE001")
    put(115, 64, subject)
    put(219, 26, handover)
    put(245, 3, seq)
    put(248, 1, last)
    put(249, 1, kind)
    put(253, 10, input_id)
    data = bytes(header) + b"\r\n" + body.encode("euc_jp")
    total = len(data) if length is None else length
    return data[:392] + b"%06d" % total + data[398:]


def test_success_result_notice() -> None:
    """Header fields are read at their offsets and 00000-0000-0000 is success.

    Would break if the hand-over information (the correlation id) were read from the wrong bytes.
    """
    reply = parse_reply(output("00000-0000-0000\r\nCNTR MSCU1234565\r\n"))
    assert reply.outcome is Outcome.SUCCESS
    assert reply.handover == "DL-0123456789/1"
    h = reply.header
    assert (h.business_code, h.output_code, h.kind, h.input_id) == ("CYH", "*SCYH", "R", "0000000042")
    assert (h.received_at, h.user_code, h.subject) == ("20250401093012", "ABCDE", "CY搬入登録")
    assert reply.codes == (ResultCode("00000", "0000", "0000"),)
    assert reply.lines == ("CNTR MSCU1234565",)
    assert reply.parts == 1


def test_five_codes_a_line_and_several_lines() -> None:
    """Up to 5 codes on a line, several lines; the body after them is the output items.

    Would break if only the first code of a line, or only the first line, were read.
    """
    body = (
        "W0001-CNO -0001 W0002-0000-0000 00000-0000-0000 W0003-DTM -0000 W0004-0000-0000\r\n"
        "W0005-TIM -0000\r\n"
        "OUTPUT ITEM\r\n"
    )
    reply = parse_reply(output(body))
    assert [c.text for c in reply.codes][:2] == ["W0001-CNO -0001", "W0002-0000-0000"]
    assert len(reply.codes) == 6
    assert reply.codes[0].item == "CNO " and reply.codes[0].position == "0001"
    assert reply.lines == ("OUTPUT ITEM",)


def test_w_only_codes_are_a_warning_not_a_failure() -> None:
    """All non-zero codes start with W → WARNING; would break if warnings were recorded as errors."""
    reply = parse_reply(output("W0001-0000-0000\r\n"))
    assert reply.outcome is Outcome.WARNING
    assert reply.codes[0].category == "warning"


def test_any_other_code_is_an_error() -> None:
    """A W code beside an E code is still an ERROR; would break if the first code alone decided."""
    reply = parse_reply(output("W0001-0000-0000E0002-CNO -0000\r\n"))
    assert reply.outcome is Outcome.ERROR
    assert reply.codes[1].category == "business condition"
    assert classify([ResultCode("S0010", "CNO ", "0000")]) is Outcome.ERROR
    assert classify([]) is Outcome.SUCCESS


def test_form_output_has_no_codes_and_no_outcome() -> None:
    """A form (kind P, e.g. a permit) carries no result codes: outcome None, every line kept.

    Would break if a form's first line were taken for result codes.
    """
    reply = parse_reply(output("00000-0000-0000\r\n輸出許可通知\r\n", kind="P", code="SAE0010"))
    assert reply.outcome is None and reply.codes == ()
    assert reply.lines == ("00000-0000-0000", "輸出許可通知")


def test_split_parts_reassembled_in_any_order() -> None:
    """Parts with the same hand-over information and input id, ordered by sequence, complete at the E part
    with all parts before it. Would break if parts were joined in arrival order or completed too early.
    """
    parts = [
        output("00000-0000-0000\r\nLINE 1\r\n", seq="001"),
        output("LINE 2\r\n", seq="002"),
        output("LINE 3\r\n", seq="003", last="E"),
    ]
    r = Reassembler()
    assert r.add(parts[2]) is None
    assert r.add(parts[0]) is None
    assert r.pending() == {("DL-0123456789/1", "0000000042", "*SCYH"): [1, 3]}
    reply = r.add(parts[1])
    assert reply is not None
    assert reply.lines == ("LINE 1", "LINE 2", "LINE 3")
    assert reply.parts == 3 and reply.outcome is Outcome.SUCCESS
    assert reply.header.last_part
    assert r.pending() == {}


def test_parts_of_different_messages_are_kept_apart() -> None:
    """Another hand-over information (or another output code of the same input) is another message."""
    r = Reassembler()
    assert r.add(output("00000-0000-0000\r\n", seq="001", handover="A")) is None
    assert r.add(output("00000-0000-0000\r\n", seq="001", handover="B")) is None
    assert r.add(output("FORM\r\n", kind="P", code="SAE0010", seq="002", last="E", handover="A")) is None
    done = r.add(output("X\r\n", seq="002", last="E", handover="B"))
    assert done is not None and done.handover == "B"
    assert len(r.pending()) == 2


def test_unsplit_message_through_the_reassembler() -> None:
    """A message with blank sequence (or 001 + E) is whole at once; would break if it waited for more parts."""
    r = Reassembler()
    assert r.add(output()) is not None
    assert r.add(output(seq="001", last="E")) is not None
    assert r.add(output(seq="000")) is not None


def test_same_part_twice_is_harmless_a_different_one_is_out_21() -> None:
    """A resent part changes nothing; a different part under the same number is refused and nothing changes."""
    r = Reassembler()
    first = output("00000-0000-0000\r\n", seq="001")
    assert r.add(first) is None
    assert r.add(first) is None
    with pytest.raises(GatewayError) as err:
        r.add(output("00000-0000-0000\r\nOTHER\r\n", seq="001"))
    assert err.value.code == "OUT-21"
    assert r.pending() == {("DL-0123456789/1", "0000000042", "*SCYH"): [1]}


def test_parts_that_do_not_fit_together_are_out_21() -> None:
    """After the last part nothing may follow, and only one part may be last."""
    r = Reassembler()
    r.add(output("00000-0000-0000\r\n", seq="001"))
    r.add(output("X\r\n", seq="003", last="E"))
    for bad in (output("Y\r\n", seq="004"), output("Y\r\n", seq="002", last="E")):
        with pytest.raises(GatewayError) as err:
            r.add(bad)
        assert err.value.code == "OUT-21"


def test_a_part_read_alone_is_out_21() -> None:
    """parse_reply refuses a part of a split message: its codes and lines would be incomplete."""
    with pytest.raises(GatewayError) as err:
        parse_reply(output(seq="001"))
    assert err.value.code == "OUT-21"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "shorter"),
        (output()[:398], "shorter"),
        (output().replace(b"\r\n", b"XX", 1), "no CRLF"),
        (output(length=12), "says 12 bytes"),
        (output()[:392] + b"12a456" + output()[398:], "not a number"),
        (output(seq="0A1"), "split sequence"),
        (output(kind="Z"), "message kind"),
        (output(last="X"), "last-part flag"),
        (output("NO CODES HERE\r\n"), "no result code line"),
        (output()[:115] + b"\xff" + output()[116:], "subject"),
        (output("00000-0000-0000\r\n") + b"\xff\xff", "says"),
    ],
)
def test_unreadable_output_is_out_20(data: bytes, reason: str) -> None:
    """Each way an output message can be broken is a coded OUT-20 saying why; would break if one crashed instead."""
    with pytest.raises(GatewayError) as err:
        parse_reply(data)
    assert err.value.code == "OUT-20"
    assert reason in err.value.text


def test_undecodable_body_is_out_20() -> None:
    """Body bytes that are not EUC-JP are OUT-20, not a UnicodeDecodeError."""
    data = output("00000-0000-0000\r\n")
    bad = data + b"\x8f\r\n"
    bad = bad[:392] + b"%06d" % len(bad) + bad[398:]
    with pytest.raises(GatewayError) as err:
        parse_reply(bad)
    assert err.value.code == "OUT-20"


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=1200))
def test_any_bytes_give_a_result_or_a_gateway_error(data: bytes) -> None:
    """Whatever arrives, reading it never raises anything but GatewayError (OUT-20/21)."""
    try:
        parse_reply(data)
    except GatewayError as err:
        assert err.code in ("OUT-20", "OUT-21")


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["R", "P", "M"]),
    st.sampled_from(["   ", "001", "002", "000"]),
    st.sampled_from([" ", "E"]),
    st.binary(max_size=300),
)
def test_valid_header_any_body_gives_a_result_or_a_gateway_error(kind: str, seq: str, last: str, body: bytes) -> None:
    """With a well-formed header (so parsing reaches the body and the reassembler), still only GatewayError."""
    data = output("", kind=kind, seq=seq, last=last) + body
    data = data[:392] + b"%06d" % len(data) + data[398:]
    r = Reassembler()
    try:
        r.add(data)
        r.add(data)
        parse_part(data)
    except GatewayError as err:
        assert err.code in ("OUT-20", "OUT-21")
