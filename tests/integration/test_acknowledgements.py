"""CONTRL and APERAK go back to partners whose agreement asks for them, by the routes of routes.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway import config as config_mod
from gateway import edifact
from gateway.app import Gateway
from gateway.edifact.validator import validate
from gateway.model import Event
from tests.conftest import write_config


@pytest.fixture
def acking(tmp_path: Path, database_url: str) -> Iterator[Gateway]:
    partners = {
        "ONE": {"name": "ONE", "business_type": "ocean_carrier", "edifact_ids": ["ONEY"], "acks": ["contrl", "aperak"]},
        "NYK": {"name": "NYK", "business_type": "ocean_carrier", "edifact_ids": ["NYKS"]},
    }
    routes = {
        "contrl-back": {"on": "edifact.received", "render": "contrl", "to": {"type": "folder", "path": "acks/contrl"}},
        "aperak-back": {
            "on": "edifact.application_error",
            "render": "aperak",
            "to": {"type": "folder", "path": "acks/aperak"},
        },
    }
    gw = Gateway(config_mod.load(write_config(tmp_path, database_url, partners=partners, routes=routes)))
    yield gw
    gw.close()


def _files(tmp_path: Path, kind: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((tmp_path / "acks" / kind).glob("*.edi"))]


def test_accepted_interchange_gets_a_positive_contrl(acking: Gateway, coparn: bytes, tmp_path: Path) -> None:
    assert acking.accept(coparn, channel="drops").status == "accepted"
    acking.dispatcher.drain()
    [ack] = _files(tmp_path, "contrl")
    assert b"UCI+20261124001+ONEY:ZZZ+JPTYOCY1:ZZZ+7'" in ack
    edifact.read(ack)  # a valid interchange in its own right
    assert _files(tmp_path, "aperak") == []


def test_syntax_error_gets_a_negative_contrl_and_no_aperak(acking: Gateway, coparn: bytes, tmp_path: Path) -> None:
    assert acking.accept(coparn.replace(b"UNT+16+2'", b"UNT+15+2'"), channel="drops").status == "rejected"
    acking.dispatcher.drain()
    [ack] = _files(tmp_path, "contrl")
    assert b"UCM+2+COPARN:D:95B:UN:SMDG16+4+29'" in ack
    assert _files(tmp_path, "aperak") == []


def test_application_error_gets_an_aperak_that_validates(acking: Gateway, coparn: bytes, tmp_path: Path) -> None:
    result = acking.accept(coparn.replace(b"MSCU1234566", b"MSCU1234567"), channel="drops")  # bad check digit
    assert result.errors[0]["code"] == "MAP-3"
    acking.dispatcher.drain()
    [ack] = _files(tmp_path, "contrl")
    assert b"+7'" in ack.split(b"UCI+")[1][:60]  # the syntax was fine
    [aperak] = _files(tmp_path, "aperak")
    [interchange], [message] = edifact.read(aperak)
    assert interchange.recipient == "ONEY" and message.type == "APERAK"
    assert validate(message) == []  # our own APERAK passes our own D.95B definition
    tags = {s.tag: s for s in message.segments}
    assert tags["RFF"].elements[0] == ["ACW", "1"] and tags["ERC"].elements[0] == "MAP-3"
    assert "check digit" in str(tags["FTX"].elements[3])


def test_partners_without_an_agreement_get_nothing(acking: Gateway, coparn: bytes, tmp_path: Path) -> None:
    acking.accept(coparn.replace(b"ONEY:ZZZ", b"NYKS:ZZZ"), channel="drops")
    acking.dispatcher.drain()
    assert not (tmp_path / "acks").exists()
    with acking.sessions() as s:
        assert not list(s.scalars(select(Event).where(Event.kind.like("edifact.%"))))
