"""``/dashboard/audit``: the audit log, newest first, 100 a page (admins only).

No ``from __future__ import annotations``: FastAPI reads the dependency annotations at run time.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from gateway.model import Role
from gateway.store import audit
from gateway.web.dashboard.web import Before, SessionUser, Web

PAGE = 100


def routes(web: Web) -> APIRouter:
    router = APIRouter()

    @router.get("/dashboard/audit", response_class=HTMLResponse)
    def audit_page(
        request: Request,
        user: Annotated[SessionUser, Depends(web.require(Role.ADMIN))],
        before: Before = None,
    ) -> HTMLResponse:
        with web.gateway.sessions() as s:
            rows = [audit.as_dict(r) for r in audit.recent(s, before=before, limit=PAGE)]
        older = rows[-1]["id"] if len(rows) == PAGE else None
        return web.render(request, "audit.html", user, nav="audit", rows=rows, older=older)

    return router
