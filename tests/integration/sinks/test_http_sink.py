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


def test_retry_after_is_honoured_and_the_error_names_the_route(peer: Peer, tmp_path: Path, database_url: str) -> None:
    """429 with Retry-After: 2 while the policy would wait 100 ms: the next attempt is due no sooner than 2 s after
    the failed one, then the 200 settles it. The error names the route. Breaks if the dispatcher ignores
    SinkError.retry_after (the retry would come after 100 ms) or make_sink is not given the route's name."""
    peer.script = [(429, b"slow down", {"Retry-After": "2"})]
    gw = gateway_to(tmp_path, database_url, {"type": "http", "url": peer.url})
    try:
        gw.accept(coparn(1), channel="drops")
        gw.dispatcher.run_once()
        [(delivery, attempts)] = deliveries(gw)
        assert (delivery.status, [a.outcome for a in attempts]) == ("pending", ["retry"])
        assert attempts[0].finished_at is not None and delivery.next_attempt_at is not None
        assert (delivery.next_attempt_at - attempts[0].finished_at).total_seconds() >= 1.95
        assert attempts[0].error is not None
        assert attempts[0].error["text"].startswith("route conpas-prenotice: POST http://127.0.0.1:")
        drive(gw)
        [(delivery, attempts)] = deliveries(gw)
        assert (delivery.status, [a.outcome for a in attempts]) == ("done", ["retry", "ok"])
        assert gaps(attempts)[0] >= 1.95
    finally:
        gw.close()


def test_retry_after_past_max_elapsed_is_dead(peer: Peer, tmp_path: Path, database_url: str) -> None:
    """429 with Retry-After: 120 under max_elapsed 10 s: waiting as asked would go past the policy, so the
    delivery is dead at once, saying why. Breaks if a Retry-After may stretch a delivery past max_elapsed."""
    peer.script = [(429, b"come back later", {"Retry-After": "120"})]
    gw = gateway_to(tmp_path, database_url, {"type": "http", "url": peer.url}, max_elapsed="10s")
    try:
        gw.accept(coparn(1), channel="drops")
        drive(gw)
        [(delivery, attempts)] = deliveries(gw)
        assert (delivery.status, [a.outcome for a in attempts]) == ("dead", ["dead"])
        assert attempts[0].error is not None and "past max_elapsed" in attempts[0].error["text"]
    finally:
        gw.close()


def test_content_type_is_the_rendered_messages_unless_the_route_sets_one(
    peer: Peer, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A NACCS message goes out as application/x-naccs-edi with its charset (what the renderer stored), a CONPAS
    one as application/json; a route's own content_type wins. Breaks if the sink sends its config default for
    every payload (a NACCS message labelled JSON) or the route's override is ignored."""
    from gateway import config as config_mod
    from gateway.app import Gateway
    from gateway.model import Message
    from tests.conftest import write_config
    from tests.integration.test_naccs_routes import PASSWORD_ENV, emit, make_deal, naccs_route

    monkeypatch.setenv(PASSWORD_ENV, "pw")
    routes = {
        "naccs-ecr": {**naccs_route("ECR", "shipment.updated"), "to": {"type": "http", "url": peer.url}},
        "conpas-prenotice": {"on": "container.announced", "render": "conpas", "to": {"type": "http", "url": peer.url}},
        "conpas-copy": {
            "on": "container.announced",
            "render": "conpas",
            "to": {"type": "http", "url": peer.url, "content_type": "application/vnd.example+json"},
        },
    }
    gw = Gateway(config_mod.load(write_config(tmp_path, database_url, routes=routes)))
    try:
        deal_id = make_deal(gw)
        emit(gw, "shipment.updated", deal_id)
        emit(gw, "container.announced", deal_id, container="MSCU1234566")
        drive(gw)
        found = deliveries(gw)
        assert sorted(d.status for d, _ in found) == ["done"] * 3, [d.last_error for d, _ in found]
        with gw.sessions() as s:
            stored = {d.idempotency_key: (d.route, s.get_one(Message, d.message_id).headers) for d, _ in found}
        sent = {stored[r.headers["Idempotency-Key"]][0]: r.headers["Content-Type"] for r in peer.received}
        naccs_type = stored[next(k for k, (route, _) in stored.items() if route == "naccs-ecr")][1]["content_type"]
        assert naccs_type.startswith("application/x-naccs-edi; charset=")
        assert sent == {
            "naccs-ecr": naccs_type,
            "conpas-prenotice": "application/json",
            "conpas-copy": "application/vnd.example+json",
        }
    finally:
        gw.close()
