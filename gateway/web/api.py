"""HTTP API: health, readiness and the partner's view of its messages.

Every ``/api`` route needs an API key (``Authorization: Bearer <key>`` or ``X-API-Key``); keys are stored only
as sha256 digests in routes.yaml, and a partner sees only its own messages.

No ``from __future__ import annotations`` here: FastAPI reads the dependency annotations at run time.
"""

import hashlib
import hmac
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select, text

from gateway import __version__
from gateway.model import Message, Partner
from gateway.store import messages

if TYPE_CHECKING:
    from gateway.app import Gateway


def create_app(gateway: "Gateway") -> FastAPI:
    app = FastAPI(title="Port logistics EDI gateway", version=__version__)

    def partner(
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> Partner:
        key = x_api_key or (authorization or "").removeprefix("Bearer ").strip()
        if not key:
            raise HTTPException(401, "an API key is required", headers={"WWW-Authenticate": "Bearer"})
        digest = hashlib.sha256(key.encode()).hexdigest()
        with gateway.sessions() as s:
            for p in s.scalars(select(Partner)):
                if any(hmac.compare_digest(digest, h) for h in p.api_key_hashes):
                    s.expunge(p)
                    return p
        raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})

    Caller = Annotated[Partner, Depends(partner)]

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", response_model=None)
    def readyz() -> dict[str, str] | JSONResponse:
        """Readiness: the database answers."""
        try:
            with gateway.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, status_code=503)
        return {"status": "ready"}

    @app.get("/api/v1/messages")
    def list_messages(
        caller: Caller,
        status: str | None = None,
        before: Annotated[int | None, Query(description="keyset paging: ids below this")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[dict[str, Any]]:
        with gateway.sessions() as s:
            rows = messages.list_messages(s, status=status, partner_id=caller.id, before_id=before, limit=limit)
            return [messages.summary(m) for m in rows]

    @app.get("/api/v1/messages/{message_id}")
    def get_message(caller: Caller, message_id: int) -> dict[str, Any]:
        with gateway.sessions() as s:
            msg = s.get(Message, message_id)
            if msg is None or msg.partner_id != caller.id:
                raise HTTPException(404, "no such message")
            return messages.summary(msg)

    return app
