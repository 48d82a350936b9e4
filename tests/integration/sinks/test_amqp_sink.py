"""AMQP sink against RabbitMQ: persistent, confirmed, mandatory; a broker restart mid-run loses nothing.

The first tests use the machine's broker (``amqp_queue``: a fresh queue of their own). The restart test never
touches that broker: it starts its own RabbitMQ node (``tests/services/rabbitmq_node.py``: own node name, ports,
Mnesia and log folders, no plugins), stops and starts it, and removes it afterwards.
"""

from __future__ import annotations

import collections
import threading
import time
from pathlib import Path
from typing import Any

import pika
import pytest

from gateway.config import AmqpSink
from gateway.outbound.sinks import Sink
from gateway.outbound.sinks.amqp import AmqpSinkPublisher
from tests.integration.sinks.support import ROUTE, coparn, coparn_batch, deliveries, drive, gateway_to
from tests.services import rabbitmq_node
from tests.services.rabbitmq import TestQueue
from tests.services.rabbitmq_node import OwnBroker

own_broker = rabbitmq_node.own_broker  # the fixture: a node of this test's own


def _declare(queue: TestQueue) -> None:
    def declare(channel: Any) -> None:
        channel.queue_declare(queue.name, durable=True)
        channel.exchange_declare(queue.dead_letter_exchange, "fanout", durable=True)
        channel.queue_declare(queue.dead_letter_queue, durable=True)

    queue.with_channel(declare)


def test_published_persistent_confirmed_with_the_key_as_message_id(
    amqp_queue: TestQueue, tmp_path: Path, database_url: str
) -> None:
    """Three deliveries through the dispatcher: three messages in the queue with the stored bytes, delivery_mode
    2, message_id = the delivery's key, the content type and the file name header. Breaks if messages are
    transient, the key is not carried, or the bytes differ from what was stored."""
    _declare(amqp_queue)
    gw = gateway_to(tmp_path, database_url, {"type": "amqp", "url": amqp_queue.url, "routing_key": amqp_queue.name})
    try:
        gw.accept(coparn(), channel="drops")
        drive(gw)
        found = deliveries(gw)
        assert [d.status for d, _ in found] == ["done"] * 3
        from gateway.model import Message

        with gw.sessions() as s:
            stored = {d.idempotency_key: s.get_one(Message, d.message_id) for d, _ in found}
        got = amqp_queue.take_all(amqp_queue.name)
        assert len(got) == 3
        for _, props, body in got:
            assert props.delivery_mode == 2 and props.content_type == "application/json"
            assert stored[props.message_id].raw == body
            assert props.headers["file_name"] == stored[props.message_id].filename
    finally:
        gw.close()


def test_an_unroutable_publish_is_dead_at_once(amqp_queue: TestQueue, tmp_path: Path, database_url: str) -> None:
    """No queue is bound to the routing key: with mandatory the broker returns the message, the sink says
    permanent, the delivery dies after one attempt. A missing exchange is permanent too. Breaks if mandatory is
    not set (the message would vanish and the delivery read done) or an unroutable message is retried."""
    gw = gateway_to(tmp_path, database_url, {"type": "amqp", "url": amqp_queue.url, "routing_key": amqp_queue.name})
    try:
        gw.accept(coparn(1), channel="drops")
        drive(gw)
        [(delivery, attempts)] = deliveries(gw)
        assert (delivery.status, [a.outcome for a in attempts]) == ("dead", ["dead"])
        assert attempts[0].error is not None and "unroutable" in attempts[0].error["text"]
    finally:
        gw.close()
    sink = AmqpSinkPublisher(AmqpSink(type="amqp", url=amqp_queue.url, exchange="gw-no-such-x", routing_key="k"))
    from gateway.outbound.sinks import SinkError

    with pytest.raises(SinkError) as no_exchange:
        sink.send(b"{}", name="a.json", idempotency_key="k1")
    assert not no_exchange.value.retryable and "404" in str(no_exchange.value)
    _declare(amqp_queue)  # the channel was closed by the broker; the next send opens another
    sink2 = AmqpSinkPublisher(AmqpSink(type="amqp", url=amqp_queue.url, routing_key=amqp_queue.name))
    sink2.send(b"{}", name="a.json", idempotency_key="k2")
    sink.close()
    sink2.close()
    assert amqp_queue.count() == 1


def test_content_type_is_the_payloads_unless_the_route_sets_one(amqp_queue: TestQueue) -> None:
    """A NACCS payload is published with its own type, a CONPAS one with application/json; a sink whose config
    sets content_type uses that for both. Breaks if the sink labels every payload with its config default."""
    _declare(amqp_queue)
    naccs_type = "application/x-naccs-edi; charset=euc-jp"
    own = AmqpSinkPublisher(AmqpSink(type="amqp", url=amqp_queue.url, routing_key=amqp_queue.name))
    fixed = AmqpSinkPublisher(
        AmqpSink(type="amqp", url=amqp_queue.url, routing_key=amqp_queue.name, content_type="text/x-fixed")
    )
    try:
        assert own.send(b"ECR", name="a.txt", idempotency_key="k1", content_type=naccs_type) is None
        own.send(b"{}", name="a.json", idempotency_key="k2", content_type="application/json")
        fixed.send(b"ECR", name="b.txt", idempotency_key="k3", content_type=naccs_type)
    finally:
        own.close()
        fixed.close()
    got = {props.message_id: props.content_type for _, props, _ in amqp_queue.take_all(amqp_queue.name)}
    assert got == {"k1": naccs_type, "k2": "application/json", "k3": "text/x-fixed"}


class Slowed:
    """The real sink, each send 20 ms later, so the run lasts long enough to restart the broker in it."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def send(self, payload: bytes, *, name: str, idempotency_key: str, content_type: str | None = None) -> bytes | None:
        time.sleep(0.02)
        return self.sink.send(payload, name=name, idempotency_key=idempotency_key, content_type=content_type)


def test_a_broker_restart_in_the_middle_of_a_publish_run_loses_nothing(
    own_broker: OwnBroker, tmp_path: Path, database_url: str
) -> None:
    """60 deliveries; after 15 are done the node is stopped (rabbitmqctl stop) and started again while the
    dispatcher keeps going. Every delivery ends done; the durable queue holds every key (no loss). A key may be
    there twice only when the broker took the message but its confirm was lost with the connection: then the
    delivery has a failed attempt before its ok, and the consumer drops the copy by message_id. Breaks if a
    publish is counted done without its confirm, messages are transient, or the sink does not reconnect."""
    queue = "gw-restart"
    connection = pika.BlockingConnection(pika.URLParameters(own_broker.url))
    connection.channel().queue_declare(queue, durable=True)
    connection.close()
    policy = {"max_attempts": 60, "initial_delay": "100ms", "multiplier": 1.5, "max_delay": "1s"}
    gw = gateway_to(tmp_path, database_url, {"type": "amqp", "url": own_broker.url, "routing_key": queue}, **policy)
    try:
        for i in range(20):
            gw.accept(coparn_batch(i), channel="drops")
        assert len(deliveries(gw)) == 60
        gw.dispatcher.sinks[ROUTE] = Slowed(gw.dispatcher.sinks[ROUTE])
        failures: list[BaseException] = []

        def run() -> None:
            try:
                drive(gw, timeout=180)
            except BaseException as exc:
                failures.append(exc)

        dispatching = threading.Thread(target=run)
        dispatching.start()
        deadline = time.monotonic() + 60
        while sum(d.status == "done" for d, _ in deliveries(gw)) < 15 and time.monotonic() < deadline:
            time.sleep(0.02)
        done_before = sum(d.status == "done" for d, _ in deliveries(gw))
        own_broker.stop()
        time.sleep(1)
        own_broker.start()
        dispatching.join(200)
        assert not dispatching.is_alive() and not failures, failures
        found = deliveries(gw)
        assert done_before < 60, "the run ended before the restart"
        assert [d.status for d, _ in found] == ["done"] * 60
        retried = {d.idempotency_key for d, attempts in found if len(attempts) > 1}
        assert retried, "no delivery met the stopped broker"
        connection = pika.BlockingConnection(pika.URLParameters(own_broker.url))
        try:
            channel = connection.channel()
            ids = []
            while True:
                method, props, _ = channel.basic_get(queue, auto_ack=True)
                if method is None:
                    break
                ids.append(props.message_id)
        finally:
            connection.close()
        counts = collections.Counter(ids)
        assert set(counts) == {d.idempotency_key for d, _ in found}  # every delivery's message is there
        duplicates = {k: n for k, n in counts.items() if n > 1}
        assert set(duplicates) <= retried  # a second copy only where an attempt failed after the broker took it
        print(f"restart run: {len(ids)} messages for 60 deliveries, {len(retried)} retried, duplicates {duplicates}")
    finally:
        gw.close()
