"""What every dashboard page uses: the logged-in user, role checks, CSRF checks and rendering.

A page module gets a :class:`Web` and declares its routes with these dependencies::

    Viewer = Annotated[SessionUser, Depends(web.require(Role.VIEWER))]      # GET pages
    Operator = Annotated[SessionUser, Depends(web.action(Role.OPERATOR))]   # POST actions: CSRF + role

No login → 303 to ``/login?next=<path>``; a wrong or missing CSRF token or too small a role → 403 page.

No ``from __future__ import annotations``: FastAPI reads the dependency annotations at run time.
"""

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from gateway.model import Role, WebSession
from gateway.store import web_sessions
from gateway.web import i18n

if TYPE_CHECKING:
    from gateway.app import Gateway

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "static"
SESSION_COOKIE = "gw_session"
MAX_ID = 2**63 - 1  # ids are 64-bit: a larger one in a URL is 422, not an overflow in the database driver (500)
RowId = Annotated[int, PathParam(ge=1, le=MAX_ID)]  # a row id in a path
Before = Annotated[int | None, Query(ge=1, le=MAX_ID)]  # keyset paging: ids below this
CSRF_FIELD = "csrf_token"  # hidden form field
CSRF_HEADER = "x-csrf-token"  # or this header (fetch)

# (label key without "nav.", path, least role); an entry whose page is not mounted yet shows as plain text
NAV: tuple[tuple[str, str, Role], ...] = (
    ("overview", "/dashboard", Role.VIEWER),
    ("messages", "/dashboard/messages", Role.VIEWER),
    ("deliveries", "/dashboard/deliveries", Role.VIEWER),
    ("deals", "/dashboard/deals", Role.VIEWER),
    ("audit", "/dashboard/audit", Role.ADMIN),
)

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass(frozen=True)
class SessionUser:
    """The logged-in user of this request (a plain value: no database session attached)."""

    id: int
    login: str
    role: Role
    partner_id: int | None  # set: a partner user, who sees only this partner's deals and messages
    partner_code: str | None
    csrf_token: str

    def can(self, role: Role | str) -> bool:
        return self.role.rank >= Role(role).rank


class LoginRequired(Exception):
    """No live session: answered with a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class Forbidden(Exception):
    """Logged in but not allowed (role, CSRF): answered with the 403 page. ``reason`` is an i18n key."""

    def __init__(self, reason: str = "error.forbidden") -> None:
        self.reason = reason


def safe_next(path: str | None) -> str:
    """A local path to go to after login or a language switch (never another site)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/dashboard"
    return path


def confirmed(form: Any, matching: list[int]) -> list[int]:
    """The ids a bulk confirmation names that still match its filter: a bulk action acts on what the operator
    saw and confirmed, never on rows that came to match in between (a confirmation naming none acts on none)."""
    chosen = {int(i) for i in form.getlist("id") if isinstance(i, str) and i.isdigit()}
    return [i for i in matching if i in chosen]


def _user(row: WebSession) -> SessionUser:
    u = row.user
    return SessionUser(
        id=u.id,
        login=u.login,
        role=Role(u.role),
        partner_id=u.partner_id,
        partner_code=u.partner.code if u.partner else None,
        csrf_token=row.csrf_token,
    )


class Web:
    """Shared by every page module: the gateway, the templates and the dependencies."""

    def __init__(self, gateway: "Gateway") -> None:
        self.gateway = gateway
        self.templates = Jinja2Templates(directory=str(TEMPLATES))
        self.templates.env.globals["languages"] = i18n.LANGUAGES
        self.paths: set[tuple[str, str]] = set()  # (method, path) of every dashboard route, set by routers()

    # ---- who is asking

    def session_user(self, request: Request) -> SessionUser | None:
        """The user of the request's session cookie, or None (no cookie, expired, disabled user)."""
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        with self.gateway.sessions() as s:
            row = web_sessions.lookup(s, token)
            return _user(row) if row else None

    def current_user(self) -> Callable[[Request], SessionUser]:
        """Dependency: the logged-in user; without one, the browser goes to the login page."""

        def dependency(request: Request) -> SessionUser:
            user = self.session_user(request)
            if user is None:
                path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                raise LoginRequired(path)
            return user

        return dependency

    def require(self, role: Role | str) -> Callable[[SessionUser], SessionUser]:
        """Dependency for pages: logged in with at least ``role`` (viewer < operator < admin), else 403."""
        needed = Role(role)

        def dependency(user: SessionUser = Depends(self.current_user())) -> SessionUser:  # noqa: B008
            if not user.can(needed):
                raise Forbidden()
            return user

        return dependency

    def csrf(self) -> Callable[[Request, SessionUser], Awaitable[SessionUser]]:
        """Dependency for every POST: the session's CSRF token in the ``csrf_token`` form field or the
        ``X-CSRF-Token`` header, else 403."""

        async def dependency(
            request: Request,
            user: SessionUser = Depends(self.current_user()),  # noqa: B008
        ) -> SessionUser:
            sent: Any = request.headers.get(CSRF_HEADER)
            if sent is None and request.headers.get("content-type", "").startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")
            ):
                sent = (await request.form()).get(CSRF_FIELD)
            if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), user.csrf_token.encode()):
                raise Forbidden("error.csrf")
            return user

        return dependency

    def action(self, role: Role | str) -> Callable[[SessionUser], SessionUser]:
        """Dependency for POST actions: CSRF token checked, then the role."""
        needed = Role(role)

        def dependency(user: SessionUser = Depends(self.csrf())) -> SessionUser:  # noqa: B008
            if not user.can(needed):
                raise Forbidden()
            return user

        return dependency

    # ---- answering

    def render(
        self,
        request: Request,
        template: str,
        user: SessionUser | None,
        *,
        nav: str | None = None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        """Render ``template`` (which extends ``base.html``) with ``t``, ``lang``, ``user``, ``csrf_token``,
        the navigation and ``context``; adds the security headers."""
        lang = i18n.language(request)
        mounted = {path for method, path in self.paths if method == "GET"}
        nav_items = [
            {"key": key, "href": href, "mounted": href in mounted, "active": key == nav}
            for key, href, role in NAV
            if user is not None and user.can(role)
        ]
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = self.templates.TemplateResponse(
            request,
            template,
            {
                "lang": lang,
                "t": lambda key: i18n.translate(lang, key),
                "user": user,
                "csrf_token": user.csrf_token if user else "",
                "nav_items": nav_items,
                "here": quote(path, safe=""),
                **context,
            },
            status_code=status_code,
        )
        response.headers.update(SECURITY_HEADERS)
        return response
