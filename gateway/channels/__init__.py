"""Inbound channels: where payloads come from.

Every channel obeys one rule: it hands a payload to :meth:`Gateway.receive` (or ``accept``), which returns only
after the payload is committed, and only then acknowledges its sender (moves or deletes the file, acks the
AMQP delivery, answers the HTTP request, closes the SFTP upload successfully). A crash before that leaves the
payload with the sender, who gives it again; the store records the second copy as a duplicate.

A channel is an object with a ``name``, ``run(stop)`` (receive until ``stop`` is set, surviving peer failures
by reconnecting with :class:`Backoff`) and ``pending()`` (payloads known to wait, for ``run --until-idle``).
HTTP is served by ``gateway/web`` and needs no loop.
"""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING, Protocol

from gateway.config import AmqpChannel, FolderChannel, SftpChannel, SftpServerChannel

if TYPE_CHECKING:
    from gateway.app import Gateway


class Channel(Protocol):
    name: str

    def run(self, stop: threading.Event) -> None: ...

    def pending(self) -> int: ...


class Backoff:
    """Reconnect delays: 1 s doubling up to ``maximum``, with ±20 % jitter; ``reset`` after a success."""

    def __init__(self, maximum: float, initial: float = 1.0) -> None:
        self.initial = initial
        self.maximum = max(maximum, initial)
        self.current = initial

    def next(self) -> float:
        delay = self.current * random.uniform(0.8, 1.2)
        self.current = min(self.current * 2, self.maximum)
        return min(delay, self.maximum)

    def reset(self) -> None:
        self.current = self.initial


def make_channels(gateway: Gateway) -> list[Channel]:
    """One channel object per enabled channel of routes.yaml (HTTP excepted: the web app serves it)."""
    made: list[Channel] = []
    for name, cfg in gateway.config.channels.items():
        if not cfg.enabled:
            continue
        if isinstance(cfg, FolderChannel):
            from gateway.channels.folder import FolderPoller

            made.append(FolderPoller(name, cfg, gateway.take, gateway.metrics.up.labels(name).set))
        elif isinstance(cfg, SftpChannel):
            from gateway.channels.sftp import SftpPoller

            made.append(SftpPoller(name, cfg, gateway))
        elif isinstance(cfg, SftpServerChannel):
            from gateway.channels.sftp_server import SftpServer

            made.append(SftpServer(name, cfg, gateway))
        elif isinstance(cfg, AmqpChannel):
            from gateway.channels.amqp import AmqpConsumer

            made.append(AmqpConsumer(name, cfg, gateway))
    return made
