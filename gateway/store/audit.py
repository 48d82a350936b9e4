"""The audit log: one row per thing a person did (dashboard actions, logins, logouts, user changes).

Every action calls :func:`record` in the transaction that does the action, so the change and its audit row
commit together or not at all::

    with gateway.sessions.begin() as s:
        ...  # the action
        audit.record(s, user, "message.reprocess", ("message", msg.id), {"reason": reason})
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.model import Audit, utcnow


class Actor(Protocol):
    """Who acted: a ``User`` row or the dashboard's ``SessionUser`` (anything with ``id`` and ``login``)."""

    @property
    def id(self) -> int: ...

    @property
    def login(self) -> str: ...


Target = tuple[str, int | str]


def record(
    session: Session,
    user: Actor | str | None,
    action: str,
    target: Target | None = None,
    detail: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
) -> Audit:
    """Add an audit row to ``session`` (the caller commits). ``user`` is the actor, or a login name when there is
    no user (a failed login of an unknown name; ``"cli"`` for the command line), or None for the system."""
    if user is None:
        user_id, login = None, "system"
    elif isinstance(user, str):
        user_id, login = None, user[:64]
    else:
        user_id, login = user.id, user.login
    row = Audit(
        at=at or utcnow(),
        user_id=user_id,
        login=login,
        action=action,
        target_kind=target[0] if target else None,
        target_id=str(target[1]) if target else None,
        detail=detail or {},
    )
    session.add(row)
    return row


def failed_logins(session: Session, login: str, since: datetime) -> int:
    """Failed logins of ``login`` (any case) since ``since``. Read from the audit log, so the failed-login limit
    holds across every web process of a scaled-out gateway (``ix_audit_action_at``)."""
    query = select(func.count()).where(
        Audit.action == "login.failed", Audit.at >= since, func.lower(Audit.login) == login[:64].lower()
    )
    return int(session.scalar(query) or 0)


def recent(session: Session, *, before: int | None = None, limit: int = 100) -> list[Audit]:
    """Newest first; ``before`` pages by id."""
    q = select(Audit).order_by(Audit.id.desc()).limit(limit)
    if before is not None:
        q = q.where(Audit.id < before)
    return list(session.scalars(q))


def as_dict(row: Audit) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "user": row.login,
        "action": row.action,
        "target": {"kind": row.target_kind, "id": row.target_id} if row.target_kind else None,
        "detail": row.detail,
    }
