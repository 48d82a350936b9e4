"""Shared by the segment-table tests: validate one message written as a list of segments."""

from __future__ import annotations

from gateway import edifact
from gateway.edifact import validator


def syntax_codes(segments: list[str]) -> list[tuple[str, int, str]]:
    """(code, segment position in the message, tag) of every problem the validator finds; UNH/UNT/UNB added."""
    body = [f"UNH+1+{segments[0]}", *segments[1:]]
    body.append(f"UNT+{len(body) + 1}+1")
    raw = ("UNB+UNOA:3+SENDER+RECEIVER+010101:1200+REF1'" + "'".join(body) + "'UNZ+1+REF1'").encode()
    _, messages = edifact.read(raw)
    problems = [p for m in messages for p in (validator.validate(m) or [])]
    return [(p.code, p.message_position, p.segment.tag) for p in problems]
