"""Dashboard users: argon2id password hashes, roles, an optional partner, an active flag."""

from __future__ import annotations

import contextlib
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.model import Partner, Role, User

_hasher = PasswordHasher()
# verified against when the login name is unknown, so that a wrong name costs as long as a wrong password
_DUMMY_HASH = _hasher.hash("not a password")

LOGIN_PATTERN = r"^[A-Za-z0-9._@-]{1,64}$"


class UserError(ValueError):
    """A user cannot be added or changed (the text says why)."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def add(session: Session, login: str, password: str, role: str, partner_code: str | None = None) -> User:
    if not re.match(LOGIN_PATTERN, login):
        raise UserError(f"login name {login!r}: letters, digits and . _ @ - only, at most 64")
    if role not in {r.value for r in Role}:
        raise UserError(f"role {role!r}: one of {', '.join(r.value for r in Role)}")
    if len(password) < 8:
        raise UserError("the password needs at least 8 characters")
    if session.scalar(select(User.id).where(User.login == login)) is not None:
        raise UserError(f"user {login!r} exists")
    partner_id = None
    if partner_code is not None:
        partner_id = session.scalar(select(Partner.id).where(Partner.code == partner_code))
        if partner_id is None:
            raise UserError(f"no partner {partner_code!r} in routes.yaml")
    user = User(login=login, password_hash=hash_password(password), role=role, partner_id=partner_id, active=True)
    session.add(user)
    session.flush()
    return user


def by_login(session: Session, login: str) -> User | None:
    return session.scalar(select(User).where(User.login == login))


def all_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.login)))


def disable(session: Session, login: str) -> User:
    """Mark the user inactive; its sessions stop working at once (``web_sessions.lookup`` checks the flag)."""
    user = by_login(session, login)
    if user is None:
        raise UserError(f"no user {login!r}")
    user.active = False
    return user


def authenticate(session: Session, login: str, password: str) -> User | None:
    """The active user with this login and password, or None. Rehashes when argon2's parameters changed."""
    user = by_login(session, login)
    if user is None or not user.active:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user
