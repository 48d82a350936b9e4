"""The dispatcher: claim due deliveries, render each once, send it, and settle the attempt.

Rendering is committed (as an outbound message row) before the send, so every attempt sends the same bytes
and a dead delivery keeps exactly what was tried. No transaction is held open while a peer is being talked to.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.orm import Session, sessionmaker

from gateway.config import PartnerConfig, RouteConfig
from gateway.model import Delivery, Message, MessageStatus, utcnow
from gateway.outbound import retry
from gateway.outbound.renderers import RenderContext, RenderError, renderer
from gateway.outbound.sinks import Sink, SinkError, make_sink
from gateway.store import outbox

log = structlog.get_logger("gateway.dispatch")


class Dispatcher:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        routes: Mapping[str, RouteConfig],
        *,
        lease: timedelta = timedelta(minutes=5),
        rng: random.Random | None = None,
        partners: Mapping[str, PartnerConfig] | None = None,
    ) -> None:
        self.context = RenderContext(partners=dict(partners or {}))
        self.sessions = sessions
        self.routes = routes
        self.lease = lease
        self.rng = rng or random.Random()
        self.sinks: dict[str, Sink] = {name: make_sink(r.to) for name, r in routes.items()}
        # a disabled route keeps its queued deliveries waiting; they go when it is enabled again
        self.enabled_routes = [name for name, r in routes.items() if r.enabled]

    def run_once(self, limit: int = 100) -> int:
        """Deliver what is due now; returns how many deliveries were attempted."""
        with self.sessions.begin() as s:
            ids = outbox.claim_due(s, limit=limit, lease=self.lease, routes=self.enabled_routes)
        for delivery_id in ids:
            self.deliver(delivery_id)
        return len(ids)

    def drain(self, limit: int = 100) -> int:
        """Deliver until nothing is due (used by `gateway ingest` and tests)."""
        total = 0
        while n := self.run_once(limit):
            total += n
        return total

    def deliver(self, delivery_id: int) -> None:
        started = utcnow()
        with structlog.contextvars.bound_contextvars(delivery_id=delivery_id):
            prepared = self._prepare(delivery_id)
            if prepared is None:
                return
            route_name, payload, name, key, message_id = prepared
            with structlog.contextvars.bound_contextvars(message_id=message_id, route=route_name):
                try:
                    self.sinks[route_name].send(payload, name=name, idempotency_key=key)
                except SinkError as exc:
                    self._failed(delivery_id, started, {"code": "OUT-2", "text": str(exc)}, retryable=exc.retryable)
                    return
                except Exception as exc:  # a sink bug: record the attempt and let the policy retry it
                    log.error("sink error", exc_info=True)
                    self._failed(
                        delivery_id, started, {"code": "OUT-2", "text": f"{type(exc).__name__}: {exc}"}, retryable=True
                    )
                    return
                with self.sessions.begin() as s:
                    delivery = s.get_one(Delivery, delivery_id)
                    outbox.settle(s, delivery, outcome="ok", started_at=started)
                    s.get_one(Message, message_id).status = MessageStatus.SENT.value
                log.info("delivered", file=name, attempt=delivery.attempts)

    def _prepare(self, delivery_id: int) -> tuple[str, bytes, str, str, int] | None:
        """Render (once) and commit the outbound payload; None when the delivery is already settled dead."""
        with self.sessions.begin() as s:
            delivery = s.get_one(Delivery, delivery_id)
            route = self.routes.get(delivery.route)
            if route is None:
                outbox.settle(
                    s,
                    delivery,
                    outcome="dead",
                    started_at=utcnow(),
                    error={"code": "OUT-1", "text": f"route {delivery.route!r} is no longer in routes.yaml"},
                )
                return None
            if delivery.message_id is None:
                try:
                    rendered = renderer(route.render)(s, delivery, self.context)
                except RenderError as exc:
                    outbox.settle(
                        s, delivery, outcome="dead", started_at=utcnow(), error={"code": "OUT-1", "text": str(exc)}
                    )
                    log.warning("render failed", error=str(exc))
                    return None
                msg = Message(
                    direction="out",
                    channel=delivery.route,
                    filename=rendered.name,
                    headers={"content_type": rendered.content_type, "idempotency_key": delivery.idempotency_key},
                    raw=rendered.payload,
                    sha256=hashlib.sha256(rendered.payload).hexdigest(),
                    size=len(rendered.payload),
                    format=rendered.content_type.split("/")[-1],
                    message_type=rendered.message_type,
                    status=MessageStatus.RENDERED.value,
                )
                s.add(msg)
                s.flush()
                delivery.message_id = msg.id
            else:
                msg = s.get_one(Message, delivery.message_id)
            return (
                delivery.route,
                msg.raw,
                msg.filename or f"{delivery.idempotency_key}.bin",
                delivery.idempotency_key,
                msg.id,
            )

    def _failed(self, delivery_id: int, started: Any, error: dict[str, Any], *, retryable: bool) -> None:
        with self.sessions.begin() as s:
            delivery = s.get_one(Delivery, delivery_id)
            policy = self.routes[delivery.route].retry
            when = None
            if retryable:
                first = delivery.attempt_log[0].started_at if delivery.attempt_log else started
                when = retry.next_attempt(policy, delivery.attempts + 1, first, utcnow(), self.rng)
            outcome = "retry" if when else "dead"
            outbox.settle(s, delivery, outcome=outcome, started_at=started, error=error, next_attempt_at=when)
            log.warning("delivery failed", outcome=outcome, attempt=delivery.attempts, error=error["text"])
