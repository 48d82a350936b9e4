"""The HTTP channel over a real socket: 202 after commit, API keys, body limit, idempotency, rate limit, metrics."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.model import Message
from gateway.web.server import Server, start_server
from tests.conftest import write_config

KEY_ONE, KEY_NYK, SCRAPER = "key-of-one", "key-of-nyk", "scraper-key"


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


PARTNERS = {
    "ONE": {"name": "ONE", "business_type": "ocean_carrier", "edifact_ids": ["ONEY"], "api_key_sha256": [sha(KEY_ONE)]},
    "NYK": {"name": "NYK", "business_type": "ocean_carrier", "edifact_ids": ["NYKS"], "api_key_sha256": [sha(KEY_NYK)]},
}


def serve(tmp_path: Path, database_url: str, **http_channel: Any) -> tuple[Gateway, Server]:
    http = {"enabled": True, "host": "127.0.0.1", "port": 0, **http_channel.pop("http", {})}
    channels = {"api": {"type": "http", **http_channel}}
    config = write_config(tmp_path, database_url, partners=PARTNERS, channels=channels, http=http)
    gw = Gateway(config_mod.load(config))
    return gw, start_server(gw, "127.0.0.1", 0)


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[tuple[Gateway, str]]:
    gw, server = serve(tmp_path, database_url, max_body=100_000, rate_limit="1000/minute")
    yield gw, f"http://127.0.0.1:{server.port}"
    server.stop()
    gw.close()


def stored(gw: Gateway) -> int:
    with gw.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(Message)) or 0)


ONE = {"Authorization": f"Bearer {KEY_ONE}", "Content-Type": "application/edifact"}


def test_a_post_is_stored_before_202_and_processed_afterwards(served: tuple[Gateway, str], coparn: bytes) -> None:
    """202 carries the id of a committed row; the worker processes it; GET shows the outcome. Breaks if the
    answer came before the commit, or the partner were not taken from the key."""
    gw, base = served
    answer = httpx.post(f"{base}/api/v1/messages", content=coparn, headers={**ONE, "X-Filename": "b.edi"})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "received" and answer.headers["location"] == f"/api/v1/messages/{body['id']}"
    with gw.sessions() as s:
        msg = s.get_one(Message, body["id"])
        assert (msg.status, msg.channel, msg.partner.code if msg.partner else None) == ("received", "api", "ONE")
        assert msg.raw == coparn and msg.filename == "b.edi" and msg.headers["content_type"] == "application/edifact"
    assert gw.work_waiting.is_set()  # the worker was woken
    assert gw.process_received() == 1
    status = httpx.get(f"{base}{answer.headers['location']}", headers=ONE).json()
    assert status["status"] == "done" and status["message_type"] == "COPARN"


def test_wrong_or_missing_key_is_refused_and_nothing_stored(served: tuple[Gateway, str], coparn: bytes) -> None:
    """A wrong API key gets 401 with a clear reason and stores nothing."""
    gw, base = served
    wrong = httpx.post(f"{base}/api/v1/messages", content=coparn, headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "unknown API key"
    assert httpx.post(f"{base}/api/v1/messages", content=coparn).status_code == 401
    assert stored(gw) == 0


def test_an_oversize_body_is_refused_declared_or_streamed(served: tuple[Gateway, str]) -> None:
    """413 whether Content-Length says so or a chunked body grows past max_body; nothing is stored."""
    gw, base = served
    big = b"x" * 100_001
    declared = httpx.post(f"{base}/api/v1/messages", content=big, headers=ONE)
    assert declared.status_code == 413 and "over the limit of 100000" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"y" * 10_000

    streamed = httpx.post(f"{base}/api/v1/messages", content=chunks(), headers=ONE)
    assert streamed.status_code == 413
    assert stored(gw) == 0


def test_idempotency_key_replays_and_conflicts(served: tuple[Gateway, str], coparn: bytes) -> None:
    """A retried request with its Idempotency-Key gets the first id back and stores nothing new; the same key
    with another body is a 422, not a silent overwrite."""
    gw, base = served
    headers = {**ONE, "Idempotency-Key": "send-0001"}
    first = httpx.post(f"{base}/api/v1/messages", content=coparn, headers=headers).json()
    again = httpx.post(f"{base}/api/v1/messages", content=coparn, headers=headers).json()
    assert again["id"] == first["id"] and again["replayed"] is True and first["replayed"] is False
    assert stored(gw) == 1
    other = httpx.post(f"{base}/api/v1/messages", content=coparn + b"\n", headers=headers)
    assert other.status_code == 422 and f"message {first['id']}" in other.json()["detail"]
    nyk = {"Authorization": f"Bearer {KEY_NYK}", "Idempotency-Key": "send-0001"}  # keys are per partner
    assert httpx.post(f"{base}/api/v1/messages", content=b"a,b\n1,2\n", headers=nyk).json()["id"] != first["id"]


def test_duplicates_by_bytes_and_by_interchange_reference(served: tuple[Gateway, str], coparn: bytes) -> None:
    """The same bytes, or the same interchange resent with a new UNB time, are recorded as duplicates."""
    _, base = served
    first = httpx.post(f"{base}/api/v1/messages", content=coparn, headers=ONE).json()
    same = httpx.post(f"{base}/api/v1/messages", content=coparn, headers=ONE).json()
    resent = httpx.post(f"{base}/api/v1/messages", content=coparn.replace(b"261124:0930", b"261124:1015"), headers=ONE)
    assert (same["status"], same["duplicate_of"], same["duplicate_reason"]) == ("duplicate", first["id"], "same bytes")
    assert resent.json()["duplicate_reason"] == "interchange reference"


def test_content_type_must_be_a_payload_type(served: tuple[Gateway, str], coparn: bytes) -> None:
    """415 for a form post or JSON: the body would not be a partner's payload."""
    _, base = served
    answer = httpx.post(f"{base}/api/v1/messages", data={"a": "b"}, headers={"X-API-Key": KEY_ONE})
    assert answer.status_code == 415


def test_rate_limit_per_partner(tmp_path: Path, database_url: str, coparn: bytes) -> None:
    """The fourth request in a minute under 3/minute is 429 with Retry-After; another partner is unaffected."""
    gw, server = serve(tmp_path, database_url, rate_limit="3/minute")
    base = f"http://127.0.0.1:{server.port}"
    try:
        codes = [
            httpx.post(f"{base}/api/v1/messages", content=coparn + b"\n" * i, headers=ONE).status_code for i in range(4)
        ]
        assert codes == [202, 202, 202, 429]
        limited = httpx.post(f"{base}/api/v1/messages", content=coparn, headers=ONE)
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        nyk = {"X-API-Key": KEY_NYK, "Content-Type": "text/csv"}
        assert httpx.post(f"{base}/api/v1/messages", content=b"a\n1\n", headers=nyk).status_code == 202
    finally:
        server.stop()
        gw.close()


def test_metrics_count_per_channel_and_need_a_key_when_one_is_set(
    tmp_path: Path, database_url: str, coparn: bytes
) -> None:
    """Prometheus text with received, duplicates, refused and lag per channel; with a scraper key configured,
    /metrics refuses a request without it."""
    gw, server = serve(tmp_path, database_url, http={"metrics_key_sha256": [sha(SCRAPER)]})
    base = f"http://127.0.0.1:{server.port}"
    try:
        httpx.post(f"{base}/api/v1/messages", content=coparn, headers=ONE)
        httpx.post(f"{base}/api/v1/messages", content=coparn, headers=ONE)
        httpx.post(f"{base}/api/v1/messages", content=coparn, headers={"X-API-Key": "wrong"})
        httpx.post(f"{base}/api/v1/messages", content=b"x" * 20_000_000, headers=ONE)
        assert httpx.get(f"{base}/metrics").status_code == 401
        text = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {SCRAPER}"}).text
        assert 'gateway_channel_received_total{channel="api"} 1.0' in text
        assert 'gateway_channel_duplicates_total{channel="api"} 1.0' in text
        assert 'gateway_channel_refused_total{channel="api",reason="size"} 1.0' in text
        lag = next(line for line in text.splitlines() if line.startswith('gateway_channel_lag_seconds{channel="api"}'))
        assert float(lag.split()[-1]) >= 0.0  # one payload waits for the worker
        assert 'gateway_channel_up{channel="api"}' in text
    finally:
        server.stop()
        gw.close()


def test_openapi_describes_the_post(served: tuple[Gateway, str]) -> None:
    """The OpenAPI document a partner's developer reads names the accepted content types and answers."""
    _, base = served
    post = httpx.get(f"{base}/openapi.json").json()["paths"]["/api/v1/messages"]["post"]
    assert {"application/edifact", "application/xml", "text/csv"} <= set(post["requestBody"]["content"])
    assert {"202", "401", "413", "429"} <= set(post["responses"])
