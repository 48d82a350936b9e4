"""HTTP API: health, readiness, metrics, the HTTP channel and the partner's view of its messages.

Every ``/api`` route needs an API key (``Authorization: Bearer <key>`` or ``X-API-Key``); keys are stored only
as sha256 digests in routes.yaml, and a partner sees only its own messages. ``/metrics`` needs a scraper key
(``http.metrics_key_sha256``) or, when none is configured, a loopback client.

No ``from __future__ import annotations`` here: FastAPI reads the dependency annotations at run time.
"""

import ipaddress
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from gateway import __version__
from gateway.config import HttpChannel
from gateway.metrics import CONTENT_TYPE
from gateway.model import Message, Partner
from gateway.store import messages
from gateway.web import dashboard
from gateway.web.auth import matches, partner_dependency, presented_key
from gateway.web.ingest import ingest_router

if TYPE_CHECKING:
    from gateway.app import Gateway

MAX_ID = 2**63 - 1  # ids are 64-bit: a larger one in a URL is 422, not an overflow in the database driver (500)


def create_app(gateway: "Gateway") -> FastAPI:
    app = FastAPI(title="Port logistics EDI gateway", version=__version__)
    Caller = Annotated[Partner, Depends(partner_dependency(gateway))]
    for name, channel in gateway.config.channels.items():
        if isinstance(channel, HttpChannel) and channel.enabled:
            app.include_router(ingest_router(gateway, name, channel))
    dashboard.mount(app, gateway)  # the operator dashboard: /login, /dashboard/...

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", response_model=None)
    def readyz() -> dict[str, Any] | JSONResponse:
        """Readiness: the database answers. Channels are listed (a partner's server being down does not make
        the gateway unready)."""
        channels = {name: "up" if up else "down" for name, up in gateway.channel_states().items()}
        try:
            with gateway.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            body = {"status": "unavailable", "reason": type(exc).__name__, "channels": channels}
            return JSONResponse(body, status_code=503)
        return {"status": "ready", "channels": channels}

    @app.get("/metrics", response_class=Response)
    def metrics(
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        """Per-channel counters and lag in Prometheus' text format."""
        keys = gateway.config.http.metrics_key_sha256
        if keys:
            if not matches(presented_key(authorization, None), keys):
                raise HTTPException(401, "a metrics key is required", headers={"WWW-Authenticate": "Bearer"})
        elif not (request.client and _loopback(request.client.host)):
            raise HTTPException(403, "metrics answer loopback clients only unless http.metrics_key_sha256 is set")
        return Response(gateway.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/api/v1/messages", responses=_refused(401))
    def list_messages(
        caller: Caller,
        status: str | None = None,
        before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="keyset paging: ids below this")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[dict[str, Any]]:
        with gateway.sessions() as s:
            rows = messages.list_messages(s, status=status, partner_id=caller.id, before_id=before, limit=limit)
            return [messages.summary(m) for m in rows]

    @app.get("/api/v1/messages/{message_id}", responses=_refused(401, 404))
    def get_message(caller: Caller, message_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> dict[str, Any]:
        """One of the caller's messages: its status, and its error with code and position when it failed."""
        with gateway.sessions() as s:
            msg = s.get(Message, message_id)
            if msg is None or msg.partner_id != caller.id:
                raise HTTPException(404, "no such message")
            return messages.summary(msg)

    return app


_REFUSALS = {401: "missing or unknown API key", 404: "no such message of the caller's"}


def _refused(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI answers ``{"detail": "<sentence>"}`` for these statuses, so that clients know them."""
    detail = {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}}
    return {s: {"description": _REFUSALS[s], "content": {"application/json": {"schema": detail}}} for s in statuses}


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
