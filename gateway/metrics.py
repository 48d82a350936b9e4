"""Per-channel metrics in Prometheus' text format (served at ``/metrics``).

Counters live in the process (received, duplicates, refused, failed); the lag is read from the database when
scraped, so it is right whichever process stored the message. One registry per :class:`Gateway`, so tests
and several gateways in one process do not share counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.model import Message, MessageStatus, utcnow

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self, sessions: sessionmaker[Session], channels: Iterable[str]) -> None:
        self.registry = CollectorRegistry()
        labels = ["channel"]
        self.received = Counter(
            "gateway_channel_received", "Payloads stored as originals", labels, registry=self.registry
        )
        self.duplicates = Counter(
            "gateway_channel_duplicates", "Payloads recorded as duplicates", labels, registry=self.registry
        )
        self.refused = Counter(
            "gateway_channel_refused",
            "Payloads refused before they were stored (authentication, size, rate, unknown partner)",
            [*labels, "reason"],
            registry=self.registry,
        )
        self.failed = Counter(
            "gateway_channel_failed", "Stored payloads whose processing failed", labels, registry=self.registry
        )
        self.up = Gauge(
            "gateway_channel_up", "1 while the channel is connected or listening", labels, registry=self.registry
        )
        self.channels = sorted(channels)
        for name in self.channels:  # every series exists from the start, at zero
            for metric in (self.received, self.duplicates, self.failed, self.up):
                metric.labels(name)
        self.registry.register(_LagCollector(sessions, self.channels))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _LagCollector(Collector):
    """Seconds since the oldest payload still waiting to be processed was stored, per channel."""

    def __init__(self, sessions: sessionmaker[Session], channels: list[str]) -> None:
        self.sessions = sessions
        self.channels = channels

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "gateway_channel_lag_seconds",
            "Age of the oldest stored payload not yet processed (0 when none waits)",
            labels=["channel"],
        )
        now = utcnow()
        with self.sessions() as s:
            rows = s.execute(
                select(Message.channel, func.min(Message.received_at))
                .where(Message.status == MessageStatus.RECEIVED.value, Message.direction == "in")
                .group_by(Message.channel)
            )
            oldest = {channel: at for channel, at in rows}
        for name in sorted(set(self.channels) | set(oldest)):
            at = oldest.get(name)
            family.add_metric([name], (now - at).total_seconds() if at is not None else 0.0)
        yield family
