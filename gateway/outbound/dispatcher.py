"""The dispatcher: claim due deliveries, render each once, send it, and settle the attempt.

Rendering is committed (as an outbound message row) before the send, so every attempt sends the same bytes
and a dead delivery keeps exactly what was tried. No transaction is held open while a peer is being talked to.
A peer's answer to a successful send (the HTTP response body) goes to the route's renderer module when it has an
``record_answer`` (CONPAS: the pre-matching answer), in the transaction that settles the delivery.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from gateway.config import PartnerConfig, RetryPolicy, RouteConfig
from gateway.model import Container, Deal, Delivery, DeliveryStatus, Message, MessageStatus, utcnow
from gateway.outbound import retry
from gateway.outbound.renderers import RenderContext, RenderError, answer_recorder, renderer, send_preparer
from gateway.outbound.sinks import Sink, SinkError, make_sink
from gateway.store import outbox

log = structlog.get_logger("gateway.dispatch")

_FAILED = object()  # a send that failed and was settled
SETTLE_EVERY = 20  # sent deliveries settled in one transaction
SETTLE_WITHIN = 1.0  # seconds a sent delivery may wait for its group's settling


@dataclass(frozen=True)
class Prepared:
    """A claimed delivery with its rendered payload, ready to send."""

    delivery_id: int
    token: datetime
    route: str
    payload: bytes
    name: str
    key: str
    message_id: int
    content_type: str | None


@dataclass(frozen=True)
class Sent:
    """A delivery the peer took, waiting for its group's settling."""

    prepared: Prepared
    answer: bytes | None
    started_at: datetime


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
        self.context = RenderContext(partners=dict(partners or {}), routes=dict(routes))
        self.sessions = sessions
        self.routes = routes
        self.lease = lease
        self.rng = rng or random.Random()
        self.sinks: dict[str, Sink] = {
            name: make_sink(r.to, route=name, prepare=send_preparer(r)) for name, r in routes.items()
        }
        # a disabled route keeps its queued deliveries waiting; they go when it is enabled again. A route removed
        # from routes.yaml is claimed like any other, and its deliveries die with OUT-1.
        self.disabled_routes = [name for name, r in routes.items() if not r.enabled]
        self.ordered = {name: r.order_by for name, r in routes.items() if r.order_by is not None}

    def run_once(self, limit: int = 100, ids: Sequence[int] | None = None) -> int:
        """Deliver what is due now (of ``ids`` only, when given: a notice's); returns how many were attempted."""
        with self.sessions.begin() as s:
            claims = outbox.claim_due(
                s, limit=limit, lease=self.lease, exclude_routes=self.disabled_routes, ordered=self.ordered, ids=ids
            )
        self.deliver_many(claims)
        return len(claims)

    def drain(self, limit: int = 100) -> int:
        """Deliver until nothing is due (used by `gateway ingest` and tests)."""
        total = 0
        while n := self.run_once(limit):
            total += n
        return total

    def deliver(self, delivery_id: int, token: datetime) -> None:
        """Send one claimed delivery; ``token`` is its claim (``locked_until``), checked before each step.

        If the lease ran out and another dispatcher took the delivery over, this one stops: nothing is sent or
        settled twice by two dispatchers.
        """
        self.deliver_many([(delivery_id, token)])

    def deliver_many(self, claims: Sequence[tuple[int, datetime]]) -> None:
        """Send claimed deliveries: render those not rendered yet and commit them (one transaction for the
        batch), send each, and settle the sent ones in groups (one transaction per ``SETTLE_EVERY`` sends or
        ``SETTLE_WITHIN`` seconds, whichever comes first). A failed send is settled at once, on its own. A crash
        after a send and before its group's commit leaves the delivery ``sending``: after its lease it is sent
        again, same bytes, same key, as after a crash in the middle of one send."""
        if not claims:
            return
        with self.sessions.begin() as s:
            tokens = dict(claims)
            held = _held_many(s, claims)
            subjects = _load_subjects(s, [d for d in held.values() if d.message_id is None])
            prepared = [p for d in held.values() if (p := self._prepare_in(s, d, tokens[d.id]))]
            del subjects
        sent: list[Sent] = []
        flushed = time.monotonic()
        for p in prepared:
            if sent and time.monotonic() - flushed >= SETTLE_WITHIN:  # a slow send must not keep these waiting
                self._settle_sent(sent)
                sent, flushed = [], time.monotonic()
            with structlog.contextvars.bound_contextvars(
                delivery_id=p.delivery_id, message_id=p.message_id, route=p.route
            ):
                if utcnow() >= p.token - self.lease / 10:  # slow peers ate the lease: another may take it over
                    log.warning("lease nearly out before the send; left for the dispatcher that takes it over")
                    continue
                started = utcnow()
                answer = self._send(p, started)
            if answer is not _FAILED:
                sent.append(Sent(p, answer if isinstance(answer, bytes) else None, started))
            if len(sent) >= SETTLE_EVERY:
                self._settle_sent(sent)
                sent, flushed = [], time.monotonic()
        if sent:
            self._settle_sent(sent)

    def _send(self, p: Prepared, started: datetime) -> bytes | object | None:
        """The peer's answer (or None), or ``_FAILED`` after the failed attempt was settled."""
        try:
            return self.sinks[p.route].send(p.payload, name=p.name, idempotency_key=p.key, content_type=p.content_type)
        except SinkError as exc:
            error = {"code": "OUT-2", "text": str(exc)}
            self._failed(p.delivery_id, p.token, started, error, retryable=exc.retryable, retry_after=exc.retry_after)
        except Exception as exc:  # a sink bug: record the attempt and let the policy retry it
            log.error("sink error", exc_info=True)
            error = {"code": "OUT-2", "text": f"{type(exc).__name__}: {exc}"}
            self._failed(p.delivery_id, p.token, started, error, retryable=True)
        return _FAILED

    def _settle_sent(self, sent: list[Sent]) -> None:
        with self.sessions.begin() as s:
            held = _held_many(s, [(x.prepared.delivery_id, x.prepared.token) for x in sent])
            for x in sent:
                if x.prepared.delivery_id not in held:
                    log.warning(
                        "lease lost while sending; the other dispatcher settles it",
                        delivery_id=x.prepared.delivery_id,
                        route=x.prepared.route,
                    )
            mine = [(x, held[x.prepared.delivery_id]) for x in sent if x.prepared.delivery_id in held]
            outbox.settle_sent(s, [(delivery, x.started_at) for x, delivery in mine])
            if mine:
                settled = [x.prepared.message_id for x, _ in mine]
                s.execute(update(Message).where(Message.id.in_(settled)).values(status=MessageStatus.SENT.value))
            for x, delivery in mine:
                p = x.prepared
                with structlog.contextvars.bound_contextvars(
                    delivery_id=p.delivery_id, message_id=p.message_id, route=p.route
                ):
                    if x.answer:
                        self._record_answer(s, delivery, x.answer)
                    log.info("delivered", file=p.name, attempt=delivery.attempts)

    def _record_answer(self, session: Session, delivery: Delivery, answer: bytes) -> None:
        """Hand the peer's answer to the route's renderer module (if it records answers), in a savepoint: a bug
        there is logged and undone, and the delivery is done all the same (the peer has the payload)."""
        route = self.routes.get(delivery.route)
        record = answer_recorder(route.render) if route else None
        if record is None:
            return
        try:
            with session.begin_nested():
                record(session, delivery, answer, self.context)
        except Exception:
            log.error("answer not recorded", exc_info=True)

    def _prepare(self, delivery_id: int, token: datetime) -> tuple[str, bytes, str, str, int, str | None] | None:
        """Render (once) and commit one delivery's payload; None when there is nothing (more) to send."""
        with self.sessions.begin() as s:
            delivery = _held(s, delivery_id, token)
            p = None if delivery is None else self._prepare_in(s, delivery, token)
        return None if p is None else (p.route, p.payload, p.name, p.key, p.message_id, p.content_type)

    def _prepare_in(self, s: Session, delivery: Delivery, token: datetime) -> Prepared | None:
        """Render the (held) delivery if it has no rendered message yet (stored in ``s``, which the caller
        commits before anything is sent); None when there is nothing to send."""
        with structlog.contextvars.bound_contextvars(delivery_id=delivery.id):
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
                    with s.begin_nested():  # a renderer that fails leaves nothing of its own in the batch
                        rendered = renderer(route.render)(s, delivery, self.context)
                except Exception as exc:  # RenderError, or a renderer bug: either way this payload cannot be made
                    text = str(exc) if isinstance(exc, RenderError) else f"renderer error {type(exc).__name__}: {exc}"
                    if not isinstance(exc, RenderError):
                        log.error("renderer error", exc_info=True)
                    code = exc.code if isinstance(exc, RenderError) else "OUT-1"  # NACCS value errors: OUT-10..16
                    outbox.settle(s, delivery, outcome="dead", started_at=utcnow(), error={"code": code, "text": text})
                    log.warning("render failed", error=text)
                    return None
                msg = Message(
                    direction="out",
                    channel=delivery.route,
                    filename=rendered.name,
                    headers={"content_type": rendered.content_type, "idempotency_key": delivery.idempotency_key},
                    raw=rendered.payload,
                    sha256=hashlib.sha256(rendered.payload).hexdigest(),
                    size=len(rendered.payload),
                    format=rendered.content_type.split(";")[0].strip().split("/")[-1][:16],  # "json", "x-naccs-edi"
                    message_type=rendered.message_type,
                    status=MessageStatus.RENDERED.value,
                )
                s.add(msg)
                s.flush()
                delivery.message_id = msg.id
            else:
                msg = s.get_one(Message, delivery.message_id)
            return Prepared(
                delivery_id=delivery.id,
                token=token,
                route=delivery.route,
                payload=msg.raw,
                name=msg.filename or f"{delivery.idempotency_key}.bin",
                key=delivery.idempotency_key,
                message_id=msg.id,
                content_type=(msg.headers or {}).get("content_type"),
            )

    def _failed(
        self,
        delivery_id: int,
        token: datetime,
        started: datetime,
        error: dict[str, Any],
        *,
        retryable: bool,
        retry_after: float | None = None,
    ) -> None:
        """Settle a failed attempt: retry at the policy's next time, or later when the peer asked for more
        (``Retry-After``), or dead when the policy gives up or the wait would go past its ``max_elapsed``."""
        with self.sessions.begin() as s:
            delivery = _held(s, delivery_id, token)
            if delivery is None:
                return
            route = self.routes.get(delivery.route)
            policy = route.retry if route else RetryPolicy(max_attempts=1)
            when = None
            if retryable:
                first = delivery.attempt_log[0].started_at if delivery.attempt_log else started
                now = utcnow()
                when = retry.next_attempt(policy, delivery.attempts + 1, first, now, self.rng)
                if when is not None and retry_after is not None:
                    when = max(when, now + timedelta(seconds=retry_after))
                    if policy.max_elapsed is not None and when - first > timedelta(seconds=policy.max_elapsed):
                        when = None
                        error = {
                            **error,
                            "text": f"{error['text']} (Retry-After {retry_after:g} s is past max_elapsed)",
                        }
            outcome = "retry" if when else "dead"
            outbox.settle(s, delivery, outcome=outcome, started_at=started, error=error, next_attempt_at=when)
            log.warning("delivery failed", outcome=outcome, attempt=delivery.attempts, error=error["text"])


def _held_many(session: Session, claims: Sequence[tuple[int, datetime]]) -> dict[int, Delivery]:
    """The deliveries these claims still hold, locked (in id order, so two dispatchers never wait on each other
    in a circle), by id; one that was settled or taken over meanwhile is left out."""
    tokens = dict(claims)
    rows = session.scalars(select(Delivery).where(Delivery.id.in_(tokens)).order_by(Delivery.id).with_for_update())
    return {d.id: d for d in rows if d.status == DeliveryStatus.SENDING.value and d.locked_until == tokens[d.id]}


def _load_subjects(session: Session, deliveries: Sequence[Delivery]) -> list[object]:
    """Load the containers and deals the renderers will ask for, one query each for the batch. The caller keeps
    the returned list while it renders: the session's identity map holds rows weakly, and a renderer's
    ``session.get`` finds a row held there without a query."""
    containers = {d.container_id for d in deliveries if d.container_id is not None}
    deals = {d.deal_id for d in deliveries if d.deal_id is not None}
    loaded: list[object] = []
    if containers:
        loaded += session.scalars(select(Container).where(Container.id.in_(containers)))
    if deals:
        loaded += session.scalars(select(Deal).where(Deal.id.in_(deals)))
    return loaded


def _held(session: Session, delivery_id: int, token: datetime) -> Delivery | None:
    """The delivery, locked, if this claim still holds it."""
    delivery = session.get(Delivery, delivery_id, with_for_update=True)
    if delivery is None or delivery.status != DeliveryStatus.SENDING.value or delivery.locked_until != token:
        return None
    return delivery
