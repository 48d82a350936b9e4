"""Validation against the definitions in edifact/: consistent definitions, and each ISO 9735 code where it belongs."""

from __future__ import annotations

import pytest

from gateway import edifact
from gateway.edifact import definitions, validator
from gateway.edifact.validator import Problem


def test_every_definition_is_internally_consistent() -> None:
    defs = definitions.load()
    assert defs.problems == []
    port_set = {
        "COPARN",
        "COPRAR",
        "COARRI",
        "CODECO",
        "COREOR",
        "COPINO",
        "BAPLIE",
        "MOVINS",
        "IFTMBF",
        "IFTMBC",
        "IFTMIN",
        "IFTMCS",
        "IFTMAN",
        "IFTSTA",
        "IFTDGN",
        "CUSCAR",
        "CUSRES",
        "APERAK",
    }
    for directory in ("D95B", "D00B"):
        assert port_set <= {t for d, t in defs.messages if d == directory}, directory
    assert ("D13B", "BAPLIE") in defs.messages and ("D16A", "VERMAS") in defs.messages
    assert ("service", "CONTRL") in defs.messages


def test_a_broken_definition_is_reported(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "X").mkdir()
    (tmp_path / "X" / "segments.yaml").write_text(
        "directory: X\nsegments:\n  BGM:\n    elements:\n      - 1001 M an..3\n      - C002 C [bad]\n"
    )
    (tmp_path / "X" / "M.yaml").write_text(
        "message: M\ndirectory: X\nstructure:\n  - UNH M 1\n  - SG1 C 9: [BGM C 2]\n  - ZZZ C 1\n  - UNT M 1\n"
    )
    found = definitions.load(tmp_path).problems
    assert any("BGM" in p and "bad" in p for p in found)
    assert any("SG1 must start with a mandatory segment used once" in p for p in found)
    assert any("segment ZZZ is not defined" in p for p in found)


def problems(raw: bytes) -> list[tuple[str, int, str, int | None, int | None]]:
    _, messages = edifact.read(raw)
    out: list[Problem] = []
    for m in messages:
        out.extend(validator.validate(m) or [])
    return [(p.code, p.message_position, p.segment.tag, p.element, p.component) for p in out]


def test_the_project_samples_are_valid(coparn: bytes) -> None:
    assert problems(coparn) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # a segment the message does not have: 33, at its position in the message (UNH = 1)
        (
            b"NAD+CA+ONEY:160:20'\nEQD+CN+CSQU",
            b"NAD+CA+ONEY:160:20'\nXYZ+1'\nEQD+CN+CSQU",
            ("33", 9, "XYZ", None, None),
        ),
        # a known segment out of place: 15
        (b"LOC+9+JPTYO:139:6'", b"LOC+9+JPTYO:139:6'\nBGM+126+X+9'", ("15", 6, "BGM", None, None)),
        # a mandatory element missing: 13 at its element
        (b"BGM+126+BKG2611001+9'", b"BGM+126+BKG2611001+9'\nRFF+BN:X'\nRFF'", ("13", 4, "RFF", 1, None)),
        # too many components: 16 at the first extra one
        (b"RFF+BN:ONEYTYOA12345'", b"RFF+BN:ONEYTYOA12345:1:2:3'", ("16", 3, "RFF", 1, 5)),
        # too long: 39
        (b"LOC+9+JPTYO:139:6'", b"LOC+9+JPTYO:1399:6'", ("39", 5, "LOC", 2, 2)),
        # not numeric: 37
        (b"MEA+AAE+G+KGM:24500'", b"MEA+AAE+G+KGM:24.5T'", ("37", 11, "MEA", 3, 2)),
        # too many repetitions: 35 (RFF C 9 in the equipment group)
        (
            b"RFF+BN:ONEYTYOA12345'\nMEA",
            b"RFF+BN:ONEYTYOA12345'\n" + b"RFF+BN:X'\n" * 9 + b"MEA",
            ("35", 19, "RFF", None, None),
        ),
    ],
)
def test_coded_positioned_problems(coparn: bytes, old: bytes, new: bytes, expected: tuple[object, ...]) -> None:
    changed = coparn.replace(old, new, 1)
    # keep the envelope right so that only the structure is wrong
    delta = changed.count(b"'") - coparn.count(b"'")
    changed = changed.replace(b"UNT+23+1'", f"UNT+{23 + delta}+1'".encode())
    assert expected in problems(changed)


def test_a_missing_mandatory_segment_is_13(coparn: bytes) -> None:
    without_nad = coparn.replace(b"NAD+CA+ONEY:160:20'\nEQD+CN+CSQU", b"EQD+CN+CSQU", 1).replace(
        b"UNT+23+1'", b"UNT+22+1'"
    )
    assert ("13", 8, "EQD", None, None) in problems(without_nad)


def test_messages_without_a_definition_are_not_validated(coparn: bytes) -> None:
    _, [msg, _] = edifact.read(coparn.replace(b"COPARN:D:95B", b"COPARN:D:77A"))
    assert validator.validate(msg) is None


def test_validation_follows_the_delimiters_a_una_sets(coparn: bytes) -> None:
    moved = coparn.replace(b"UNA:+.? '", b"UNA>+.? '").replace(b"LOC+9+JPTYO:139:6", b"LOC+9+JPTYO>1399>6")
    moved = b"".join(
        line.replace(b":", b">") if not line.startswith(b"UNA") else line for line in moved.splitlines(keepends=True)
    )
    assert ("39", 5, "LOC", 2, 2) in problems(moved)
