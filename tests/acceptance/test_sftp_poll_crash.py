"""SIGKILL in the middle of an SFTP poll: every file is stored exactly once and none is left on the server."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from gateway.model import Message
from gateway.store import db
from tests.acceptance.crashkit import (
    COUNT,
    GatewayProcess,
    assert_stored_once,
    originals,
    payloads,
    unprocessed,
    wait_for,
)
from tests.conftest import write_config
from tests.services.sshd import Sshd

CHANNEL = "carrier-sftp"
CONCURRENCY = 4


def duplicates(database_url: str) -> int:
    engine = db.make_engine(database_url)
    try:
        with engine.connect() as conn:
            query = select(func.count()).where(Message.channel == CHANNEL, Message.status == "duplicate")
            return int(conn.scalar(query) or 0)
    finally:
        engine.dispose()


def test_sigkill_while_polling_loses_nothing_and_processes_nothing_twice(
    sshd: Sshd, tmp_path: Path, database_url: str
) -> None:
    """1,000 files wait on the partner's server; the gateway is SIGKILLed once a few hundred are stored and
    started again. Afterwards the remote folder is empty and every file was stored once as an original and
    processed; a file committed but not yet deleted when the process died comes again as a duplicate (at most
    one per download worker). Breaks if a file is deleted before its commit (lost), or a re-download is
    processed again instead of being recorded as a duplicate."""
    remote = tmp_path / "remote"
    remote.mkdir()
    sent = payloads(COUNT)
    for i, raw in enumerate(sent):
        (remote / f"coparn-{i:04d}.edi").write_bytes(raw)
    config = write_config(
        tmp_path,
        database_url,
        channels={
            CHANNEL: sshd.channel(remote, settle="200ms", concurrency=CONCURRENCY, timeout="10s"),
        },
        routes={},
    )
    gateway = GatewayProcess(config)
    try:
        gateway.start()
        wait_for(lambda: len(originals(database_url, CHANNEL)) >= 300, 90, gateway.describe)
        gateway.kill()
        left = len(list(remote.iterdir()))
        assert 0 < left < COUNT, f"the kill did not land in the middle ({left} files left)"

        gateway.start()
        wait_for(lambda: not any(remote.iterdir()), 120, gateway.describe)
        wait_for(lambda: len(originals(database_url, CHANNEL)) == COUNT, 30, gateway.describe)
        wait_for(lambda: unprocessed(database_url, CHANNEL) == 0, 120, gateway.describe)
    finally:
        gateway.stop()
    assert_stored_once(database_url, CHANNEL, sent)
    assert duplicates(database_url) <= CONCURRENCY, "more re-downloads than files that were in flight"
