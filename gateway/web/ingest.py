"""The HTTP channel: ``POST /api/v1/messages`` stores a raw EDIFACT, XML, JSON or CSV body and answers 202 after
the commit.

The partner comes from its API key; a body over ``max_body`` is refused (413) before it is read to the end;
each partner has a moving-window rate limit (429 with ``Retry-After``); an ``Idempotency-Key`` makes a retried
request return the message the first one made instead of storing it again. Processing happens afterwards in
the gateway's worker; ``GET /api/v1/messages/{id}`` tells how it went.

No ``from __future__ import annotations``: FastAPI reads the dependency annotations at run time.
"""

import math
import re
import time
from typing import TYPE_CHECKING, Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.concurrency import run_in_threadpool

from gateway.config import HttpChannel
from gateway.model import Partner
from gateway.store.messages import IdempotencyConflict
from gateway.web.auth import partner_dependency

if TYPE_CHECKING:
    from gateway.app import Gateway

log = structlog.get_logger("gateway.channel.http")

CONTENT_TYPES = {
    "application/edifact": "edifact",
    "application/edi-x12": "edifact",
    "application/xml": "xml",
    "text/xml": "xml",
    "text/csv": "csv",
    "application/json": "json",
    "text/plain": None,
    "application/octet-stream": None,
}
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
_FILENAME = re.compile(r"^[^/\\\x00-\x1f]{1,200}$")

_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the payload exactly as sent: an EDIFACT interchange, an XML or JSON document or CSV",
        "content": {ct: {"schema": {"type": "string", "format": "binary", "minLength": 1}} for ct in CONTENT_TYPES},
    },
    "responses": {
        "202": {"description": "stored (committed); processing follows, see GET /api/v1/messages/{id}"},
    },
}
_DETAIL = {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}}
# the refusals, each answered {"detail": "<sentence>"}; given as the route's responses (not openapi_extra) so that
# FastAPI does not declare its own 422 (a list of validation errors) that this route never sends
_REFUSALS: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {"application/json": {"schema": _DETAIL}}}
    for status, text in (
        (400, "the body is empty"),
        (401, "missing or unknown API key"),
        (413, "body larger than the channel's max_body"),
        (415, "content type not accepted"),
        (422, "the Idempotency-Key was used before for another body, or it or X-Filename is malformed"),
        (429, "the partner's rate limit is reached; Retry-After says when to try again"),
    )
}


def ingest_router(gateway: "Gateway", name: str, channel: HttpChannel) -> APIRouter:
    router = APIRouter()
    limiter = MovingWindowRateLimiter(MemoryStorage())
    limit = parse(channel.rate_limit)
    refused = gateway.metrics.refused
    Caller = Annotated[Partner, Depends(partner_dependency(gateway))]

    def refuse(status: int, reason: str, detail: str, headers: dict[str, str] | None = None) -> HTTPException:
        refused.labels(name, reason).inc()
        return HTTPException(status, detail, headers=headers)

    @router.post("/api/v1/messages", status_code=202, openapi_extra=_BODY_DOC, responses=_REFUSALS, tags=["messages"])
    async def post_message(
        request: Request,
        caller: Caller,
        idempotency_key: Annotated[str | None, Header()] = None,
        x_filename: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        """Store one payload from the calling partner; 202 with its id once it is committed."""
        if not limiter.hit(limit, caller.code):
            reset = limiter.get_window_stats(limit, caller.code).reset_time
            wait = max(1, math.ceil(reset - time.time()))
            raise refuse(429, "rate", f"rate limit {channel.rate_limit} reached", {"Retry-After": str(wait)})
        content_type = request.headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()
        if content_type not in CONTENT_TYPES:
            raise refuse(415, "content_type", f"content type {content_type!r} is not accepted: {sorted(CONTENT_TYPES)}")
        if idempotency_key is not None and not _IDEMPOTENCY_KEY.match(idempotency_key):
            raise refuse(422, "idempotency_key", "Idempotency-Key must be 1-200 printable ASCII characters")
        if x_filename is not None and not _FILENAME.match(x_filename):
            raise refuse(422, "filename", "X-Filename must be a plain file name")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > channel.max_body:
            raise refuse(413, "size", f"body of {declared} bytes is over the limit of {channel.max_body}")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > channel.max_body:
                raise refuse(413, "size", f"body is over the limit of {channel.max_body} bytes")
        if not body:
            raise refuse(400, "empty", "the body is empty")
        headers = {"content_type": content_type, "remote": request.client.host if request.client else None}
        try:
            receipt = await run_in_threadpool(
                gateway.receive,
                bytes(body),
                channel=name,
                partner=caller.code,
                filename=x_filename,
                headers=headers,
                idempotency_key=idempotency_key,
            )
        except IdempotencyConflict as exc:
            raise refuse(422, "idempotency_key", str(exc)) from None
        location = f"/api/v1/messages/{receipt.message_id}"
        answer = {
            "id": receipt.message_id,
            "status": "duplicate" if receipt.duplicate else "received",
            "duplicate_of": receipt.duplicate_of,
            "duplicate_reason": receipt.reason,
            "replayed": receipt.replayed,
            "location": location,
        }
        return JSONResponse(answer, status_code=202, headers={"Location": location})

    return router
