"""The SFTP server endpoint against real clients: paramiko's SFTP client and OpenSSH's ``sftp -b``.

Each test runs a whole ``Gateway.run`` (the channel, the worker) in a thread on a loopback port of its own.
"""

from __future__ import annotations

import io
import os
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.channels.sftp_server import MAX_OPEN_FILES, TEMP_PREFIX, SftpServer
from gateway.model import Message
from tests.acceptance.crashkit import wait_for
from tests.conftest import write_config

PARTNERS = {
    "ONE": {"name": "Ocean Network Express", "business_type": "ocean_carrier", "edifact_ids": ["ONEY"]},
    "TRK": {"name": "Harbour Trucking", "business_type": "trucker"},
}
OPENSSH_SFTP = "/usr/bin/sftp"


@dataclass
class ClientKey:
    path: Path  # OpenSSH private key file (mode 0600), for sftp -i
    pkey: paramiko.PKey
    public: str  # "ssh-ed25519 AAAA... comment"


def make_key(path: Path) -> ClientKey:
    private = Ed25519PrivateKey.generate()
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return ClientKey(path, paramiko.PKey.from_path(path), public.decode() + f" {path.name}")


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, ClientKey]:
    folder = tmp_path / "client-keys"
    folder.mkdir()
    return {name: make_key(folder / name) for name in ("ONE", "TRK", "stranger")}


@dataclass
class Running:
    gateway: Gateway
    server: SftpServer
    stop: threading.Event
    thread: threading.Thread
    root: Path

    @property
    def port(self) -> int:
        assert self.server.port is not None
        return self.server.port

    @property
    def host_key(self) -> paramiko.PKey:
        assert self.server.host_key is not None
        return self.server.host_key

    def connect(self, user: str, key: ClientKey) -> paramiko.SFTPClient:
        """A paramiko client that trusts only the server's own key (the connection is closed with the test)."""
        transport = paramiko.Transport(("127.0.0.1", self.port))
        try:
            transport.connect(hostkey=self.host_key, username=user, pkey=key.pkey)
        except Exception:
            transport.close()
            raise
        client = paramiko.SFTPClient.from_transport(transport)
        assert client is not None
        return client

    def stored(self) -> list[Message]:
        with self.gateway.sessions() as s:
            rows = list(s.scalars(select(Message).where(Message.direction == "in").order_by(Message.id)))
            s.expunge_all()
            return rows

    def refused(self, reason: str) -> float:
        value = self.gateway.metrics.registry.get_sample_value(
            "gateway_channel_refused_total", {"channel": "push", "reason": reason}
        )
        return value or 0.0

    def known_hosts(self, path: Path) -> Path:
        path.write_text(f"[127.0.0.1]:{self.port} {self.host_key.get_name()} {self.host_key.get_base64()}\n")
        return path

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive()


Start = Callable[..., Running]


@pytest.fixture
def start(tmp_path: Path, database_url: str, keys: dict[str, ClientKey]) -> Iterator[Start]:
    """Start a gateway whose only channel is ``push`` (type sftp_server); keyword arguments override its keys."""
    started: list[Running] = []

    def _start(**overrides: Any) -> Running:
        channel: dict[str, Any] = {
            "type": "sftp_server",
            "port": 0,
            "host_key": "sftp/host_key",
            "root": "sftp/root",
            "users": {
                "ONE": {"authorized_keys": [keys["ONE"].public]},
                "TRK": {"authorized_keys": [keys["TRK"].public]},
            },
            **overrides,
        }
        path = write_config(tmp_path, database_url, channels={"push": channel}, partners=PARTNERS, routes={})
        gateway = Gateway(config_mod.load(path))
        [server] = gateway.channels
        assert isinstance(server, SftpServer)
        stop = threading.Event()
        thread = threading.Thread(target=gateway.run, args=(stop,), kwargs={"http": False}, daemon=True)
        thread.start()
        assert server.listening.wait(15), "the SFTP server did not start"
        running = Running(gateway, server, stop, thread, tmp_path / "sftp" / "root")
        started.append(running)
        return running

    yield _start
    for running in started:
        running.stop.set()
        running.thread.join(timeout=60)
        running.gateway.close()


def openssh_batch(
    running: Running, key: ClientKey, user: str, commands: str, tmp_path: Path, known: Path | None = None
) -> Any:
    """OpenSSH's sftp in batch mode, trusting only the server's key (or ``known``); the completed process."""
    batch = tmp_path / "batch.txt"
    batch.write_text(commands)
    known = known or running.known_hosts(tmp_path / "known_hosts")
    return subprocess.run(
        [
            OPENSSH_SFTP,
            "-F",
            "/dev/null",
            "-b",
            str(batch),
            "-P",
            str(running.port),
            "-i",
            str(key.path),
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={known}",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "BatchMode=yes",
            f"{user}@127.0.0.1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def test_an_upload_is_stored_once_and_processed(start: Start, keys: dict[str, ClientKey], coparn: bytes) -> None:
    """A file put by a partner is stored once, as that partner's, with its path, size and login, processed by the
    worker, and gone from the folder. Breaks if the close is not where the store happens, the partner is taken
    from anywhere but the login, or the temporary file is left behind."""
    running = start()
    sftp = running.connect("ONE", keys["ONE"])
    sftp.mkdir("/in")
    attrs = sftp.putfo(io.BytesIO(coparn), "/in/coparn.edi")  # confirm=True: a stat after the close
    assert attrs.st_size == len(coparn)
    [msg] = running.stored()
    assert (msg.channel, msg.filename, msg.raw) == ("push", "coparn.edi", coparn)
    assert msg.headers == {"path": "/in/coparn.edi", "size": len(coparn), "login": "ONE", "peer": msg.headers["peer"]}
    assert msg.headers["peer"].startswith("127.0.0.1:")
    assert msg.partner_id == running.gateway.store.partner_ids["ONE"]
    wait_for(lambda: running.stored()[0].status == "done", 15)
    assert sftp.listdir("/in") == []
    assert [p.name for p in (running.root / "ONE").iterdir()] == ["in"]  # no temporary file left
    assert running.server.pending() == 0


def test_openssh_batch_client_puts_files_and_a_second_copy_is_a_duplicate(
    start: Start, keys: dict[str, ClientKey], coparn: bytes, tmp_path: Path
) -> None:
    """OpenSSH's sftp (pinned host key, key login, batch mode) uploads; the same bytes again are recorded as a
    duplicate, not processed twice. Breaks if the server's key, SFTP dialect or close answer upsets OpenSSH."""
    running = start()
    (tmp_path / "a.edi").write_bytes(coparn)
    done = openssh_batch(running, keys["TRK"], "TRK", "put a.edi first.edi\nput a.edi second.edi\nls -la\n", tmp_path)
    assert done.returncode == 0, done.stderr
    rows = running.stored()
    assert [(m.filename, m.status == "duplicate") for m in rows] == [("first.edi", False), ("second.edi", True)]
    assert {m.headers["login"] for m in rows} == {"TRK"}
    assert rows[1].duplicate_of_id == rows[0].id


def test_each_partner_is_confined_to_its_own_folder(start: Start, keys: dict[str, ClientKey], coparn: bytes) -> None:
    """Partner A sees root/A/ as "/", never B's files: ``..`` above "/", a symlink leading out, and a symlink a
    client tries to make are refused with permission denied; list, stat, mkdir, rename and remove work inside.
    Breaks if paths are joined without resolving them, or ``..`` is clamped into another partner's folder."""
    running = start()
    (running.root / "ONE" / "secret.txt").write_text("ONE only")
    (running.root / "TRK" / "escape").symlink_to(running.root / "ONE")
    (running.root / "TRK" / "passwd").symlink_to("/etc/passwd")
    trk = running.connect("TRK", keys["TRK"])
    assert trk.normalize(".") == "/"
    assert trk.normalize("/..") == "/"  # the parent of "/" is "/", as in a chroot
    assert sorted(trk.listdir("/")) == ["escape", "passwd"]
    for attempt in (
        lambda: trk.listdir("/../ONE"),
        lambda: trk.stat("../ONE/secret.txt"),
        lambda: trk.open("/../ONE/secret.txt").read(),
        lambda: trk.listdir("/escape"),
        lambda: trk.stat("/escape/secret.txt"),
        lambda: trk.open("/passwd").read(),
        lambda: trk.putfo(io.BytesIO(coparn), "/../ONE/planted.edi"),
        lambda: trk.putfo(io.BytesIO(coparn), "/escape/planted.edi"),
        lambda: trk.remove("/../ONE/secret.txt"),
        lambda: trk.rename("/escape/secret.txt", "/stolen.txt"),
        lambda: trk.symlink("/", "/mine"),
        lambda: trk.rmdir("/"),
    ):
        with pytest.raises(PermissionError):
            attempt()
    assert (running.root / "ONE" / "secret.txt").read_text() == "ONE only"
    assert running.refused("path") >= 12
    # inside its own folder, the usual things work
    trk.mkdir("/sub")
    trk.mkdir("/sub/deeper")
    assert trk.listdir("/sub") == ["deeper"]
    assert stat.S_ISDIR(trk.stat("sub/../sub/deeper").st_mode or 0)
    trk.rename("/sub/deeper", "/sub/renamed")
    trk.rmdir("/sub/renamed")
    trk.putfo(io.BytesIO(coparn), "sub/a.edi")
    one = running.connect("ONE", keys["ONE"])
    assert one.listdir("/") == ["secret.txt"]
    assert one.open("/secret.txt").read() == b"ONE only"
    one.remove("/secret.txt")
    assert one.listdir("/") == []
    assert [(m.filename, m.headers["login"], m.headers["path"]) for m in running.stored()] == [
        ("a.edi", "TRK", "/sub/a.edi")
    ]


def test_only_a_partners_own_key_logs_in(start: Start, keys: dict[str, ClientKey], tmp_path: Path) -> None:
    """A key of nobody, another partner's key, an unknown user and a password are all refused; a key from
    authorized_keys_file logs in. Breaks if any key of any partner opens any partner's folder, or a password
    or "none" login gets through."""
    keyfile = tmp_path / "trk_keys"
    keyfile.write_text(f"# the trucker's keys\n{keys['stranger'].public}\n")
    running = start(
        users={"ONE": {"authorized_keys": [keys["ONE"].public]}, "TRK": {"authorized_keys_file": str(keyfile)}}
    )
    for user, key in (("ONE", "stranger"), ("ONE", "TRK"), ("TRK", "ONE"), ("NOBODY", "ONE")):
        with pytest.raises(paramiko.AuthenticationException):
            running.connect(user, keys[key])
    transport = paramiko.Transport(("127.0.0.1", running.port))
    try:
        with pytest.raises(paramiko.BadAuthenticationType):
            transport.connect(hostkey=running.host_key, username="ONE", password="secret")
    finally:
        transport.close()
    done = openssh_batch(running, keys["TRK"], "TRK", "ls\n", tmp_path)
    assert done.returncode != 0 and "Permission denied" in done.stderr
    assert running.connect("TRK", keys["stranger"]).listdir("/") == []  # the key the file names
    wait_for(lambda: running.refused("auth") >= 6, 5)
    assert running.stored() == []


def test_a_wrong_host_key_is_refused_by_the_client(start: Start, keys: dict[str, ClientKey], tmp_path: Path) -> None:
    """The server presents the key in host_key and nothing else, so a client that pinned another key refuses to
    talk to it (paramiko and OpenSSH). Breaks if the server presents a key of its own choosing."""
    running = start()
    transport = paramiko.Transport(("127.0.0.1", running.port))
    try:
        with pytest.raises(paramiko.SSHException, match=r"[Hh]ost key"):
            transport.connect(hostkey=keys["stranger"].pkey, username="ONE", pkey=keys["ONE"].pkey)
    finally:
        transport.close()
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{running.port} ssh-ed25519 {keys['stranger'].pkey.get_base64()}\n")
    done = openssh_batch(running, keys["ONE"], "ONE", "ls\n", tmp_path, known=wrong)
    assert done.returncode != 0 and "host key" in done.stderr.lower(), done.stderr
    assert openssh_batch(running, keys["ONE"], "ONE", "ls\n", tmp_path).returncode == 0


def test_an_oversize_upload_is_refused_and_nothing_stored(
    start: Start, keys: dict[str, ClientKey], coparn: bytes, tmp_path: Path
) -> None:
    """A file over max_file_bytes fails (write and close) for paramiko and OpenSSH and nothing is stored; a file
    at the limit goes through. Breaks if the size is checked only after storing, or a refused upload's close
    answers OK."""
    running = start(max_file_bytes=len(coparn))
    sftp = running.connect("ONE", keys["ONE"])
    with pytest.raises(OSError):
        sftp.putfo(io.BytesIO(coparn + b"x"), "/big.edi")
    (tmp_path / "big.edi").write_bytes(coparn + b"\n" * 5000)
    done = openssh_batch(running, keys["TRK"], "TRK", "put big.edi\n", tmp_path)
    assert done.returncode != 0, done.stdout
    assert running.stored() == []
    assert running.refused("size") == 2
    sftp.putfo(io.BytesIO(coparn), "/exact.edi")
    assert [m.filename for m in running.stored()] == ["exact.edi"]
    sftp.close()
    wait_for(lambda: not any(p.name.startswith(TEMP_PREFIX) for p in (running.root / "ONE").iterdir()), 10)


def test_the_close_is_answered_only_after_the_commit(
    start: Start, keys: dict[str, ClientKey], coparn: bytes, tmp_path: Path
) -> None:
    """While the store has not committed, the client's close waits; when the store fails (database down) the
    close fails, for paramiko and for OpenSSH, and nothing counts as received; sent again once the database is
    back, the file is stored once. Breaks if the close answers OK before (or without) the commit."""
    running = start()
    gateway = running.gateway
    real_receive = gateway.receive
    release = threading.Event()
    calls: list[str] = []

    def slow_receive(raw: bytes, **kwargs: Any) -> Any:
        calls.append(kwargs["filename"])
        release.wait(30)
        return real_receive(raw, **kwargs)

    gateway.receive = slow_receive  # type: ignore[method-assign]
    sftp = running.connect("ONE", keys["ONE"])
    outcome: list[Any] = []
    putter = threading.Thread(target=lambda: outcome.append(sftp.putfo(io.BytesIO(coparn), "/slow.edi")))
    putter.start()
    wait_for(lambda: calls, 10)
    time.sleep(0.5)
    assert putter.is_alive() and not outcome  # the close is not answered while the store is pending
    assert running.stored() == []
    release.set()
    putter.join(30)
    assert outcome and outcome[0].st_size == len(coparn)
    assert [m.filename for m in running.stored()] == ["slow.edi"]

    def failing_receive(raw: bytes, **kwargs: Any) -> Any:
        raise OperationalError("INSERT INTO message ...", {}, Exception("database is down"))

    gateway.receive = failing_receive  # type: ignore[method-assign]
    other = coparn.replace(b"+20261124001'", b"+20261124002'")
    with pytest.raises(FileNotFoundError):  # paramiko's close hides the failure; its confirming stat does not
        sftp.putfo(io.BytesIO(other), "/down.edi")
    (tmp_path / "down.edi").write_bytes(other)
    done = openssh_batch(running, keys["ONE"], "ONE", "put down.edi\n", tmp_path)
    assert done.returncode != 0 and "close" in done.stderr.lower(), done.stderr
    assert [m.filename for m in running.stored()] == ["slow.edi"]
    gateway.receive = real_receive  # type: ignore[method-assign]
    done = openssh_batch(running, keys["ONE"], "ONE", "put down.edi\n", tmp_path)
    assert done.returncode == 0, done.stderr
    assert [(m.filename, m.status == "duplicate") for m in running.stored()] == [
        ("slow.edi", False),
        ("down.edi", False),
    ]
    sftp.close()
    wait_for(lambda: not any(p.name.startswith(TEMP_PREFIX) for p in (running.root / "ONE").iterdir()), 10)


def test_an_upload_never_closed_is_discarded(start: Start, keys: dict[str, ClientKey], coparn: bytes) -> None:
    """A client that goes away in the middle of an upload gets no OK, and nothing of it is stored; its temporary
    file goes. Breaks if the handles paramiko closes at the end of a session are stored (half a file)."""
    running = start()
    sftp = running.connect("ONE", keys["ONE"])
    handle = sftp.open("/half.edi", "wb")
    handle.write(coparn[:200])
    handle.flush()
    wait_for(lambda: running.server.pending() == 1, 5)
    transport = sftp.get_channel().get_transport()  # type: ignore[union-attr]
    transport.close()
    wait_for(lambda: running.server.pending() == 0, 10)
    assert running.stored() == []
    assert list((running.root / "ONE").iterdir()) == []


def test_one_bad_client_does_not_stop_the_server(start: Start, keys: dict[str, ClientKey], coparn: bytes) -> None:
    """Garbage instead of an SSH banner, and a connection that never logs in, are logged and dropped; the
    server serves the next client. Breaks if a handshake failure escapes the accept loop."""
    running = start()
    with socket.create_connection(("127.0.0.1", running.port)) as raw:
        raw.sendall(b"GET / HTTP/1.0\r\n\r\n" + os.urandom(64))
        raw.settimeout(10)
        try:
            while raw.recv(1024):
                pass
        except OSError:
            pass
    idle = socket.create_connection(("127.0.0.1", running.port))  # connects and says nothing
    try:
        running.connect("ONE", keys["ONE"]).putfo(io.BytesIO(coparn), "/after.edi")
    finally:
        idle.close()
    assert [m.filename for m in running.stored()] == ["after.edi"]
    assert running.thread.is_alive()


def test_the_host_key_is_generated_once_and_reused(start: Start, keys: dict[str, ClientKey], tmp_path: Path) -> None:
    """The first start writes an Ed25519 key (mode 0600) to host_key; the next start presents the same key, so
    a client that pinned it still connects. Breaks if the key is regenerated, or written readable by others."""
    path = tmp_path / "sftp" / "host_key"
    assert not path.exists()
    first = start()
    assert first.host_key.get_name() == "ssh-ed25519"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pinned = first.host_key
    content = path.read_bytes()
    first.halt()
    assert not first.gateway.metrics.registry.get_sample_value("gateway_channel_up", {"channel": "push"})
    second = start()
    assert path.read_bytes() == content
    assert second.host_key.fingerprint == pinned.fingerprint
    known = second.known_hosts(tmp_path / "known_hosts")
    assert pinned.get_base64() in known.read_text()
    assert second.connect("ONE", keys["ONE"]).listdir("/") == []


def test_a_session_holds_a_bounded_number_of_files_open(
    start: Start, keys: dict[str, ClientKey], coparn: bytes
) -> None:
    """One session cannot hold more than MAX_OPEN_FILES files open (each is a file descriptor and a temporary
    file); closing one frees its place. Breaks if a partner can exhaust the gateway's file descriptors."""
    running = start()
    sftp = running.connect("ONE", keys["ONE"])
    handles = [sftp.open(f"/f{i}.edi", "wb") for i in range(MAX_OPEN_FILES)]
    with pytest.raises(OSError):
        sftp.open("/one-too-many.edi", "wb")
    handles[0].write(coparn)
    handles[0].close()
    sftp.putfo(io.BytesIO(coparn.replace(b"+20261124001'", b"+20261124003'")), "/next.edi")
    assert [m.filename for m in running.stored()] == ["f0.edi", "next.edi"]
    for handle in handles[1:]:
        handle.close()  # empty uploads: nothing to store
    assert running.stored()[-1].filename == "next.edi" and running.refused("empty") == MAX_OPEN_FILES - 1
