"""The drop folder: files move only after their commit; failures go to failed/ with the reason stored."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.app import Gateway
from gateway.model import Message


def test_processed_duplicate_and_failed_files_move_where_they_belong(
    gateway: Gateway, coparn: bytes, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.edi").write_bytes(coparn)
    (inbox / "b.edi").write_bytes(coparn)  # the same bytes again
    (inbox / "c.edi").write_bytes(coparn.replace(b"+20261124001'", b"+20261124999'").replace(b"UNT+16+2", b"UNT+1+2"))
    (inbox / "ignored.txt").write_bytes(b"not matching *.edi")
    [poller] = gateway.channels
    assert poller.poll_once() == 3
    assert sorted(p.name for p in inbox.iterdir()) == ["ignored.txt"]
    assert sorted(p.name.split("_", 1)[1] for p in (tmp_path / "archive").iterdir()) == ["a.edi", "b.edi"]
    [failed] = list((tmp_path / "failed").iterdir())
    msg_id = int(failed.name.split("_", 1)[0])
    with gateway.sessions() as s:
        msg = s.get_one(Message, msg_id)
        assert (msg.status, msg.error_code, msg.filename) == ("failed", "EDI-29", "c.edi")
        assert msg.raw == failed.read_bytes()
        statuses = sorted(m.status for m in s.scalars(select(Message).where(Message.direction == "in")))
        assert statuses == ["done", "duplicate", "failed"]


def test_a_file_still_being_written_waits_until_it_settles(gateway: Gateway, coparn: bytes, tmp_path: Path) -> None:
    [poller] = gateway.channels
    poller.config = poller.config.model_copy(update={"settle": 0.3})
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.edi").write_bytes(coparn[:100])
    assert poller.poll_once() == 0  # first sight
    with open(inbox / "a.edi", "ab") as fh:
        fh.write(coparn[100:])
    assert poller.poll_once() == 0  # it changed: wait again
    time.sleep(0.35)
    assert poller.poll_once() == 1
    with gateway.sessions() as s:
        assert s.scalars(select(Message)).one().raw == coparn  # the whole file, not the first 100 bytes


def test_a_resent_copy_of_a_rejected_file_goes_to_failed_too(gateway: Gateway, coparn: bytes, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    bad = coparn.replace(b"UNT+16+2", b"UNT+1+2")
    [poller] = gateway.channels
    (inbox / "c.edi").write_bytes(bad)
    poller.poll_once()
    (inbox / "c-again.edi").write_bytes(bad)  # the carrier sends the same bytes again
    poller.poll_once()
    assert sorted(p.name.split("_", 1)[1] for p in (tmp_path / "failed").iterdir()) == ["c-again.edi", "c.edi"]


def test_one_bad_file_does_not_hold_up_the_others(
    gateway: Gateway, coparn: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.edi").write_bytes(coparn)
    (inbox / "b.edi").write_bytes(coparn.replace(b"20261124001", b"20261124002"))
    [poller] = gateway.channels
    real = Path.read_bytes

    def flaky(self: Path) -> bytes:
        if self.name == "a.edi":
            raise PermissionError("a.edi is locked")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", flaky)
    assert poller.poll_once() == 1
    assert [p.name for p in inbox.iterdir()] == ["a.edi"]  # left for the next poll
