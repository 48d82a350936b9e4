"""``/dashboard``: message counts by status and by channel, and the number of dead deliveries.

A partner user's counts cover its own messages, and the dead deliveries of the deals it takes part in.

No ``from __future__ import annotations``: FastAPI reads the dependency annotations at run time.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.model import Delivery, DeliveryStatus, Message, Participation, Role
from gateway.web.dashboard.web import SessionUser, Web


def counts(s: Session, user: SessionUser) -> dict[str, Any]:
    q = select(Message.channel, Message.status, func.count()).group_by(Message.channel, Message.status)
    dead = select(func.count()).select_from(Delivery).where(Delivery.status == DeliveryStatus.DEAD.value)
    if user.partner_id is not None:
        q = q.where(Message.partner_id == user.partner_id)
        deals = select(Participation.deal_id).where(Participation.partner_id == user.partner_id)
        dead = dead.where(Delivery.deal_id.in_(deals))
    by_channel: dict[str, dict[str, int]] = {}
    by_status: dict[str, int] = {}
    for channel, status, n in s.execute(q):
        by_channel.setdefault(channel, {})[status] = n
        by_status[status] = by_status.get(status, 0) + n
    statuses = sorted(by_status)
    return {
        "by_status": by_status,
        "by_channel": dict(sorted(by_channel.items())),
        "statuses": statuses,
        "total": sum(by_status.values()),
        "dead": s.scalar(dead) or 0,
    }


def routes(web: Web) -> APIRouter:
    router = APIRouter()

    @router.get("/dashboard", response_class=HTMLResponse)
    def overview(request: Request, user: Annotated[SessionUser, Depends(web.require(Role.VIEWER))]) -> HTMLResponse:
        with web.gateway.sessions() as s:
            data = counts(s, user)
        return web.render(request, "overview.html", user, nav="overview", **data)

    return router
