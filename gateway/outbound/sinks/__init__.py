"""Sinks take a rendered payload somewhere. Each raises :class:`SinkError` saying whether a retry may help.

One module per kind: ``folder``, ``http`` (httpx), ``sftp`` (paramiko), ``amqp`` (pika), ``smtp`` (smtplib).
:func:`make_sink` builds the one a route's ``to`` names; the others' libraries are imported only when used.
"""

from __future__ import annotations

from collections.abc import Callable
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
    def send(self, payload: bytes, *, name: str, idempotency_key: str, content_type: str | None = None) -> bytes | None:
        """Deliver ``payload``; sending the same idempotency key twice must have the effect of once.

        ``content_type`` is the rendered message's own type (``application/json`` for CONPAS, ``text/plain`` for
        NACCS); a sink with a type on the wire uses it unless its config sets one. Returns the peer's answer
        (the HTTP response body) where the transport has one, else None."""


class RouteSink:
    """A route's sink whose errors name the route: ``route conpas-prenotice: POST https://...: ...``; ``prepare``
    turns the stored payload into the bytes on the wire (a NACCS password written in at send time)."""

    def __init__(self, inner: Sink, route: str, prepare: Callable[[bytes], bytes] | None = None) -> None:
        self.inner = inner
        self.route = route
        self.prepare = prepare

    def send(self, payload: bytes, *, name: str, idempotency_key: str, content_type: str | None = None) -> bytes | None:
        try:
            if self.prepare is not None:
                payload = self.prepare(payload)
            return self.inner.send(payload, name=name, idempotency_key=idempotency_key, content_type=content_type)
        except SinkError as exc:
            raise SinkError(f"route {self.route}: {exc}", retryable=exc.retryable, retry_after=exc.retry_after) from exc

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


def make_sink(config: SinkConfig, route: str = "", prepare: Callable[[bytes], bytes] | None = None) -> Sink:
    """The sink ``config`` describes; with ``route``, its errors start with ``route <name>:``."""
    sink = _make(config, route)
    return RouteSink(sink, route, prepare) if route or prepare else sink


def _make(config: SinkConfig, route: str) -> Sink:
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
