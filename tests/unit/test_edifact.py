"""The stop-gap EDIFACT reader: segments numbered, envelopes checked with ISO 9735 codes, no input crashes it."""

from __future__ import annotations

import random

import pytest

from gateway.errors import GatewayError
from gateway.formats import edifact, sniff


def _error(raw: bytes) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        edifact.parse(raw)
    return info.value


def test_two_messages_with_numbered_segments(coparn: bytes) -> None:
    [interchange] = edifact.parse(coparn)
    assert (interchange.sender, interchange.reference, interchange.syntax) == ("ONEY", "20261124001", "UNOA")
    assert [(m.number, m.reference, m.type, m.version) for m in interchange.messages] == [
        (1, "1", "COPARN", "D95B"),
        (2, "2", "COPARN", "D95B"),
    ]
    first = interchange.messages[0]
    assert first.segments[0].number == 2  # UNB is 1, UNA is not a segment
    assert first.segments[-1].tag == "UNT"
    tdt = next(s for s in first.segments if s.tag == "TDT")
    assert tdt.elements[1] == "012E" and tdt.element(8, 4) == "ONE APUS"


def test_release_character_is_unescaped(coparn: bytes) -> None:
    [interchange] = edifact.parse(coparn)
    ftx = next(s for s in interchange.messages[1].segments if s.tag == "FTX")
    assert ftx.element(4) == "PAINT: WATER BASED"


def test_wrong_unt_count_is_edi_29_at_the_unt(coparn: bytes) -> None:
    err = _error(coparn.replace(b"UNT+17+2'", b"UNT+16+2'"))
    assert err.code == "EDI-29"
    assert (err.position.segment_tag, err.position.segment_number, err.position.element) == ("UNT", 42, 1)


def test_unz_reference_mismatch_is_edi_28(coparn: bytes) -> None:
    err = _error(coparn.replace(b"UNZ+2+20261124001", b"UNZ+2+20261124999"))
    assert err.code == "EDI-28" and err.position.segment_tag == "UNZ"


def test_unz_count_wrong_is_edi_29(coparn: bytes) -> None:
    err = _error(coparn.replace(b"UNZ+2+", b"UNZ+3+"))
    assert err.code == "EDI-29" and err.position.segment_tag == "UNZ"


def test_unt_reference_mismatch_is_edi_28(coparn: bytes) -> None:
    assert _error(coparn.replace(b"UNT+24+1'", b"UNT+24+9'")).code == "EDI-28"


def test_missing_unz_is_edi_13(coparn: bytes) -> None:
    assert _error(coparn.split(b"UNZ")[0]).code == "EDI-13"


def test_lower_case_outside_unoa_is_tolerated_but_8bit_is_edi_21(coparn: bytes) -> None:
    err = _error(coparn.replace(b"AUTO PARTS", "AUTO PÄRTS".encode("latin-1")))
    assert err.code == "EDI-21"


def test_sender_id_for_partner_lookup(coparn: bytes) -> None:
    assert edifact.sender_id(coparn) == "ONEY"
    assert edifact.sender_id(b"UNB+UNOA:2+ABC?+D:ZZZ+X+1'") == "ABC+D"
    assert edifact.sender_id(b"not edifact") is None


def test_sniff() -> None:
    assert sniff(b"\xef\xbb\xbfUNA:+.? 'UNB") == "edifact"
    assert sniff(b"  <?xml version='1.0'?><a/>") == "xml"
    assert sniff(b"container,booking\nCSQU3054383,B1\n") == "csv"
    with pytest.raises(GatewayError) as info:
        sniff(b"\x00\x01\x02")
    assert info.value.code == "FMT-1"
    with pytest.raises(GatewayError) as empty:
        sniff(b"   \n")
    assert empty.value.code == "FMT-3"


def test_no_byte_string_crashes_the_reader(coparn: bytes) -> None:
    """Random corruptions of a valid interchange give a result or a coded error, never another exception."""
    rng = random.Random(20261124)
    for _ in range(400):
        data = bytearray(coparn)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        cut = bytes(data[: rng.randrange(len(data) + 1)])
        for sample in (bytes(data), cut):
            try:
                edifact.parse(sample)
            except GatewayError as err:
                assert err.code.startswith(("EDI-", "FMT-"))
