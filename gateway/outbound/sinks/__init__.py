"""Sinks take a rendered payload somewhere. Each raises :class:`SinkError` saying whether a retry may help.

One module per kind: ``folder``, ``http`` (httpx), ``sftp`` (paramiko), ``amqp`` (pika), ``smtp`` (smtplib).
:func:`make_sink` builds the one a route's ``to`` names; the others' libraries are imported only when used.
"""

from __future__ import annotations

from typing import Protocol

from gateway.config import AmqpSink, FolderSink, HttpSink, SftpSink, SmtpSink
from gateway.config import Sink as SinkConfig


class SinkError(Exception):
    """A failed send. ``retryable``: a later attempt may succeed (network, timeout, 5xx, 429); otherwise the
    delivery goes dead. ``retry_after``: seconds the peer asked us to wait (HTTP ``Retry-After``), when it said."""

    def __init__(self, text: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(text)
        self.retryable = retryable
        self.retry_after = retry_after


class Sink(Protocol):
    def send(self, payload: bytes, *, name: str, idempotency_key: str) -> None:
        """Deliver ``payload``; sending the same idempotency key twice must have the effect of once."""


def make_sink(config: SinkConfig, route: str = "") -> Sink:
    if isinstance(config, FolderSink):
        from gateway.outbound.sinks.folder import FolderSinkWriter

        return FolderSinkWriter(config.path)
    if isinstance(config, HttpSink):
        from gateway.outbound.sinks.http import HttpSinkSender

        return HttpSinkSender(config)
    if isinstance(config, SftpSink):
        from gateway.outbound.sinks.sftp import SftpSinkUploader

        return SftpSinkUploader(config, route)
    if isinstance(config, AmqpSink):
        from gateway.outbound.sinks.amqp import AmqpSinkPublisher

        return AmqpSinkPublisher(config)
    if isinstance(config, SmtpSink):
        from gateway.outbound.sinks.smtp import SmtpSinkMailer

        return SmtpSinkMailer(config)
    raise TypeError(f"no sink for {type(config).__name__}")
