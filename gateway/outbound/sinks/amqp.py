"""AMQP sink (pika): publish each payload to RabbitMQ so that a confirmed send is a stored message.

Every publish is persistent (``delivery_mode=2``), ``mandatory`` and made on a channel in confirm mode, so
``basic_publish`` returns only when the broker has taken the message (for a durable queue: written it). The
``message_id`` property is the delivery's idempotency key, so a consumer can drop the copy a resend makes when a
confirm was lost with the connection.

Classification: a message no queue takes (returned because of ``mandatory``) and a publish to a missing exchange
are permanent; a nack, a lost or refused connection and a timeout are retryable. pika is not thread-safe: each
thread that sends gets its own connection, kept between sends; after a connection error the next send on that
thread connects again.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pika
import pika.exceptions as pe

from gateway import amqp
from gateway.config import AmqpSink
from gateway.outbound.sinks import SinkError


class AmqpSinkPublisher:
    def __init__(self, config: AmqpSink) -> None:
        self.config = config
        self._local = threading.local()  # .connection, .channel of this thread

    def _url(self) -> str:
        try:
            return amqp.url_from(self.config.url, self.config.url_env)
        except amqp.MissingUrl as exc:
            raise SinkError(str(exc), retryable=False) from None

    def parameters(self) -> pika.URLParameters:
        return amqp.parameters(self._url(), heartbeat=self.config.heartbeat, name="sink", timeout=self.config.timeout)

    def _channel(self) -> Any:
        channel = getattr(self._local, "channel", None)
        if channel is not None and channel.is_open:
            return channel
        connection = getattr(self._local, "connection", None)
        if connection is None or not connection.is_open:
            connection = pika.BlockingConnection(self.parameters())
            self._local.connection = connection
        channel = connection.channel()
        channel.confirm_delivery()
        self._local.channel = channel
        return channel

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = self._local.channel = None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()

    def close(self) -> None:
        """Close this thread's connection."""
        self._drop()

    def send(self, payload: bytes, *, name: str, idempotency_key: str, content_type: str | None = None) -> bytes | None:
        cfg = self.config
        # the route's own content_type wins when routes.yaml sets one; otherwise the rendered message's type
        if "content_type" in cfg.model_fields_set or content_type is None:
            content_type = cfg.content_type
        target = f"exchange {cfg.exchange!r} routing key {cfg.routing_key!r}"
        properties = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent,
            content_type=content_type,
            message_id=idempotency_key,
            headers={**cfg.headers, "file_name": name},
        )
        try:
            channel = self._channel()
            channel.basic_publish(cfg.exchange, cfg.routing_key, payload, properties, mandatory=True)
        except pe.UnroutableError as exc:
            raise SinkError(f"{target}: no queue took the message (unroutable)", retryable=False) from exc
        except pe.NackError as exc:
            raise SinkError(f"{target}: the broker refused the message (nack)", retryable=True) from exc
        except pe.ChannelClosedByBroker as exc:
            self._local.channel = None  # the connection may go on; the next send opens a new channel
            text = f"{target}: the broker closed the channel: {exc.reply_code} {exc.reply_text}"
            # 404: no such exchange, 403: access refused; both need a configuration change
            raise SinkError(text, retryable=exc.reply_code not in (403, 404)) from exc
        except (pe.AMQPError, OSError) as exc:  # connection refused, lost, timed out, blocked too long
            self._drop()
            raise SinkError(f"{target}: {type(exc).__name__}: {exc}", retryable=True) from exc
        return None
