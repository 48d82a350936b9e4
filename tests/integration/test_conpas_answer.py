"""CONPAS pre-matching answers: a real loopback HTTP peer answers each pre-notification, the gateway records it.

The answer is the body of the HTTP response (schemas/conpas-answer.schema.json). A valid one sets the container's
``conpas_result`` / ``conpas_terminal_check`` and writes ``conpas.answered``; an invalid one is recorded on the
event as problems and leaves the delivery done, because CONPAS has the pre-notification all the same.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.app import Gateway
from gateway.model import Container, Event
from tests.integration.sinks.support import coparn, deliveries, drive, gateway_to

Answer = Callable[[dict[str, Any]], bytes]  # the pre-notification received → the body answered with 200


class ConpasPeer:
    """A loopback HTTP server answering every pre-notification 200 with ``answer(document)``."""

    def __init__(self) -> None:
        self.answer: Answer = lambda doc: b""
        self.received: list[dict[str, Any]] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                document = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                peer.received.append(document)
                body = peer.answer(document)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/prenotice"


@pytest.fixture
def conpas_peer() -> Iterator[ConpasPeer]:
    peer = ConpasPeer()
    thread = threading.Thread(target=peer.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        peer.server.shutdown()
        peer.server.server_close()


@pytest.fixture
def gateway(conpas_peer: ConpasPeer, tmp_path: Path, database_url: str) -> Iterator[Gateway]:
    gw = gateway_to(tmp_path, database_url, {"type": "http", "url": conpas_peer.url})
    yield gw
    gw.close()


def answered(gw: Gateway) -> tuple[dict[str, tuple[int | None, int | None]], list[Event]]:
    """The containers' CONPAS columns by number, and the conpas.answered events."""
    with gw.sessions() as s:
        columns = {c.number: (c.conpas_result, c.conpas_terminal_check) for c in s.scalars(select(Container))}
        events = list(s.scalars(select(Event).where(Event.kind == "conpas.answered").order_by(Event.id)))
        s.expunge_all()
    return columns, events


def test_a_prematching_answer_is_recorded_on_the_container_and_the_timeline(
    gateway: Gateway, conpas_peer: ConpasPeer
) -> None:
    """Three pre-notifications, each answered with result 2 / terminal check 1 for its own container: every
    container gets both codes, and one conpas.answered per container on the deal with the codes, the message
    and the delivery. Breaks if the HTTP sink drops the response body, the dispatcher does not hand it to the
    conpas record_answer, or the answer is put on the wrong container."""
    conpas_peer.answer = lambda doc: json.dumps(
        {
            "pre_notification_id": doc["pre_notification_id"],
            "container_number": doc["container_number"],
            "prematching_result": 2,
            "terminal_check": 1,
            "message": "予約枠 10:00-11:00",
        },
        ensure_ascii=False,
    ).encode()
    gateway.accept(coparn(), channel="drops")
    drive(gateway)
    found = deliveries(gateway)
    assert [d.status for d, _ in found] == ["done"] * 3
    columns, events = answered(gateway)
    assert columns == {n: (2, 1) for n in ("CSQU3054383", "MSCU1234566", "TGHU8765436")}
    assert len(events) == 3
    by_delivery = {d.id: d for d, _ in found}
    for ev in events:
        d = by_delivery[ev.detail["delivery_id"]]
        assert (ev.container_id, ev.deal_id, ev.message_id) == (d.container_id, d.deal_id, d.message_id)
        assert ev.deal_id is not None
        assert ev.detail["prematching_result"] == 2 and ev.detail["terminal_check"] == 1
        assert ev.detail["message"] == "予約枠 10:00-11:00" and "problems" not in ev.detail
        assert ev.detail["route"] == "conpas-prenotice"


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (lambda doc: b"<html>OK</html>", "not usable JSON: FMT-9"),
        (lambda doc: b"[" * 100_000 + b"]" * 100_000, "not usable JSON: FMT-10"),  # would overflow json.loads
        (
            lambda doc: json.dumps(
                {"container_number": doc["container_number"], "prematching_result": 7, "terminal_check": 1}
            ).encode(),
            "$.prematching_result",
        ),
        (lambda doc: json.dumps({"container_number": doc["container_number"]}).encode(), "prematching_result"),
        (
            lambda doc: json.dumps(
                {"container_number": "MSCU1234566", "prematching_result": 0, "terminal_check": 0}
            ).encode(),
            "answers a pre-notification for CSQU3054383",
        ),
    ],
    ids=["not-json", "too-deep", "result-out-of-range", "result-missing", "other-container"],
)
def test_an_invalid_answer_leaves_the_delivery_done_and_records_the_problem(
    gateway: Gateway, conpas_peer: ConpasPeer, answer: Answer, problem: str
) -> None:
    """An answer that is not JSON (or hostile JSON, refused by the inbound JSON limits), out of range, incomplete
    or about another container: the delivery is done
    (one attempt, CONPAS has it), the container's columns stay empty, and conpas.answered carries the problem and
    what was answered. Breaks if a bad answer fails or retries the delivery (a resend CONPAS does not need), is
    written to the container, or is dropped without trace."""
    conpas_peer.answer = answer
    gateway.accept(coparn(1), channel="drops")
    drive(gateway)
    [(delivery, attempts)] = deliveries(gateway)
    assert (delivery.status, [a.outcome for a in attempts]) == ("done", ["ok"])
    assert len(conpas_peer.received) == 1
    columns, [event] = answered(gateway)
    assert columns["CSQU3054383"] == (None, None)
    assert event.container_id == delivery.container_id
    assert any(problem in p for p in event.detail["problems"]), event.detail
    assert "answer" in event.detail and "prematching_result" not in event.detail


def test_an_empty_answer_records_nothing(gateway: Gateway, conpas_peer: ConpasPeer) -> None:
    """A 200 without a body (a peer that answers later, or never): done, no event, columns empty. Breaks if an
    empty body is taken for an invalid answer."""
    gateway.accept(coparn(1), channel="drops")
    drive(gateway)
    [(delivery, _)] = deliveries(gateway)
    assert delivery.status == "done"
    columns, events = answered(gateway)
    assert events == [] and columns["CSQU3054383"] == (None, None)
