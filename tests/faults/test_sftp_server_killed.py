"""The partner's SFTP server dies in the middle of downloads (OpenSSH sshd of the test's own, SIGKILLed with
every session process it forked) and is started again; three times.

The SFTP poller of a gateway in this process (the fault is in the peer) downloads large files (12 MB), two at a
time; two more files are put on the server at each kill. Each kill lands while a download is under way, so the
poller reads a cut connection; it must store nothing of it, reconnect once the server is back, and download the
file again whole.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.channels.sftp import Remote, SftpPoller
from gateway.model import Message
from tests.acceptance.crashkit import wait_for
from tests.conftest import write_config
from tests.faults.kit import (
    Dashboard,
    add_operator,
    assert_received_once,
    connected,
    originals_by_sha,
    running,
    sha,
    statuses,
)
from tests.services.sshd import Sshd, _descendants

CHANNEL = "carrier-sftp"
FILES = 4  # on the server at the start
ADDED = 2  # more files put on the server while it is down, so every kill finds downloads under way
SIZE = 12_000_000  # bytes per file: a download takes long enough to be cut in the middle
KILLS = 3


def kill_server(sshd: Sshd) -> None:
    """SIGKILL the listener and every session it forked (a crash: no goodbye to the clients)."""
    assert sshd.proc is not None
    for pid in [sshd.proc.pid, *_descendants(sshd.proc.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    sshd.proc.wait(10)
    sshd.proc = None


# paramiko's prefetch thread ends with the cut connection's exception; the download in the foreground reports it
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_the_sftp_server_killed_mid_download_stores_each_file_once_and_whole(
    tmp_path: Path, database_url: str, sshd: Sshd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Breaks if a cut download is stored (a partial file: its size or sha256 would differ from the source), a
    file is stored twice as an original, a remote file is deleted before its commit, the poller does not
    reconnect after the restart, or the outage does not show (the channel down on /readyz and the overview)."""
    rng = random.Random(8)
    remote = tmp_path / "remote"
    remote.mkdir()
    sources: dict[str, bytes] = {}

    def put(n: int) -> None:
        for _ in range(n):
            name = f"big-{len(sources)}.bin"
            sources[name] = rng.randbytes(SIZE)
            (remote / name).write_bytes(sources[name])

    put(FILES)
    config = write_config(
        tmp_path,
        database_url,
        channels={CHANNEL: sshd.channel(remote, pattern="*.bin", concurrency=2, timeout="5s", max_backoff="1s")},
        routes={},
    )
    add_operator(config)
    gw = Gateway(config_mod.load(config))
    [poller] = gw.channels
    assert isinstance(poller, SftpPoller)
    started = threading.Event()
    cut: list[str] = []  # downloads that did not come back whole
    deleted_before_commit: list[str] = []
    download, remove = poller.download, poller.remove

    def watched_download(sftp: Any, file: Remote) -> bytes | None:
        started.set()
        try:
            raw = download(sftp, file)
        except Exception as exc:
            cut.append(f"{file.name}: {type(exc).__name__}")
            raise
        if raw is None:
            cut.append(f"{file.name}: short")
        return raw

    def watched_remove(sftp: Any, file: Remote, message_id: int) -> str | None:
        if sha(sources[file.name]) not in originals_by_sha(database_url, CHANNEL):
            deleted_before_commit.append(file.name)
        return remove(sftp, file, message_id)

    monkeypatch.setattr(poller, "download", watched_download)
    monkeypatch.setattr(poller, "remove", watched_remove)
    try:
        with running(gw) as url:
            ops = Dashboard(url)
            ops.login()
            for _ in range(KILLS):
                started.clear()
                assert started.wait(60), "no download started"
                time.sleep(0.15)  # well inside a 12 MB download
                kill_server(sshd)
                wait_for(lambda: ops.shows({CHANNEL: "down"}), 15)
                code, ready = ops.readyz()
                assert (code, ready["channels"]) == (200, {CHANNEL: "down"})
                put(ADDED)
                time.sleep(1)
                sshd.start()
                wait_for(lambda: ops.shows({CHANNEL: "up"}), 30)
            wait_for(lambda: not any(remote.iterdir()), 120)
            wait_for(lambda: statuses(database_url, CHANNEL)["received"] == 0, 60)
            ops.close()
    finally:
        gw.close()
    print(f"cut downloads: {cut}; statuses {dict(statuses(database_url, CHANNEL))}")
    assert len(cut) >= KILLS, f"the kills did not land in downloads: {cut}"
    assert deleted_before_commit == []
    assert_received_once(database_url, CHANNEL, list(sources.values()), outcomes={"done", "failed"})
    with connected(database_url) as conn:  # every row, duplicates included: never a partial file
        for name, size, digest, raw in conn.execute(
            select(Message.filename, Message.size, Message.sha256, Message.raw).where(Message.channel == CHANNEL)
        ):
            assert (size, digest, sha(raw)) == (SIZE, sha(sources[name]), sha(sources[name])), name
