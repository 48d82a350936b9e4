"""The message store on SQLite and PostgreSQL: committed receipts, duplicates recorded, raw bytes untouched."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.app import Gateway
from gateway.model import Message
from gateway.store.messages import IdempotencyConflict


def test_receive_commits_before_returning(gateway: Gateway, coparn: bytes) -> None:
    receipt = gateway.store.receive(coparn, channel="drops", partner="ONE", filename="a.edi", headers={"k": "v"})
    with gateway.sessions() as s:  # a separate session sees it: it is committed
        msg = s.get_one(Message, receipt.message_id)
        assert (msg.status, msg.raw, msg.size, msg.filename, msg.headers) == (
            "received",
            coparn,
            len(coparn),
            "a.edi",
            {"k": "v"},
        )
        assert msg.partner is not None and msg.partner.code == "ONE"
        assert len(msg.sha256) == 64


def test_same_payload_same_partner_is_a_duplicate(gateway: Gateway, coparn: bytes) -> None:
    first = gateway.store.receive(coparn, channel="drops", partner="ONE")
    second = gateway.store.receive(coparn, channel="http", partner="ONE")
    assert not first.duplicate and second.duplicate and second.duplicate_of == first.message_id
    with gateway.sessions() as s:
        dup = s.get_one(Message, second.message_id)
        assert dup.status == "duplicate" and dup.raw == coparn and dup.dedup_key is None


def test_same_payload_from_another_partner_or_unknown_channel_is_not(gateway: Gateway, coparn: bytes) -> None:
    a = gateway.store.receive(coparn, channel="drops", partner="ONE")
    b = gateway.store.receive(coparn, channel="drops", partner=None)  # partner unknown: deduplicated per channel
    c = gateway.store.receive(coparn, channel="other", partner=None)
    assert not (a.duplicate or b.duplicate or c.duplicate)
    with gateway.sessions() as s:
        assert len(list(s.scalars(select(Message.id)))) == 3


def test_a_resent_interchange_is_a_duplicate_even_with_other_bytes(gateway: Gateway, coparn: bytes) -> None:
    """Same UNB sender and interchange reference from the same partner: recorded as a duplicate, not processed
    twice, though the resend carries a new preparation time (so other bytes)."""
    first = gateway.store.receive(coparn, channel="drops", partner="ONE")
    resent = gateway.store.receive(coparn.replace(b"261124:0930", b"261124:1015"), channel="drops", partner="ONE")
    assert resent.duplicate_of == first.message_id and resent.reason == "interchange reference"
    other = gateway.store.receive(coparn.replace(b"+20261124001'", b"+20261124002'"), channel="drops", partner="ONE")
    assert not other.duplicate


def test_a_corrected_resend_of_a_failed_interchange_is_processed(gateway: Gateway, coparn: bytes) -> None:
    """A rejected interchange does not block its corrected resend under the same reference (partners fix and
    resend); the reference moves to the new original."""
    broken = gateway.accept(coparn.replace(b"UNT+16+2'", b"UNT+17+2'"), channel="drops")
    assert broken.status == "rejected"
    fixed = gateway.accept(coparn, channel="drops")
    assert fixed.status == "accepted"
    again = gateway.store.receive(coparn.replace(b"261124:0930", b"261124:1015"), channel="drops", partner="ONE")
    assert again.duplicate_of == fixed.message_ids[0]


def test_idempotency_key_returns_the_first_message(gateway: Gateway, coparn: bytes) -> None:
    """A retried request with the same key stores nothing; the same key with other bytes is a conflict."""
    first = gateway.store.receive(coparn, channel="api", partner="ONE", idempotency_key="k1")
    again = gateway.store.receive(coparn, channel="api", partner="ONE", idempotency_key="k1")
    assert again.message_id == first.message_id and again.replayed
    with pytest.raises(IdempotencyConflict):
        gateway.store.receive(b"other", channel="api", partner="ONE", idempotency_key="k1")
    with gateway.sessions() as s:
        assert len(list(s.scalars(select(Message.id)))) == 1
