"""The check every whole-pipeline hostile test makes: the payload ends done, failed with a coded error that is
not INT-1, or duplicate; the message row says the same, and the raw bytes are kept exactly."""

from __future__ import annotations

from hypothesis import event as hypothesis_event
from hypothesis.control import currently_in_test_context

from gateway.app import Gateway
from gateway.errors import CODES
from gateway.model import Message, MessageStatus


def event(text: str) -> None:
    """Count the outcome in hypothesis' statistics (``--hypothesis-show-statistics``) when inside a property."""
    if currently_in_test_context():
        hypothesis_event(text)


def accept_and_check(gw: Gateway, raw: bytes, channel: str = "drops") -> str:
    """Accept ``raw`` on ``channel``; the final status (``done``, ``failed`` or ``duplicate``), checked."""
    result = gw.accept(raw, channel=channel, filename="hostile.bin")
    assert result.status in ("accepted", "rejected", "duplicate"), result
    (message_id,) = result.message_ids
    with gw.sessions() as s:
        msg = s.get_one(Message, message_id)
        assert msg.raw == raw  # nothing lost, nothing changed
        if result.status == "duplicate":
            assert msg.status == MessageStatus.DUPLICATE
            event("duplicate")
            return "duplicate"
        if result.status == "accepted":
            assert msg.status == MessageStatus.DONE and msg.error_code is None, (msg.status, msg.error_code)
            event("done")
            return "done"
        assert msg.status == MessageStatus.FAILED, msg.status
        code = msg.error_code or ""
        assert code in CODES and code != "INT-1", f"{code}: {msg.error_text}"
        assert result.errors[0]["code"] == code
        event(f"failed {code}")
        return "failed"
