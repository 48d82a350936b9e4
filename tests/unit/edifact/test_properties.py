"""Property-based: any delimiters, any escaped content, any bytes.

What would break: escaping or splitting that loses or invents characters, delimiters the tokenizer cannot take
from a UNA, or an input that makes the engine raise something other than a coded error.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import edifact
from gateway.edifact import writer
from gateway.edifact.syntax import Delimiters
from gateway.edifact.tokenizer import Tokenizer
from gateway.errors import GatewayError

SERVICE_POOL = "!\"#$%&'()*+,-./:;<=>?@[]^_`{|}~\n"
TEXT = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126) | st.sampled_from(list(SERVICE_POOL)), max_size=12
)


@st.composite
def delimiters(draw: st.DrawFn) -> Delimiters:
    chars = draw(st.lists(st.sampled_from(list(SERVICE_POOL)), min_size=6, max_size=6, unique=True))
    component, element, decimal, release, repetition, segment = chars
    with_repetition = draw(st.booleans())
    return Delimiters(component, element, decimal, release, repetition if with_repetition else None, segment)


@st.composite
def element(draw: st.DrawFn) -> str | list[str]:
    if draw(st.booleans()):
        return draw(TEXT)
    parts = draw(st.lists(TEXT, min_size=2, max_size=4))
    if not parts[-1]:
        parts[-1] = "X"  # a trailing empty component is not data (ISO 9735): the reader drops it
    return parts


SEGMENTS = st.lists(
    st.tuples(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3), st.lists(element(), max_size=5)),
    min_size=1,
    max_size=8,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(d=delimiters(), body=SEGMENTS)
def test_anything_written_with_any_delimiters_reads_back_identically(
    d: Delimiters, body: list[tuple[str, list[object]]]
) -> None:
    segments = [["UNB", ["UNOB", "4"], "A", "B", ["20260101", "1200"], "R1"]]
    segments += [[tag, *elements] for tag, elements in body if tag not in ("UNA", "UNB")]
    raw = writer.write(segments, d, newline=d.segment != "\n")
    got = [s.as_list() for s in Tokenizer.from_bytes(raw, check_repertoire=False)]
    assert got == segments


@settings(max_examples=500)
@given(st.binary(max_size=400))
def test_any_bytes_give_a_result_or_a_coded_error(data: bytes) -> None:
    for sample in (data, b"UNA:+.? '" + data, b"UNB+UNOA:3+A+B+1:1+1'" + data):
        try:
            edifact.envelope.read_all(sample, allow_bare=True)
        except GatewayError as err:
            assert err.code.startswith("EDI-")


VALUE = st.text(alphabet=st.sampled_from(list("AB9 0.,-:+?'az|>²１")), max_size=6)


@st.composite
def segment_text(draw: st.DrawFn) -> tuple[str, str]:
    from gateway.edifact import definitions

    table = definitions.load().segments["D95B"]
    tag = draw(st.sampled_from(sorted(table)))
    elements = draw(st.lists(st.lists(VALUE, min_size=1, max_size=4), max_size=len(table[tag].elements) + 1))
    body = "+".join(":".join(c.replace("?", "??").replace("'", "?'") for c in comps) for comps in elements)
    return tag, tag + ("+" + body if elements else "")


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(segment_text(), st.booleans(), st.sampled_from([".,", ".", ","]))
def test_the_fast_check_never_passes_what_the_full_check_refuses(
    case: tuple[str, str], other_delimiters: bool, marks: str
) -> None:
    """The validator's one-regex fast path may only say "valid" where the element-by-element check agrees,
    whichever decimal marks the interchange allows."""
    from gateway.edifact import definitions
    from gateway.edifact.validator import _elements, _fast_pattern

    tag, text = case
    d = Delimiters("|", ">", ".", "?", None, "'") if other_delimiters else Delimiters()
    if other_delimiters:  # the same segment written with a UNA that moves the separators
        text = text.replace("+", "\x00").replace(":", "|").replace("\x00", ">")
    definition = definitions.load().segments["D95B"][tag]
    raw = (
        d.una()
        + "UNB"
        + d.element
        + "UNOY"
        + d.component
        + "3"
        + d.element
        + "A"
        + d.element
        + "B"
        + d.element
        + "1"
        + d.component
        + "1"
        + d.element
        + "1'"
        + text
        + "'"
    )
    tokens = list(Tokenizer.from_bytes(raw.encode()))
    if len(tokens) != 2 or tokens[1].errors:
        return
    segment = tokens[1]
    raw_text = segment.raw or ""
    for released in (True, False):  # the validator uses the simpler pattern for text without a release character
        if not released and "?" in raw_text:
            continue
        if _fast_pattern(definition, d, released, marks).fullmatch(raw_text):
            assert _elements(segment, definition, 1, {}, marks) == []
