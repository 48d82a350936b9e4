"""The AMQP channel against the machine's RabbitMQ: acks after commit, quorum queue, dead letters, reconnects.

Each test has its own queue (``amqp_queue``), runs the whole gateway (channel, worker, dispatcher) in a thread
and stops it at the end.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.channels.amqp import AmqpConsumer
from gateway.model import Message, Partner
from tests.acceptance.crashkit import payloads, wait_for
from tests.conftest import write_config
from tests.services.rabbitmq import TestQueue, close_broker_connections

CHANNEL = "bus"
PARTNERS = {
    "ONE": {"name": "Ocean Network Express", "business_type": "ocean_carrier", "edifact_ids": ["ONEY"]},
    "NYK": {"name": "NYK Line", "business_type": "ocean_carrier"},
}


@dataclass
class Running:
    gateway: Gateway
    consumer: AmqpConsumer
    stop: threading.Event
    thread: threading.Thread

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the gateway did not stop within 30 s"


@pytest.fixture
def start(tmp_path: Path, database_url: str, amqp_queue: TestQueue) -> Iterator[Any]:
    """start(**channel overrides) → a Running gateway whose only channel consumes the test's queue."""
    running: list[Running] = []

    def _start(**overrides: Any) -> Running:
        channel = {"type": "amqp", "url": amqp_queue.url, "queue": amqp_queue.name, **overrides}
        path = write_config(tmp_path, database_url, partners=PARTNERS, channels={CHANNEL: channel}, routes={})
        gateway = Gateway(config_mod.load(path))
        [consumer] = gateway.channels
        assert isinstance(consumer, AmqpConsumer)
        stop = threading.Event()
        thread = threading.Thread(target=gateway.run, args=(stop,), kwargs={"http": False}, daemon=True)
        run = Running(gateway, consumer, stop, thread)
        running.append(run)
        thread.start()
        wait_for(lambda: amqp_queue.consumers() == 1, 20, lambda: "the consumer did not attach to the queue")
        return run

    yield _start
    for run in running:
        run.halt()
        run.gateway.close()


def stored(gateway: Gateway) -> list[Message]:
    with gateway.sessions() as s:
        return list(s.scalars(select(Message).where(Message.direction == "in").order_by(Message.id)))


def partner_of(gateway: Gateway, message: Message) -> str | None:
    with gateway.sessions() as s:
        return s.scalar(select(Partner.code).where(Partner.id == message.partner_id))


def refused(gateway: Gateway, reason: str) -> float:
    value = gateway.metrics.registry.get_sample_value(
        "gateway_channel_refused_total", {"channel": CHANNEL, "reason": reason}
    )
    return value or 0.0


def test_consumed_messages_are_stored_processed_and_acked(start: Any, amqp_queue: TestQueue) -> None:
    """Breaks if a delivery is acked before (or without) its commit, if one is left unacknowledged (it would
    come back once the consumer's connection closes), or if the delivery's properties are not recorded."""
    run = start()
    sent = payloads(30)
    amqp_queue.publish(sent[:1], message_id="m-0", correlation_id="c-0", app_id="tos", timestamp=1_767_225_600)
    amqp_queue.publish(sent[1:], content_type="application/edifact")
    wait_for(lambda: len(stored(run.gateway)) == 30 and all(m.status == "done" for m in stored(run.gateway)), 30)
    wait_for(lambda: run.consumer.pending() == 0, 10, lambda: f"pending() is {run.consumer.pending()}")
    assert amqp_queue.count() == 0
    run.halt()  # the consumer's connection closes: anything unacknowledged would return to the queue now
    assert amqp_queue.consumers() == 0
    assert amqp_queue.count() == 0
    assert amqp_queue.count(amqp_queue.dead_letter_queue) == 0
    messages = stored(run.gateway)
    assert sorted(m.raw for m in messages) == sorted(sent)
    assert {m.channel for m in messages} == {CHANNEL}
    assert {partner_of(run.gateway, m) for m in messages} == {"ONE"}  # from the UNB sender ONEY
    first = next(m for m in messages if m.raw == sent[0])
    assert first.headers["message_id"] == "m-0"
    assert first.headers["correlation_id"] == "c-0"
    assert first.headers["app_id"] == "tos"
    assert first.headers["routing_key"] == amqp_queue.name
    assert first.headers["exchange"] == ""
    assert first.headers["timestamp"] == "2026-01-01T00:00:00+00:00"
    assert messages[-1].headers["content_type"] == "application/edifact"


def test_the_queue_is_a_quorum_queue_with_a_delivery_limit_and_a_dead_letter_exchange(
    start: Any, amqp_queue: TestQueue
) -> None:
    """Breaks if the consumer declares a classic queue, no delivery limit or no dead-letter route: RabbitMQ
    accepts a second declaration only with the same arguments, and a dead letter must reach the dead queue."""
    run = start(delivery_limit=3)
    expected = {
        "x-queue-type": "quorum",
        "x-delivery-limit": 3,
        "x-dead-letter-exchange": amqp_queue.dead_letter_exchange,
        "x-dead-letter-routing-key": amqp_queue.dead_letter_queue,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    assert run.consumer.queue_arguments() == expected
    assert amqp_queue.arguments_match(expected)
    assert not amqp_queue.arguments_match({**expected, "x-delivery-limit": 4})
    assert not amqp_queue.arguments_match({**expected, "x-dead-letter-exchange": "elsewhere"})
    assert not amqp_queue.arguments_match({k: v for k, v in expected.items() if k != "x-queue-type"})
    assert amqp_queue.arguments_match({"x-queue-type": "quorum"}, amqp_queue.dead_letter_queue)


def test_a_poison_message_is_dead_lettered_after_the_delivery_limit(
    start: Any, amqp_queue: TestQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Breaks if a store failure acks the delivery (the message would be lost), or if the quorum queue's
    delivery limit does not end a message whose store fails every time (it would loop forever)."""
    run = start(delivery_limit=1, max_backoff="1s")
    attempts: list[bytes] = []

    def always_fails(raw: bytes, **kwargs: Any) -> Any:
        attempts.append(raw)
        raise RuntimeError("this payload breaks the store")

    monkeypatch.setattr(run.gateway, "receive", always_fails)
    [poison] = payloads(1)
    amqp_queue.publish([poison])
    wait_for(lambda: amqp_queue.count(amqp_queue.dead_letter_queue) == 1, 30, lambda: f"{len(attempts)} attempts")
    assert attempts == [poison, poison]  # the first delivery and one redelivery (delivery_limit: 1)
    [(_, props, body)] = amqp_queue.take_all(amqp_queue.dead_letter_queue)
    assert body == poison
    assert props.headers["x-death"][0]["queue"] == amqp_queue.name
    assert stored(run.gateway) == []


def test_refused_deliveries_are_dead_lettered_and_counted(start: Any, amqp_queue: TestQueue) -> None:
    """Breaks if an empty body, a body over max_bytes or a partner header naming no partner is stored, requeued
    (it would come back forever) or silently dropped instead of dead-lettered, or if a refusal stops the
    consumer from taking the next message."""
    good, big = payloads(2)
    run = start(max_bytes=len(good))
    amqp_queue.publish([b""])
    amqp_queue.publish([big + b"\n"])
    amqp_queue.publish([big], headers={"partner": "NOBODY"})
    amqp_queue.publish([good])
    wait_for(lambda: len(stored(run.gateway)) == 1, 20)
    wait_for(lambda: amqp_queue.count(amqp_queue.dead_letter_queue) == 3, 20)
    assert [m.raw for m in stored(run.gateway)] == [good]
    dead = amqp_queue.take_all(amqp_queue.dead_letter_queue)
    assert sorted(body for _, _, body in dead) == sorted([b"", big + b"\n", big])
    assert all(props.headers["x-death"][0]["reason"] == "rejected" for _, props, _ in dead)
    assert (refused(run.gateway, "empty"), refused(run.gateway, "size"), refused(run.gateway, "partner")) == (1, 1, 1)
    assert amqp_queue.count() == 0


def test_the_partner_comes_from_the_header(start: Any, amqp_queue: TestQueue) -> None:
    """Breaks if the partner header is ignored: the UNB sender ONEY would make the message ONE's."""
    run = start()
    first, second = payloads(2)
    amqp_queue.publish([first], headers={"partner": "NYK"})
    amqp_queue.publish([second])
    wait_for(lambda: len(stored(run.gateway)) == 2, 20)
    by_raw = {m.raw: m for m in stored(run.gateway)}
    assert partner_of(run.gateway, by_raw[first]) == "NYK"
    assert by_raw[first].headers["partner_header"] == "NYK"
    assert partner_of(run.gateway, by_raw[second]) == "ONE"


def test_the_channel_partner_wins_over_the_header(start: Any, amqp_queue: TestQueue) -> None:
    """Breaks if a dedicated channel (partner: NYK) lets a header speak for another partner."""
    run = start(partner="NYK")
    [payload] = payloads(1)
    amqp_queue.publish([payload], headers={"partner": "ONE"})
    wait_for(lambda: len(stored(run.gateway)) == 1, 20)
    assert partner_of(run.gateway, stored(run.gateway)[0]) == "NYK"


def test_a_failed_store_returns_the_message_which_is_then_stored_once(
    start: Any, amqp_queue: TestQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Breaks if a delivery whose store raised is acked (lost), rejected (dead-lettered) or stored twice."""
    run = start(max_backoff="1s")
    real = run.gateway.receive
    failures: list[bytes] = []

    def fails_once(raw: bytes, **kwargs: Any) -> Any:
        if not failures:
            failures.append(raw)
            raise OperationalError("INSERT", {}, Exception("database is down"))
        return real(raw, **kwargs)

    monkeypatch.setattr(run.gateway, "receive", fails_once)
    sent = payloads(3)
    amqp_queue.publish(sent)
    wait_for(lambda: len(stored(run.gateway)) == 3, 30)
    messages = stored(run.gateway)
    assert sorted(m.raw for m in messages) == sorted(sent)
    assert len(failures) == 1
    [again] = [m for m in messages if m.raw == failures[0]]
    assert again.headers["redelivered"] is True
    assert again.headers["delivery_count"] == 1
    wait_for(lambda: all(m.status == "done" for m in stored(run.gateway)), 10)
    run.halt()
    assert amqp_queue.count() == 0
    assert amqp_queue.count(amqp_queue.dead_letter_queue) == 0


def test_the_consumer_reconnects_after_the_broker_closes_its_connection(start: Any, amqp_queue: TestQueue) -> None:
    """Breaks if a connection closed by the broker ends the channel's thread or leaves it disconnected: the
    messages published afterwards would never be stored."""
    run = start(max_backoff="1s")
    first, second = payloads(2)
    amqp_queue.publish([first])
    wait_for(lambda: len(stored(run.gateway)) == 1, 20)
    assert close_broker_connections(f"port-gateway {CHANNEL} pid {os.getpid()}") == 1
    wait_for(lambda: amqp_queue.consumers() == 0, 10)
    amqp_queue.publish([second])
    wait_for(lambda: len(stored(run.gateway)) == 2, 30, lambda: "not stored after the broker closed the connection")
    assert amqp_queue.consumers() == 1
    assert run.gateway.channel_states() == {CHANNEL: True}
    assert sorted(m.raw for m in stored(run.gateway)) == sorted([first, second])
    assert all(t.is_alive() for t in threading.enumerate() if t.name == f"channel:{CHANNEL}")


def test_run_until_idle_takes_what_waits_in_the_queue_and_stops_cleanly(
    tmp_path: Path, database_url: str, amqp_queue: TestQueue
) -> None:
    """Breaks if pending() says 0 before the consumer has looked or while messages wait in the queue
    (``run --until-idle`` would end before taking them), or if stop leaves the connection open."""
    channel = {"type": "amqp", "url": amqp_queue.url, "queue": amqp_queue.name}
    path = write_config(tmp_path, database_url, partners=PARTNERS, channels={CHANNEL: channel}, routes={})
    gateway = Gateway(config_mod.load(path))
    try:
        [consumer] = gateway.channels
        assert isinstance(consumer, AmqpConsumer)
        assert consumer.pending() == 1  # not looked yet: unknown, so not idle
        amqp_queue.with_channel(consumer.declare)
        sent = payloads(50)
        amqp_queue.publish(sent)
        gateway.run(threading.Event(), until_idle=True, http=False)
        messages = stored(gateway)
        assert sorted(m.raw for m in messages) == sorted(sent)
        assert {m.status for m in messages} == {"done"}
        assert consumer.pending() == 0
        assert amqp_queue.consumers() == 0
        assert amqp_queue.count() == 0
    finally:
        gateway.close()


def test_heartbeats_are_answered_while_waiting_and_while_paused(
    start: Any, amqp_queue: TestQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Breaks if the consumer blocks without serving its connection (a plain sleep while paused after a store
    failure, or a blocking wait for deliveries): with a 1 s heartbeat RabbitMQ would close the connection within
    a few seconds and the consumer would have to connect again."""
    sessions: list[int] = []
    session = AmqpConsumer._session

    def counted(self: AmqpConsumer, stop: threading.Event) -> None:
        sessions.append(1)
        session(self, stop)

    monkeypatch.setattr(AmqpConsumer, "_session", counted)
    run = start(heartbeat=1, max_backoff="2s")
    time.sleep(4)  # idle: only heartbeats on the wire
    real = run.gateway.receive
    down: list[int] = []

    def fails_while_down(raw: bytes, **kwargs: Any) -> Any:
        if len(down) < 3:
            raise OperationalError("INSERT", {}, Exception("database is down"))
        return real(raw, **kwargs)

    def database_answers() -> bool:  # the database comes back at the third look, some 5 s later
        down.append(1)
        return len(down) >= 3

    monkeypatch.setattr(run.gateway, "receive", fails_while_down)
    monkeypatch.setattr(run.consumer, "_database_answers", database_answers)
    [payload] = payloads(1)
    amqp_queue.publish([payload])
    wait_for(lambda: len(stored(run.gateway)) == 1, 30)
    assert len(down) == 3
    assert sessions == [1], "the connection was lost and made again"
