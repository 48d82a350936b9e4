"""The SFTP polling channel against a real OpenSSH sshd on a loopback port (tests/services/sshd.py).

The sshd serves the test's own folders (root logs in by key; a throwaway account by password), so a test puts
files on "the partner's server" by writing them to disk and sees what the channel did by looking at the disk.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paramiko
import pytest
from sqlalchemy import select

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.channels import sftp as sftp_mod
from gateway.channels.sftp import HostKeyRefused, SftpPoller
from gateway.model import Message
from tests.acceptance.crashkit import assert_stored_once, payloads, wait_for
from tests.conftest import write_config
from tests.services.sshd import PasswordUser, Sshd, fingerprint, keygen

CHANNEL = "carrier-sftp"


def channel(sshd: Sshd, remote: Path, **overrides: Any) -> dict[str, Any]:
    return sshd.channel(remote, **overrides)


def make_gateway(tmp_path: Path, database_url: str, cfg: dict[str, Any]) -> Gateway:
    path = write_config(tmp_path, database_url, channels={CHANNEL: cfg}, routes={})
    return Gateway(config_mod.load(path))


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """The partner's drop folder on the SFTP server."""
    folder = tmp_path / "remote" / "out"
    folder.mkdir(parents=True)
    return folder


@contextmanager
def running(gw: Gateway) -> Iterator[threading.Event]:
    """``gateway run`` in a thread (channels, worker, dispatcher; no HTTP) until the block ends."""
    stop = threading.Event()
    thread = threading.Thread(target=gw.run, args=(stop,), kwargs={"http": False}, daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=60)
        gw.close()
        assert not thread.is_alive(), "gateway run did not stop"


def stored(gw: Gateway) -> list[Message]:
    with gw.sessions() as s:
        return list(s.scalars(select(Message).where(Message.channel == CHANNEL).order_by(Message.id)))


def put(folder: Path, files: dict[str, bytes]) -> None:
    for name, raw in files.items():
        (folder / name).write_bytes(raw)


def up(gw: Gateway) -> float:
    return float(gw.metrics.up.labels(CHANNEL)._value.get())


def test_files_are_taken_stored_processed_and_deleted(
    sshd: Sshd, remote: Path, tmp_path: Path, database_url: str
) -> None:
    """Matching files are downloaded, stored with where they came from, processed, and deleted afterwards;
    dot files, other names and folders stay. Breaks if listing, the pattern, the download, the delete after
    receive or the headers go wrong."""
    sent = payloads(3)
    put(remote, {f"coparn-{i}.edi": raw for i, raw in enumerate(sent)})
    put(remote, {".coparn-busy.edi": sent[0], "readme.txt": b"not EDI"})
    (remote / "folder.edi").mkdir()
    gw = make_gateway(tmp_path, database_url, channel(sshd, remote))
    with running(gw):
        wait_for(lambda: not list(remote.glob("coparn-*.edi")), 20, lambda: sshd.log.read_text())
        wait_for(lambda: all(m.status == "done" for m in stored(gw)) and len(stored(gw)) == 3, 20)
        assert up(gw) == 1
    assert sorted(p.name for p in remote.iterdir()) == [".coparn-busy.edi", "folder.edi", "readme.txt"]
    rows = stored(gw)
    assert sorted(m.filename or "" for m in rows) == ["coparn-0.edi", "coparn-1.edi", "coparn-2.edi"]
    first = next(m for m in rows if m.filename == "coparn-0.edi")
    assert first.raw == sent[0]
    assert first.headers["host"] == "127.0.0.1"
    assert first.headers["port"] == sshd.port
    assert first.headers["path"] == str(remote / "coparn-0.edi")
    assert first.headers["size"] == len(sent[0])
    assert first.headers["mtime"].endswith("+00:00")
    assert_stored_once(database_url, CHANNEL, sent)


def test_after_move_renames_into_move_to(sshd: Sshd, remote: Path, tmp_path: Path, database_url: str) -> None:
    """after: move renames each file into move_to (created when missing) as <message id>_<name>, only after it
    was stored. Breaks if the move target, its naming or the folder creation go wrong."""
    done = remote.parent / "done"
    sent = payloads(2)
    put(remote, {"a.edi": sent[0], "b.edi": sent[1]})
    gw = make_gateway(tmp_path, database_url, channel(sshd, remote, after="move", move_to=str(done)))
    with running(gw):
        wait_for(lambda: done.is_dir() and len(list(done.iterdir())) == 2, 20, lambda: sshd.log.read_text())
        wait_for(lambda: len(stored(gw)) == 2 and all(m.status == "done" for m in stored(gw)), 20)  # the worker
    assert list(remote.iterdir()) == []
    ids = {m.filename: m.id for m in stored(gw)}
    assert sorted(p.name for p in done.iterdir()) == sorted(f"{ids[n]}_{n}" for n in ("a.edi", "b.edi"))
    assert (done / f"{ids['a.edi']}_a.edi").read_bytes() == sent[0]
    assert_stored_once(database_url, CHANNEL, sent)


def test_a_growing_file_is_taken_only_once_it_settled(
    sshd: Sshd, remote: Path, tmp_path: Path, database_url: str
) -> None:
    """A file whose size or mtime changed since the last poll is left until it held still for ``settle``; what is
    stored is the whole file. Breaks if the poller takes a file at first sight or forgets what it saw."""
    whole = payloads(1)[0]
    half = len(whole) // 2
    target = remote / "big.edi"
    target.write_bytes(whole[:half])
    gw = make_gateway(tmp_path, database_url, channel(sshd, remote, settle="600ms"))
    poller = SftpPoller(CHANNEL, gw.config.channels[CHANNEL], gw)  # type: ignore[arg-type]
    conn = poller.connect()
    try:
        assert poller.poll_once(conn) == 0  # first sight: remembered
        assert poller.pending() == 1
        time.sleep(0.8)
        with open(target, "ab") as fh:
            fh.write(whole[half:])  # the partner is still writing
        assert poller.poll_once(conn) == 0  # changed since the last poll: waits again
        assert target.exists() and stored(gw) == []
        assert poller.poll_once(conn) == 0  # unchanged, but not for 600 ms yet
        time.sleep(0.8)
        assert poller.poll_once(conn) == 1
    finally:
        conn.close()
        gw.close()
    assert not target.exists()
    assert poller.pending() == 0
    [row] = stored(gw)
    assert row.raw == whole


def _refused_run(gw: Gateway, sshd: Sshd, remote: Path) -> None:
    """Run the channel for a while: the file must stay, nothing be stored, the channel be down, no login sent."""
    with running(gw):
        time.sleep(1.5)
        assert up(gw) == 0
    assert (remote / "x.edi").exists()
    assert stored(gw) == []
    log = sshd.log.read_text()
    assert "Accepted" not in log and "Failed" not in log, "credentials were offered to an unpinned key"


def test_a_wrong_fingerprint_is_refused_with_a_clear_error(
    sshd: Sshd, remote: Path, tmp_path: Path, database_url: str
) -> None:
    """A server whose key is not the pinned fingerprint is refused before login, naming host, port, key type and
    the fingerprint it offered; nothing is downloaded or deleted. Breaks if the key check is skipped, comes
    after authentication, or the message leaves out what an operator needs."""
    other = keygen(tmp_path / "other_host_key")
    pinned = fingerprint(other.with_suffix(".pub"))
    put(remote, {"x.edi": payloads(1)[0]})
    gw = make_gateway(tmp_path, database_url, channel(sshd, remote, host_key_sha256=[pinned]))
    poller = SftpPoller(CHANNEL, gw.config.channels[CHANNEL], gw)  # type: ignore[arg-type]
    with pytest.raises(HostKeyRefused) as refused:
        poller.connect()
    text = str(refused.value)
    assert f"127.0.0.1:{sshd.port}" in text
    assert "ssh-ed25519" in text
    assert sshd.host_fingerprint in text  # what the server offered
    assert pinned.rstrip("=") in text  # what was expected
    _refused_run(gw, sshd, remote)


def test_a_changed_or_unknown_key_in_known_hosts_is_refused(
    sshd: Sshd, remote: Path, tmp_path: Path, database_url: str
) -> None:
    """known_hosts pinning: another key for the host reads as a changed key, no entry for the host:port as an
    unknown one; both are refused before login. Breaks if a known_hosts mismatch is accepted, the [host]:port
    form is ignored, or the error does not say which case it is."""
    other = keygen(tmp_path / "other_host_key")
    other_line = " ".join(other.with_suffix(".pub").read_text().split()[:2])
    changed = sshd.known_hosts(tmp_path / "known_hosts_changed", other_line)
    unknown = tmp_path / "known_hosts_unknown"
    unknown.write_text(f"[127.0.0.1]:{sshd.port + 1} {sshd.host_key_line}\n127.0.0.1 {sshd.host_key_line}\n")
    put(remote, {"x.edi": payloads(1)[0]})
    for known_hosts, says in ((changed, "the server's key changed"), (unknown, "has no entry for")):
        gw = make_gateway(
            tmp_path, database_url, channel(sshd, remote, host_key_sha256=[], known_hosts=str(known_hosts))
        )
        poller = SftpPoller(CHANNEL, gw.config.channels[CHANNEL], gw)  # type: ignore[arg-type]
        with pytest.raises(HostKeyRefused) as refused:
            poller.connect()
        text = str(refused.value)
        assert says in text and f"[127.0.0.1]:{sshd.port}" in text
        assert sshd.host_fingerprint in text and "ssh-ed25519" in text
        _refused_run(gw, sshd, remote)


def test_key_auth_with_a_passphrase_and_known_hosts(
    sshd: Sshd, remote: Path, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Key authentication with an encrypted key (passphrase from key_passphrase_env) and the server pinned by
    known_hosts. Breaks if the passphrase is not passed, or known_hosts lookups miss the [host]:port entry."""
    key = keygen(tmp_path / "encrypted_key", passphrase="s3cret phrase")
    with open(sshd.root / "authorized_keys", "a") as fh:
        fh.write(key.with_suffix(".pub").read_text())
    monkeypatch.setenv("SFTP_TEST_PASSPHRASE", "s3cret phrase")
    known = sshd.known_hosts(tmp_path / "known_hosts")
    sent = payloads(2)
    put(remote, {"a.edi": sent[0], "b.edi": sent[1]})
    cfg = channel(
        sshd,
        remote,
        key_file=str(key),
        key_passphrase_env="SFTP_TEST_PASSPHRASE",
        host_key_sha256=[],
        known_hosts=str(known),
    )
    gw = make_gateway(tmp_path, database_url, cfg)
    with running(gw):
        wait_for(lambda: not list(remote.iterdir()), 20, lambda: sshd.log.read_text())
        wait_for(lambda: len(stored(gw)) == 2 and all(m.status == "done" for m in stored(gw)), 20)
    assert "Accepted publickey for root from 127.0.0.1 port" in sshd.log.read_text()
    assert fingerprint(key.with_suffix(".pub")) in sshd.log.read_text()  # the encrypted key, not root's other
    assert_stored_once(database_url, CHANNEL, sent)


def test_password_auth(
    sshd: Sshd,
    sftp_password_user: PasswordUser,
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Password authentication with the password from password_env; a wrong password is refused and nothing
    taken. Breaks if the password is not read from the environment or a failed login is taken for success."""
    user = sftp_password_user
    sent = payloads(2)
    put(user.home, {"a.edi": sent[0], "b.edi": sent[1]})
    cfg = channel(sshd, user.home, username=user.name, key_file=None, password_env="SFTP_TEST_PASSWORD")
    monkeypatch.setenv("SFTP_TEST_PASSWORD", user.password + "x")
    gw = make_gateway(tmp_path, database_url, cfg)
    poller = SftpPoller(CHANNEL, gw.config.channels[CHANNEL], gw)  # type: ignore[arg-type]
    with pytest.raises(paramiko.AuthenticationException) as refused:
        poller.connect()
    assert user.password not in str(refused.value)
    gw.close()
    assert sorted(p.name for p in user.home.iterdir()) == ["a.edi", "b.edi"]

    monkeypatch.setenv("SFTP_TEST_PASSWORD", user.password)
    gw = make_gateway(tmp_path, database_url, cfg)
    with running(gw):
        wait_for(lambda: not list(user.home.iterdir()), 20, lambda: sshd.log.read_text())
        wait_for(lambda: len(stored(gw)) == 2 and all(m.status == "done" for m in stored(gw)), 20)
    assert f"Accepted password for {user.name} from 127.0.0.1" in sshd.log.read_text()
    assert_stored_once(database_url, CHANNEL, sent)


def test_concurrency_takes_several_files_at_once_and_no_more(
    sshd: Sshd, remote: Path, tmp_path: Path, database_url: str
) -> None:
    """With concurrency 4, four files are in flight at once (each worker on its own SFTP channel) and never
    more. Breaks if the workers share one channel badly, run one at a time, or exceed the limit."""
    sent = payloads(24)
    put(remote, {f"f{i:02d}.edi": raw for i, raw in enumerate(sent)})
    gw = make_gateway(tmp_path, database_url, channel(sshd, remote, concurrency=4))
    poller = SftpPoller(CHANNEL, gw.config.channels[CHANNEL], gw)  # type: ignore[arg-type]
    lock = threading.Lock()
    inflight = [0, 0]  # now, peak
    receive = gw.receive

    def slow_receive(raw: bytes, **kwargs: Any) -> Any:
        with lock:
            inflight[0] += 1
            inflight[1] = max(inflight[1], inflight[0])
        try:
            time.sleep(0.1)
            return receive(raw, **kwargs)
        finally:
            with lock:
                inflight[0] -= 1

    gw.receive = slow_receive  # type: ignore[method-assign]
    conn = poller.connect()
    try:
        assert poller.poll_once(conn) == 24
        assert len([c for c in conn.clients if c is not None]) == 4
    finally:
        conn.close()
    assert inflight[1] == 4
    assert list(remote.iterdir()) == []
    gw.process_received()
    gw.close()
    assert_stored_once(database_url, CHANNEL, sent)


def test_reconnects_after_the_server_restarts(sshd: Sshd, remote: Path, tmp_path: Path, database_url: str) -> None:
    """The server goes away (listener and sessions killed): the channel is marked down, reconnects with backoff
    when the server is back, and takes what arrived meanwhile. Breaks if a peer error ends run() or the channel
    never reconnects."""
    sent = payloads(2)
    gw = make_gateway(tmp_path, database_url, channel(sshd, remote))
    with running(gw):
        put(remote, {"a.edi": sent[0]})
        wait_for(lambda: not (remote / "a.edi").exists(), 20, lambda: sshd.log.read_text())
        assert up(gw) == 1
        sshd.stop()
        wait_for(lambda: up(gw) == 0, 10)
        put(remote, {"b.edi": sent[1]})
        time.sleep(1.5)  # a few failed reconnects
        assert (remote / "b.edi").exists()
        sshd.start()
        wait_for(lambda: not (remote / "b.edi").exists(), 20, lambda: sshd.log.read_text())
        wait_for(lambda: up(gw) == 1, 5)
        wait_for(lambda: len(stored(gw)) == 2 and all(m.status == "done" for m in stored(gw)), 20)
    assert_stored_once(database_url, CHANNEL, sent)


def test_a_stored_file_whose_delete_failed_is_not_downloaded_again(
    sshd: Sshd, remote: Path, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the delete fails after the commit, the file stays and the next poll only retries the delete (no
    second download, no duplicate row); a failing file does not stop the others. Breaks if a failed delete
    stops the poll or every poll stores the file again."""
    sent = payloads(2)
    put(remote, {"a.edi": sent[0], "b.edi": sent[1]})
    gw = make_gateway(tmp_path, database_url, channel(sshd, remote))
    poller = SftpPoller(CHANNEL, gw.config.channels[CHANNEL], gw)  # type: ignore[arg-type]
    real_remove = poller.remove

    def remove_fails_for_a(sftp: paramiko.SFTPClient, remote_file: sftp_mod.Remote, message_id: int) -> str | None:
        if remote_file.name == "a.edi":
            raise PermissionError("simulated: permission denied")
        return real_remove(sftp, remote_file, message_id)

    monkeypatch.setattr(poller, "remove", remove_fails_for_a)
    conn = poller.connect()
    try:
        assert poller.poll_once(conn) == 1  # b taken, a stored but left
        assert [p.name for p in remote.iterdir()] == ["a.edi"]
        assert poller.pending() == 1
        monkeypatch.setattr(poller, "remove", real_remove)
        assert poller.poll_once(conn) == 1
    finally:
        conn.close()
    assert list(remote.iterdir()) == []
    assert len(stored(gw)) == 2  # no duplicate row for a
    gw.close()


def test_an_oversize_file_is_refused_and_left(
    sshd: Sshd, remote: Path, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file larger than MAX_FILE_BYTES is not downloaded: refused (metric), left on the server, not pending;
    the others are taken. Breaks if the limit is not checked before reading or the file blocks idleness."""
    monkeypatch.setattr(sftp_mod, "MAX_FILE_BYTES", 1000)
    small = payloads(1)[0][:900]
    put(remote, {"big.edi": b"x" * 5000, "small.edi": small})
    gw = make_gateway(tmp_path, database_url, channel(sshd, remote))
    poller = SftpPoller(CHANNEL, gw.config.channels[CHANNEL], gw)  # type: ignore[arg-type]
    conn = poller.connect()
    try:
        assert poller.poll_once(conn) == 1
        assert poller.poll_once(conn) == 0
    finally:
        conn.close()
    assert [p.name for p in remote.iterdir()] == ["big.edi"]
    assert poller.pending() == 0
    assert gw.metrics.refused.labels(CHANNEL, "size")._value.get() == 1
    assert [m.filename for m in stored(gw)] == ["small.edi"]
    gw.close()


def test_a_missing_password_variable_is_a_clear_login_error(
    sshd: Sshd, remote: Path, tmp_path: Path, database_url: str
) -> None:
    """password_env naming an unset variable fails the login attempt with a message naming the variable.
    Breaks if an empty or None password is sent instead."""
    os.environ.pop("SFTP_TEST_UNSET", None)
    cfg = channel(sshd, remote, key_file=None, password_env="SFTP_TEST_UNSET")
    gw = make_gateway(tmp_path, database_url, cfg)
    poller = SftpPoller(CHANNEL, gw.config.channels[CHANNEL], gw)  # type: ignore[arg-type]
    with pytest.raises(sftp_mod.LoginFailed, match="SFTP_TEST_UNSET"):
        poller.connect()
    gw.close()


def test_a_file_stored_before_a_crash_comes_again_as_a_duplicate(
    sshd: Sshd, remote: Path, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies after the commit and before the delete: the file is still on the server, the next run
    (a fresh poller, nothing remembered) downloads it again, the store records a duplicate that is never
    processed, and the file is deleted. Breaks if the file is deleted before the commit, or the resent copy is
    processed a second time."""
    sent = payloads(1)
    put(remote, {"a.edi": sent[0]})
    gw = make_gateway(tmp_path, database_url, channel(sshd, remote))
    first = SftpPoller(CHANNEL, gw.config.channels[CHANNEL], gw)  # type: ignore[arg-type]

    class Crash(BaseException):
        pass

    def crash(*args: Any) -> None:
        raise Crash

    monkeypatch.setattr(first, "remove", crash)
    conn = first.connect()
    try:
        with pytest.raises(Crash):
            first.take(conn.client(0), first.listing(conn.client(0))[0])
    finally:
        conn.close()
    assert (remote / "a.edi").exists()
    gw.process_received()

    second = SftpPoller(CHANNEL, gw.config.channels[CHANNEL], gw)  # type: ignore[arg-type]
    conn = second.connect()
    try:
        assert second.poll_once(conn) == 1
    finally:
        conn.close()
    gw.process_received()
    assert list(remote.iterdir()) == []
    original, again = stored(gw)
    assert (original.status, again.status, again.duplicate_of_id) == ("done", "duplicate", original.id)
    gw.close()
    assert_stored_once(database_url, CHANNEL, sent)


def test_fewer_channels_than_concurrency_still_takes_everything(
    sshd: Sshd, remote: Path, tmp_path: Path, database_url: str
) -> None:
    """A server that allows fewer channels per connection than ``concurrency`` (OpenSSH MaxSessions 2, asked
    for 5): the refused workers step aside, their files go to the others, and the connection remembers the
    limit. Breaks if a refused channel loses its file or fails the whole poll."""
    sshd.stop()
    sshd.max_sessions = 2
    sshd.start()
    sent = payloads(12)
    put(remote, {f"f{i:02d}.edi": raw for i, raw in enumerate(sent)})
    gw = make_gateway(tmp_path, database_url, channel(sshd, remote, concurrency=5))
    poller = SftpPoller(CHANNEL, gw.config.channels[CHANNEL], gw)  # type: ignore[arg-type]
    conn = poller.connect()
    try:
        assert poller.poll_once(conn) == 12
        assert conn.limit == 2
    finally:
        conn.close()
    assert list(remote.iterdir()) == []
    gw.process_received()
    gw.close()
    assert_stored_once(database_url, CHANNEL, sent)


def test_run_until_idle_takes_everything_then_stops(
    sshd: Sshd, remote: Path, tmp_path: Path, database_url: str
) -> None:
    """``gateway run --until-idle`` with an sftp channel waits for files still settling, takes them all and
    stops. Breaks if pending() never reaches 0 (the run never ends) or the run stops with files left on the
    server. (pending() also says 1 until the first listing or failed connect; on
    loopback the first listing is too quick for this test to tell.)"""
    import subprocess
    import sys

    sent = payloads(5)
    put(remote, {f"f{i}.edi": raw for i, raw in enumerate(sent)})
    config = write_config(
        tmp_path, database_url, channels={CHANNEL: channel(sshd, remote, settle="500ms", poll="200ms")}, routes={}
    )
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_DATABASE_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(config), "run", "--until-idle", "--no-http"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(remote.iterdir()) == []
    assert_stored_once(database_url, CHANNEL, sent)
