"""``/dashboard`` and ``/dashboard/overview.json``: what the gateway is doing now.

- messages by status and channel per hour over the last ``WINDOW_HOURS`` hours (tiles, table and chart);
- queues backing up: inbound messages still ``received`` per channel with the age of the oldest (the query of
  ``gateway_channel_lag_seconds``), deliveries pending, sending or held per route;
- dead deliveries; the oldest unresolved failure (a message still ``failed``), linked to its page;
- each enabled channel up or down (``Gateway.channel_states``, the ``gateway_channel_up`` gauge the channels of
  this process set: a broker or server that is away, a folder that cannot be read or archived into), for staff
  only: a partner user does not see the gateway's channels.

The page draws the chart and refreshes every ``REFRESH_SECONDS`` with ``static/overview.js``, which fetches the
JSON; nothing reloads. Every query is bounded so that it stays cheap with 1,000,000 messages: the hourly counts
read only the window (``ix_message_received_at``), the queues and the oldest failure start from a status
(``ix_message_status`` on (status, id), ``ix_delivery_due`` on (status, next_attempt_at)), and those sets are
small in a healthy gateway.

A partner user's numbers cover its own messages, and the deliveries of the deals it takes part in.

No ``from __future__ import annotations``: FastAPI reads the dependency annotations at run time.
"""

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from gateway.model import Delivery, DeliveryStatus, Message, MessageStatus, Participation, Role, utcnow
from gateway.web import i18n
from gateway.web.dashboard.web import SECURITY_HEADERS, SessionUser, Web

WINDOW_HOURS = 24
REFRESH_SECONDS = 5
QUEUED = (DeliveryStatus.PENDING.value, DeliveryStatus.SENDING.value, DeliveryStatus.HELD.value)
STATUSES = [s.value for s in MessageStatus]


def _hour(s: Session) -> ColumnElement[str]:
    """``received_at`` as its UTC hour, text ``YYYY-MM-DD HH`` (SQLite keeps UTC text; PostgreSQL a timestamptz)."""
    if s.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", Message.received_at), "YYYY-MM-DD HH24")
    return func.substr(Message.received_at, 1, 13)


def _hours(now: datetime) -> list[str]:
    top = now.replace(minute=0, second=0, microsecond=0)
    return [(top - timedelta(hours=h)).strftime("%Y-%m-%d %H") for h in range(WINDOW_HOURS - 1, -1, -1)]


def data(
    s: Session, user: SessionUser, now: datetime | None = None, channels: dict[str, bool] | None = None
) -> dict[str, Any]:
    """The page's numbers; ``channels`` (name → up) is listed for staff users only."""
    now = now or utcnow()
    hours = _hours(now)
    since = datetime.fromisoformat(hours[0] + ":00:00+00:00")
    mine: list[ColumnElement[bool]] = []
    deliveries: list[ColumnElement[bool]] = []
    if user.partner_id is not None:
        mine.append(Message.partner_id == user.partner_id)
        deals = select(Participation.deal_id).where(Participation.partner_id == user.partner_id)
        deliveries.append(Delivery.deal_id.in_(deals))

    hour = _hour(s)
    series: list[list[Any]] = []  # [hour, channel, status, count]
    by_channel: dict[str, dict[str, int]] = {}
    by_status: dict[str, int] = {}
    rows = s.execute(
        select(hour, Message.channel, Message.status, func.count())
        .where(Message.received_at >= since, *mine)
        .group_by(hour, Message.channel, Message.status)
    )
    for at, channel, status, n in rows:
        series.append([at, channel, status, n])
        by_channel.setdefault(channel, {})[status] = by_channel.get(channel, {}).get(status, 0) + n
        by_status[status] = by_status.get(status, 0) + n

    queue = [
        {"channel": channel, "received": n, "lag_seconds": round((now - oldest).total_seconds())}
        for channel, n, oldest in s.execute(
            select(Message.channel, func.count(), func.min(Message.received_at))
            .where(Message.status == MessageStatus.RECEIVED.value, Message.direction == "in", *mine)
            .group_by(Message.channel)
            .order_by(Message.channel)
        )
    ]
    routes: dict[str, dict[str, int]] = {}
    for route, status, n in s.execute(
        select(Delivery.route, Delivery.status, func.count())
        .where(Delivery.status.in_(QUEUED), *deliveries)
        .group_by(Delivery.route, Delivery.status)
    ):
        routes.setdefault(route, {})[status] = n
    dead = s.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.status == DeliveryStatus.DEAD.value, *deliveries)
    )
    failure = s.execute(
        select(Message.id, Message.received_at, Message.channel, Message.message_type, Message.error_code)
        .where(Message.status == MessageStatus.FAILED.value, *mine)
        .order_by(Message.id)
        .limit(1)
    ).first()
    return {
        "window_hours": WINDOW_HOURS,
        "since": since.isoformat(),
        "hours": hours,
        "series": series,
        "statuses": [st for st in STATUSES if st in by_status],
        "by_status": by_status,
        "by_channel": dict(sorted(by_channel.items())),
        "total": sum(by_status.values()),
        "queue": queue,
        "routes": [{"route": r, **{st: c.get(st, 0) for st in QUEUED}} for r, c in sorted(routes.items())],
        "dead": dead or 0,
        "channels": []
        if user.partner_id is not None
        else [{"name": name, "up": up} for name, up in sorted((channels or {}).items())],
        "oldest_failure": None
        if failure is None
        else {
            "id": failure.id,
            "received_at": failure.received_at.isoformat(),
            "channel": failure.channel,
            "message_type": failure.message_type,
            "error_code": failure.error_code,
            "age_seconds": round((now - failure.received_at).total_seconds()),
        },
        "generated_at": now.isoformat(),
    }


def routes(web: Web) -> APIRouter:
    router = APIRouter()
    Viewer = Annotated[SessionUser, Depends(web.require(Role.VIEWER))]

    @router.get("/dashboard", response_class=HTMLResponse)
    def overview(request: Request, user: Viewer) -> HTMLResponse:
        with web.gateway.sessions() as s:
            found = data(s, user, channels=web.gateway.channel_states())
        return web.render(request, "overview.html", user, nav="overview", refresh=REFRESH_SECONDS, **found)

    @router.get("/dashboard/overview.json")
    def overview_json(request: Request, user: Viewer) -> JSONResponse:
        with web.gateway.sessions() as s:
            found = data(s, user, channels=web.gateway.channel_states())
        lang = i18n.language(request)
        found["labels"] = {f"status.{st}": i18n.translate(lang, f"status.{st}") for st in STATUSES}
        found["labels"] |= {
            k: i18n.translate(lang, k)
            for k in ("chart.all", "col.total", "overview.none", "overview.up", "overview.down")
        }
        return JSONResponse(found, headers=SECURITY_HEADERS)

    return router
