"""The dashboard's foundation in a real browser (Debian's Chromium through Playwright) against a running
gateway: login, redirects, CSRF, roles, languages, logout, and the screenshots the README shows."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect
from sqlalchemy import select

from gateway.model import Audit
from gateway.web import dashboard
from gateway.web.dashboard import Web
from tests.conftest import COPARN_EXAMPLE, REPO
from tests.services.browser import Site, login

SCREENSHOTS = REPO / "docs" / "screenshots"
BAD_COUNT = REPO / "samples" / "ONE-COPARN-20261124-0002-bad-count.edi"


def _app_routes(site: Site, method: str) -> list[str]:
    """Every dashboard route of the running app (so pages added later are covered), path parameters as 1."""
    web = Web(site.gateway)
    dashboard.routers(web)
    paths = sorted(
        re.sub(r"\{[^}]+\}", "1", path)
        for m, path in web.paths
        if m == method and path.startswith(("/dashboard", "/logout"))
    )
    assert paths
    return paths


def _actions(site: Site) -> list[str]:
    with site.gateway.sessions() as s:
        return [a.action for a in s.scalars(select(Audit).order_by(Audit.id))]


def test_login_refuses_a_wrong_password_and_admits_the_right_one(page: Page, dashboard: Site) -> None:
    login(page, dashboard, "operator", "wrong-password")
    expect(page.locator("[role=alert]")).to_have_text("ログイン名またはパスワードが正しくありません。")
    assert "/login" in page.url
    login(page, dashboard, "operator")
    assert page.url == f"{dashboard.url}/dashboard"
    expect(page.locator("h1")).to_have_text("概要")
    expect(page.locator(".who")).to_contain_text("operator")
    assert _actions(dashboard) == ["login.failed", "login"]


def test_every_dashboard_url_redirects_to_login_when_logged_out(page: Page, dashboard: Site) -> None:
    for path in _app_routes(dashboard, "GET"):
        answer = httpx.get(dashboard.url + path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next="), path
        page.goto(dashboard.url + path)
        assert page.url.startswith(f"{dashboard.url}/login?next="), path
        expect(page.locator("input[name=password]")).to_be_visible()
    # after logging in, the browser lands where it was going
    page.goto(f"{dashboard.url}/dashboard/audit")
    page.fill("input[name=login]", "admin")
    page.fill("input[name=password]", dashboard.password("admin"))
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(f"{dashboard.url}/dashboard/audit")


def test_a_post_without_the_csrf_token_is_403(page: Page, dashboard: Site) -> None:
    login(page, dashboard, "admin")
    for path in _app_routes(dashboard, "POST"):
        answer = page.request.post(dashboard.url + path, form={"reason": "x"}, max_redirects=0)
        assert answer.status == 403, path
        answer = page.request.post(dashboard.url + path, form={"csrf_token": "forged"}, max_redirects=0)
        assert answer.status == 403, path
    # the login form has its own token
    answer = page.request.post(
        f"{dashboard.url}/login", form={"login": "admin", "password": "admin-password-1"}, max_redirects=0
    )
    assert answer.status == 403
    # with the page's token the same POST works
    token = page.locator("form[action='/logout'] input[name=csrf_token]").get_attribute("value")
    assert token
    answer = page.request.post(f"{dashboard.url}/logout", headers={"X-CSRF-Token": token}, max_redirects=0)
    assert answer.status == 303


def test_a_viewer_cannot_reach_the_audit_page(page: Page, dashboard: Site) -> None:
    login(page, dashboard, "viewer")
    expect(page.locator("[data-nav=audit]")).to_have_count(0)
    answer = page.goto(f"{dashboard.url}/dashboard/audit")
    assert answer is not None and answer.status == 403
    expect(page.locator("[role=alert]")).to_have_text("この操作の権限がありません。")
    page.context.clear_cookies()
    login(page, dashboard, "admin")
    page.click("[data-nav=audit]")
    expect(page.locator("h1")).to_have_text("監査ログ")
    expect(page.locator("#audit tbody tr").first).to_contain_text("admin")
    expect(page.locator("#audit")).to_contain_text("viewer")


def test_the_language_switch_shows_japanese_and_english_labels(page: Page, dashboard: Site) -> None:
    page.goto(f"{dashboard.url}/login")
    expect(page.locator("h1")).to_have_text("ログイン")
    page.click("[data-lang=en]")
    expect(page.locator("h1")).to_have_text("Log in")
    login(page, dashboard, "admin")
    expect(page.locator("h1")).to_have_text("Overview")
    nav = page.locator("nav[aria-label=main]")
    for label in ("Overview", "Messages", "Deliveries", "Deals", "Audit log"):
        expect(nav).to_contain_text(label)
    expect(page.locator("#logout")).to_have_text("Log out")
    page.click("[data-lang=ja]")
    assert page.url == f"{dashboard.url}/dashboard"
    expect(page.locator("h1")).to_have_text("概要")
    for label in ("概要", "メッセージ", "配信", "取引", "監査ログ"):
        expect(nav).to_contain_text(label)
    # without the cookie the browser's Accept-Language decides
    english = page.context.browser.new_context(locale="en-US") if page.context.browser else None
    assert english is not None
    other = english.new_page()
    other.goto(f"{dashboard.url}/login")
    expect(other.locator("h1")).to_have_text("Log in")
    english.close()


def test_logout_ends_the_session(page: Page, dashboard: Site) -> None:
    login(page, dashboard, "operator")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    page.click("#logout")
    page.wait_for_url(f"{dashboard.url}/login")
    page.goto(f"{dashboard.url}/dashboard")
    assert page.url.startswith(f"{dashboard.url}/login")
    # the old cookie opens nothing any more
    stale = httpx.get(f"{dashboard.url}/dashboard", cookies={"gw_session": cookies["gw_session"]})
    assert stale.status_code == 303
    assert _actions(dashboard) == ["login", "logout"]


def test_screenshots_of_the_login_page_and_the_overview(page: Page, dashboard: Site) -> None:
    gw = dashboard.gateway
    gw.accept(COPARN_EXAMPLE.read_bytes(), channel="drops", filename=COPARN_EXAMPLE.name)
    gw.accept(BAD_COUNT.read_bytes(), channel="drops", filename=BAD_COUNT.name)
    gw.accept(COPARN_EXAMPLE.read_bytes(), channel="drops", filename=COPARN_EXAMPLE.name)
    gw.dispatcher.drain()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{dashboard.url}/login")
    _shoot(page, SCREENSHOTS / "login.png")
    login(page, dashboard, "admin")
    expect(page.locator("[data-status=failed] .number")).to_have_text("1")
    expect(page.locator("[data-status=done] .number")).to_have_text("1")
    expect(page.locator("[data-status=duplicate] .number")).to_have_text("1")
    expect(page.locator("#by-channel")).to_contain_text("drops")
    expect(page.locator("#dead-deliveries .number")).to_have_text("0")
    _shoot(page, SCREENSHOTS / "overview.png")


def _shoot(page: Page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
