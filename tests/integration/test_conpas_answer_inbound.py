"""CONPAS pre-matching answers that come as messages of their own (a callback, a dropped file), not as the HTTP
answer to the pre-notification: JSON with ``"type": "conpas.prematching_answer"``, one object or a list.

They arrive through any channel; here the HTTP channel over a real socket (``POST /api/v1/messages``,
``application/json``) and a drop folder. A valid answer is recorded on its container exactly as the HTTP answer
path records it (``conpas.apply_answer``): the container's CONPAS columns and ``conpas.answered``, naming the
inbound message. An invalid answer, an unknown container or hostile JSON fails the message with a coded,
positioned error and keeps the raw bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.channels.folder import FolderPoller
from gateway.formats import json as jsonformat
from gateway.formats import sniff
from gateway.model import Container, Delivery, Event, Message
from gateway.web.server import Server, start_server
from tests.conftest import write_config

KEY = "key-of-one"
PARTNERS = {
    "ONE": {
        "name": "ONE",
        "business_type": "ocean_carrier",
        "edifact_ids": ["ONEY"],
        "api_key_sha256": [hashlib.sha256(KEY.encode()).hexdigest()],
    }
}
JSON_POST = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
NUMBERS = ("CSQU3054383", "MSCU1234566", "TGHU8765436")  # the COPARN sample's containers


def answer(number: str, result: int = 2, check: int | None = 1, **extra: Any) -> dict[str, Any]:
    return {
        "type": "conpas.prematching_answer",
        "container_number": number,
        "prematching_result": result,
        "terminal_check": check,
        **extra,
    }


@pytest.fixture
def served(tmp_path: Path, database_url: str, coparn: bytes) -> Iterator[tuple[Gateway, str]]:
    """A gateway with the HTTP channel on a loopback port and an ``answers`` drop folder (``*.json``), after the
    COPARN sample announced its three containers."""
    channels = {
        "api": {"type": "http", "max_body": 2_000_000, "rate_limit": "1000/minute"},
        "drops": {"type": "folder", "path": "inbox", "archive": "archive", "failed": "failed", "pattern": "*.edi"},
        "answers": {
            "type": "folder",
            "path": "answers",
            "archive": "answers-archive",
            "failed": "answers-failed",
            "pattern": "*.json",
            "settle": 0,
        },
    }
    http = {"enabled": True, "host": "127.0.0.1", "port": 0}
    gw = Gateway(config_mod.load(write_config(tmp_path, database_url, partners=PARTNERS, channels=channels, http=http)))
    server: Server = start_server(gw, "127.0.0.1", 0)
    assert gw.accept(coparn, channel="drops").status == "accepted"
    (tmp_path / "answers").mkdir()
    yield gw, f"http://127.0.0.1:{server.port}"
    server.stop()
    gw.close()


def columns(gw: Gateway) -> dict[str, tuple[int | None, int | None]]:
    with gw.sessions() as s:
        return {c.number: (c.conpas_result, c.conpas_terminal_check) for c in s.scalars(select(Container))}


def answered(gw: Gateway) -> list[Event]:
    with gw.sessions() as s:
        events = list(s.scalars(select(Event).where(Event.kind == "conpas.answered").order_by(Event.id)))
        s.expunge_all()
    return events


def message(gw: Gateway, message_id: int) -> Message:
    with gw.sessions() as s:
        msg = s.get_one(Message, message_id)
        s.expunge(msg)
    return msg


def drop(gw: Gateway, tmp_path: Path, name: str, body: bytes) -> Message:
    """Write ``body`` into the answers folder, poll it once, and return the message it made."""
    (tmp_path / "answers" / name).write_bytes(body)
    poller = next(c for c in gw.channels if isinstance(c, FolderPoller) and c.name == "answers")
    assert poller.poll_once() == 1
    with gw.sessions() as s:
        msg = s.scalars(select(Message).where(Message.filename == name)).one()
        s.expunge(msg)
    return msg


def test_answers_posted_over_http_are_recorded_on_their_containers_and_the_timeline(
    served: tuple[Gateway, str],
) -> None:
    """A list of two answers POSTed as application/json over a real socket: 202, the worker processes it (format
    json, type CONPAS-ANSWER, two documents), both containers get their codes and each a conpas.answered naming
    the inbound message, its container and deal, the codes and the answer; an answer echoing its pre-notification
    id also names the delivery and route. Breaks if application/json is refused (415), sniff takes the JSON for
    CSV (it has commas), the pipeline has no JSON parser or records elsewhere than the HTTP answer path does."""
    gw, base = served
    with gw.sessions() as s:
        delivery = s.scalars(select(Delivery).join(Container).where(Container.number == NUMBERS[0])).one()
        key, delivery_id = delivery.idempotency_key, delivery.id
    body = json.dumps(
        [answer(NUMBERS[0], 2, 1, pre_notification_id=key, message="予約枠 10:00-11:00"), answer(NUMBERS[1], 0, None)],
        ensure_ascii=False,
    ).encode()
    posted = httpx.post(f"{base}/api/v1/messages", content=body, headers=JSON_POST)
    assert posted.status_code == 202, posted.text
    message_id = posted.json()["id"]
    assert gw.process_received() == 1
    status = httpx.get(f"{base}/api/v1/messages/{message_id}", headers=JSON_POST).json()
    assert (status["status"], status["format"], status["message_type"]) == ("done", "json", "CONPAS-ANSWER")
    assert message(gw, message_id).message_count == 2
    assert columns(gw) == {NUMBERS[0]: (2, 1), NUMBERS[1]: (0, None), NUMBERS[2]: (None, None)}
    first, second = answered(gw)
    with gw.sessions() as s:
        containers = {c.id: c for c in s.scalars(select(Container))}
        s.expunge_all()
    for event, number in ((first, NUMBERS[0]), (second, NUMBERS[1])):
        assert event.message_id == message_id
        assert containers[event.container_id or 0].number == number
        assert event.deal_id == containers[event.container_id or 0].deal_id is not None
        assert event.detail["answer"]["container_number"] == number and "problems" not in event.detail
    assert first.detail["prematching_result"] == 2 and first.detail["terminal_check"] == 1
    assert first.detail["message"] == "予約枠 10:00-11:00"
    assert (first.detail["delivery_id"], first.detail["route"]) == (delivery_id, "conpas-prenotice")
    assert second.detail["prematching_result"] == 0 and second.detail["terminal_check"] is None
    assert "delivery_id" not in second.detail


def test_an_answer_dropped_in_a_folder_is_recorded_and_archived(served: tuple[Gateway, str], tmp_path: Path) -> None:
    """One answer object (with a BOM and leading whitespace) dropped as a file: done, archived, the container's
    columns set and conpas.answered naming the file's message. Breaks if sniff misses JSON after a BOM, or the
    folder channel's answers are recorded differently from HTTP's."""
    gw, _ = served
    body = b"\xef\xbb\xbf\n  " + json.dumps(answer(NUMBERS[2], 3, 2)).encode()
    msg = drop(gw, tmp_path, "answer-1.json", body)
    assert (msg.status, msg.format, msg.message_type, msg.message_count) == ("done", "json", "CONPAS-ANSWER", 1)
    assert [p.name for p in (tmp_path / "answers-archive").iterdir()] == [f"{msg.id}_answer-1.json"]
    assert columns(gw)[NUMBERS[2]] == (3, 2)
    [event] = answered(gw)
    assert event.message_id == msg.id and event.detail["terminal_check"] == 2


@pytest.mark.parametrize(
    ("body", "code", "step", "path", "text"),
    [
        (
            [answer(NUMBERS[0]), answer(NUMBERS[1], result=7)],
            "FMT-12",
            "validate",
            "$[1].prematching_result",
            "7 is greater than the maximum of 3",
        ),
        (
            {k: v for k, v in answer(NUMBERS[0]).items() if k != "terminal_check"},
            "FMT-12",
            "validate",
            "$",
            "'terminal_check' is a required property",
        ),
        ([answer(NUMBERS[0]), answer("ABCU1234560")], "PER-3", "persist", "$[1].container_number", "ABCU1234560"),
        ({"type": "booking", "number": "X"}, "FMT-11", "parse", "$", "no handler for this JSON document"),
        ([answer(NUMBERS[0]), {"prematching_result": 1}], "FMT-11", "parse", "$[1]", "no handler"),
        ([], "FMT-11", "parse", None, "no handler for this JSON document (an empty list)"),
    ],
    ids=["result-out-of-range", "check-missing", "unknown-container", "other-document", "untyped-item", "empty"],
)
def test_an_invalid_answer_fails_the_message_with_a_positioned_error(
    served: tuple[Gateway, str], tmp_path: Path, body: Any, code: str, step: str, path: str | None, text: str
) -> None:
    """An answer out of range or incomplete (FMT-12 at its JSON path in the payload), naming a container the
    store does not know (PER-3), or JSON that is no answer (FMT-11): the message fails with code, step and
    position, the file goes to failed/ with its bytes unchanged, and nothing is recorded, not even the valid
    answers of the same list. Breaks if an invalid answer is written to a container, a list is recorded in
    part, the error has no position, or an unknown document is silently accepted."""
    gw, _ = served
    raw = json.dumps(body).encode()
    msg = drop(gw, tmp_path, "bad.json", raw)
    assert (msg.status, msg.error_code, msg.error_step) == ("failed", code, step)
    assert text in (msg.error_text or ""), msg.error_text
    assert (msg.error_position or {}).get("path") == path
    assert msg.raw == raw
    [failed] = list((tmp_path / "answers-failed").iterdir())
    assert failed.read_bytes() == raw
    assert all(v == (None, None) for v in columns(gw).values())
    assert answered(gw) == []


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("body", "code", "text", "path"),
    [
        (nested(100_000), "FMT-10", "nests deeper than 64", "line 1, column 65"),
        (b'{"type": "conpas.prematching_answer", "x":' + nested(65) + b"}", "FMT-10", "nests deeper", None),
        (b'{"type": "conpas.prematching_answer", "n": 1' + b"0" * 100_000 + b"}", "FMT-10", "digit", None),
        (b'{"type": "conpas.prematching_answer", "n": NaN}', "FMT-10", "NaN", None),
        (b'{"type": "conpas.prematching_answer", "type": "other"}', "FMT-10", "'type' twice", None),
        (b'{"type": "conpas.prematching_answer",\n "x": [1, 2}', "FMT-9", "not well-formed", "line 2, column 12"),
        (b'{"type": "\xff"}', "FMT-9", "not UTF-8", None),
    ],
    ids=["bomb-100000-deep", "too-deep", "huge-number", "nan", "repeated-key", "broken", "not-utf8"],
)
def test_hostile_or_broken_json_posted_over_http_is_refused_with_fmt(
    served: tuple[Gateway, str], body: bytes, code: str, text: str, path: str | None
) -> None:
    """JSON that nests 100,000 deep (a recursive decoder's stack), deeper than 64, holds a 100,000-digit number,
    NaN or one key twice, is cut or is not UTF-8: stored (202), then failed at parse with FMT-10 or FMT-9 and
    the raw kept; nothing recorded. Breaks if the depth check comes after decoding (RecursionError: INT-1), or a
    limit is dropped."""
    gw, base = served
    posted = httpx.post(f"{base}/api/v1/messages", content=body, headers=JSON_POST)
    assert posted.status_code == 202, posted.text
    gw.process_received()
    msg = message(gw, posted.json()["id"])
    assert (msg.status, msg.error_code, msg.error_step, msg.format) == ("failed", code, "parse", "json")
    assert text in (msg.error_text or ""), msg.error_text
    if path is not None:
        assert (msg.error_position or {}).get("path") == path
    assert msg.raw == body
    assert answered(gw) == []


def test_a_json_document_over_the_size_limit_is_refused(
    served: tuple[Gateway, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A document larger than ``formats/json.py`` MAX_BYTES (lowered here to 1,000 so that the test is quick; the
    pipeline reads it at each parse) is FMT-10 before it is decoded. Breaks if the size limit is not applied."""
    gw, _ = served
    monkeypatch.setattr(jsonformat, "MAX_BYTES", 1_000)
    raw = json.dumps(answer(NUMBERS[0], message="x" * 1_000)).encode()
    msg = drop(gw, tmp_path, "large.json", raw)
    assert (msg.status, msg.error_code) == ("failed", "FMT-10")
    assert f"{len(raw)} bytes; the limit is 1000" in (msg.error_text or "")
    assert columns(gw)[NUMBERS[0]] == (None, None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"a": 1}', "json"),
        (b"\xef\xbb\xbf \r\n\t[1, 2, 3]", "json"),
        (b'[{"a": "b,c"}]\n', "json"),
        (b"number,size\nCSQU3054383,22G1\n", "csv"),
        (b"<a/>", "xml"),
    ],
)
def test_sniff_recognises_json_before_csv(raw: bytes, expected: str) -> None:
    """A body starting with { or [ after whitespace and a BOM is JSON. Breaks if JSON lines (commas) are read as
    CSV or the BOM hides the bracket."""
    assert sniff(raw) == expected
