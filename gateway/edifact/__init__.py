"""The gateway's EDIFACT engine: streaming tokenizer, envelopes, validation, acknowledgements and writer.

Message definitions are data in the repository's ``edifact/`` folder. The usual entry points:

- :func:`read` — every interchange and message of a payload, raising the first coded error;
- :class:`~gateway.edifact.envelope.Reader` — the same, streaming, with errors attached instead of raised;
- :mod:`gateway.edifact.writer` — serialisation with escaping and control counts.
"""

from __future__ import annotations

from gateway.edifact.envelope import Interchange, Message, Reader, first_error, read_all
from gateway.edifact.tokenizer import Segment, Tokenizer
from gateway.errors import GatewayError

__all__ = ["Interchange", "Message", "Reader", "Segment", "Tokenizer", "read", "sender_id", "unb_fields"]


def read(raw: bytes, *, allow_bare: bool = False) -> tuple[list[Interchange], list[Message]]:
    """All interchanges and messages of ``raw``; the first envelope problem is raised as a GatewayError."""
    interchanges, messages = read_all(raw, allow_bare=allow_bare)
    error = first_error(interchanges, messages)
    if error is not None:
        raise error
    return interchanges, messages


def sender_id(raw: bytes) -> str | None:
    """The UNB sender identification, read cheaply before the payload is stored (for partner lookup)."""
    fields = unb_fields(raw)
    return fields[0] or None if fields else None


def unb_fields(raw: bytes) -> tuple[str, str] | None:
    """(sender identification, interchange control reference) of the first UNB, from the first 4 KB."""
    try:
        for segment in Tokenizer.from_bytes(raw[:4096], check_repertoire=False):
            if segment.tag == "UNB":
                return segment.element(2, 1), segment.element(5, 1)
            if segment.number > 1:
                return None
    except GatewayError:
        return None
    return None
