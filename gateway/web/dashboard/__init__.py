"""The operator dashboard: server-rendered pages under ``/dashboard``, login at ``/login``.

``mount(app, gateway)`` (called by ``gateway/web/api.py``) adds the static files, the error answers and the
router of every page module in ``PAGES``. A page module has ``routes(web: Web) -> APIRouter``; add it to
``PAGES`` to mount it. ``docs/architecture.md`` ("Dashboard") says how to write one.
"""

from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from gateway.web.dashboard import audit_log, deals, deliveries, login, messages, overview
from gateway.web.dashboard.web import STATIC, Forbidden, LoginRequired, SessionUser, Web

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["PAGES", "Forbidden", "LoginRequired", "SessionUser", "Web", "mount", "routers"]

PAGES = (login, overview, messages, deliveries, deals, audit_log)


def routers(web: Web) -> list[APIRouter]:
    """One router per page module; ``web.paths`` learns every path they serve (the navigation links those)."""
    made = [page.routes(web) for page in PAGES]
    routes = [r for router in made for r in router.routes if isinstance(r, APIRoute)]
    web.paths = {(method, r.path) for r in routes for method in r.methods or ()}
    return made


def mount(app: FastAPI, gateway: "Gateway") -> Web:
    web = Web(gateway)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    for router in routers(web):
        app.include_router(router, include_in_schema=False)

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(f"/login?next={login.quote_next(exc.next_path)}", status_code=303)

    async def forbidden(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Forbidden)
        user = web.session_user(request)
        return web.render(request, "error.html", user, status_code=403, message_key=exc.reason)

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(Forbidden, forbidden)
    return web
