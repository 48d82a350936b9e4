"""Envelopes: messages numbered, every control count and reference checked with its ISO 9735 code."""

from __future__ import annotations

import pytest

from gateway import edifact
from gateway.edifact.envelope import read_all
from gateway.errors import GatewayError
from gateway.formats import sniff


def _error(raw: bytes) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        edifact.read(raw)
    return info.value


def test_two_messages_with_numbered_segments(coparn: bytes) -> None:
    [interchange], messages = edifact.read(coparn)
    assert (interchange.sender, interchange.reference, interchange.syntax) == ("ONEY", "20261124001", "UNOA")
    assert [(m.number, m.reference, m.type, m.version) for m in messages] == [
        (1, "1", "COPARN", "D95B"),
        (2, "2", "COPARN", "D95B"),
    ]
    first = messages[0]
    assert first.segments[0].number == 2  # UNB is 1, UNA is not a segment
    assert first.segments[-1].tag == "UNT"
    tdt = next(s for s in first.segments if s.tag == "TDT")
    assert tdt.elements[1] == "012E" and tdt.element(8, 4) == "ONE APUS"


def test_wrong_unt_count_is_edi_29_at_the_unt(coparn: bytes) -> None:
    err = _error(coparn.replace(b"UNT+16+2'", b"UNT+15+2'"))
    assert err.code == "EDI-29"
    assert (err.position.segment_tag, err.position.segment_number, err.position.element) == ("UNT", 40, 1)


def test_a_count_error_is_attached_to_its_message_and_the_others_stand(coparn: bytes) -> None:
    interchanges, messages = read_all(coparn.replace(b"UNT+16+2'", b"UNT+15+2'"))
    assert [len(m.errors) for m in messages] == [0, 1] and interchanges[0].errors == []


def test_unz_reference_mismatch_is_edi_28(coparn: bytes) -> None:
    err = _error(coparn.replace(b"UNZ+2+20261124001", b"UNZ+2+20261124999"))
    assert err.code == "EDI-28" and err.position.segment_tag == "UNZ"


def test_unz_count_wrong_is_edi_29(coparn: bytes) -> None:
    err = _error(coparn.replace(b"UNZ+2+", b"UNZ+3+"))
    assert err.code == "EDI-29" and err.position.segment_tag == "UNZ"


def test_unt_reference_mismatch_is_edi_28(coparn: bytes) -> None:
    assert _error(coparn.replace(b"UNT+23+1'", b"UNT+23+9'")).code == "EDI-28"


def test_missing_unz_is_edi_13(coparn: bytes) -> None:
    assert _error(coparn.split(b"UNZ")[0]).code == "EDI-13"


def test_several_interchanges_in_one_file(coparn: bytes) -> None:
    second = coparn.replace(b"20261124001", b"20261124002")
    interchanges, messages = edifact.read(coparn + b"\n" + second)
    assert [i.reference for i in interchanges] == ["20261124001", "20261124002"]
    assert [m.number for m in messages] == [1, 2, 3, 4]


def test_bare_messages_only_when_allowed(coparn: bytes) -> None:
    body = coparn[coparn.index(b"UNH") : coparn.index(b"UNZ")]
    with pytest.raises(GatewayError) as info:
        edifact.read(body)
    assert info.value.code == "EDI-13"
    _, messages = edifact.read(body, allow_bare=True)
    assert len(messages) == 2


def test_groups_are_counted(coparn: bytes) -> None:
    body = coparn[coparn.index(b"UNH") : coparn.index(b"UNZ")]
    head = coparn[: coparn.index(b"UNH")]
    grouped = head + b"UNG+COPARN+ONEY+JPTYO+261124:0930+G1+UN+D:95B'\n" + body + b"UNE+2+G1'\nUNZ+1+20261124001'\n"
    interchanges, messages = edifact.read(grouped)
    assert len(messages) == 2 and interchanges[0].group_count == 1
    assert _error(grouped.replace(b"UNE+2+G1", b"UNE+3+G1")).code == "EDI-29"


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
