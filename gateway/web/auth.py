"""API keys: a partner is known by the sha256 of its key (routes.yaml ``partners.*.api_key_sha256``).

No ``from __future__ import annotations``: FastAPI reads the dependency annotations at run time.
"""

import hashlib
import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Header, HTTPException
from sqlalchemy import select

from gateway.model import Partner

if TYPE_CHECKING:
    from gateway.app import Gateway


def presented_key(authorization: str | None, x_api_key: str | None) -> str:
    return x_api_key or (authorization or "").removeprefix("Bearer ").strip()


def matches(key: str, digests: list[str]) -> bool:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return any(hmac.compare_digest(digest, h) for h in digests)


def partner_dependency(gateway: "Gateway") -> Callable[..., Partner]:
    """A FastAPI dependency giving the calling partner, or 401."""

    def partner(
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> Partner:
        key = presented_key(authorization, x_api_key)
        if not key:
            raise HTTPException(401, "an API key is required", headers={"WWW-Authenticate": "Bearer"})
        with gateway.sessions() as s:
            for p in s.scalars(select(Partner)):
                if matches(key, p.api_key_hashes):
                    s.expunge(p)
                    return p
        raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})

    return partner
