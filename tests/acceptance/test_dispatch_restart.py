"""A restart in the middle of a backoff resumes it: the retry schedule lives in the database, not in the process.

A real ``gateway run`` sends to a folder sink whose target is a file (every send fails with an OSError, a
retryable failure), is SIGKILLed once the first attempts are settled, and a new process is started after the
target is fixed. It must not send before each delivery's ``next_attempt_at``, must send after it, and the
attempts go on from 1 to 2.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from gateway.model import Delivery, DeliveryAttempt, utcnow
from gateway.store import db
from tests.acceptance.crashkit import GatewayProcess, wait_for
from tests.conftest import COPARN_EXAMPLE, write_config

DELAY = 8  # seconds after the first failed attempt: time enough to kill and restart the gateway


def _deliveries(database_url: str) -> list[tuple[int, str, int, datetime]]:
    engine = db.make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(Delivery.id, Delivery.status, Delivery.attempts, Delivery.next_attempt_at).order_by(Delivery.id)
            )
            return [(r[0], r[1], r[2], r[3]) for r in rows]
    finally:
        engine.dispose()


def _attempts(database_url: str) -> list[tuple[int, int, str, datetime]]:
    engine = db.make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    DeliveryAttempt.delivery_id,
                    DeliveryAttempt.number,
                    DeliveryAttempt.outcome,
                    DeliveryAttempt.started_at,
                ).order_by(DeliveryAttempt.delivery_id, DeliveryAttempt.number)
            )
            return [(r[0], r[1], r[2], r[3]) for r in rows]
    finally:
        engine.dispose()


def test_a_restart_during_a_backoff_resumes_the_schedule(tmp_path: Path, database_url: str) -> None:
    route = {
        "on": "container.announced",
        "render": "conpas",
        "to": {"type": "folder", "path": "outbox/conpas"},
        "retry": {"max_attempts": 5, "initial_delay": f"{DELAY}s", "multiplier": 1, "jitter": 0},
    }
    config = write_config(tmp_path, database_url, routes={"conpas-prenotice": route})
    target = tmp_path / "outbox" / "conpas"
    target.parent.mkdir()
    target.write_text("a file where the folder should be")
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / COPARN_EXAMPLE.name).write_bytes(COPARN_EXAMPLE.read_bytes())

    gateway = GatewayProcess(config, "--no-http")
    try:
        gateway.start()
        wait_for(
            lambda: (
                (rows := _deliveries(database_url)) and len(rows) == 3 and {r[1:3] for r in rows} == {("pending", 1)}
            ),
            30,
            gateway.describe,
        )
        gateway.kill()
        failed = _deliveries(database_url)
        due = {r[0]: r[3] for r in failed}
        assert all(when > utcnow() for when in due.values()), "the backoff was over before the kill"

        target.unlink()  # the target is fixed while the gateway is down
        gateway.start()
        assert utcnow() < min(due.values()), "the restart took longer than the backoff; nothing was tested"
        while utcnow() < min(due.values()):
            assert not target.exists() or not list(target.glob("*.json")), "sent before next_attempt_at"
            assert {r[2] for r in _deliveries(database_url)} == {1}
            time.sleep(0.1)

        wait_for(lambda: len(list(target.glob("*.json"))) == 3, DELAY + 30, gateway.describe)
        wait_for(lambda: {r[1:3] for r in _deliveries(database_url)} == {("done", 2)}, 30, gateway.describe)
    finally:
        gateway.stop()

    attempts = _attempts(database_url)
    assert [(a[1], a[2]) for a in attempts] == [(1, "retry"), (2, "ok")] * 3  # numbering goes on after the restart
    for delivery_id, number, _, started in attempts:
        if number == 2:
            assert started >= due[delivery_id]  # not before the time written before the kill
