"""AMQP inbound channel: consume a RabbitMQ queue with pika; ack only after the payload is committed.

One consumer thread owns one ``pika.BlockingConnection`` and its channel, created in that thread (pika is not
thread-safe; nothing here is shared with another thread except two integers behind a lock for ``pending``).

The queue (``declare: true``, the default) is a **quorum queue** declared with

- ``x-delivery-limit``: how many times RabbitMQ hands out a message that comes back (a nack with requeue, or a
  channel that closed while holding it) before it dead-letters the message instead: the end of a poison message
  whose store keeps failing. Note that with RabbitMQ 3.x every return counts, so a message that happens to be in
  flight (one of ``prefetch`` unacknowledged deliveries) when the gateway is killed or loses its connection also
  spends one delivery.
- ``x-dead-letter-exchange`` (a direct exchange, ``<queue>.dlx`` by default) and ``x-dead-letter-routing-key``
  (the dead-letter queue's name); the dead-letter queue (``<queue>.dead``, also a quorum queue) is bound to the
  exchange under that key.
- ``x-dead-letter-strategy: at-least-once`` with ``x-overflow: reject-publish`` (RabbitMQ 3.10+): the broker moves
  a dead letter with publisher confirms, so it cannot get lost between the two queues.

A declaration that differs from an existing queue's arguments is refused by RabbitMQ (``PRECONDITION_FAILED``);
the consumer logs that and retries with backoff. With ``declare: false`` the queue must exist (checked passively).

Per delivery (``basic_qos(prefetch)``, manual acks):

- refused, ``basic_reject(requeue=False)`` so the quorum queue dead-letters it, logged and counted in
  ``gateway_channel_refused{reason}``: an empty body (``empty``), a body over ``max_bytes`` (``size``), a
  ``partner_header`` naming no partner of routes.yaml (``partner``);
- otherwise ``Gateway.receive`` stores it (committed) and only then is it acked. The partner is the channel's
  ``partner``, else the header's, else ``Gateway.receive`` takes the UNB sender. A redelivered copy of a stored
  message is recorded as a duplicate, never processed twice.
- if storing raises (database down): ``basic_nack(requeue=True)``, the message goes back to the queue and comes
  again; the consumer pauses with backoff and resumes once the database answers ``SELECT 1``, so an outage spends
  one delivery of one message rather than the delivery limit of many.

The consumer turns ``connection.process_data_events(time_limit=0.5)`` in a loop that also watches ``stop``, so
heartbeats are answered while it waits and between messages (one store is short). Any connection or channel
error ends the session; ``run`` reconnects with :class:`Backoff` and never dies of a broker error. On ``stop``
the deliveries already received are stored and acked, then the connection is closed; what remains unacked
returns to the queue.

``pending()`` is the queue's ready message count, read with a passive declare by the consumer thread at most
every half second, plus the deliveries received and not yet settled. Before the first connection attempt
finishes it says 1 (unknown, so ``run --until-idle`` waits); when the broker cannot be reached it says 0.

TLS: an ``amqps://`` URL connects with ``ssl.create_default_context()`` (certificate and host name verified
against the system's trust store, or ``SSL_CERT_FILE``); pika's ``ssl_options`` URL query may name a CA file, but
verification is never turned off.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pika
import structlog
from sqlalchemy import text

from gateway import amqp
from gateway.channels import Backoff
from gateway.config import AmqpChannel

if TYPE_CHECKING:
    from gateway.app import Gateway

log = structlog.get_logger("gateway.channel.amqp")

TURN = 0.5  # seconds one process_data_events turn may block: how soon stop is seen
COUNT_EVERY = 0.5  # seconds between passive declares that refresh pending()

Delivery = tuple[Any, Any, bytes]  # pika.spec.Basic.Deliver, pika.BasicProperties, body


class ConsumerCancelled(Exception):
    """The broker cancelled the consumer (the queue was deleted, or a node went away)."""


class AmqpConsumer:
    def __init__(self, name: str, config: AmqpChannel, gateway: Gateway) -> None:
        self.name = name
        self.config = config
        self.gateway = gateway
        self.dead_letter_exchange = config.dead_letter_exchange or f"{config.queue}.dlx"
        self.dead_letter_queue = config.dead_letter_queue or f"{config.queue}.dead"
        self._reconnect = Backoff(config.max_backoff)
        self._store_backoff = Backoff(config.max_backoff)
        self._lock = threading.Lock()
        self._ready: int | None = None  # the queue's ready count at the last look; None: not looked yet
        self._held = 0  # deliveries received and not yet settled
        self._up = gateway.metrics.up.labels(name)

    # the protocol -------------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop``; a lost connection or any broker error reconnects after a backoff delay."""
        while not stop.is_set():
            try:
                self._session(stop)
            except Exception as exc:  # whatever the broker or network did, run on
                self._up.set(0)
                with self._lock:
                    if self._ready is None:
                        self._ready = 0  # unreachable: nothing known to wait
                    self._held = 0
                if not stop.is_set():
                    delay = self._reconnect.next()
                    log.warning(
                        "amqp session ended; reconnecting",
                        channel=self.name,
                        error=amqp.describe(exc),
                        retry_in=round(delay, 1),
                    )
                    stop.wait(delay)
        self._up.set(0)
        log.info("amqp consumer stopped", channel=self.name)

    def pending(self) -> int:
        with self._lock:
            return 1 if self._ready is None else self._ready + self._held

    # connection ---------------------------------------------------------------------------------------------
    def url(self) -> str:
        return amqp.url_from(self.config.url, self.config.url_env)

    def parameters(self) -> pika.URLParameters:
        """Connection parameters: the URL, the heartbeat, a connection name, and verifying TLS for amqps://."""
        return amqp.parameters(self.url(), heartbeat=self.config.heartbeat, name=self.name)

    def queue_arguments(self) -> dict[str, Any]:
        return {
            **amqp.quorum_arguments(self.config.delivery_limit),
            "x-dead-letter-exchange": self.dead_letter_exchange,
            "x-dead-letter-routing-key": self.dead_letter_queue,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }

    def declare(self, channel: Any) -> None:
        """The dead-letter exchange and queue, then the quorum queue (idempotent while the arguments agree)."""
        channel.exchange_declare(self.dead_letter_exchange, exchange_type="direct", durable=True)
        channel.queue_declare(self.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(self.dead_letter_queue, self.dead_letter_exchange, routing_key=self.dead_letter_queue)
        channel.queue_declare(self.config.queue, durable=True, arguments=self.queue_arguments())

    def _session(self, stop: threading.Event) -> None:
        """One connection: declare, consume until ``stop`` or an error, then close."""
        params = self.parameters()
        connection = pika.BlockingConnection(params)
        try:
            channel = connection.channel()
            if self.config.declare:
                self.declare(channel)
            else:
                channel.queue_declare(self.config.queue, passive=True)
            channel.basic_qos(prefetch_count=self.config.prefetch)
            received: deque[Delivery] = deque()
            cancelled: list[bool] = []
            channel.add_on_cancel_callback(lambda _frame: cancelled.append(True))
            channel.basic_consume(
                self.config.queue,
                on_message_callback=lambda _ch, method, props, body: received.append((method, props, body)),
                auto_ack=False,
            )
            self._up.set(1)
            self._reconnect.reset()
            log.info("amqp consuming", channel=self.name, queue=self.config.queue, host=f"{params.host}:{params.port}")
            self._consume(connection, channel, received, cancelled, stop)
            # stopping: settle what has arrived already, so a clean stop spends no message's delivery
            while received:
                if not self._handle(channel, *received.popleft()):
                    break
        finally:
            if connection.is_open:
                try:
                    connection.close()
                except Exception:  # closing a broken connection
                    log.debug("amqp close failed", channel=self.name, exc_info=True)

    def _consume(
        self,
        connection: Any,
        channel: Any,
        received: deque[Delivery],
        cancelled: list[bool],
        stop: threading.Event,
    ) -> None:
        counted = 0.0
        while not stop.is_set():
            connection.process_data_events(time_limit=0 if received else TURN)
            if cancelled:
                raise ConsumerCancelled(f"the broker cancelled the consumer of {self.config.queue}")
            while received and not stop.is_set():
                if not self._handle(channel, *received.popleft()):
                    self._pause(connection, stop)
                    break
                connection.process_data_events(time_limit=0)  # heartbeats and acks between messages
            if time.monotonic() - counted >= COUNT_EVERY:
                self._count(channel, received)
                counted = time.monotonic()

    def _count(self, channel: Any, received: deque[Delivery]) -> None:
        ready = channel.queue_declare(self.config.queue, passive=True).method.message_count
        with self._lock:
            self._ready = int(ready)
            self._held = len(received)

    def _pause(self, connection: Any, stop: threading.Event) -> None:
        """After a failed store: wait (answering heartbeats) until the backoff delay has passed and the database
        answers; the deliveries already received wait with us, unacknowledged."""
        while not stop.is_set():
            deadline = time.monotonic() + self._store_backoff.next()
            while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
                connection.process_data_events(time_limit=min(TURN, left))
            if self._database_answers():
                return

    def _database_answers(self) -> bool:
        try:
            with self.gateway.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means: not yet
            log.warning("database not answering; amqp consumer paused", channel=self.name, error=amqp.describe(exc))
            return False
        return True

    # one delivery -------------------------------------------------------------------------------------------
    def _handle(self, channel: Any, method: Any, props: Any, body: bytes) -> bool:
        """Store and ack, or refuse (dead-letter); False when storing failed and the delivery was returned."""
        tag = method.delivery_tag
        headers = dict(props.headers or {})
        given = headers.get(self.config.partner_header)
        named = given.decode("utf-8", "replace") if isinstance(given, bytes) else None if given is None else str(given)
        refusal = self.refusal(body, named)
        if refusal is not None:
            reason, detail = refusal
            channel.basic_reject(tag, requeue=False)
            self.gateway.metrics.refused.labels(self.name, reason).inc()
            log.warning(
                "amqp delivery refused; dead-lettered",
                channel=self.name,
                reason=reason,
                detail=detail,
                amqp_message_id=props.message_id,
                routing_key=method.routing_key,
            )
            return True
        partner = self.config.partner or named
        try:
            receipt = self.gateway.receive(
                body, channel=self.name, partner=partner, filename=None, headers=self.recorded(method, props, named)
            )
        except Exception as exc:  # the store failed: the message goes back to the queue
            channel.basic_nack(tag, requeue=True)
            log.error(
                "amqp delivery not stored; returned to the queue",
                channel=self.name,
                error=amqp.describe(exc),
                amqp_message_id=props.message_id,
                delivery_count=headers.get("x-delivery-count"),
                exc_info=True,
            )
            return False
        channel.basic_ack(tag)
        self._store_backoff.reset()
        log.debug("amqp delivery stored", channel=self.name, message_id=receipt.message_id)
        return True

    def refusal(self, body: bytes, partner: str | None) -> tuple[str, str] | None:
        """(reason, detail) when the delivery is refused before storing, else None."""
        if not body:
            return "empty", "the body is empty"
        if len(body) > self.config.max_bytes:
            return "size", f"body of {len(body)} bytes is over the limit of {self.config.max_bytes}"
        if self.config.partner is None and partner is not None and partner not in self.gateway.config.partners:
            return "partner", f"header {self.config.partner_header}={partner!r} names no partner of routes.yaml"
        return None

    def recorded(self, method: Any, props: Any, partner: str | None) -> dict[str, Any]:
        """What the message row keeps of the delivery (JSON-safe)."""
        stamp = props.timestamp
        delivery_count = (props.headers or {}).get("x-delivery-count")
        return {
            "message_id": _text(props.message_id),
            "correlation_id": _text(props.correlation_id),
            "routing_key": _text(method.routing_key),
            "exchange": _text(method.exchange),
            "app_id": _text(props.app_id),
            "timestamp": datetime.fromtimestamp(stamp, UTC).isoformat() if isinstance(stamp, int) else None,
            "content_type": _text(props.content_type),
            "redelivered": bool(method.redelivered),
            "delivery_count": delivery_count if isinstance(delivery_count, int) else None,
            "partner_header": partner,
        }


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
