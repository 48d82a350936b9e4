"""The outbox: deliveries written with the events that cause them, claimed by dispatchers, settled once.

Claims use ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite serialises writers instead), and a lease:
a claimed delivery is ``sending`` until ``locked_until``; if its dispatcher dies, the lease runs out and another
dispatcher takes it again with the same idempotency key, so the peer can tell a resend from a new send.

A route with ``order_by`` (container or deal) sends the deliveries of one key in creation order: a delivery is
not claimed while an earlier one of the same route and key is still open (pending, retrying, sending or held). A dead
delivery no longer holds the later ones up; its replay is a new delivery and takes its place at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, false, insert, or_, select
from sqlalchemy.orm import Session, aliased

from gateway.config import RouteConfig
from gateway.model import Deal, Delivery, DeliveryAttempt, DeliveryStatus, Event, utcnow


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
    """One pending delivery per enabled route that subscribes to ``event`` and whose condition holds.

    A route with ``require: customs_permit`` makes it ``held`` instead while the deal has no permit
    (:func:`has_permit`); :func:`release_held` makes it pending when the permit arrives.
    """
    created = []
    for name, route in routes.items():
        if route.enabled and route.on == event.kind and route_applies(route, facts):
            held = route.require == "customs_permit" and not has_permit(session, event.deal_id)
            delivery = Delivery(
                route=name,
                event_id=event.id,
                deal_id=event.deal_id,
                container_id=event.container_id,
                status=DeliveryStatus.HELD.value if held else DeliveryStatus.PENDING.value,
                idempotency_key=uuid.uuid4().hex,
            )
            session.add(delivery)
            created.append(delivery)
    return created


def has_permit(session: Session, deal_id: int | None) -> bool:
    """True when the deal's customs status is a permit (export or import, as its direction needs)."""
    deal = session.get(Deal, deal_id) if deal_id is not None else None
    if deal is None:
        return False
    return deal.customs_status == ("import_permitted" if deal.direction == "import" else "export_permitted")


def release_held(session: Session, deal_id: int, now: datetime | None = None) -> list[Delivery]:
    """Make the deal's held deliveries pending and due now (its permit arrived); returns them."""
    rows = list(
        session.scalars(
            select(Delivery).where(Delivery.deal_id == deal_id, Delivery.status == DeliveryStatus.HELD.value)
        )
    )
    for d in rows:
        d.status = DeliveryStatus.PENDING.value
        d.next_attempt_at = now or utcnow()
    return rows


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
    ordered: Mapping[str, str] | None = None,
    ids: Sequence[int] | None = None,
) -> list[tuple[int, datetime]]:
    """Take up to ``limit`` due deliveries (pending and due, or sending with an expired lease).

    ``ordered`` maps route names to their ``order_by`` (``container`` or ``deal``): of those routes, a delivery
    waits while an earlier delivery of the same route and key is open. ``ids``: only these (a dispatcher told
    of them by a notice); those not due, held back or claimed by another dispatcher are left out.

    Returns (id, token) pairs: the token is the new ``locked_until``, which the claimant checks before it sends
    or settles, so a dispatcher whose lease ran out cannot settle what another one has taken over.
    """
    now = now or utcnow()
    due = due_filter(now, exclude_routes) & ~held_back(ordered or {})
    if ids is not None:
        due = due & Delivery.id.in_(list(ids))
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
    return [(d.id, token) for d in rows]


def queued_by(session: Session, message_id: int) -> list[int]:
    """The pending deliveries of the events a message caused (what its worker tells the dispatchers of)."""
    rows = session.scalars(
        select(Delivery.id)
        .join(Event, Event.id == Delivery.event_id)
        .where(Event.message_id == message_id, Delivery.status == DeliveryStatus.PENDING.value)
        .order_by(Delivery.id)
    )
    return list(rows)


def due_filter(now: datetime, exclude_routes: Sequence[str] = ()) -> ColumnElement[bool]:
    """Deliveries a dispatcher should take now: pending and due, or sending under an expired lease."""
    due = or_(
        (Delivery.status == DeliveryStatus.PENDING.value) & (Delivery.next_attempt_at <= now),
        (Delivery.status == DeliveryStatus.SENDING.value) & (Delivery.locked_until < now),
    )
    if exclude_routes:
        due = due & Delivery.route.not_in(exclude_routes)
    return due


# settled for good; any other status (pending, sending, held) still holds later deliveries of its key back
SETTLED = (DeliveryStatus.DONE.value, DeliveryStatus.DEAD.value)


def held_back(ordered: Mapping[str, str]) -> ColumnElement[bool]:
    """True for a delivery of an ordered route while an earlier one of the same route and key is not done or dead.

    "Earlier" is a lower id (ids follow creation). A delivery without the key (no container, no deal) is never
    held back. Indexed by ``ix_delivery_route_container`` and ``ix_delivery_route_deal``.
    """
    clauses: list[ColumnElement[bool]] = []
    for kind in ("container", "deal"):
        routes = sorted(name for name, by in ordered.items() if by == kind)
        if not routes:
            continue
        earlier = aliased(Delivery)
        key, earlier_key = (
            (Delivery.container_id, earlier.container_id)
            if kind == "container"
            else (Delivery.deal_id, earlier.deal_id)
        )
        blocker = exists().where(
            earlier.route == Delivery.route,
            earlier_key == key,
            earlier.id < Delivery.id,
            earlier.status.not_in(SETTLED),
        )
        clauses.append(Delivery.route.in_(routes) & key.is_not(None) & blocker)
    return or_(*clauses) if clauses else false()


class ReplayError(ValueError):
    """The delivery cannot be replayed (not dead, or a replay of it is still open or done)."""


def replay(session: Session, delivery_id: int, *, now: datetime | None = None) -> Delivery:
    """Queue a dead delivery again as a new ``pending`` delivery linked to it (``replay_of_id``).

    The replay sends the original's rendered message (the same bytes; rendered anew only when the original died
    before rendering, e.g. OUT-1 after a route fix) under a **new** idempotency key: a replay is the operator's
    decision to send again, and a peer that remembers keys would otherwise answer with the refusal it stored
    for the original. The original stays ``dead`` with its attempts. A delivery whose replay is pending, sending
    or done is not replayed again (that would send twice); replay the dead replay instead, or this one once
    every replay of it is dead.
    """
    original = session.get(Delivery, delivery_id, with_for_update=True)
    if original is None:
        raise LookupError(f"no delivery {delivery_id}")
    if original.status != DeliveryStatus.DEAD.value:
        raise ReplayError(f"delivery {delivery_id} is {original.status}; only a dead delivery can be replayed")
    live = session.scalar(
        select(Delivery.id).where(Delivery.replay_of_id == original.id, Delivery.status != DeliveryStatus.DEAD.value)
    )
    if live is not None:
        raise ReplayError(f"delivery {delivery_id} was already replayed as delivery {live}")
    replayed = Delivery(
        route=original.route,
        event_id=original.event_id,
        deal_id=original.deal_id,
        container_id=original.container_id,
        status=DeliveryStatus.PENDING.value,
        idempotency_key=uuid.uuid4().hex,
        message_id=original.message_id,
        replay_of_id=original.id,
        next_attempt_at=now or utcnow(),
    )
    session.add(replayed)
    session.flush()
    return replayed


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


def settle_sent(session: Session, sent: Sequence[tuple[Delivery, datetime]]) -> None:
    """``settle(outcome="ok")`` for several (delivery, attempt start) at once: their attempts in one INSERT (no
    ids needed back, so one executemany instead of a statement per attempt)."""
    finished = utcnow()
    rows = []
    for delivery, started_at in sent:
        delivery.attempts += 1
        rows.append(
            {
                "delivery_id": delivery.id,
                "number": delivery.attempts,
                "started_at": started_at,
                "finished_at": finished,
                "outcome": "ok",
                "error": None,
            }
        )
        delivery.locked_until = None
        delivery.last_error = None
        delivery.status = DeliveryStatus.DONE.value
    if rows:
        session.execute(insert(DeliveryAttempt), rows)


def list_deliveries(
    session: Session,
    *,
    status: str | None = None,
    route: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[Delivery]:
    """Newest first; ``before_id`` pages by id."""
    query = select(Delivery).order_by(Delivery.id.desc()).limit(limit)
    if status is not None:
        query = query.where(Delivery.status == status)
    if route is not None:
        query = query.where(Delivery.route == route)
    if before_id is not None:
        query = query.where(Delivery.id < before_id)
    return list(session.scalars(query))


def summary(session: Session, delivery: Delivery, *, attempts: bool = False) -> dict[str, Any]:
    """A delivery as the CLI shows it; with ``attempts``, every attempt and the replays made of it."""
    row: dict[str, Any] = {
        "id": delivery.id,
        "route": delivery.route,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at.isoformat() if delivery.status == "pending" else None,
        "locked_until": delivery.locked_until.isoformat() if delivery.locked_until else None,
        "event_id": delivery.event_id,
        "deal_id": delivery.deal_id,
        "container_id": delivery.container_id,
        "message_id": delivery.message_id,  # the rendered outbound message (`gateway messages show ID`)
        "idempotency_key": delivery.idempotency_key,
        "replay_of": delivery.replay_of_id,
        "last_error": delivery.last_error,
        "created_at": delivery.created_at.isoformat(),
        "updated_at": delivery.updated_at.isoformat(),
    }
    if attempts:
        row["attempt_log"] = [
            {
                "number": a.number,
                "outcome": a.outcome,
                "error": a.error,
                "started_at": a.started_at.isoformat(),
                "finished_at": a.finished_at.isoformat() if a.finished_at else None,
            }
            for a in delivery.attempt_log
        ]
        row["replays"] = list(
            session.scalars(select(Delivery.id).where(Delivery.replay_of_id == delivery.id).order_by(Delivery.id))
        )
    return row
