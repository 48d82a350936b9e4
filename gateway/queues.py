"""Notices between roles: who stored or queued something tells whoever works on it next.

A notice is a hint, never the work itself: the database holds every message and delivery, and a worker or
dispatcher claims its row there (``FOR UPDATE SKIP LOCKED``; a status that moved on means nothing to do). So a
notice lost, duplicated or delivered to a process that dies only costs time, never a message, and the roles
also sweep the database on a timer for work whose notice never came.

- One process (``gateway run`` with every role, no ``queues`` section): :class:`LocalNotices`, two
  ``threading.Event`` that wake the worker and dispatcher loops.
- Scaled out (``queues:`` in routes.yaml): :class:`RabbitQueues`, two RabbitMQ quorum queues,
  ``<prefix>.received`` (an inbound message id per stored payload: receivers and the web role publish, workers
  consume) and ``<prefix>.deliveries`` (the delivery ids one processed message queued, as a JSON list: workers
  publish, dispatchers consume). Notices are persistent and published with confirms; a consumer acknowledges a
  notice after the work it names is committed (or found done by someone else), so a worker or dispatcher
  SIGKILLed mid-work leaves its notices to RabbitMQ, which hands them to another.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import pika
import structlog

from gateway import amqp
from gateway.channels import Backoff
from gateway.config import QueuesConfig

log = structlog.get_logger("gateway.queues")

RECEIVED = "received"
DELIVERIES = "deliveries"
TURN = 0.5  # seconds one process_data_events turn may block: how soon stop is seen
RETRY_AFTER = 5.0  # seconds publishing rests after it failed
PUBLISH_TIMEOUT = 10.0  # seconds a publisher waits for the broker to connect and confirm


class LocalNotices:
    """The one-process default: wake the worker and dispatcher threads of this process."""

    def __init__(self) -> None:
        self.work = threading.Event()
        self.dispatch = threading.Event()

    def received(self, message_ids: Sequence[int]) -> None:
        if message_ids:
            self.work.set()


Handler = Callable[[bytes], bool]  # True: done with it (ack); False: the database is away (requeue, pause)


class RabbitQueues:
    """Publish and consume the two notice queues; pika is not thread-safe, so a connection per thread."""

    def __init__(self, config: QueuesConfig) -> None:
        self.config = config
        self._local = threading.local()
        self._down_until = 0.0  # monotonic time before which publishing is not tried (the broker was away)
        self._lock = threading.Lock()

    def name(self, kind: str) -> str:
        return f"{self.config.prefix}.{kind}"

    # publishing ---------------------------------------------------------------------------------------------
    def received(self, message_ids: Sequence[int]) -> None:
        for message_id in message_ids:
            self._publish(RECEIVED, str(message_id).encode())

    def deliveries(self, delivery_ids: Sequence[int]) -> None:
        if delivery_ids:
            self._publish(DELIVERIES, json.dumps(list(delivery_ids)).encode())

    def _publish(self, kind: str, body: bytes) -> None:
        """Publish with a confirm; a failure is logged, never raised: the work is committed and the sweep finds
        it, so the sender of the payload is acknowledged all the same. After a failure no thread tries again for
        ``RETRY_AFTER`` seconds, so a broker that is down does not slow every receipt by a connect timeout."""
        fresh = getattr(self._local, "channel", None) is None
        with self._lock:
            if time.monotonic() < self._down_until:
                return
            if fresh:  # one thread at a time finds out whether a broker answers; the others do not wait on it
                self._down_until = time.monotonic() + PUBLISH_TIMEOUT
        # a connection kept since an earlier publish may have gone stale: then one more try on a new one
        attempts = 1 if fresh else 2
        for attempt in range(1, attempts + 1):
            try:
                self._channel().basic_publish(
                    "", self.name(kind), body, properties=pika.BasicProperties(delivery_mode=2), mandatory=True
                )
                if fresh:
                    with self._lock:
                        self._down_until = 0.0
                return
            except Exception as exc:
                self._drop()
                if attempt == attempts:
                    self._down_until = time.monotonic() + RETRY_AFTER
                    log.warning(
                        "notices not published for a while; the sweep will find the work",
                        queue=self.name(kind),
                        error=amqp.describe(exc),
                        retry_in=RETRY_AFTER,
                    )

    def _channel(self) -> Any:
        channel = getattr(self._local, "channel", None)
        if channel is not None and channel.is_open:
            return channel
        connection = self._connect("publisher", timeout=PUBLISH_TIMEOUT)
        channel = connection.channel()
        self.declare(channel)
        channel.confirm_delivery()
        self._local.connection, self._local.channel = connection, channel
        return channel

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = self._local.channel = None
        if connection is not None and connection.is_open:
            with contextlib.suppress(Exception):
                connection.close()

    def close(self) -> None:
        """Close this thread's publishing connection."""
        self._drop()

    # consuming ----------------------------------------------------------------------------------------------
    def consume(self, kind: str, handle: Handler, stop: threading.Event, *, pause: Callable[[], None]) -> None:
        """Hand each notice of queue ``kind`` to ``handle`` until ``stop``; reconnect with backoff on any broker
        error. ``pause`` is called after a notice was put back because the database was away."""
        backoff = Backoff(self.config.max_backoff)
        # the work runs in this one thread, beside the connection's (see _while_answering_heartbeats); the
        # connections it opens there (publishing notices, a sink's) are closed with it
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"queue:{kind}:work") as executor:
            while not stop.is_set():
                try:
                    self._consume(kind, handle, stop, pause, backoff, executor)
                except Exception as exc:
                    log.warning("queue consumer disconnected", queue=self.name(kind), error=amqp.describe(exc))
                    stop.wait(backoff.next())
            executor.submit(self.close)

    def _consume(
        self,
        kind: str,
        handle: Handler,
        stop: threading.Event,
        pause: Callable[[], None],
        backoff: Backoff,
        executor: ThreadPoolExecutor,
    ) -> None:
        connection = self._connect(f"{kind} consumer")
        try:
            channel = connection.channel()
            self.declare(channel)
            channel.basic_qos(prefetch_count=self.config.prefetch)
            waiting: deque[tuple[Any, bytes]] = deque()
            channel.basic_consume(self.name(kind), lambda _ch, method, _props, body: waiting.append((method, body)))
            log.info("consuming", queue=self.name(kind))
            backoff.reset()
            while not stop.is_set():
                connection.process_data_events(time_limit=TURN)
                while waiting and not stop.is_set():
                    method, body = waiting.popleft()
                    if _while_answering_heartbeats(connection, executor.submit(handle, body)):
                        channel.basic_ack(method.delivery_tag)
                    else:
                        channel.basic_nack(method.delivery_tag, requeue=True)
                        pause()
        finally:
            with contextlib.suppress(Exception):
                connection.close()  # what was received and not acknowledged goes back to the queue

    # both ---------------------------------------------------------------------------------------------------
    def declare(self, channel: Any) -> None:
        for kind in (RECEIVED, DELIVERIES):
            channel.queue_declare(
                self.name(kind), durable=True, arguments=amqp.quorum_arguments(self.config.delivery_limit)
            )

    def parameters(self, what: str, timeout: float | None = None) -> pika.URLParameters:
        url = amqp.url_from(self.config.url, self.config.url_env)
        return amqp.parameters(url, heartbeat=self.config.heartbeat, name=f"queues {what}", timeout=timeout)

    def _connect(self, what: str, timeout: float | None = None) -> Any:
        return pika.BlockingConnection(self.parameters(what, timeout))


def _while_answering_heartbeats(connection: Any, work: Future[bool]) -> bool:
    """Wait for ``work`` (in the executor's thread) while this thread, the connection's own, keeps answering
    heartbeats: a 200 MB interchange takes minutes, and a silent connection would be closed by the broker and
    its notices handed to another worker while this one is still at it."""
    while True:
        try:
            return work.result(timeout=TURN)
        except FutureTimeout:
            connection.process_data_events(time_limit=0)


def parse_ids(body: bytes) -> list[int]:
    """A notice's ids: one integer, or a JSON list of integers; anything else is no ids (logged)."""
    try:
        value = json.loads(body)
    except ValueError:
        value = None
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return list(value)
    log.warning("notice ignored: not an id or a list of ids", body=body[:80].decode("utf-8", "replace"))
    return []
