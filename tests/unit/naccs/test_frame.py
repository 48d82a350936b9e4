"""The NACCS frame: header tables, byte offsets of the input common header, the password kept out of sight."""

from __future__ import annotations

import logging

import pytest

from gateway.errors import GatewayError
from gateway.naccs import frame
from gateway.naccs.frame import (
    HEADER_LENGTH,
    INPUT_HEADER,
    OUTPUT_HEADER,
    InputHeader,
    build_message,
    mask_password,
    read_input_header,
    set_password,
)

PASSWORD = "Pw9$xZq1"
HEADER = InputHeader(
    business_code="CYH",
    user_code="ABCDE",
    user_id="001",
    password=PASSWORD,
    handover="DL-0123456789/container/1",
    input_id="0000000042",
    system_id="1",
)


@pytest.mark.parametrize("table", [INPUT_HEADER, OUTPUT_HEADER], ids=["input", "output"])
def test_header_table_is_contiguous_and_398_bytes(table: tuple[frame.Field, ...]) -> None:
    """If a field's offset or length were mistyped, every later field would be read or written shifted."""
    offset = 0
    for spec in table:
        assert spec.offset == offset, spec.name
        offset += spec.length
    assert offset == HEADER_LENGTH == 398


def test_output_header_offsets_from_the_domain_field_list() -> None:
    """The output field list of domain.md §4 adds up to 398 and puts the correlation fields where the input has them.

    Would break if the output table drifted from the list (3, 5, 7, 14, 5, 17, 64, 64, 40, 26, 3, 1, 1, 3, 10, 100,
    1, 28, 6) or if hand-over information / input id were no longer at the same offsets as in the input header.
    """
    assert [f.length for f in OUTPUT_HEADER] == [3, 5, 7, 14, 5, 17, 64, 64, 40, 26, 3, 1, 1, 3, 10, 100, 1, 28, 6]
    out = {f.name: f for f in OUTPUT_HEADER}
    inp = {f.name: f for f in INPUT_HEADER}
    for name in ("business_code", "user_code", "handover", "input_id", "inquiry_continuation", "message_length"):
        assert out[name].offset == inp[name].offset, name
    assert (out["split_sequence"].offset, out["last_part"].offset, out["kind"].offset) == (245, 248, 249)


def test_input_header_byte_offsets_and_message_length() -> None:
    """Each caller field lands at its domain.md offset and 392:6 is the whole message's length, zero-padded.

    Would break if the hand-over information (the correlation id) moved from 219, if the length excluded the
    header or its CRLF, or if fields were right-justified.
    """
    business = "9\r\nMSCU1234565 \r\n".encode("euc_jp")
    message = build_message(HEADER, business)
    assert message[:3] == b"   "
    assert message[3:8] == b"CYH  "
    assert message[29:34] == b"ABCDE"
    assert message[34:37] == b"001"
    assert message[37:45] == PASSWORD.encode()
    assert message[219:245] == b"DL-0123456789/container/1 "
    assert message[253:263] == b"0000000042"
    assert message[263:363] == b" " * 100
    assert message[364:365] == b"1"
    assert message[392:398] == b"%06d" % len(message)
    assert int(message[392:398]) == len(message) == 398 + 2 + len(business)
    assert message[398:400] == b"\r\n"
    assert message[400:] == business
    # every reserved byte is a space
    reserved = [f for f in INPUT_HEADER if f.name.startswith("reserved") or f.name == "control"]
    for spec in reserved:
        assert message[spec.offset : spec.end] == b" " * spec.length, spec.name


def test_kanji_business_part_counts_bytes_not_characters() -> None:
    """A str business part is encoded (EUC-JP) before the length is computed: 5 kanji are 10 bytes.

    Would break if the message length counted characters.
    """
    message = build_message(HEADER, "東京港大井\r\n")
    assert int(message[392:398]) == len(message) == 400 + 12


def test_read_input_header_round_trip() -> None:
    """A stand-in NACCS (and tests) can read the fields back; would break if build and read disagreed on offsets."""
    assert read_input_header(build_message(HEADER, b"")) == HEADER


def test_password_never_in_repr_or_error_text(caplog: pytest.LogCaptureFixture) -> None:
    """The password is left out of the header's repr and of every OUT-16 text, even when it is the bad field.

    Would break if InputHeader's password field lost ``repr=False`` or an error quoted the value.
    """
    caplog.set_level(logging.DEBUG)
    assert PASSWORD not in repr(HEADER) and PASSWORD not in str(HEADER)
    too_long = InputHeader("CYH", "ABCDE", "001", password=PASSWORD + "EXTRA")
    with pytest.raises(GatewayError) as err:
        build_message(too_long, b"")
    assert err.value.code == "OUT-16"
    assert "password" in err.value.text
    shown = str(err.value) + repr(err.value) + repr(err.value.as_dict())
    assert PASSWORD not in shown and "EXTRA" not in shown
    kanji = InputHeader("CYH", "ABCDE", "001", password="秘密")
    with pytest.raises(GatewayError) as err2:
        build_message(kanji, b"")
    assert "秘密" not in str(err2.value) + repr(err2.value)
    assert PASSWORD not in caplog.text


def test_mask_and_set_password() -> None:
    """The stored copy can have the password blanked and it is put back before sending; nothing else changes.

    Would break if masking touched other bytes or the length.
    """
    message = build_message(HEADER, b"9\r\n")
    masked = mask_password(message)
    assert masked[37:45] == b" " * 8
    assert PASSWORD.encode() not in masked
    assert masked[:37] == message[:37] and masked[45:] == message[45:]
    assert set_password(masked, PASSWORD) == message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("user_code", "ABCDEF"),
        ("user_id", "0001"),
        ("handover", "X" * 27),
        ("input_id", "12345678901"),
        ("system_id", "12"),
        ("handover", "取引123"),
    ],
)
def test_header_field_that_does_not_fit_is_out_16(field: str, value: str) -> None:
    """A header value is never cut: too long or not half-width is OUT-16 naming the field.

    Would break if a long hand-over information were silently truncated (replies would no longer match).
    """
    header = InputHeader(**{**HEADER.__dict__, field: value})
    with pytest.raises(GatewayError) as err:
        build_message(header, b"")
    assert err.value.code == "OUT-16"
    assert field in err.value.text


def test_message_over_700000_bytes_is_out_14() -> None:
    """NACCS's maximum: 700,000 bytes is accepted, one more is OUT-14. Would break if the limit moved."""
    exact = build_message(HEADER, b"x" * (700_000 - 400))
    assert len(exact) == 700_000 and exact[392:398] == b"700000"
    with pytest.raises(GatewayError) as err:
        build_message(HEADER, b"x" * (700_000 - 399))
    assert err.value.code == "OUT-14"


def test_unsupported_encoding_is_out_16() -> None:
    """UTF-8 is refused (kanji would be 3 bytes); aliases of EUC-JP are accepted.

    Would break if an unknown codec slipped through to produce a message NACCS cannot read.
    """
    with pytest.raises(GatewayError) as err:
        build_message(HEADER, b"", encoding="utf-8")
    assert err.value.code == "OUT-16"
    assert frame.check_encoding("EUC-JP") == "euc_jp"
    assert frame.check_encoding("Shift_JIS") == "shift_jis"
