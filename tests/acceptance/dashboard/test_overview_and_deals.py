"""The overview (counts, the chart, refreshing without a reload) and the deal pages with the Read / ReadWrite /
none permissions of partner users, in headless Chromium against a running gateway; screenshots for the README."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy import select

from gateway.model import Deal, Form, Participation, Partner
from tests.conftest import COPARN_EXAMPLE, REPO
from tests.services.browser import Site, login

SCREENSHOTS = REPO / "docs" / "screenshots"
BAD_COUNT = REPO / "samples" / "ONE-COPARN-20261124-0002-bad-count.edi"


def _deals(site: Site) -> dict[str, int]:
    """ONE's two deals from the COPARN sample (ONE joins with ReadWrite on UL090), an S/I (UL040) on the first
    that ONE has no right to, and a deal of NYK's that ONE does not take part in."""
    gw = site.gateway
    gw.accept(COPARN_EXAMPLE.read_bytes(), channel="drops", filename=COPARN_EXAMPLE.name)
    with gw.sessions.begin() as s:
        one_deal = s.scalars(select(Deal).where(Deal.booking_number == "ONEYTYOA12345")).one()
        s.add(Form(deal=one_deal, type_code="UL040", subject="", payload={"shipper": "Tokyo Trading", "packages": 40}))
        nyk = Partner(code="NYK", name="NYK Line", business_type="ocean_carrier")
        nyk_deal = Deal(
            deal_number="DL-NYK0000001",
            direction="import",
            bl_number="NYKS1234567890",
            booking_number="NYKBK0001",
            carrier_scac="NYKS",
        )
        s.add_all([nyk, nyk_deal])
        s.flush()
        s.add(
            Participation(
                partner_id=nyk.id, deal_id=nyk_deal.id, business_type="ocean_carrier", rights={"UL290": "ReadWrite"}
            )
        )
        s.add(Form(deal=nyk_deal, type_code="UL290", subject="", payload={"eta": "2026-12-01"}))
        return {"one": one_deal.id, "nyk": nyk_deal.id}


def test_the_overview_shows_counts_and_the_chart_and_refreshes_without_a_reload(page: Page, dashboard: Site) -> None:
    gw = dashboard.gateway
    gw.accept(COPARN_EXAMPLE.read_bytes(), channel="drops", filename=COPARN_EXAMPLE.name)
    gw.accept(BAD_COUNT.read_bytes(), channel="drops", filename=BAD_COUNT.name)
    login(page, dashboard, "operator")
    expect(page.locator("[data-status=done] .number")).to_have_text("1")
    expect(page.locator("[data-status=failed] .number")).to_have_text("1")
    # the chart: one stacked bar segment per status in the current hour
    expect(page.locator("#chart svg rect[data-status=done]")).to_have_count(1)
    expect(page.locator("#chart svg rect[data-status=failed]")).to_have_attribute("data-count", "1")
    expect(page.locator("#chart [data-legend=failed]")).to_have_text("失敗")
    # the oldest unresolved failure links to its message; queues: the CONPAS deliveries wait on their route
    failed = page.locator("#oldest-failure a")
    expect(failed).to_have_attribute("href", "/dashboard/messages/2")
    expect(page.locator("#oldest-failure")).to_contain_text("EDI-")
    expect(page.locator("#routes tbody tr")).to_contain_text("conpas-prenotice")
    expect(page.locator("#routes tbody td").nth(1)).to_have_text("3")

    # a marker on the window survives only if the page is not navigated
    page.evaluate("window.__stillHere = true")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    gw.receive(b"UNA:+.? 'UNB+UNOA:2+X+Y+261124:1200+77'", channel="drops", filename="waiting.edi")
    gw.accept(COPARN_EXAMPLE.read_bytes(), channel="drops", filename="again.edi")  # a duplicate
    expect(page.locator("[data-status=duplicate] .number")).to_have_text("1", timeout=15_000)
    expect(page.locator("[data-status=received] .number")).to_have_text("1")
    expect(page.locator("#queues tbody tr")).to_contain_text("drops")
    expect(page.locator("#chart svg rect[data-status=duplicate]")).to_have_count(1)
    assert page.evaluate("window.__stillHere") is True
    assert navigations == []
    # the JSON behind it
    answer = page.request.get(f"{dashboard.url}/dashboard/overview.json")
    assert answer.ok and answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert body["window_hours"] == 24 and len(body["hours"]) == 24
    assert body["by_status"] == {"done": 1, "failed": 1, "duplicate": 1, "received": 1}
    assert body["queue"][0]["channel"] == "drops" and body["queue"][0]["received"] == 1
    assert body["oldest_failure"]["id"] == 2


def test_a_partner_user_sees_only_its_own_deals_and_forms(page: Page, dashboard: Site) -> None:
    ids = _deals(dashboard)
    login(page, dashboard, "one-viewer")
    page.click("[data-nav=deals]")
    expect(page.locator("h1")).to_have_text("取引")
    rows = page.locator("#deals tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#deals")).not_to_contain_text("DL-NYK0000001")
    expect(page.locator("#deals")).to_contain_text("ONEYTYOA12345")
    # searching NYK's B/L finds nothing for ONE
    page.fill("input[name=q]", "NYKS1234567890")
    page.click("form.search button")
    expect(page.locator("#deals")).to_have_count(0)
    expect(page.locator(".empty")).to_have_text("該当する取引はありません。")
    # the direct URL of NYK's deal is 404
    answer = page.goto(f"{dashboard.url}/dashboard/deals/{ids['nyk']}")
    assert answer is not None and answer.status == 404
    expect(page.locator("[role=alert]")).to_have_text("この取引は存在しないか、閲覧できません。")
    # ONE's deal: UL090 (ReadWrite) shown, the S/I (UL040, none) hidden
    page.goto(f"{dashboard.url}/dashboard/deals/{ids['one']}")
    expect(page.locator("#forms tbody tr[data-form=UL090]")).to_have_count(2)
    expect(page.locator("#forms tr[data-form=UL040]")).to_have_count(0)
    expect(page.locator("#hidden-forms")).to_contain_text("1")
    expect(page.locator("main")).not_to_contain_text("Tokyo Trading")
    expect(page.locator("#participants tr[data-partner=ONE]")).to_contain_text("参照・更新")
    # the timeline links the message that caused each event (ONE's own message)
    expect(page.locator("#timeline tr[data-event='deal.opened'] a")).to_have_attribute("href", "/dashboard/messages/1")


def test_staff_see_every_deal_read_only_and_search_by_container(page: Page, dashboard: Site) -> None:
    ids = _deals(dashboard)
    login(page, dashboard, "viewer")
    page.goto(f"{dashboard.url}/dashboard/deals")
    expect(page.locator("#deals tbody tr")).to_have_count(3)
    page.fill("input[name=q]", "MSCU1234566")
    page.click("form.search button")
    expect(page.locator("#deals tbody tr")).to_have_count(1)
    page.click("#deals tbody a")
    assert page.url == f"{dashboard.url}/dashboard/deals/{ids['one']}"
    expect(page.locator("#forms tr[data-form=UL040]")).to_contain_text("Tokyo Trading")
    expect(page.locator("#hidden-forms")).to_have_count(0)
    expect(page.locator("#containers tbody tr")).to_have_count(2)
    expect(page.locator("#containers tr[data-container=MSCU1234566]")).to_be_visible()
    expect(page.locator("#timeline tr[data-event='container.announced']")).to_have_count(2)
    # read-only: no form or button in the page's content, and NYK's deal opens for staff
    expect(page.locator("main form, main button")).to_have_count(0)
    answer = page.goto(f"{dashboard.url}/dashboard/deals/{ids['nyk']}")
    assert answer is not None and answer.status == 200
    expect(page.locator("#forms tr[data-form=UL290]")).to_be_visible()


def test_screenshots_of_the_overview_and_a_deal(page: Page, dashboard: Site) -> None:
    ids = _deals(dashboard)
    gw = dashboard.gateway
    gw.accept(BAD_COUNT.read_bytes(), channel="drops", filename=BAD_COUNT.name)
    gw.accept(COPARN_EXAMPLE.read_bytes(), channel="drops", filename=COPARN_EXAMPLE.name)
    gw.dispatcher.drain()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    login(page, dashboard, "admin")
    expect(page.locator("#chart svg rect[data-status=done]")).to_have_count(1)
    _shoot(page, SCREENSHOTS / "overview-chart.png")
    page.goto(f"{dashboard.url}/dashboard/deals/{ids['one']}")
    expect(page.locator("#forms")).to_be_visible()
    _shoot(page, SCREENSHOTS / "deal.png")


def _shoot(page: Page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
