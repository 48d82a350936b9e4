"""Users, sessions, cookies, the failed-login limit, the audit log and the `gateway users` commands, without a
browser (FastAPI's TestClient on the app of a gateway)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.cli import main
from gateway.model import Audit, User, WebSession, utcnow
from gateway.store import audit, users
from gateway.web.api import create_app


@pytest.fixture
def gw(config_path: Path) -> Iterator[Gateway]:
    gateway = Gateway(config_mod.load(config_path))
    with gateway.sessions.begin() as s:
        users.add(s, "hanako", "correct-horse", "operator")
        users.add(s, "one", "one-password", "viewer", "ONE")
    yield gateway
    gateway.close()


def _client(gw: Gateway, scheme: str = "http") -> TestClient:
    return TestClient(create_app(gw), base_url=f"{scheme}://127.0.0.1", follow_redirects=False)


def _login(client: TestClient, name: str, password: str) -> int:
    form = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token
    answer = client.post("/login", data={"login": name, "password": password, "csrf_token": token.group(1)})
    return answer.status_code


def test_passwords_are_argon2_hashes_and_disabled_users_cannot_log_in(gw: Gateway) -> None:
    with gw.sessions.begin() as s:
        user = users.by_login(s, "hanako")
        assert user and user.password_hash.startswith("$argon2id$") and "correct-horse" not in user.password_hash
        assert users.authenticate(s, "hanako", "correct-horse") is not None
        assert users.authenticate(s, "hanako", "wrong") is None
        assert users.authenticate(s, "nobody", "correct-horse") is None
        one = users.by_login(s, "one")
        assert one and one.partner and one.partner.code == "ONE"
        with pytest.raises(users.UserError, match="no partner"):
            users.add(s, "x", "long-enough", "viewer", "NOPE")
        with pytest.raises(users.UserError, match="role"):
            users.add(s, "x", "long-enough", "root")
    client = _client(gw)
    assert _login(client, "hanako", "correct-horse") == 303
    assert client.get("/dashboard").status_code == 200
    with gw.sessions.begin() as s:
        users.disable(s, "hanako")
    assert client.get("/dashboard").status_code == 303  # the open session stops at once
    assert _login(client, "hanako", "correct-horse") == 401


def test_session_cookie_flags_and_expiry(gw: Gateway) -> None:
    client = _client(gw)
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token
    answer = client.post("/login", data={"login": "hanako", "password": "correct-horse", "csrf_token": token[1]})
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and v.startswith("gw_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert f"Max-Age={8 * 3600}" in cookie
    with gw.sessions() as s:
        row = s.scalars(select(WebSession)).one()
        # the table holds the token's digest, never the token
        assert row.id != client.cookies["gw_session"] and len(row.id) == 64
    with gw.sessions.begin() as s:
        s.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert client.get("/dashboard").status_code == 303

    secure = _client(gw, "https")
    secure.get("/login")
    form = secure.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token
    answer = secure.post("/login", data={"login": "hanako", "password": "correct-horse", "csrf_token": token[1]})
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and v.startswith("gw_session="))
    assert "Secure" in cookie


def test_failed_logins_are_limited_per_login_name(gw: Gateway) -> None:
    client = _client(gw)
    for _ in range(5):
        assert _login(client, "hanako", "guess") == 401
    assert _login(client, "hanako", "correct-horse") == 429  # even the right password, for now
    assert _login(client, "one", "one-password") == 303  # another name is not held up
    with gw.sessions() as s:
        actions = [a.action for a in s.scalars(select(Audit).order_by(Audit.id))]
    assert actions == ["login.failed"] * 5 + ["login.limited", "login"]


def test_the_failed_login_limit_holds_across_web_processes_and_moves_on(gw: Gateway) -> None:
    """Breaks if each web process (here: two apps, as two `gateway run --role web` would have) counted failed
    logins of its own, so that an attacker got the limit once per process, if the name's case escaped it, or if
    failures older than the window still counted."""
    first, second = _client(gw), _client(gw)
    for client in (first, second, first, second, first):
        assert _login(client, "Hanako", "guess") == 401
    assert _login(second, "hanako", "correct-horse") == 429
    with gw.sessions.begin() as s:  # the window has passed
        s.execute(update(Audit).values(at=utcnow() - timedelta(minutes=16)))
    assert _login(first, "hanako", "correct-horse") == 303


def test_audit_record_names_the_actor_and_target(gw: Gateway) -> None:
    with gw.sessions.begin() as s:
        user = s.scalars(select(User).where(User.login == "hanako")).one()
        audit.record(s, user, "message.reprocess", ("message", 42), {"reason": "mapping fixed"})
        audit.record(s, "somebody", "login.failed")
    with gw.sessions() as s:
        rows = [audit.as_dict(r) for r in audit.recent(s)]
    assert rows[0]["user"] == "somebody" and rows[0]["target"] is None
    assert rows[1]["user"] == "hanako" and rows[1]["action"] == "message.reprocess"
    assert rows[1]["target"] == {"kind": "message", "id": "42"}
    assert rows[1]["detail"] == {"reason": "mapping fixed"}


def test_users_commands(config_path: Path) -> None:
    runner = CliRunner()
    base = ["--config", str(config_path), "--log-json"]
    add_taro = [*base, "users", "add", "taro", "--role", "admin", "--password-stdin"]
    out = runner.invoke(main, add_taro, input="pw-1234567\n")
    assert out.exit_code == 0, out.output
    add_kaisha = [*base, "users", "add", "kaisha", "--role", "viewer", "--partner", "ONE"]
    out = runner.invoke(main, add_kaisha, input="pw-7654321\npw-7654321\n")
    assert out.exit_code == 0, out.output
    out = runner.invoke(main, add_taro, input="pw-1234567\n")
    assert out.exit_code == 2 and "exists" in out.output
    out = runner.invoke(main, [*base, "users", "add", "x", "--role", "viewer", "--password", "secret-123"])
    assert out.exit_code == 2  # no such option: a password never goes on the command line
    assert runner.invoke(main, [*base, "users", "disable", "kaisha"]).exit_code == 0
    out = runner.invoke(main, [*base, "users", "list", "--json"])
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith('{"login')]
    assert [(r["login"], r["role"], r["partner"], r["active"]) for r in rows] == [
        ("kaisha", "viewer", "ONE", False),
        ("taro", "admin", None, True),
    ]
    gw = Gateway(config_mod.load(config_path))
    try:
        with gw.sessions() as s:
            assert [a.action for a in s.scalars(select(Audit).order_by(Audit.id))] == [
                "user.add",
                "user.add",
                "user.disable",
            ]
            assert users.authenticate(s, "taro", "pw-1234567") is not None
    finally:
        gw.close()
