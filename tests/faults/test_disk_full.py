"""A full disk under the folder channel's archive and failed folders, and under the folder sink's target.

The archive, failed and sink folders live on a 256 KB tmpfs filled to the last byte. Files dropped meanwhile
are stored and processed at once (the database is elsewhere); only the moves and the sink's writes fail. The
gateway is restarted once while the disk is still full, then the space is given back.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

from structlog.testing import capture_logs

from gateway import config as config_mod
from gateway.app import Gateway
from tests.acceptance.crashkit import wait_for
from tests.conftest import write_config
from tests.faults.kit import (
    OPERATOR,
    ROUTE,
    Dashboard,
    add_operator,
    assert_conpas_once,
    assert_received_once,
    containers_of,
    fill,
    open_deliveries,
    payload,
    running,
    statuses,
)

CHANNEL = "drops"
FILES = 4  # each announces three containers: 12 CONPAS deliveries, written once space returns
COPY_ROUTE = "conpas-copy"  # a second sink on the full disk whose policy gives up: dead deliveries, replayed


def test_a_full_archive_and_sink_disk_loses_nothing_and_does_nothing_twice(
    tmp_path: Path, database_url: str, tiny_disk: Path
) -> None:
    """Breaks if a file whose move failed is lost, left half-copied in the archive, stored again as an original
    or processed again (a second container.announced, a second delivery), if the channel stops polling, if the
    failure is not shown (channel down on /readyz and the overview, pending and dead deliveries with the disk
    error on /dashboard/deliveries), or if the archive and the sink do not catch up once space returns."""
    retry = {"initial_delay": "200ms", "multiplier": 1.5, "max_delay": "1s", "jitter": 0}
    config = write_config(
        tmp_path,
        database_url,
        channels={
            CHANNEL: {
                "type": "folder",
                "path": "inbox",
                "archive": str(tiny_disk / "archive"),
                "failed": str(tiny_disk / "failed"),
                "pattern": "*.edi",
                "poll": "100ms",
                "settle": 0,
            }
        },
        routes={
            ROUTE: {
                "on": "container.announced",
                "render": "conpas",
                "to": {"type": "folder", "path": str(tiny_disk / "conpas")},
                "retry": {"max_attempts": 200, **retry},
            },
            COPY_ROUTE: {
                "on": "container.announced",
                "render": "conpas",
                "to": {"type": "folder", "path": str(tiny_disk / "copy")},
                "retry": {"max_attempts": 2, **retry},
            },
        },
    )
    add_operator(config)
    for sub in ("archive", "failed", "conpas", "copy"):
        (tiny_disk / sub).mkdir()
    filler = fill(tiny_disk)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    sent = [payload(i) for i in range(FILES)]
    broken = b"UNA:+.? 'UNB+UNOA:2+ONEY:ZZZ+JPTYOCY1:ZZZ+261124:0930+BROKEN1'UNH+1+COPARN:D:95B:UN'"
    for i, raw in enumerate(sent):
        (inbox / f"coparn-{i}.edi").write_bytes(raw)
    (inbox / "broken.edi").write_bytes(broken)  # rejected: its move goes to the failed folder, also full
    names = sorted(p.name for p in inbox.iterdir())

    with capture_logs() as logs:
        gw = Gateway(config_mod.load(config))
        try:
            with running(gw) as url:
                ops = Dashboard(url)
                ops.login()
                wait_for(
                    lambda: statuses(database_url, CHANNEL) == {"done": FILES, "failed": 1},
                    60,
                    lambda: str(statuses(database_url, CHANNEL)),
                )
                wait_for(lambda: ops.shows({CHANNEL: "down"}), 10)
                code, ready = ops.readyz()
                assert (code, ready["channels"]) == (200, {CHANNEL: "down"})
                wait_for(lambda: "No space left on device" in ops.deliveries("pending"), 20)
                wait_for(lambda: ops.deliveries("dead").count("<tr data-id=") == FILES * 3, 30)
                assert "No space left on device" in ops.deliveries("dead")
                time.sleep(1)  # ten more polls while the disk stays full
                assert sorted(p.name for p in inbox.iterdir()) == names  # every file still there
                assert statuses(database_url, CHANNEL) == {"done": FILES, "failed": 1}  # and not stored again
                ops.close()
        finally:
            gw.close()
    not_moved = [e for e in logs if e["event"].startswith("file stored but not moved")]
    assert {e["file"] for e in not_moved} == set(names)
    assert all("No space left on device" in e["error"] for e in not_moved)
    assert not list((tiny_disk / "archive").iterdir()), "a partial copy was left in the archive"

    # a restart while the disk is still full: each file is stored once more, as a duplicate, and not processed
    gw = Gateway(config_mod.load(config))
    try:
        with running(gw) as url:
            ops = Dashboard(url)
            ops.login()
            wait_for(lambda: statuses(database_url, CHANNEL)["duplicate"] == FILES + 1, 30)
            time.sleep(1)
            assert statuses(database_url, CHANNEL) == {"done": FILES, "failed": 1, "duplicate": FILES + 1}
            assert ops.shows({CHANNEL: "down"})

            filler.unlink()  # space returns
            wait_for(lambda: not any(inbox.iterdir()), 30)
            wait_for(lambda: open_deliveries(database_url) == 0, 60)
            wait_for(lambda: ops.shows({CHANNEL: "up"}), 10)
            # the operator replays the dead copies from the dashboard; each is written once
            page = ops.deliveries("dead")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert token
            for delivery_id in re.findall(r'<tr data-id="(\d+)"', page):
                answer = ops.client.post(f"/dashboard/deliveries/{delivery_id}/replay", data={"csrf_token": token[1]})
                assert answer.status_code == 303, answer.text[:300]
            wait_for(lambda: len(list((tiny_disk / "copy").iterdir())) == FILES * 3, 30)
            wait_for(lambda: open_deliveries(database_url) == 0, 30)
            ops.close()
    finally:
        gw.close()

    assert statuses(database_url, CHANNEL) == {"done": FILES, "failed": 1, "duplicate": FILES + 1}
    assert_received_once(database_url, CHANNEL, [*sent, broken], outcomes={"done", "failed"})
    containers = {n for i in range(FILES) for n in containers_of(i)}
    assert_conpas_once(database_url, tiny_disk / "conpas", containers)
    copies = sorted(p.name.split("_")[0] for p in (tiny_disk / "copy").iterdir())
    assert copies == sorted(containers)  # one copy per container, by the replayed deliveries
    archived = {p.name.split("_", 1)[1]: p for p in (tiny_disk / "archive").iterdir()}
    failed = {p.name.split("_", 1)[1]: p for p in (tiny_disk / "failed").iterdir()}
    assert sorted(archived) == [n for n in names if n != "broken.edi"] and list(failed) == ["broken.edi"]
    for i, raw in enumerate(sent):  # whole files, never half a copy
        assert hashlib.sha256(archived[f"coparn-{i}.edi"].read_bytes()).digest() == hashlib.sha256(raw).digest()
    assert failed["broken.edi"].read_bytes() == broken
    assert OPERATOR  # logged in as the operator throughout
