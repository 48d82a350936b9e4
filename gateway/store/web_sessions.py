"""Server-side dashboard sessions. The browser holds a random token (cookie); the table holds its sha256 as the
session id, the user, the expiry and the session's CSRF token."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from gateway.model import User, WebSession, utcnow


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(session: Session, user: User, hours: float) -> tuple[str, WebSession]:
    """A new session for ``user``: returns the cookie token (shown once, never stored) and the row."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = WebSession(
        id=_digest(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + timedelta(hours=hours),
    )
    session.add(row)
    # expired sessions go when someone logs in: the table stays small without a sweeper loop
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    return token, row


def lookup(session: Session, token: str | None) -> WebSession | None:
    """The live session of this cookie token (not expired, user active), or None."""
    if not token or len(token) > 128:
        return None
    row = session.get(WebSession, _digest(token))
    if row is None or row.expires_at <= utcnow() or not row.user.active:
        return None
    return row


def end(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(WebSession).where(WebSession.id == _digest(token)))
