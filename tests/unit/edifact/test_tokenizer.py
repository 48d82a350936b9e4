"""The tokenizer: any UNA delimiters, defaults, release character, repertoires, and no crash on any input."""

from __future__ import annotations

import io
import random

import pytest

from gateway import edifact
from gateway.edifact.tokenizer import Repeated, Tokenizer
from gateway.errors import GatewayError


def segs(raw: bytes, **kwargs: object) -> list[list[object]]:
    return [s.as_list() for s in Tokenizer.from_bytes(raw, **kwargs)]  # type: ignore[arg-type]


def test_default_delimiters_without_una() -> None:
    assert segs(b"UNB+UNOA:3+A+B+260101:1200+1'UNZ+0+1'") == [
        ["UNB", ["UNOA", "3"], "A", "B", ["260101", "1200"], "1"],
        ["UNZ", "0", "1"],
    ]


def test_una_with_unusual_delimiters_and_newline_terminator() -> None:
    raw = b"UNA|*,# \nUNB*UNOA|3*A*B*260101|1200*1\r\nRFF*BN|X#*Y\nUNZ*0*1\n"
    assert segs(raw) == [
        ["UNB", ["UNOA", "3"], "A", "B", ["260101", "1200"], "1"],
        ["RFF", ["BN", "X*Y"]],
        ["UNZ", "0", "1"],
    ]


def test_release_character_escapes_every_service_character_and_itself() -> None:
    raw = b"UNA:+.? 'UNB+UNOA:3+A+B+1:1+1'FTX+AAA+++A?+B?:C?'D??E'UNZ+0+1'"
    assert segs(raw)[1] == ["FTX", "AAA", "", "", "A+B:C'D?E"]


def test_escaped_terminator_at_a_chunk_boundary() -> None:
    raw = b"UNB+UNOA:3+A+B+1:1+1'FTX+AAA+++" + b"X?'" * 40 + b"'UNZ+0+1'"
    for size in (7, 8, 9, 64):
        got = [s.as_list() for s in Tokenizer(io.BytesIO(raw), chunk_size=size)]
        assert got[1] == ["FTX", "AAA", "", "", "X'" * 40]


def test_whitespace_between_segments_and_bom() -> None:
    raw = b"\xef\xbb\xbf  UNB+UNOA:3+A+B+1:1+1'\r\n\r\n  UNZ+0+1'\n\n"
    assert [s[0] for s in segs(raw)] == ["UNB", "UNZ"]


def test_trailing_empty_components_are_dropped_like_pydifact() -> None:
    assert segs(b"UNB+UNOA:3+A+B+1:1+1'RFF+VA:1:'RFF+VA:'RFF+A+'UNZ+0+1'")[1:4] == [
        ["RFF", ["VA", "1"]],
        ["RFF", "VA"],
        ["RFF", "A", ""],
    ]


def test_syntax_4_repetition_separator() -> None:
    raw = b"UNA:+.?*'UNB+UNOC:4+A+B+20260101:1200+1'NAD+CA+X*Y:Z+a?*b'UNZ+0+1'"
    nad = Tokenizer.from_bytes(raw).__iter__()
    next(nad)
    seg = next(nad)
    assert seg.elements[1] == Repeated(["X", ["Y", "Z"]]) and seg.elements[2] == "a*b"


def test_level_b_information_separators() -> None:
    raw = b"UNB\x1dUNOB\x1f3\x1dA\x1dB\x1d1\x1f1\x1d1\x1cUNZ\x1d0\x1d1\x1c"
    assert segs(raw) == [["UNB", ["UNOB", "3"], "A", "B", ["1", "1"], "1"], ["UNZ", "0", "1"]]


def char_error(raw: bytes) -> GatewayError:
    """Character problems do not stop the reader: they ride on the segment and make the message fail."""
    with pytest.raises(GatewayError) as info:
        edifact.read(raw)
    return info.value


def test_unoa_refuses_lower_case_with_its_position() -> None:
    err = char_error(b"UNB+UNOA:3+A+B+1:1+1'UNH+1+X:D:95B:UN'FTX+AAA+++abc'UNT+3+1'UNZ+1+1'")
    assert err.code == "EDI-21"
    assert (err.position.segment_number, err.position.segment_tag, err.position.element) == (3, "FTX", 4)
    assert segs(b"UNB+UNOB:3+A+B+1:1+1'FTX+AAA+++abc'UNZ+0+1'")[1] == ["FTX", "AAA", "", "", "abc"]


def test_unoc_and_unoy_decode_their_repertoires() -> None:
    assert segs("UNB+UNOC:3+A+B+1:1+1'FTX+AAA+++Müller'UNZ+0+1'".encode("latin-1"))[1][4] == "Müller"
    assert segs("UNB+UNOY:3+A+B+1:1+1'FTX+AAA+++東京港'UNZ+0+1'".encode())[1][4] == "東京港"
    with pytest.raises(GatewayError) as info:
        segs(b"UNB+UNOY:3+A+B+1:1+1'FTX+AAA+++\xff\xfe'UNZ+0+1'")
    assert info.value.code == "EDI-21"


def test_unknown_syntax_identifier_is_edi_17() -> None:
    with pytest.raises(GatewayError) as info:
        segs(b"UNB+XXXX:1+A+B+1:1+1'UNZ+0+1'")
    assert info.value.code == "EDI-17"


def test_unterminated_last_segment_is_edi_13() -> None:
    with pytest.raises(GatewayError) as info:
        segs(b"UNB+UNOA:3+A+B+1:1+1'UNZ+0+1")
    assert info.value.code == "EDI-13" and info.value.position.segment_number == 2


def test_no_byte_string_crashes_the_reader(coparn: bytes) -> None:
    """Random corruptions of a valid interchange give a result or a coded error, never another exception."""
    rng = random.Random(20261124)
    for _ in range(500):
        data = bytearray(coparn)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        for sample in (bytes(data), bytes(data[: rng.randrange(len(data) + 1)])):
            try:
                edifact.read(sample)
            except GatewayError as err:
                assert err.code.startswith(("EDI-", "FMT-"))


def test_a_release_character_before_an_ordinary_character_is_edi_21() -> None:
    err = char_error(b"UNB+UNOA:3+A+B+1:1+1'UNH+1+X:D:95B:UN'FTX+AAA+++XYZ ?AVAILABILITY'UNT+3+1'UNZ+1+1'")
    assert err.code == "EDI-21" and err.position.segment_number == 3 and err.position.element == 4
    # before punctuation it is tolerated and taken literally
    assert segs(b"UNB+UNOA:3+A+B+1:1+1'FTX+AAA+++A?*B'UNZ+0+1'")[1][4] == "A*B"


def test_bare_messages_have_no_repertoire_to_check() -> None:
    assert segs("UNH+1+CUSCAR:D:95A:UN'FTX+AAA+++Ölfass'UNT+2+1'".encode("latin-1"))[1][4] == "Ölfass"


def test_una_refuses_letters_and_digits_as_service_characters() -> None:
    with pytest.raises(GatewayError) as info:
        segs(b"UNA:+.?A'UNB+UNOA:3+A+B+1:1+1'UNZ+0+1'")
    assert info.value.code == "EDI-12"


def test_tiny_chunks_still_see_the_bom_and_a_cut_off_tag_is_edi_13() -> None:
    raw = b"\xef\xbb\xbfUNA:+.? 'UNB+UNOA:3+A+B+1:1+1'UNZ+0+1'"
    assert [s.tag for s in Tokenizer(io.BytesIO(raw), chunk_size=1)] == ["UNB", "UNZ"]
    with pytest.raises(GatewayError) as info:
        segs(b"UNB+UNOA:3+A+B+1:1+1'UN")
    assert info.value.code == "EDI-13"


def test_a_cut_off_una_at_the_end_is_edi_13_not_a_hang() -> None:
    # found by review of the fuzz run: a short UNA-prefixed tail made the tokenizer loop forever
    for tail in (b"UNA:'", b"UNA", b"UNA:+.?"):
        with pytest.raises(GatewayError) as info:
            segs(b"UNB+UNOA:3+A+B+1:1+1'UNZ+0+1'" + tail)
        assert info.value.code in ("EDI-13", "EDI-12")


def described(raw: bytes, **kwargs: object) -> list[object]:
    """Everything the tokenizer says about ``raw``: each segment in full, or the coded error it stops at."""
    out: list[object] = []
    try:
        for s in Tokenizer(io.BytesIO(raw), **kwargs):  # type: ignore[arg-type]
            errors = [(e.code, str(e), e.position) for e in s.errors or []]
            out.append((s.tag, s.number, s.offset, s.raw, s.as_list(), errors))
    except GatewayError as err:
        out.append((err.code, str(err), err.position))
    return out


BLOCK_PIECES = [
    b"UNA:+.? '",
    b"UNA:+,?*'",
    b"UNB+UNOA:3+A+B+1:1+1'",
    b"UNB+UNOC:4+A+B+1:1+1'",
    b"UNH+1+COPARN:D:95B:UN'",
    b"FTX+AAA+++A?: B?'C'",
    b"FTX+AAA+++?X'",
    b"FTX+AAA+++??X'",
    b"FTX+AAA+++a'",
    b"FTX+AAA+++\xe9'",
    b"FTX+AAA+++UNBOOKED'",
    b"RFF+BN*CU:1'",
    b"LOC+9+JPTYO:139:6'",
    b"123+4'",
    b"abc+4'",
    b"TAG:1+X'",
    b"''",
    b"\n",
    b"\r\n  ",
    b"\t",
    b"UNT+3+1'",
    b"UNZ+1+1'",
    b"UNH+1+X",
]


def test_the_block_path_says_exactly_what_the_per_segment_loop_says() -> None:
    """Random mixtures of clean and troubled segments, cut at random chunk sizes: both paths agree in full."""
    rng = random.Random(20261124)
    for _ in range(400):
        raw = b"".join(rng.choice(BLOCK_PIECES) for _ in range(rng.randint(1, 40)))
        if rng.random() < 0.5:
            raw = b"UNB+UNOA:3+A+B+1:1+1'" + raw
        for chunk in (1, 5, 64, 1 << 20):
            assert described(raw, chunk_size=chunk) == described(raw, chunk_size=chunk, blocks=False), (raw, chunk)


def test_long_interchanges_cross_blocks_and_chunks_with_offsets_intact() -> None:
    body = b"".join(b"LOC+9+JPTYO:139:%d'\n" % i for i in range(20_000))  # about 400 KB: several blocks
    raw = b"UNA:+.? '\nUNB+UNOA:3+A+B+1:1+1'\n" + body + b"UNZ+0+1'\n"
    got = list(Tokenizer(io.BytesIO(raw), chunk_size=100_003))
    assert len(got) == 20_002 and [s.number for s in got] == list(range(1, 20_003))
    assert all(raw[s.offset : s.offset + len(s.raw or "")].decode() == s.raw for s in got)
    assert described(raw, chunk_size=100_003) == described(raw, chunk_size=100_003, blocks=False)


def test_a_long_tail_without_terminator_is_edi_13_at_once() -> None:
    """It used to be searched again from every position: minutes for 100 KB, hours for a megabyte."""
    with pytest.raises(GatewayError) as info:
        segs(b"UNB+UNOA:3+A+B+1:1+1'" + b"A" * 1_000_000)
    assert info.value.code == "EDI-13" and info.value.position.segment_number == 2
