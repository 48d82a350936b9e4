"""The outbox: deliveries written with the events that cause them, claimed by dispatchers, settled once.

Claims use ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite serialises writers instead), and a lease:
a claimed delivery is ``sending`` until ``locked_until``; if its dispatcher dies, the lease runs out and another
dispatcher takes it again with the same idempotency key, so the peer can tell a resend from a new send.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from gateway.config import RouteConfig
from gateway.model import Delivery, DeliveryAttempt, DeliveryStatus, Event, utcnow


def route_applies(route: RouteConfig, facts: Mapping[str, Any]) -> bool:
    when = route.when
    if when.partner is not None and facts.get("partner") not in when.partner:
        return False
    if when.message_type is not None and facts.get("message_type") not in when.message_type:
        return False
    if when.direction is not None and facts.get("direction") != when.direction:
        return False
    return not (when.full_empty is not None and facts.get("full_empty") != when.full_empty)


def enqueue(
    session: Session, event: Event, routes: Mapping[str, RouteConfig], facts: Mapping[str, Any]
) -> list[Delivery]:
    """One pending delivery per enabled route that subscribes to ``event`` and whose condition holds."""
    created = []
    for name, route in routes.items():
        if route.enabled and route.on == event.kind and route_applies(route, facts):
            delivery = Delivery(
                route=name,
                event_id=event.id,
                deal_id=event.deal_id,
                container_id=event.container_id,
                status=DeliveryStatus.PENDING.value,
                idempotency_key=uuid.uuid4().hex,
            )
            session.add(delivery)
            created.append(delivery)
    return created


def emit(
    session: Session,
    kind: str,
    routes: Mapping[str, RouteConfig],
    facts: Mapping[str, Any],
    *,
    message_id: int | None,
    deal_id: int | None = None,
    container_id: int | None = None,
    detail: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> Event:
    """Write an event and, in the same transaction, the deliveries of the routes it triggers."""
    event = Event(
        kind=kind,
        message_id=message_id,
        deal_id=deal_id,
        container_id=container_id,
        detail=detail or {},
        occurred_at=occurred_at or utcnow(),
    )
    session.add(event)
    session.flush()
    enqueue(session, event, routes, facts)
    return event


def claim_due(
    session: Session,
    *,
    limit: int,
    lease: timedelta,
    now: datetime | None = None,
    exclude_routes: Sequence[str] = (),
) -> list[tuple[int, datetime]]:
    """Take up to ``limit`` due deliveries (pending and due, or sending with an expired lease).

    Returns (id, token) pairs: the token is the new ``locked_until``, which the claimant checks before it sends
    or settles, so a dispatcher whose lease ran out cannot settle what another one has taken over.
    """
    now = now or utcnow()
    due = due_filter(now, exclude_routes)
    rows = list(
        session.scalars(
            select(Delivery)
            .where(due)
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    token = now + lease
    for d in rows:
        d.status = DeliveryStatus.SENDING.value
        d.locked_until = token
    session.flush()
    return [(d.id, d.locked_until) for d in rows if d.locked_until is not None]


def due_filter(now: datetime, exclude_routes: Sequence[str] = ()) -> ColumnElement[bool]:
    """Deliveries a dispatcher should take now: pending and due, or sending under an expired lease."""
    due = or_(
        (Delivery.status == DeliveryStatus.PENDING.value) & (Delivery.next_attempt_at <= now),
        (Delivery.status == DeliveryStatus.SENDING.value) & (Delivery.locked_until < now),
    )
    if exclude_routes:
        due = due & Delivery.route.not_in(exclude_routes)
    return due


def settle(
    session: Session,
    delivery: Delivery,
    *,
    outcome: str,
    started_at: datetime,
    error: dict[str, Any] | None = None,
    next_attempt_at: datetime | None = None,
) -> None:
    """Record one attempt and move the delivery to done, back to pending (retry) or dead."""
    delivery.attempts += 1
    session.add(
        DeliveryAttempt(
            delivery_id=delivery.id,
            number=delivery.attempts,
            started_at=started_at,
            finished_at=utcnow(),
            outcome=outcome,
            error=error,
        )
    )
    delivery.locked_until = None
    delivery.last_error = error
    if outcome == "ok":
        delivery.status = DeliveryStatus.DONE.value
    elif outcome == "retry":
        assert next_attempt_at is not None
        delivery.status = DeliveryStatus.PENDING.value
        delivery.next_attempt_at = next_attempt_at
    else:
        delivery.status = DeliveryStatus.DEAD.value
