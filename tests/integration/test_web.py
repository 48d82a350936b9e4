"""The HTTP API over a real socket: health, readiness, and API keys that show a partner only its messages."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.web.server import Server, start_server
from tests.conftest import write_config

KEY_ONE, KEY_NYK = "key-of-one", "key-of-nyk"


@pytest.fixture
def served(tmp_path, database_url) -> Iterator[tuple[Gateway, str]]:  # type: ignore[no-untyped-def]
    partners = {
        "ONE": {
            "name": "ONE",
            "business_type": "ocean_carrier",
            "edifact_ids": ["ONEY"],
            "api_key_sha256": [hashlib.sha256(KEY_ONE.encode()).hexdigest()],
        },
        "NYK": {
            "name": "NYK",
            "business_type": "ocean_carrier",
            "edifact_ids": ["NYKS"],
            "api_key_sha256": [hashlib.sha256(KEY_NYK.encode()).hexdigest()],
        },
    }
    gw = Gateway(config_mod.load(write_config(tmp_path, database_url, partners=partners)))
    server: Server = start_server(gw, "127.0.0.1", 0)
    yield gw, f"http://127.0.0.1:{server.port}"
    server.stop()
    gw.close()


def test_health_and_readiness(served: tuple[Gateway, str]) -> None:
    _, base = served
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{base}/readyz").json() == {"status": "ready", "channels": {"drops": "down"}}  # not polling


def test_api_requires_a_known_key(served: tuple[Gateway, str]) -> None:
    _, base = served
    assert httpx.get(f"{base}/api/v1/messages").status_code == 401
    assert httpx.get(f"{base}/api/v1/messages", headers={"X-API-Key": "wrong"}).status_code == 401


def test_a_partner_sees_only_its_own_messages(served: tuple[Gateway, str], coparn: bytes) -> None:
    gw, base = served
    mine = gw.accept(coparn, channel="drops").message_ids[0]  # UNB sender ONEY → partner ONE
    theirs = gw.accept(coparn.replace(b"ONEY:ZZZ", b"NYKS:ZZZ"), channel="drops").message_ids[0]
    one = {"Authorization": f"Bearer {KEY_ONE}"}
    listed = httpx.get(f"{base}/api/v1/messages", headers=one).json()
    assert [m["id"] for m in listed] == [mine] and listed[0]["status"] == "done"
    assert httpx.get(f"{base}/api/v1/messages/{mine}", headers=one).json()["messages"] == 2
    assert httpx.get(f"{base}/api/v1/messages/{theirs}", headers=one).status_code == 404
    assert httpx.get(f"{base}/api/v1/messages/{theirs}", headers={"X-API-Key": KEY_NYK}).status_code == 200


def test_a_partner_removed_from_routes_yaml_loses_api_access(tmp_path, database_url) -> None:  # type: ignore[no-untyped-def]
    partners = {
        "ONE": {
            "name": "ONE",
            "business_type": "ocean_carrier",
            "api_key_sha256": [hashlib.sha256(KEY_ONE.encode()).hexdigest()],
        }
    }
    Gateway(config_mod.load(write_config(tmp_path, database_url, partners=partners))).close()
    gw = Gateway(config_mod.load(write_config(tmp_path, database_url, partners={})))
    server = start_server(gw, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.port}/api/v1/messages"
        assert httpx.get(url, headers={"X-API-Key": KEY_ONE}).status_code == 401
    finally:
        server.stop()
        gw.close()
