"""HTTP channel under SIGKILL: 1,000 POSTs, the gateway killed in the middle and restarted, every payload stored
exactly once. A client resends whatever did not get its 202 (with the same Idempotency-Key, as a client
should); a 202 means committed, so nothing answered 202 may be missing after the kill."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.acceptance.crashkit import (
    COUNT,
    GatewayProcess,
    assert_stored_once,
    free_port,
    originals,
    payloads,
    wait_for,
)
from tests.conftest import write_config

KEY = "crash-test-key"


def test_sigkill_mid_run_loses_nothing_and_stores_nothing_twice(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    partners = {
        "ONE": {
            "name": "ONE",
            "business_type": "ocean_carrier",
            "edifact_ids": ["ONEY"],
            "api_key_sha256": [hashlib.sha256(KEY.encode()).hexdigest()],
        }
    }
    config = write_config(
        tmp_path,
        database_url,
        partners=partners,
        http={"enabled": True, "host": "127.0.0.1", "port": port},
        channels={"api": {"type": "http", "rate_limit": "100000/minute"}},
        routes={},
    )
    sent = payloads(COUNT)
    acknowledged: dict[int, int] = {}  # payload index → message id from a 202
    lock = threading.Lock()
    base = f"http://127.0.0.1:{port}"

    def post(client: httpx.Client, i: int) -> None:
        headers = {"X-API-Key": KEY, "Content-Type": "application/edifact", "Idempotency-Key": f"crash-{i}"}
        try:
            answer = client.post(f"{base}/api/v1/messages", content=sent[i], headers=headers, timeout=10)
        except httpx.HTTPError:
            return  # the gateway died under the request: no 202, so the client must send again
        if answer.status_code == 202:
            with lock:
                acknowledged[i] = answer.json()["id"]

    def send_all(indexes: list[int]) -> None:
        with httpx.Client() as client, ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: post(client, i), indexes))

    gateway = GatewayProcess(config)
    gateway.start()
    try:
        sender = threading.Thread(target=send_all, args=(list(range(COUNT)),))
        sender.start()
        wait_for(lambda: len(acknowledged) >= COUNT // 3, 120, gateway.describe)
        gateway.kill()
        sender.join(timeout=120)
        before_restart = dict(acknowledged)
        assert len(before_restart) < COUNT, "the kill came too late to test anything"
        # nothing answered 202 is lost: it is in the database although the process died right after
        stored_now = originals(database_url, "api")
        assert {hashlib.sha256(sent[i]).hexdigest() for i in before_restart} <= set(stored_now)

        gateway.start()
        missing = [i for i in range(COUNT) if i not in acknowledged]
        send_all(missing + list(before_restart)[:20])  # resend, and retry 20 answered ones: replays, not copies
        assert len(acknowledged) == COUNT
        assert all(acknowledged[i] == before_restart[i] for i in before_restart)  # a replay returns the same id
        wait_for(lambda: _processed(database_url), 180, gateway.describe)
    finally:
        gateway.stop()
    assert_stored_once(database_url, "api", sent)


def _processed(database_url: str) -> bool:
    from tests.acceptance.crashkit import unprocessed

    return unprocessed(database_url, "api") == 0 and sum(originals(database_url, "api").values()) == COUNT
