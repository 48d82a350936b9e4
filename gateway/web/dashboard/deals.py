"""``/dashboard/deals`` (search by deal number, B/L, booking or container; keyset paged) and
``/dashboard/deals/{id}`` (forms, containers, timeline, participants with their rights per form).

What a user sees follows ``gateway.store.deals``: a partner user only the deals its partner takes part in and,
within one, only the forms its rights allow; any other deal answers 404. Nothing here changes anything.

No ``from __future__ import annotations``: FastAPI reads the dependency annotations at run time.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from gateway.model import FORM_TYPES, Role
from gateway.store import deals
from gateway.web.dashboard.web import Before, RowId, SessionUser, Web


def routes(web: Web) -> APIRouter:
    router = APIRouter()
    Viewer = Annotated[SessionUser, Depends(web.require(Role.VIEWER))]

    @router.get("/dashboard/deals", response_class=HTMLResponse)
    def deal_list(
        request: Request,
        user: Viewer,
        q: Annotated[str | None, Query(max_length=64)] = None,
        before: Before = None,
    ) -> HTMLResponse:
        with web.gateway.sessions() as s:
            rows = deals.search(s, user.partner_id, q, before=before)
        older = rows[-1]["id"] if len(rows) == deals.PAGE else None
        return web.render(request, "deals.html", user, nav="deals", rows=rows, q=q or "", older=older)

    @router.get("/dashboard/deals/{deal_id}", response_class=HTMLResponse)
    def deal_page(request: Request, deal_id: RowId, user: Viewer) -> HTMLResponse:
        with web.gateway.sessions() as s:
            found = deals.view(s, deal_id, user.partner_id)
            if found is None:
                return web.render(request, "error.html", user, status_code=404, message_key="deals.not_found")
            return web.render(
                request,
                "deal.html",
                user,
                nav="deals",
                d=found,
                summary=deals.summary,
                form_names=FORM_TYPES,
            )

    return router
