"""The message store on SQLite and PostgreSQL: committed receipts, duplicates recorded, raw bytes untouched."""

from __future__ import annotations

from sqlalchemy import select

from gateway.app import Gateway
from gateway.model import Message


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
