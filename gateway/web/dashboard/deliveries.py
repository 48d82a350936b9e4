"""``/dashboard/deliveries``: deliveries (dead by default) by route and status, and replaying dead ones.

``POST /dashboard/deliveries/{id}/replay`` queues a dead delivery again (``store/outbox.replay``: a new pending
delivery linked by ``replay_of_id``, the original stays dead); ``POST /dashboard/deliveries/bulk`` replays every
dead delivery of the current filter (at most ``BULK_MAX``) after a confirmation page. The dispatcher sends the
replays on its next round. Operator role, CSRF token, one audit row per delivery.

A partner user sees the deliveries of the deals it takes part in.

No ``from __future__ import annotations``: FastAPI reads the dependency annotations at run time.
"""

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from gateway.model import Delivery, DeliveryStatus, Participation, Role
from gateway.store import audit, outbox
from gateway.web.dashboard.messages import BULK_MAX, delivery_row
from gateway.web.dashboard.web import Before, RowId, SessionUser, Web, confirmed

PAGE = 50
STATUSES = [s.value for s in DeliveryStatus]


def _filtered(user: SessionUser, status: str, route: str) -> Select[Any]:
    q = select(Delivery.id)
    if status != "all":
        q = q.where(Delivery.status == status)
    if route:
        q = q.where(Delivery.route == route)
    if user.partner_id is not None:
        q = q.where(
            Delivery.deal_id.in_(select(Participation.deal_id).where(Participation.partner_id == user.partner_id))
        )
    return q


def _visible(s: Session, user: SessionUser, delivery_id: int) -> Delivery:
    row = s.scalar(_filtered(user, "all", "").where(Delivery.id == delivery_id))
    if row is None:
        raise HTTPException(404)
    return s.get_one(Delivery, delivery_id)


def _given(params: dict[str, str]) -> dict[str, str]:
    status = params.get("status", "").strip() or DeliveryStatus.DEAD.value
    return {
        "status": status if status in (*STATUSES, "all") else DeliveryStatus.DEAD.value,
        "route": params.get("route", "").strip(),
    }


def routes(web: Web) -> APIRouter:
    router = APIRouter()
    gw = web.gateway
    Viewer = Annotated[SessionUser, Depends(web.require(Role.VIEWER))]
    Operator = Annotated[SessionUser, Depends(web.action(Role.OPERATOR))]

    @router.get("/dashboard/deliveries", response_class=HTMLResponse)
    def delivery_list(request: Request, user: Viewer, before: Before = None) -> HTMLResponse:
        given = _given(dict(request.query_params))
        q = _filtered(user, given["status"], given["route"])
        if before is not None:
            q = q.where(Delivery.id < before)
        with gw.sessions() as s:
            ids = list(s.scalars(q.order_by(Delivery.id.desc()).limit(PAGE + 1)))
            loaded = {d.id: d for d in s.scalars(select(Delivery).where(Delivery.id.in_(ids[:PAGE])))}
            rows: list[dict[str, Any]] = [delivery_row(loaded[i]) for i in ids[:PAGE] if i in loaded]
            replayed = set(
                s.scalars(
                    select(Delivery.replay_of_id).where(
                        Delivery.replay_of_id.in_([r["id"] for r in rows]),
                        Delivery.status != DeliveryStatus.DEAD.value,
                    )
                )
            )
        for r in rows:
            r["replayable"] = r["status"] == DeliveryStatus.DEAD.value and r["id"] not in replayed
        older = urlencode({**given, "before": ids[PAGE - 1]}) if len(ids) > PAGE else None
        return web.render(
            request,
            "deliveries.html",
            user,
            nav="deliveries",
            rows=rows,
            given=given,
            statuses=STATUSES,
            routes=sorted(gw.config.routes),
            older=older,
            bulk_max=BULK_MAX,
        )

    @router.post("/dashboard/deliveries/{delivery_id}/replay")
    async def replay(request: Request, user: Operator, delivery_id: RowId) -> Response:
        with gw.sessions.begin() as s:
            _visible(s, user, delivery_id)
            try:
                new = outbox.replay(s, delivery_id)
            except (LookupError, outbox.ReplayError) as exc:
                raise HTTPException(409, str(exc)) from None
            audit.record(s, user, "delivery.replay", ("delivery", delivery_id), {"replay": new.id})
        back = str((await request.form()).get("back") or "")
        return RedirectResponse(back if back.startswith("/dashboard/") else "/dashboard/deliveries", status_code=303)

    @router.post("/dashboard/deliveries/bulk", response_class=HTMLResponse)
    async def bulk(request: Request, user: Operator) -> Response:
        form = await request.form()
        params = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        given = _given(params)
        q = _filtered(user, DeliveryStatus.DEAD.value, given["route"])  # only dead deliveries are replayed
        with gw.sessions() as s:
            ids = list(s.scalars(q.order_by(Delivery.id.desc()).limit(BULK_MAX)))
        if params.get("confirm") != "yes":
            return web.render(
                request,
                "bulk_confirm.html",
                user,
                nav="deliveries",
                action="replay",
                kind="deliveries",
                count=len(ids),
                ids=ids,
                reason="",
                given=given,
                bulk_max=BULK_MAX,
                post_to="/dashboard/deliveries/bulk",
                back=f"/dashboard/deliveries?{urlencode(given)}",
            )
        ids = confirmed(form, ids)
        done = 0
        with gw.sessions.begin() as s:
            for delivery_id in ids:
                try:
                    new = outbox.replay(s, delivery_id)  # refuses before it changes anything
                except (LookupError, outbox.ReplayError):
                    continue
                done += 1
                audit.record(s, user, "delivery.replay", ("delivery", delivery_id), {"replay": new.id, "bulk": True})
        return RedirectResponse(
            f"/dashboard/deliveries?{urlencode({**given, 'done': done, 'did': 'replay'})}", status_code=303
        )

    return router
