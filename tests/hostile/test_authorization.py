"""Authorization over a real socket: no partner reaches another partner's rows through any route of the app.

Every route the FastAPI app has (``app.routes``) is walked with the ids of the other partner's message, deals and
deliveries, by an API key (``/api``) and by partner dashboard users; a viewer's POSTs are all refused. A route
added later is walked too, so a new page that forgets the partner filter fails here.

Already proven (not repeated): ``tests/integration/test_web.py::test_a_partner_sees_only_its_own_messages`` (the
API list and detail for one key each way), ``tests/acceptance/dashboard/test_messages.py::
test_a_partner_user_sees_only_its_partners_messages`` and ``test_a_viewer_is_refused_every_action_and_sees_no_buttons``
(in the browser, the message pages), ``tests/acceptance/dashboard/test_overview_and_deals.py::
test_a_partner_user_sees_only_its_own_deals_and_forms``, and ``test_dashboard.py::
test_every_dashboard_url_redirects_to_login_when_logged_out`` and ``::test_a_post_without_the_csrf_token_is_403``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select
from starlette.routing import BaseRoute

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.iso6346 import check_digit
from gateway.model import Deal, Delivery, Message, Participation, Partner
from gateway.store import users
from gateway.web.api import create_app
from gateway.web.server import Server, start_server
from tests.conftest import COPARN_EXAMPLE, write_config

KEYS = {"ONE": "key-of-one", "NYK": "key-of-nyk"}
PASSWORD = "password-of-{}"
USERS = {  # login → role, partner
    "one-viewer": ("viewer", "ONE"),
    "one-operator": ("operator", "ONE"),
    "staff-viewer": ("viewer", None),
}
NYK_FILE = "nyk-secret-coparn.edi"
NYK_MARKERS = ("NYKSTYOB", NYK_FILE, "NYKS:ZZZ")  # booking numbers, file name, UNB sender of NYK's payload


def _container(owner: str, serial: int) -> bytes:
    first = f"{owner}U{serial:06d}"
    return f"{first}{check_digit(first)}".encode()


def nyk_coparn() -> bytes:
    """The COPARN example as NYK's: its own sender, bookings and containers (so that no row is shared)."""
    raw = COPARN_EXAMPLE.read_bytes().replace(b"ONEY:ZZZ", b"NYKS:ZZZ").replace(b"ONEYTYOA", b"NYKSTYOB")
    for i, number in enumerate((b"CSQU3054383", b"MSCU1234566", b"TGHU8765436")):
        raw = raw.replace(number, _container("NYK", 100 + i))
    return raw


@dataclass
class World:
    gateway: Gateway
    url: str
    app_routes: list[APIRoute]
    mine: dict[str, list[int]]  # ONE's message, deal and delivery ids
    theirs: dict[str, list[int]]  # NYK's


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    partners = {
        code: {
            "name": code,
            "business_type": "ocean_carrier",
            "edifact_ids": [edi],
            "api_key_sha256": [hashlib.sha256(KEYS[code].encode()).hexdigest()],
        }
        for code, edi in (("ONE", "ONEY"), ("NYK", "NYKS"))
    }
    channels = {
        "drops": {"type": "folder", "path": "inbox", "archive": "archive", "failed": "failed"},
        "api": {"type": "http", "rate_limit": "10000/minute"},
    }
    http = {"enabled": True, "host": "127.0.0.1", "port": 0}
    gw = Gateway(config_mod.load(write_config(tmp_path, database_url, partners=partners, channels=channels, http=http)))
    with gw.sessions.begin() as s:
        for login_name, (role, partner) in USERS.items():
            users.add(s, login_name, PASSWORD.format(login_name), role, partner)
    assert gw.accept(COPARN_EXAMPLE.read_bytes(), channel="drops", filename="one.edi").status == "accepted"
    assert gw.accept(nyk_coparn(), channel="drops", filename=NYK_FILE).status == "accepted"
    bad = nyk_coparn().replace(b"UNT+23+1", b"UNT+99+1").replace(b"20261124001", b"20261124009")  # failed
    assert gw.accept(bad, channel="drops", filename=NYK_FILE).status == "rejected"
    with gw.sessions.begin() as s:
        ids: dict[str, dict[str, list[int]]] = {}
        for code in ("ONE", "NYK"):
            row = s.scalars(select(Partner).where(Partner.code == code)).one()
            deals = select(Participation.deal_id).where(Participation.partner_id == row.id)
            ids[code] = {
                "message": list(s.scalars(select(Message.id).where(Message.partner_id == row.id))),
                "deal": list(s.scalars(select(Deal.id).where(Deal.id.in_(deals)))),
                "delivery": list(s.scalars(select(Delivery.id).where(Delivery.deal_id.in_(deals)))),
            }
        for d in s.scalars(select(Delivery).where(Delivery.id.in_(ids["NYK"]["delivery"]))):
            d.status = "dead"  # replayable, so that only the partner check can refuse a replay
    assert set(ids["ONE"]["deal"]).isdisjoint(ids["NYK"]["deal"])
    assert all(ids["NYK"].values()), ids  # NYK has rows of every kind to try
    server: Server = start_server(gw, "127.0.0.1", 0)
    routes = api_routes(create_app(gw).routes)
    try:
        yield World(gw, f"http://127.0.0.1:{server.port}", routes, ids["ONE"], ids["NYK"])
    finally:
        server.stop()
        gw.close()


def api_routes(routes: Sequence[BaseRoute]) -> list[APIRoute]:
    """Every APIRoute, included routers expanded (FastAPI 0.16x keeps an included router as one entry; the app
    includes none with a prefix)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found += api_routes(route.original_router.routes)
    return found


def fill(path: str, ids: dict[str, list[int]]) -> list[str]:
    """``path`` once for each of ``ids``' rows of the kind its parameter names (``{message_id}`` ...)."""
    params = re.findall(r"{(\w+)}", path)
    if not params:
        return [path]
    [param] = params
    if param == "code":
        return [path.replace("{code}", "en")]
    kind = param.removesuffix("_id")
    return [path.replace(f"{{{param}}}", str(i)) for i in ids[kind]]


def leaked(text: str, theirs: dict[str, list[int]], path: str = "") -> list[str]:
    """NYK's markers in ``text``, links to NYK's messages or deals, and on a list page rows of NYK's ids."""
    found = [m for m in NYK_MARKERS if m in text]
    for kind, link in (("message", "/dashboard/messages/"), ("deal", "/dashboard/deals/")):
        found += [f"{kind} {i}" for i in theirs[kind] if f'{link}{i}"' in text]
    listed = {"/dashboard/messages": "message", "/dashboard/deliveries": "delivery", "/dashboard/deals": "deal"}
    if path in listed:
        found += [f"row {i}" for i in theirs[listed[path]] if f'<tr data-id="{i}"' in text]
    return found


def login(url: str, name: str) -> httpx.Client:
    client = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    answer = client.post(
        "/login", data={"login": name, "password": PASSWORD.format(name), "csrf_token": token.group(1)}
    )
    assert answer.status_code == 303, answer.text
    return client


def csrf(client: httpx.Client) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/dashboard").text)
    assert token is not None
    return token.group(1)


def test_an_api_key_reaches_only_its_partners_messages_on_every_api_route(world: World) -> None:
    """Every /api GET with NYK's ids under ONE's key: 404 for each of NYK's messages, lists without them (with
    every status filter and paging). Breaks if an API route forgets ``partner_id``."""
    one = httpx.Client(base_url=world.url, headers={"Authorization": f"Bearer {KEYS['ONE']}"}, timeout=30)
    walked = 0
    for route in world.app_routes:
        if not route.path.startswith("/api") or "GET" not in (route.methods or ()):
            continue
        for path in fill(route.path, world.theirs):
            for query in ("", "?status=done", "?status=failed", "?limit=500", f"?before={10**6}"):
                answer = one.get(path + query)
                walked += 1
                assert answer.status_code in (200, 404), (path, answer.status_code)
                assert leaked(answer.text, world.theirs) == [], (path + query, answer.text[:300])
                if answer.status_code == 200 and isinstance(answer.json(), list):
                    assert {m["id"] for m in answer.json()} <= set(world.mine["message"])
        if "{" in route.path:
            for own in fill(route.path, world.mine):
                assert one.get(own).status_code == 200  # the same route serves the caller's own rows
    assert walked >= 5 * (1 + len(world.theirs["message"]))


def test_a_partner_user_reaches_no_other_partners_row_on_any_dashboard_route(world: World) -> None:
    """Every dashboard GET (pages and the overview JSON) as ONE's viewer with NYK's message, deal and delivery
    ids, and with search and filter parameters naming NYK: never NYK's data (404 for a detail). Then every POST
    action as ONE's operator on NYK's rows: refused (403/404/409) and nothing changed. Breaks if a page, a JSON
    endpoint or an action forgets the partner filter."""
    viewer = login(world.url, "one-viewer")
    walked = 0
    for route in world.app_routes:
        if not route.path.startswith("/dashboard") or "GET" not in (route.methods or ()):
            continue
        for path in fill(route.path, world.theirs):
            for query in ("", "?q=NYKS", "?q=NYKSTYOB", "?partner=NYK", "?status=all", "?status=failed"):
                answer = viewer.get(path + query)
                walked += 1
                assert answer.status_code in (200, 403, 404), (path + query, answer.status_code)  # 403: admin
                echo = query.partition("=")[2]  # the search box and the paging links repeat the query itself
                text = re.sub(f'(value="|=|%3D){echo}', "", answer.text) if echo else answer.text
                assert leaked(text, world.theirs, path) == [], (path + query, leaked(text, world.theirs, path))
                if "{" in route.path:
                    assert answer.status_code == 404, path
    assert walked > 30
    operator = login(world.url, "one-operator")
    posted: list[tuple[str, int]] = []
    token = csrf(operator)
    with world.gateway.sessions() as s:
        before = {m.id: m.status for m in s.scalars(select(Message))}
        dead = {d.id: d.status for d in s.scalars(select(Delivery))}
    for route in world.app_routes:
        if not route.path.startswith("/dashboard") or "POST" not in (route.methods or ()):
            continue
        for path in fill(route.path, world.theirs):
            every = [str(i) for i in world.theirs["message"] + world.theirs["delivery"]]
            for action, confirm in (("reprocess", "yes"), ("discard", "yes"), ("discard", "no")):
                data: dict[str, str | list[str]] = {"csrf_token": token, "reason": "test", "confirm": confirm}
                data |= {"status": "all", "partner": "NYK", "action": action, "id": every, "q": "NYKS"}
                files = {"raw": ("x.edi", b"UNB")} if "resubmit" in path else None
                answer = operator.post(path, data=data, files=files)
                posted.append((path, answer.status_code))
                assert answer.status_code in (200, 303, 404), (path, answer.status_code)
                assert leaked(answer.text, world.theirs) == [], (path, answer.text[:300])
                if answer.status_code == 200:  # a bulk confirmation: it names none of NYK's rows
                    named = {int(i) for i in re.findall(r'name="id" value="(\d+)"', answer.text)}
                    assert not named & set(world.theirs["message"] + world.theirs["delivery"]), named
    assert {code for path, code in posted if "/bulk" not in path} == {404}, posted
    with world.gateway.sessions() as s:
        assert {m.id: m.status for m in s.scalars(select(Message)) if m.id in before} == before
        assert {d.id: d.status for d in s.scalars(select(Delivery)) if d.id in dead} == dead
        assert s.scalar(select(Message.id).where(Message.id > max(before))) is None  # nothing resubmitted


def test_a_viewer_is_refused_every_post_action(world: World) -> None:
    """Every dashboard POST except login and logout, with a valid CSRF token, by a staff viewer and by a partner
    viewer, on its own rows: 403 and nothing changed. Breaks if an action depends on ``require`` (pages) instead of
    ``action`` (CSRF and role), or a new POST route forgets its role."""
    with world.gateway.sessions() as s:
        before = {m.id: m.status for m in s.scalars(select(Message))}
    posts = [r for r in world.app_routes if r.path.startswith("/dashboard") and "POST" in (r.methods or ())]
    assert len(posts) >= 6
    for name in ("staff-viewer", "one-viewer"):
        client = login(world.url, name)
        token = csrf(client)
        for route in posts:
            for path in fill(route.path, world.mine):
                data = {"csrf_token": token, "reason": "test", "confirm": "yes", "status": "all"}
                answer = client.post(path, data=data)
                assert answer.status_code == 403, (name, path, answer.status_code)
    with world.gateway.sessions() as s:
        assert {m.id: m.status for m in s.scalars(select(Message))} == before


def test_ids_out_of_range_are_refused_never_a_server_error(world: World) -> None:
    """Every route with an id, and every ``before`` paging parameter, with ids the database cannot hold (2**64),
    zero, negative and not a number, by staff and by an API key: 4xx, never 500. Breaks if an id reaches the
    database driver unchecked (SQLite: OverflowError, PostgreSQL: bigint out of range)."""
    staff = login(world.url, "staff-viewer")
    api = httpx.Client(base_url=world.url, headers={"X-API-Key": KEYS["ONE"]}, timeout=30)
    bad = [str(2**64), str(2**63), "0", "-1", "x"]
    tried = 0
    for route in world.app_routes:
        if "GET" not in (route.methods or ()) or not route.path.startswith(("/api", "/dashboard")):
            continue
        client = api if route.path.startswith("/api") else staff
        params = re.findall(r"{(\w+_id)}", route.path)
        paths = [re.sub(r"{\w+_id}", b, route.path) for b in bad] if params else [route.path]
        for path in paths:
            for query in ("",) if params else [f"?before={b}" for b in bad]:
                answer = client.get(path + query)
                tried += 1
                assert answer.status_code < 500, (path + query, answer.status_code, answer.text[:200])
    assert tried >= 20
