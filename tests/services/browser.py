"""Headless Chromium driven by Playwright, and a running gateway with dashboard users, for the browser tests.

Chromium is Debian's (``/usr/bin/chromium``; ``./dev test`` installs the ``chromium`` package), never one that
``playwright install`` downloads. A missing Chromium fails the tests that need it.

Fixtures: ``chromium`` (the browser, per module), ``page`` (a fresh context and page: Japanese locale,
1280x800), ``dashboard`` (a gateway served on a loopback port with the users of ``USERS``). ``login(page, site,
name)`` logs a user in through the form.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.services import missing

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

    from gateway.app import Gateway

CHROMIUM = Path(os.environ.get("GATEWAY_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# login -> (role, partner code, password)
USERS = {
    "admin": ("admin", None, "admin-password-1"),
    "operator": ("operator", None, "operator-password-1"),
    "viewer": ("viewer", None, "viewer-password-1"),
    "one-viewer": ("viewer", "ONE", "one-viewer-password-1"),
}


@dataclass
class Site:
    url: str
    gateway: Gateway

    def password(self, login: str) -> str:
        return USERS[login][2]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        missing("Chromium", f"no {CHROMIUM} (Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(locale="ja-JP", viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


@contextmanager
def served(config: Path, *, add_users: bool = True) -> Iterator[Site]:
    """A gateway on ``config`` with its HTTP server on a loopback port (``start_server``, port 0) and, unless
    ``add_users`` is false, the users of USERS."""
    from gateway import config as config_mod
    from gateway.app import Gateway
    from gateway.store import users
    from gateway.web.server import start_server

    gw = Gateway(config_mod.load(config))
    if add_users:
        with gw.sessions.begin() as s:
            for login_name, (role, partner, password) in USERS.items():
                users.add(s, login_name, password, role, partner)
    server = start_server(gw, "127.0.0.1", 0)
    try:
        yield Site(f"http://127.0.0.1:{server.port}", gw)
    finally:
        server.stop()
        gw.close()


@pytest.fixture
def dashboard(tmp_path: Path, database_url: str) -> Iterator[Site]:
    """The default test config served, with the users of USERS."""
    from tests.conftest import write_config

    path = write_config(tmp_path, database_url, http={"enabled": True, "host": "127.0.0.1", "port": 0})
    with served(path) as site:
        yield site


def login(page: Page, site: Site, name: str, password: str | None = None) -> None:
    """Log ``name`` in through the login form (and wait for the page it lands on)."""
    page.goto(f"{site.url}/login")
    page.fill("input[name=login]", name)
    page.fill("input[name=password]", password if password is not None else site.password(name))
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state()
