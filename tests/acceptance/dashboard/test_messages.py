"""The Messages and Deliveries pages in a real browser (Debian's Chromium through Playwright) against a running
gateway: find a failed COPARN, fix its mapping, reprocess it; bulk replay of dead CONPAS deliveries once the
peer is back; edit and resubmit, discard; a viewer refused every action; a partner user held to its messages;
the screenshots the README shows."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect
from sqlalchemy import select

from gateway.model import Audit, Delivery, Message
from gateway.store import audit
from tests.conftest import COPARN_EXAMPLE, REPO, write_config
from tests.services.browser import Site, login, served

SCREENSHOTS = REPO / "docs" / "screenshots"
BAD_COUNT = REPO / "samples" / "ONE-COPARN-20261124-0002-bad-count.edi"
GOOD_MAPPING = (REPO / "mappings" / "edifact" / "coparn.yaml").read_text(encoding="utf-8").split("\nexamples:")[0]
# the deliberate error: the voyage is read from an element TDT does not have, so every COPARN fails MAP-2
BROKEN_MAPPING = GOOD_MAPPING.replace(
    "voyage: {seg: TDT+20, el: 2, required: true}", "voyage: {seg: TDT+20, el: 9, required: true}"
)
assert BROKEN_MAPPING != GOOD_MAPPING


def _config(tmp_path: Path, database_url: str, **overrides: Any) -> Path:
    return write_config(tmp_path, database_url, http={"enabled": True, "host": "127.0.0.1", "port": 0}, **overrides)


def _audit(site: Site) -> list[tuple[str, str | None, str | None]]:
    with site.gateway.sessions() as s:
        return [(a.login, a.action, a.target_id) for a in s.scalars(select(Audit).order_by(Audit.id))]


def _status(site: Site, message_id: int) -> str:
    with site.gateway.sessions() as s:
        return s.get_one(Message, message_id).status


def test_find_a_failed_coparn_fix_its_mapping_reprocess_it_and_see_it_done(
    page: Page, tmp_path: Path, database_url: str
) -> None:
    """The gateway reads its mappings at start: the fix is made in the file, the gateway restarted on it (the
    same database, so the same session), then the failed message is reprocessed from the dashboard."""
    mapping = tmp_path / "coparn.yaml"
    mapping.write_text(BROKEN_MAPPING, encoding="utf-8")
    rule = [{"match": {"format": "edifact", "message": "COPARN"}, "use": str(mapping)}]
    config = _config(tmp_path, database_url, mappings=rule)
    with served(config) as site:
        result = site.gateway.accept(COPARN_EXAMPLE.read_bytes(), channel="drops", filename=COPARN_EXAMPLE.name)
        assert result.status == "rejected"
        failed = result.message_ids[0]
        login(page, site, "operator")
        page.click("[data-nav=messages]")
        expect(page.locator("h1")).to_have_text("メッセージ")
        page.fill("input[name=type]", "coparn")
        page.click("#apply")
        row = page.locator(f"#messages tr[data-id='{failed}']")
        expect(row).to_contain_text("MAP-2")
        row.locator("a").click()
        expect(page.locator("#error")).to_contain_text("MAP-2")
        expect(page.locator("#error")).to_contain_text("voyage")
        expect(page.locator("#payload li.bad")).to_have_attribute("data-segment", "5")  # TDT, where the rule read
        cookies = page.context.cookies()

    mapping.write_text(GOOD_MAPPING, encoding="utf-8")  # the fix, then the restart
    with served(config, add_users=False) as site:
        page.context.add_cookies(cookies)
        page.goto(f"{site.url}/dashboard/messages/{failed}")
        page.click("#reprocess")
        expect(page.locator("#status")).to_have_text("完了")
        expect(page.locator("#touched")).to_contain_text("CSQU3054383")
        expect(page.locator("#lineage")).to_contain_text("再処理")
        expect(page.locator("#steps")).to_contain_text("MAP-2")  # the error it had stays in the history
        assert _status(site, failed) == "done"
        assert ("operator", "message.reprocess", str(failed)) in _audit(site)
        page.goto(f"{site.url}/dashboard/messages")
        expect(page.locator("#no-messages")).to_be_visible()  # no failed message left


def test_bulk_replay_of_dead_conpas_deliveries_after_the_peer_comes_back(
    page: Page, tmp_path: Path, database_url: str
) -> None:
    """The CONPAS folder is a file (the peer is down): each delivery dies at its one attempt. The folder is made,
    an operator replays every dead delivery of the route in one confirmed bulk action, and the files appear."""
    outbox = tmp_path / "outbox" / "conpas"
    outbox.parent.mkdir()
    outbox.write_text("not a folder", encoding="utf-8")
    route = {
        "on": "container.announced",
        "render": "conpas",
        "to": {"type": "folder", "path": "outbox/conpas"},
        "retry": {"max_attempts": 1},
    }
    with served(_config(tmp_path, database_url, routes={"conpas-prenotice": route})) as site:
        site.gateway.accept(COPARN_EXAMPLE.read_bytes(), channel="drops", filename=COPARN_EXAMPLE.name)
        site.gateway.dispatcher.drain()
        with site.gateway.sessions() as s:
            dead = sorted(d.id for d in s.scalars(select(Delivery).where(Delivery.status == "dead")))
        assert len(dead) == 3

        outbox.unlink()
        outbox.mkdir()  # the peer is back
        login(page, site, "operator")
        page.click("[data-nav=deliveries]")
        expect(page.locator("#deliveries tbody tr")).to_have_count(3)
        expect(page.locator("#deliveries")).to_contain_text("OUT-2")
        page.select_option("select[name=route]", "conpas-prenotice")
        page.click("#apply")
        page.click("#bulk-replay")
        expect(page.locator("#bulk-count strong")).to_have_text("3")  # the confirmation step
        assert list(outbox.iterdir()) == []  # nothing replayed before it is confirmed
        page.click("#confirm")
        expect(page.locator("#bulk-done")).to_contain_text("3")
        expect(page.locator("#deliveries .replay")).to_have_count(0)  # the originals stay dead, replayed once
        site.gateway.dispatcher.drain()  # the dispatcher's next round
        assert len(list(outbox.glob("*.json"))) == 3
        with site.gateway.sessions() as s:
            replays = list(s.scalars(select(Delivery).where(Delivery.replay_of_id.in_(dead))))
        assert sorted(d.replay_of_id or 0 for d in replays) == dead
        assert {d.status for d in replays} == {"done"}
        assert [a for a in _audit(site) if a[1] == "delivery.replay"] == [
            ("operator", "delivery.replay", str(i)) for i in sorted(dead, reverse=True)
        ]


def test_edit_and_resubmit_keeps_the_original_and_discard_needs_a_reason(page: Page, dashboard: Site) -> None:
    gw = dashboard.gateway
    bad = gw.accept(BAD_COUNT.read_bytes(), channel="drops", filename=BAD_COUNT.name).message_ids[0]
    login(page, dashboard, "operator")
    page.goto(f"{dashboard.url}/dashboard/messages/{bad}")
    expect(page.locator("#payload li.bad")).to_have_attribute("data-segment", "11")
    expect(page.locator("#payload li.bad .bad-element")).to_have_text("99")
    text = page.locator("#resubmit-form textarea").input_value()
    page.fill("#resubmit-form textarea", text.replace("UNT+99+M1", "UNT+10+M1"))
    page.click("#resubmit")
    expect(page.locator("#status")).to_have_text("完了")
    expect(page.locator("#resubmitted-from")).to_have_text(f"#{bad}")
    new = int(page.url.rsplit("/", 1)[1])
    with gw.sessions() as s:
        original, copy = s.get_one(Message, bad), s.get_one(Message, new)
        assert original.raw == BAD_COUNT.read_bytes() and original.status == "failed"
        assert copy.resubmitted_from_id == bad and b"UNT+10+M1" in copy.raw
        row = s.scalars(select(Audit).where(Audit.action == "message.resubmit")).one()
        assert row.detail["new_message"] == new
        assert row.detail["lines_added"] == 1 and row.detail["lines_removed"] == 1
        assert "+UNT+10+M1'" in row.detail["diff"]
    page.goto(f"{dashboard.url}/dashboard/messages/{bad}")
    expect(page.locator("#lineage .resubmission")).to_have_text(f"#{new}")

    # discard: the browser will not send the form without a reason; with one the message is discarded
    page.click("#discard")
    assert _status(dashboard, bad) == "failed"
    page.fill("#discard-form input[name=reason]", "corrected copy resubmitted")
    page.click("#discard")
    expect(page.locator("#status")).to_have_text("破棄")
    expect(page.locator("#steps")).to_contain_text("corrected copy resubmitted")
    expect(page.locator("#reprocess")).to_have_count(0)
    assert ("operator", "message.discard", str(bad)) in _audit(dashboard)


def test_bulk_discard_and_filters_search_and_reference(page: Page, dashboard: Site) -> None:
    """Filters by reference, payload and error code; a bulk discard acts on exactly the confirmed messages.
    Breaks if a filter loses rows, or a confirmation acts on rows that came to match after it was shown."""
    gw = dashboard.gateway
    done = gw.accept(COPARN_EXAMPLE.read_bytes(), channel="drops", filename="good.edi").message_ids[0]
    bad = gw.accept(BAD_COUNT.read_bytes(), channel="drops", filename="bad.edi").message_ids[0]
    login(page, dashboard, "operator")
    # B/L, booking or container number: through the events the message caused
    page.goto(f"{dashboard.url}/dashboard/messages?status=all&ref=CSQU3054383")
    expect(page.locator("#messages tbody tr")).not_to_have_count(0)
    ids = page.locator("#messages tbody tr").evaluate_all("rows => rows.map(r => Number(r.dataset.id))")
    assert done in ids and bad not in ids
    # a substring of the raw payload, within the newest messages of the filter
    page.goto(f"{dashboard.url}/dashboard/messages?status=all&q=TCLU4567897")
    expect(page.locator("#messages tbody tr")).to_have_count(1)
    expect(page.locator(f"#messages tr[data-id='{bad}']")).to_be_visible()
    expect(page.locator("#search-scope")).to_be_visible()
    page.goto(f"{dashboard.url}/dashboard/messages?error=EDI-29")
    expect(page.locator("#messages tbody tr")).to_have_count(1)
    page.fill("#bulk input[name=reason]", "test data")
    page.click("#bulk-discard")
    expect(page.locator("#bulk-count strong")).to_have_text("1")
    # a second failure with the same error arrives while the operator reads the confirmation: not discarded
    late_raw = BAD_COUNT.read_bytes().replace(b"+SMP0002'", b"+SMP0003'")
    late = gw.accept(late_raw, channel="drops", filename="late.edi").message_ids[0]
    assert _status(dashboard, late) == "failed"
    page.click("#confirm")
    expect(page.locator("#bulk-done")).to_contain_text("1")
    assert _status(dashboard, bad) == "discarded" and _status(dashboard, done) == "done"
    assert _status(dashboard, late) == "failed"  # only what was confirmed is acted on
    token = page.locator("form[action='/logout'] input[name=csrf_token]").get_attribute("value")
    form = {"csrf_token": token or "", "action": "discard", "reason": "x", "error": "EDI-29", "confirm": "yes"}
    page.request.post(f"{dashboard.url}/dashboard/messages/bulk", form=form)  # a confirmation naming no message
    assert _status(dashboard, late) == "failed"


def test_a_viewer_is_refused_every_action_and_sees_no_buttons(page: Page, dashboard: Site) -> None:
    gw = dashboard.gateway
    bad = gw.accept(BAD_COUNT.read_bytes(), channel="drops", filename=BAD_COUNT.name).message_ids[0]
    login(page, dashboard, "viewer")
    page.goto(f"{dashboard.url}/dashboard/messages")
    expect(page.locator(f"#messages tr[data-id='{bad}']")).to_be_visible()
    expect(page.locator("#bulk")).to_have_count(0)
    page.goto(f"{dashboard.url}/dashboard/messages/{bad}")
    expect(page.locator("#error")).to_contain_text("EDI-29")
    for button in ("#reprocess", "#discard", "#resubmit", "#actions"):
        expect(page.locator(button)).to_have_count(0)
    page.goto(f"{dashboard.url}/dashboard/deliveries")
    expect(page.locator("#bulk")).to_have_count(0)
    token = page.locator("form[action='/logout'] input[name=csrf_token]").get_attribute("value")
    assert token
    posts = {
        f"/dashboard/messages/{bad}/reprocess": {},
        f"/dashboard/messages/{bad}/discard": {"reason": "x"},
        f"/dashboard/messages/{bad}/resubmit": {"raw": "UNB+x'"},
        "/dashboard/messages/bulk": {"action": "reprocess", "confirm": "yes"},
        "/dashboard/deliveries/1/replay": {},
        "/dashboard/deliveries/bulk": {"action": "replay", "confirm": "yes"},
    }
    for path, form in posts.items():
        answer = page.request.post(dashboard.url + path, form={"csrf_token": token, **form}, max_redirects=0)
        assert answer.status == 403, path
    assert _status(dashboard, bad) == "failed"
    assert [a for a in _audit(dashboard) if a[1].startswith(("message.", "delivery."))] == []


def test_a_partner_user_sees_only_its_partners_messages(page: Page, dashboard: Site) -> None:
    """A partner user's list, search and detail hold only its partner's messages, and never the staff audit log.
    Breaks if a query forgets the partner filter or the detail shows audit rows to partners."""
    gw = dashboard.gateway
    own = gw.accept(BAD_COUNT.read_bytes(), channel="drops", filename=BAD_COUNT.name).message_ids[0]  # UNB ONEY
    other_raw = BAD_COUNT.read_bytes().replace(b"ONEY:ZZZ", b"MAEU:ZZZ")
    other = gw.accept(other_raw, channel="drops", filename="maersk.edi").message_ids[0]
    login(page, dashboard, "one-viewer")
    page.goto(f"{dashboard.url}/dashboard/messages")
    expect(page.locator(f"#messages tr[data-id='{own}']")).to_be_visible()
    expect(page.locator(f"#messages tr[data-id='{other}']")).to_have_count(0)
    expect(page.locator("select[name=partner]")).to_have_count(0)
    answer = page.goto(f"{dashboard.url}/dashboard/messages/{other}")
    assert answer is not None and answer.status == 404
    answer = page.goto(f"{dashboard.url}/dashboard/messages?partner=&status=all&q=MAEU")
    expect(page.locator("#messages tbody tr")).to_have_count(0)
    with gw.sessions.begin() as s:  # staff acted on the partner's own message: the audit stays staff-only
        audit.record(s, "operator", "message.discard", ("message", own), {"reason": "internal note"})
    page.goto(f"{dashboard.url}/dashboard/messages/{own}")
    expect(page.locator("#message-audit")).to_have_count(0)
    assert "internal note" not in page.content()


def test_screenshots_of_the_messages_list_and_a_message_detail(page: Page, dashboard: Site) -> None:
    gw = dashboard.gateway
    gw.accept(COPARN_EXAMPLE.read_bytes(), channel="drops", filename=COPARN_EXAMPLE.name)
    bad = gw.accept(BAD_COUNT.read_bytes(), channel="drops", filename=BAD_COUNT.name).message_ids[0]
    gw.dispatcher.drain()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    login(page, dashboard, "operator")
    page.goto(f"{dashboard.url}/dashboard/messages?status=all")
    expect(page.locator("#messages tbody tr")).not_to_have_count(0)
    _shoot(page, SCREENSHOTS / "messages.png")
    page.goto(f"{dashboard.url}/dashboard/messages/{bad}")
    expect(page.locator("#payload li.bad")).to_be_visible()
    _shoot(page, SCREENSHOTS / "message.png")


def _shoot(page: Page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
    assert re.match(r".+\.png$", path.name)
