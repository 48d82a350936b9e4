"""SIGKILL in the middle of 1,000 SFTP uploads to the gateway's own SFTP server: nothing lost, nothing twice.

Clients push :func:`crashkit.payloads` over a few connections with paramiko's ``putfo`` (which confirms each
upload with a stat after the close; the server reports a file there only once it is committed). The gateway is
killed with SIGKILL part-way, started again, and every upload that was not confirmed is sent again.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from gateway.model import Message
from gateway.store import db
from tests.acceptance.crashkit import (
    COUNT,
    GatewayProcess,
    assert_stored_once,
    free_port,
    originals,
    payloads,
    unprocessed,
    wait_for,
)
from tests.conftest import write_config

CONNECTIONS = 4
READY = '"event": "sftp server listening"'


class Pusher:
    """Uploads over ``CONNECTIONS`` connections; remembers which uploads were confirmed."""

    def __init__(self, port: int, host_key: paramiko.PKey, key: paramiko.PKey, sent: list[bytes]) -> None:
        self.port = port
        self.host_key = host_key
        self.key = key
        self.sent = sent
        self.confirmed: set[int] = set()
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def push(self, indices: list[int]) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._connection, args=(indices[i::CONNECTIONS],), daemon=True)
            for i in range(CONNECTIONS)
        ]
        for t in threads:
            t.start()
        return threads

    def _connection(self, indices: list[int]) -> None:
        """Upload in order; stop at the first failure (the gateway is gone): the rest are not confirmed."""
        try:
            transport = paramiko.Transport(("127.0.0.1", self.port))
            transport.connect(hostkey=self.host_key, username="ONE", pkey=self.key)
            sftp = paramiko.SFTPClient.from_transport(transport)
            assert sftp is not None
            for i in indices:
                attrs = sftp.putfo(io.BytesIO(self.sent[i]), f"/K{i:04d}.edi")  # close, then a confirming stat
                assert attrs.st_size == len(self.sent[i])
                with self._lock:
                    self.confirmed.add(i)
            transport.close()
        except Exception as exc:
            with self._lock:
                self.errors.append(f"{type(exc).__name__}: {exc}")


def duplicates(database_url: str, channel: str) -> int:
    engine = db.make_engine(database_url)
    try:
        with engine.connect() as conn:
            query = select(func.count()).where(Message.channel == channel, Message.status == "duplicate")
            return int(conn.scalar(query) or 0)
    finally:
        engine.dispose()


def test_sigkill_during_sftp_uploads_loses_nothing_and_stores_nothing_twice(tmp_path: Path, database_url: str) -> None:
    """Every payload is stored exactly once and processed, although the gateway was killed with uploads in flight
    and the unconfirmed ones were sent again. Breaks if a close is answered before its commit (a lost file), if an
    unfinished upload is stored (half a file), or if a resend of a committed file is processed again."""
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    key = paramiko.Ed25519Key.from_private_key(
        io.StringIO(
            private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
            ).decode()
        )
    )
    port = free_port()
    channel = {
        "type": "sftp_server",
        "port": port,
        "host_key": "sftp/host_key",
        "root": "sftp/root",
        "users": {"ONE": {"authorized_keys": [public.decode()]}},
    }
    config = write_config(tmp_path, database_url, channels={"push": channel}, routes={})
    gateway = GatewayProcess(config)
    sent = payloads()
    try:
        gateway.start(ready=READY)
        host_key = paramiko.PKey.from_path(tmp_path / "sftp" / "host_key")
        pusher = Pusher(port, host_key, key, sent)
        threads = pusher.push(list(range(COUNT)))
        wait_for(lambda: len(pusher.confirmed) >= COUNT // 3, 120, gateway.describe)
        gateway.kill()
        for t in threads:
            t.join(timeout=60)
        unconfirmed = [i for i in range(COUNT) if i not in pusher.confirmed]
        assert 0 < len(unconfirmed) < COUNT, "the kill did not fall in the middle of the uploads"
        assert len(pusher.errors) == CONNECTIONS, pusher.errors  # every connection saw the crash

        gateway.start(ready=READY)  # same host key: the clients' pin still holds
        assert paramiko.PKey.from_path(tmp_path / "sftp" / "host_key").fingerprint == host_key.fingerprint
        pusher.errors.clear()
        for t in pusher.push(unconfirmed):
            t.join(timeout=120)
        assert not pusher.errors, pusher.errors
        assert pusher.confirmed == set(range(COUNT))

        def settled() -> bool:
            return len(originals(database_url, "push")) == COUNT and unprocessed(database_url, "push") == 0

        wait_for(settled, 120, gateway.describe)
    finally:
        gateway.stop()
    assert_stored_once(database_url, "push", sent)
    # a resend finds a committed original only for an upload in flight at the kill: at most one per connection
    assert duplicates(database_url, "push") <= CONNECTIONS
    assert list((tmp_path / "sftp" / "root" / "ONE").iterdir()) == []  # unfinished uploads were removed
