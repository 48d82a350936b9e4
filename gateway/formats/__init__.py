"""Inbound formats: recognise a payload (``sniff``); ``xml.py`` and ``csv.py`` read their formats, EDIFACT has
``gateway/edifact/``."""

from __future__ import annotations

from gateway.errors import GatewayError


def sniff(raw: bytes) -> str:
    """``edifact``, ``xml`` or ``csv`` from the first bytes; FMT-1 or FMT-3 when it is none of them."""
    head = raw[:512].removeprefix(b"\xef\xbb\xbf").lstrip()
    if not head:
        raise GatewayError("FMT-3", "the payload is empty", step="parse")
    if head[:3] in (b"UNA", b"UNB", b"UNH"):
        return "edifact"
    if head[:1] == b"<":
        return "xml"
    first_line = head.split(b"\n", 1)[0]
    if any(sep in first_line for sep in (b",", b";", b"\t")) and b"\x00" not in head:
        return "csv"
    raise GatewayError("FMT-1", "the payload is neither EDIFACT (UNA/UNB/UNH), XML nor CSV", step="parse")
