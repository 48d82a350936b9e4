"""Sinks take a rendered payload somewhere. Each raises :class:`SinkError` saying whether a retry may help."""

from __future__ import annotations

from typing import Protocol

from gateway.config import FolderSink


class SinkError(Exception):
    def __init__(self, text: str, *, retryable: bool) -> None:
        super().__init__(text)
        self.retryable = retryable


class Sink(Protocol):
    def send(self, payload: bytes, *, name: str, idempotency_key: str) -> None:
        """Deliver ``payload``; sending the same idempotency key twice must have the effect of once."""


def make_sink(config: FolderSink) -> Sink:
    from gateway.outbound.sinks.folder import FolderSinkWriter

    return FolderSinkWriter(config.path)
