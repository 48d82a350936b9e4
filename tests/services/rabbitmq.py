"""RabbitMQ on 127.0.0.1:5672 for the AMQP tests (fixtures; see tests/services/__init__.py).

``amqp_url``: the broker (``GATEWAY_TEST_AMQP_URL``, else guest on 127.0.0.1:5672); an unreachable broker fails
the test, never skips it. ``amqp_queue``: a :class:`TestQueue` with a fresh, uniquely named queue, its dead-letter
exchange and dead-letter queue, all deleted afterwards. Each test uses its own names, so tests never touch
another suite's queues; nothing here reconfigures the server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from tests.services import missing

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def _connect(url: str) -> Any:
    params = pika.URLParameters(url)
    params.client_properties = {"connection_name": "port-gateway tests"}
    return pika.BlockingConnection(params)


@pytest.fixture(scope="session")
def amqp_url() -> str:
    url = os.environ.get("GATEWAY_TEST_AMQP_URL", DEFAULT_URL)
    try:
        _connect(url).close()
    except Exception as exc:
        missing("RabbitMQ", f"cannot connect to {url} ({type(exc).__name__}: {exc}); set GATEWAY_TEST_AMQP_URL")
    return url


@dataclass
class TestQueue:
    """A test's own queue on the broker, with helpers that each open and close their own connection."""

    __test__ = False  # not a test class for pytest

    url: str
    name: str

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.name}.dlx"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.name}.dead"

    def publish(self, bodies: Iterable[bytes], headers: dict[str, Any] | None = None, **props: Any) -> int:
        """Publish persistent messages to the queue (default exchange) with publisher confirms; returns how many."""
        n = 0
        connection = _connect(self.url)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            for body in bodies:
                properties = pika.BasicProperties(delivery_mode=2, headers=headers, **props)
                channel.basic_publish("", self.name, body, properties, mandatory=True)
                n += 1
        finally:
            connection.close()
        return n

    def with_channel(self, fn: Callable[[Any], Any]) -> Any:
        """Call ``fn(channel)`` on a connection of its own (e.g. to declare the queue before publishing)."""
        connection = _connect(self.url)
        try:
            return fn(connection.channel())
        finally:
            connection.close()

    def count(self, queue: str | None = None) -> int:
        """Ready messages in the queue (a passive declare; unacknowledged ones are not counted)."""
        connection = _connect(self.url)
        try:
            return int(connection.channel().queue_declare(queue or self.name, passive=True).method.message_count)
        finally:
            connection.close()

    def consumers(self) -> int:
        """Consumers attached to the queue; 0 while it does not exist yet."""
        connection = _connect(self.url)
        try:
            return int(connection.channel().queue_declare(self.name, passive=True).method.consumer_count)
        except ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                return 0
            raise
        finally:
            if connection.is_open:
                connection.close()

    def take_all(self, queue: str) -> list[tuple[Any, Any, bytes]]:
        """Get (and ack) every message waiting in ``queue``: (method, properties, body) each."""
        taken = []
        connection = _connect(self.url)
        try:
            channel = connection.channel()
            while True:
                method, props, body = channel.basic_get(queue, auto_ack=True)
                if method is None:
                    return taken
                taken.append((method, props, body))
        finally:
            connection.close()

    def arguments_match(self, arguments: dict[str, Any], queue: str | None = None) -> bool:
        """Whether a non-passive declare with ``arguments`` is accepted by the existing queue (RabbitMQ refuses a
        declaration whose x-arguments differ with PRECONDITION_FAILED, so this reads the declared arguments)."""
        connection = _connect(self.url)
        try:
            connection.channel().queue_declare(queue or self.name, durable=True, arguments=arguments)
            return True
        except ChannelClosedByBroker as exc:
            if exc.reply_code == 406:
                return False
            raise
        finally:
            if connection.is_open:
                connection.close()

    def delete(self) -> None:
        connection = _connect(self.url)
        try:
            channel = connection.channel()
            for queue in (self.name, self.dead_letter_queue):
                channel.queue_delete(queue)
            channel.exchange_delete(self.dead_letter_exchange)
        finally:
            connection.close()


@pytest.fixture
def amqp_queue(amqp_url: str) -> Iterator[TestQueue]:
    """A unique queue name for this test; the queue, its DLX and dead-letter queue are deleted afterwards."""
    queue = TestQueue(amqp_url, f"gw-test-{uuid.uuid4().hex[:12]}")
    yield queue
    queue.delete()


def close_broker_connections(name_contains: str, reason: str = "closed by the test") -> int:
    """Close, from the broker's side, the connections whose ``connection_name`` contains ``name_contains``
    (``rabbitmqctl close_connection``, one connection at a time; others' connections are left alone)."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        missing("rabbitmqctl", "the reconnect test closes a connection from the broker's side with it")
        return 0
    listed = subprocess.run(
        [ctl, "-q", "--no-table-headers", "list_connections", "pid", "client_properties"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if listed.returncode != 0:
        missing("rabbitmqctl", f"list_connections failed: {listed.stderr.strip()}")
    closed = 0
    for line in listed.stdout.splitlines():
        pid, _, properties = line.partition("\t")
        _, marker, name = properties.partition('{"connection_name","')
        if marker and name_contains in name.partition('"')[0]:
            subprocess.run([ctl, "-q", "close_connection", pid, reason], capture_output=True, timeout=60, check=True)
            closed += 1
    return closed
