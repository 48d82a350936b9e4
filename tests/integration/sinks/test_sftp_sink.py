"""SFTP sink against a real OpenSSH server on loopback (the ``sshd`` fixture): atomic arrival, pinned key."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import paramiko
import pytest

from gateway.config import SftpSink
from gateway.outbound.sinks import SinkError
from gateway.outbound.sinks.sftp import SftpSinkUploader
from tests.integration.sinks.support import coparn, deliveries, drive, gateway_to
from tests.services.sshd import Sshd, fingerprint, keygen


def sink_config(sshd: Sshd, remote: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "type": "sftp",
        "host": sshd.host,
        "port": sshd.port,
        "username": sshd.user,
        "key_file": str(sshd.client_key),
        "host_key_sha256": [sshd.host_fingerprint],
        "path": str(remote),
        "timeout": "5s",
        **overrides,
    }


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    folder = tmp_path / "remote" / "in"
    folder.mkdir(parents=True)
    return folder


def test_deliveries_arrive_under_their_final_names(sshd: Sshd, remote: Path, tmp_path: Path, database_url: str) -> None:
    """Three CONPAS files through the dispatcher: each on the server with the stored bytes, nothing temporary
    left. Breaks if the sink writes elsewhere, alters the bytes, or leaves its temporary files."""
    gw = gateway_to(tmp_path, database_url, sink_config(sshd, remote))
    try:
        gw.accept(coparn(), channel="drops")
        drive(gw)
        found = deliveries(gw)
        assert [d.status for d, _ in found] == ["done"] * 3
        from gateway.model import Message

        with gw.sessions() as s:
            sent = {m.filename: m.raw for m in (s.get_one(Message, d.message_id) for d, _ in found)}
        assert {p.name: p.read_bytes() for p in remote.iterdir()} == sent
    finally:
        gw.close()


def test_the_file_appears_only_under_its_final_name_complete(sshd: Sshd, remote: Path) -> None:
    """While an 8 MB upload runs, a watcher lists the folder as fast as it can: the final name, whenever it is
    there, is the whole file; the data goes to the hidden .<key>.tmp meanwhile (seen by the watcher). A resend
    under the same key replaces the file. Breaks if the sink writes the final name directly or leaves half files."""
    payload = os.urandom(8_000_000)
    final = remote / "big.bin"
    seen_sizes: list[int] = []
    seen_names: set[str] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for entry in os.scandir(remote):
                seen_names.add(entry.name)
                if entry.name == "big.bin":
                    with contextlib.suppress(FileNotFoundError):
                        seen_sizes.append(entry.stat().st_size)

    watcher = threading.Thread(target=watch)
    watcher.start()
    sink = SftpSinkUploader(SftpSink(**sink_config(sshd, remote)), "test")
    try:
        sink.send(payload, name="big.bin", idempotency_key="key-1")
        time.sleep(0.1)  # the watcher sees the final name too
    finally:
        stop.set()
        watcher.join()
    assert final.read_bytes() == payload
    assert ".key-1.tmp" in seen_names  # the watcher did look during the upload
    assert seen_sizes and set(seen_sizes) == {len(payload)}
    sink.send(b"second", name="big.bin", idempotency_key="key-1")  # a resend replaces (posix-rename)
    assert final.read_bytes() == b"second" and sorted(p.name for p in remote.iterdir()) == ["big.bin"]
    sink.close()


def test_without_posix_rename_the_old_file_is_removed_then_renamed(
    sshd: Sshd, remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server without the posix-rename extension answers "Operation unsupported": the sink removes the old
    file and renames. Breaks if that answer is taken as a failure or the old file blocks the rename."""
    (remote / "a.json").write_bytes(b"old")

    def unsupported(self: paramiko.SFTPClient, oldpath: str, newpath: str) -> None:
        raise OSError("Operation unsupported")

    monkeypatch.setattr(paramiko.SFTPClient, "posix_rename", unsupported)
    sink = SftpSinkUploader(SftpSink(**sink_config(sshd, remote)), "test")
    sink.send(b"new", name="a.json", idempotency_key="k")
    assert {p.name: p.read_bytes() for p in remote.iterdir()} == {"a.json": b"new"}
    sink.close()


def test_a_wrong_pinned_key_is_refused_before_login_and_the_delivery_dies(
    sshd: Sshd, remote: Path, tmp_path: Path, database_url: str
) -> None:
    """The route pins another key: the sink refuses the server (permanent, so dead after one attempt), the error
    names the offered fingerprint, nothing is written. Breaks if the pin is not checked, or a refused key is
    retried as if it were a network error."""
    other = keygen(tmp_path / "other_host_key")
    cfg = sink_config(sshd, remote, host_key_sha256=[fingerprint(other.with_suffix(".pub"))])
    gw = gateway_to(tmp_path, database_url, cfg)
    try:
        gw.accept(coparn(1), channel="drops")
        drive(gw)
        [(delivery, attempts)] = deliveries(gw)
        assert (delivery.status, [a.outcome for a in attempts]) == ("dead", ["dead"])
        assert attempts[0].error is not None and sshd.host_fingerprint in attempts[0].error["text"]
        assert "not pinned" in attempts[0].error["text"]
        assert list(remote.iterdir()) == []
    finally:
        gw.close()
    known = sshd.known_hosts(tmp_path / "known_hosts")  # pinning by known_hosts works too
    sink = SftpSinkUploader(SftpSink(**sink_config(sshd, remote, host_key_sha256=[], known_hosts=str(known))))
    sink.send(b"x", name="k.json", idempotency_key="k")
    assert (remote / "k.json").read_bytes() == b"x"
    sink.close()


def test_a_server_down_is_retryable_and_the_next_send_reconnects(sshd: Sshd, remote: Path) -> None:
    """Server stopped under a kept connection: the send fails retryable; after the restart the next send connects
    again and delivers. A missing remote folder is permanent. Breaks if the dead connection is reused, or
    the errors are classified the other way round."""
    sink = SftpSinkUploader(SftpSink(**sink_config(sshd, remote)), "test")
    sink.send(b"1", name="one.json", idempotency_key="k1")
    sshd.stop()
    with pytest.raises(SinkError) as down:
        sink.send(b"2", name="two.json", idempotency_key="k2")
    assert down.value.retryable
    sshd.start()
    sink.send(b"2", name="two.json", idempotency_key="k2")
    assert sorted(p.name for p in remote.iterdir()) == ["one.json", "two.json"]
    missing = SftpSinkUploader(SftpSink(**sink_config(sshd, remote / "nope")), "test")
    with pytest.raises(SinkError) as nofolder:
        missing.send(b"3", name="three.json", idempotency_key="k3")
    assert not nofolder.value.retryable and "does not exist" in str(nofolder.value)
    sink.close()
    missing.close()
