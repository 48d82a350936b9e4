"""Inbound formats: recognise a payload (``sniff``); ``xml.py``, ``csv.py`` and ``json.py`` read their formats,
EDIFACT has ``gateway/edifact/``."""

from __future__ import annotations

from gateway.errors import GatewayError


def sniff(raw: bytes) -> str:
    """``edifact``, ``xml``, ``json``, ``csv`` or ``naccs`` from the first bytes (after a UTF-8 byte-order mark and
    whitespace); FMT-1 or FMT-3 when it is none of them. JSON (``{`` or ``[``) is recognised before CSV: a JSON
    line holds commas too."""
    if is_naccs_output(raw):
        return "naccs"
    head = raw[:512].removeprefix(b"\xef\xbb\xbf").lstrip()
    if not head:
        raise GatewayError("FMT-3", "the payload is empty", step="parse")
    if head[:3] in (b"UNA", b"UNB", b"UNH"):
        return "edifact"
    if head[:1] == b"<":
        return "xml"
    if head[:1] in (b"{", b"["):
        return "json"
    first_line = head.split(b"\n", 1)[0]
    if any(sep in first_line for sep in (b",", b";", b"\t")) and b"\x00" not in head:
        return "csv"
    raise GatewayError(
        "FMT-1", "the payload is neither EDIFACT (UNA/UNB/UNH), XML, JSON, CSV nor a NACCS output message", step="parse"
    )


def is_naccs_output(raw: bytes) -> bool:
    """The shape of a NACCS output message: a 398-byte output common header whose message length (392:6) is the
    payload's length, a known message kind (249), then CRLF. Checked before anything else: the header starts
    with blanks, which the other formats' sniffing would strip."""
    if len(raw) < 400 or raw[398:400] != b"\r\n":
        return False
    length = raw[392:398]
    return length.isdigit() and int(length) == len(raw) and raw[249:250] in (b"R", b"P", b"C", b"M", b"T", b"U")
