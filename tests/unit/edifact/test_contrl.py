"""CONTRL: accepted and rejected shapes, and an acknowledgement can always be written."""

from __future__ import annotations

from datetime import datetime

from gateway import edifact
from gateway.edifact import contrl
from gateway.edifact.envelope import read_all
from gateway.edifact.validator import validate

NOW = datetime(2026, 11, 24, 9, 30)


def ack(raw: bytes) -> list[str]:
    interchanges, messages = read_all(raw, allow_bare=True)
    reports = [contrl.MessageReport(m, validate(m) or []) for m in messages]
    out = contrl.build(interchanges[0], reports, reference="ACK1", now=NOW)
    edifact.read(out)  # what we send is itself a valid interchange
    return out.decode("latin-1").splitlines()


def test_accepted_interchange_swaps_sender_and_recipient(coparn: bytes) -> None:
    lines = ack(coparn)
    assert lines[1] == "UNB+UNOA:2+JPTYOCY1:ZZZ+ONEY:ZZZ+261124:0930+ACK1'"
    assert lines[2] == "UNH+1+CONTRL:D:3:UN'"
    assert lines[3] == "UCI+20261124001+ONEY:ZZZ+JPTYOCY1:ZZZ+7'"
    assert lines[-2:] == ["UNT+3+1'", "UNZ+1+ACK1'"]


def test_interchange_level_rejection(coparn: bytes) -> None:
    lines = ack(coparn.replace(b"UNZ+2+20261124001", b"UNZ+2+X"))
    assert "UCI+20261124001+ONEY:ZZZ+JPTYOCY1:ZZZ+4+28'" in lines and not any(x.startswith("UCM") for x in lines)


def test_a_partner_value_outside_the_repertoire_is_still_acknowledged() -> None:
    # found by the fuzz run: an 8-bit syntax version echoed into an ASCII acknowledgement
    raw = b"UNA:+.? 'UNB+UNOA:\xb9+A\xe9:ZZ+B:ZZ+940101:0950+1'UNH+1+X:D:95B:UN'UNT+2+1'UNZ+1+1'"
    lines = ack(raw)
    assert lines[1].startswith("UNB+UNOC:3+B:ZZ+A\xe9:ZZ+")  # answered in a repertoire that holds the id


def test_repeated_partner_values_are_echoed_plainly() -> None:
    # found by the fuzz run: a syntax-4 repetition inside the UNB sender, answered with syntax-3 delimiters
    raw = b"UNA:+.?*'UNB+UNOC:4+APL*X+1STOP+20160315:1433+R1'UNH+1+X:D:95B:UN'UNT+2+1'UNZ+1+R1'"
    assert "UCI+R1+APL+1STOP+7'" in ack(raw)
