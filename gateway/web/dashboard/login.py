"""Login, logout and the language switch.

The login form carries a CSRF token of its own (a ``gw_login_csrf`` cookie compared with the hidden field), so
that no POST goes unchecked. Failed logins are limited per login name: the audit log's ``login.failed`` rows of
the last ``FAILED_LOGIN_WINDOW`` are counted (a moving window shared by every web process, since they share the
database); over the limit even the right password is refused until the window has passed. Logins, logouts,
failed and limited logins go to the audit log.

No ``from __future__ import annotations``: FastAPI reads the dependency annotations at run time.
"""

import hmac
import secrets
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from gateway.model import utcnow
from gateway.store import audit, users, web_sessions
from gateway.web import i18n
from gateway.web.dashboard.web import SECURITY_HEADERS, SESSION_COOKIE, Forbidden, SessionUser, Web, safe_next

LOGIN_CSRF_COOKIE = "gw_login_csrf"
FAILED_LOGIN_LIMIT = 5  # failed logins per login name within the window; the next attempt is refused
FAILED_LOGIN_WINDOW = timedelta(minutes=15)


def quote_next(path: str) -> str:
    return quote(path, safe="")


def routes(web: Web) -> APIRouter:
    router = APIRouter()
    gateway = web.gateway

    def login_page(request: Request, next_path: str, *, error: str | None = None, status: int = 200) -> Response:
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
        response = web.render(
            request, "login.html", None, status_code=status, login_csrf=token, next_path=next_path, error=error
        )
        response.set_cookie(
            LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax", secure=request.url.scheme == "https"
        )
        return response

    @router.get("/login")
    def login_form(request: Request, next: str | None = None) -> Response:
        if web.session_user(request) is not None:
            return RedirectResponse(safe_next(next), status_code=303)
        return login_page(request, safe_next(next))

    @router.post("/login")
    def login(
        request: Request,
        login: Annotated[str, Form(max_length=200)],
        password: Annotated[str, Form(max_length=1000)],
        csrf_token: Annotated[str, Form(max_length=200)] = "",
        next: Annotated[str, Form(max_length=2000)] = "/dashboard",
    ) -> Response:
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not cookie or not hmac.compare_digest(cookie.encode(), csrf_token.encode()):
            raise Forbidden("error.csrf")
        name = login.strip()
        target = safe_next(next)
        with gateway.sessions.begin() as s:
            if audit.failed_logins(s, name, utcnow() - FAILED_LOGIN_WINDOW) >= FAILED_LOGIN_LIMIT:
                limit = {"limit": f"{FAILED_LOGIN_LIMIT} per {FAILED_LOGIN_WINDOW.seconds // 60} minutes"}
                audit.record(s, users.by_login(s, name) or name, "login.limited", None, limit)
                user, limited = None, True
            else:
                limited = False
        if limited:
            return login_page(request, target, error="login.limited", status=429)
        with gateway.sessions.begin() as s:
            user = users.authenticate(s, name, password)
            if user is None:
                audit.record(s, users.by_login(s, name) or name, "login.failed")
            else:
                token, row = web_sessions.create(s, user, gateway.config.http.session_hours)
                audit.record(s, user, "login", ("user", user.id), {"expires_at": row.expires_at.isoformat()})
        if user is None:
            return login_page(request, target, error="login.failed", status=401)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int(gateway.config.http.session_hours * 3600),
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE)
        return response

    @router.post("/logout")
    def logout(request: Request, user: Annotated[SessionUser, Depends(web.csrf())]) -> Response:
        with gateway.sessions.begin() as s:
            web_sessions.end(s, request.cookies.get(SESSION_COOKIE))
            audit.record(s, user, "logout", ("user", user.id))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @router.get("/lang/{code}")
    def switch_language(code: str, next: str | None = None) -> Response:
        """Remember the language in a cookie (a year) and go back to the page."""
        response = RedirectResponse(safe_next(next), status_code=303)
        if code in i18n.LANGUAGES:
            response.set_cookie(i18n.COOKIE, code, max_age=365 * 86400, samesite="lax")
        response.headers.update(SECURITY_HEADERS)
        return response

    return router
