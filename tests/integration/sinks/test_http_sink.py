"""HTTP sink against a real HTTP(S) server on a loopback socket: what arrives, retries, dead letters, TLS."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gateway.config import HttpSink
from gateway.outbound.sinks import SinkError
from gateway.outbound.sinks.http import HttpSinkSender
from tests.integration.sinks.support import coparn, deliveries, drive, gaps, gateway_to, self_signed


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Peer:
    """A loopback HTTP server answering each request with the next scripted (status, body, headers), then 200."""

    script: list[tuple[int, bytes, dict[str, str]]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/prenotice"


def _serve(peer: Peer, context: ssl.SSLContext | None = None) -> Iterator[Peer]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            peer.received.append(Received(self.command, self.path, dict(self.headers.items()), body))
            status, answer, headers = peer.script.pop(0) if peer.script else (200, b'{"result": 0}', {})
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_PUT = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    peer.server, peer.port = server, server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def peer() -> Iterator[Peer]:
    yield from _serve(Peer())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_payload_content_type_and_idempotency_key_arrive(
    peer: Peer, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One POST per container with the stored payload as body, the configured Content-Type, the delivery's key as
    Idempotency-Key and the token from the environment. Breaks if the body is re-rendered or altered, the key is
    missing or not the delivery's, or headers_env is not read."""
    monkeypatch.setenv("GW_TEST_CONPAS_TOKEN", "Bearer s3cret")
    to = {"type": "http", "url": peer.url, "headers_env": {"Authorization": "GW_TEST_CONPAS_TOKEN"}}
    gw = gateway_to(tmp_path, database_url, to)
    try:
        gw.accept(coparn(), channel="drops")
        drive(gw)
        found = deliveries(gw)
        assert [d.status for d, _ in found] == ["done"] * 3
        with gw.sessions() as s:
            from gateway.model import Message

            raws = {d.idempotency_key: s.get_one(Message, d.message_id).raw for d, _ in found}
        assert len(peer.received) == 3
        for r in peer.received:
            assert (r.method, r.path) == ("POST", "/prenotice")
            assert r.headers["Content-Type"] == "application/json"
            assert r.headers["Authorization"] == "Bearer s3cret"
            assert raws[r.headers["Idempotency-Key"]] == r.body
    finally:
        gw.close()


def test_a_flaky_peer_failing_the_first_attempts_gets_it_on_the_fourth(
    peer: Peer, tmp_path: Path, database_url: str
) -> None:
    """503, 503, 503, then 200: four attempts with the same key and bytes, delays 100, 200, 400 ms (initial 100 ms,
    x2, jitter 0) between them, three `retry` rows with the peer's answer in the error, then `ok` and `done`.
    Breaks if 5xx is taken as permanent, the backoff is not the policy's, a retry changes key or bytes, or an
    attempt goes unrecorded."""
    peer.script = [(503, b"maintenance until 10:00", {})] * 3
    gw = gateway_to(tmp_path, database_url, {"type": "http", "url": peer.url}, max_attempts=5)
    try:
        gw.accept(coparn(1), channel="drops")
        drive(gw)
        [(delivery, attempts)] = deliveries(gw)
        assert delivery.status == "done" and delivery.attempts == 4
        assert [a.outcome for a in attempts] == ["retry", "retry", "retry", "ok"]
        for a in attempts[:3]:
            assert a.error is not None and a.error["code"] == "OUT-2"
            assert "503" in a.error["text"] and "maintenance until 10:00" in a.error["text"]
        for gap, expected in zip(gaps(attempts), [0.1, 0.2, 0.4], strict=True):
            assert expected - 0.05 <= gap <= expected + 0.3, (gap, expected)
        assert len(peer.received) == 4
        assert {r.headers["Idempotency-Key"] for r in peer.received} == {delivery.idempotency_key}
        assert len({r.body for r in peer.received}) == 1
    finally:
        gw.close()


def test_a_peer_down_longer_than_the_policy_goes_dead_after_every_attempt(tmp_path: Path, database_url: str) -> None:
    """Nothing listens on the port: connection refused each time, 3 attempts (max_attempts 3) 100 and 200 ms
    apart, then `dead` keeping the error; the payload stays stored. Breaks if a network error is permanent, the
    policy's limit is not kept, or the dead delivery loses its attempts."""
    url = f"http://127.0.0.1:{_free_port()}/prenotice"
    gw = gateway_to(tmp_path, database_url, {"type": "http", "url": url, "connect_timeout": "2s"})
    try:
        gw.accept(coparn(1), channel="drops")
        drive(gw)
        [(delivery, attempts)] = deliveries(gw)
        assert (delivery.status, delivery.attempts) == ("dead", 3)
        assert [a.outcome for a in attempts] == ["retry", "retry", "dead"]
        assert all(a.error and "ConnectError" in a.error["text"] for a in attempts)
        for gap, expected in zip(gaps(attempts), [0.1, 0.2], strict=True):
            assert expected - 0.05 <= gap <= expected + 0.3, (gap, expected)
        assert delivery.message_id is not None and delivery.last_error == attempts[-1].error
    finally:
        gw.close()


def test_a_peer_answering_503_past_max_elapsed_goes_dead(peer: Peer, tmp_path: Path, database_url: str) -> None:
    """Always 503, max_attempts 10 but max_elapsed 500 ms: attempts at 0, 0.1, 0.3 s, the next would start after
    0.7 s, so the third is the last (dead). Breaks if max_elapsed is ignored."""
    peer.script = [(503, b"down", {})] * 20
    gw = gateway_to(tmp_path, database_url, {"type": "http", "url": peer.url}, max_attempts=10, max_elapsed="500ms")
    try:
        gw.accept(coparn(1), channel="drops")
        drive(gw)
        [(delivery, attempts)] = deliveries(gw)
        assert (delivery.status, [a.outcome for a in attempts]) == ("dead", ["retry", "retry", "dead"])
        assert len(peer.received) == 3
    finally:
        gw.close()


def test_400_is_dead_at_once_with_the_answer_kept(peer: Peer, tmp_path: Path, database_url: str) -> None:
    """A 400 is the peer refusing the content: no retry, one attempt, dead; the error keeps the first 2 KB of the
    body. Breaks if 4xx is retried or the body is dropped or kept whole."""
    reason = b'{"error": "container_number invalid"}' + b"x" * 5000
    peer.script = [(400, reason, {})]
    gw = gateway_to(tmp_path, database_url, {"type": "http", "url": peer.url})
    try:
        gw.accept(coparn(1), channel="drops")
        drive(gw)
        [(delivery, attempts)] = deliveries(gw)
        assert (delivery.status, [a.outcome for a in attempts]) == ("dead", ["dead"])
        assert attempts[0].error is not None
        text = attempts[0].error["text"]
        assert "400" in text and "container_number invalid" in text
        assert 2048 <= len(text) < 2300
        assert len(peer.received) == 1
    finally:
        gw.close()


def test_429_is_retryable_and_passes_retry_after_on_secrets_stay_out(
    peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """429 with Retry-After: 7 is retryable and says 7 s; 404 is permanent; the token from headers_env is not in
    any error text. Breaks if 429 is permanent, Retry-After is lost, or a secret leaks into the error."""
    monkeypatch.setenv("GW_TEST_TOKEN", "Bearer topsecret")
    peer.script = [(429, b"slow down", {"Retry-After": "7"}), (404, b"no such path", {})]
    sink = HttpSinkSender(
        HttpSink(type="http", url=peer.url, headers_env={"Authorization": "GW_TEST_TOKEN"}, method="PUT")
    )
    with pytest.raises(SinkError) as first:
        sink.send(b"{}", name="x.json", idempotency_key="k1")
    assert first.value.retryable and first.value.retry_after == 7.0
    with pytest.raises(SinkError) as second:
        sink.send(b"{}", name="x.json", idempotency_key="k1")
    assert not second.value.retryable and "404" in str(second.value)
    assert all("topsecret" not in str(e.value) for e in (first, second))
    assert [r.method for r in peer.received] == ["PUT", "PUT"]
    monkeypatch.delenv("GW_TEST_TOKEN")
    with pytest.raises(SinkError) as unset:
        sink.send(b"{}", name="x.json", idempotency_key="k1")
    assert not unset.value.retryable and "GW_TEST_TOKEN" in str(unset.value)
    assert len(peer.received) == 2  # nothing sent without the header


def test_tls_is_verified_a_self_signed_peer_needs_ca_file(tmp_path: Path) -> None:
    """An HTTPS peer with a self-signed certificate is refused (nothing reaches it) without ca_file, and accepted
    with its certificate as ca_file. Breaks if verification is off or ca_file is ignored."""
    cert_file, key_file = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    for peer in _serve(Peer(), context):
        url = f"https://127.0.0.1:{peer.port}/prenotice"
        with pytest.raises(SinkError) as refused:
            HttpSinkSender(HttpSink(type="http", url=url)).send(b"{}", name="a.json", idempotency_key="k1")
        assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)
        assert peer.received == []
        HttpSinkSender(HttpSink(type="http", url=url, ca_file=cert_file)).send(
            b'{"ok": 1}', name="a.json", idempotency_key="k2"
        )
        assert [(r.body, r.headers["Idempotency-Key"]) for r in peer.received] == [(b'{"ok": 1}', "k2")]
