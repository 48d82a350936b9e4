"""What the SIGKILL tests of every channel share: a gateway process to kill, payloads to count, the check.

Each channel test sends :data:`COUNT` distinct interchanges, kills the ``gateway run`` process with SIGKILL in
the middle, starts it again, waits until everything is processed, and checks with :func:`assert_stored_once`
that every payload was stored exactly once as an original (a resend after the crash may add ``duplicate``
rows, which are never processed) and that none is left unprocessed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, select

from gateway.model import Message
from gateway.store import db
from tests.conftest import COPARN_EXAMPLE

COUNT = 1000


def payloads(n: int = COUNT) -> list[bytes]:
    """``n`` distinct COPARN interchanges (their own interchange references): the same three containers."""
    raw = COPARN_EXAMPLE.read_bytes()
    return [raw.replace(b"+20261124001'", f"+K{i:09d}'".encode()) for i in range(n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GatewayProcess:
    """``python -m gateway run`` on a config; logs go to ``<config dir>/<name>-<n>.log``."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None, name: str = "gateway") -> None:
        self.config = config
        self.name = name
        self.args = args
        self.env = {**os.environ, "GATEWAY_CONFIG": str(config), **(env or {})}
        self.env.pop("GATEWAY_DATABASE_URL", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.config.parent / f"{self.name}-{self.starts}.log"

    def start(self, *, ready: str = '"event": "gateway running"', timeout: float = 30) -> None:
        self.starts += 1
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in kill/stop
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--log-json", "run", *self.args],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: ready in self.log_path.read_text(errors="replace"), timeout, self.describe)

    def kill(self) -> None:
        """SIGKILL: no clean-up, no flush, as a power cut or the OOM killer would."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close()

    def describe(self) -> str:
        """The tail of the current log, for assertion messages."""
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def wait_for(predicate: Callable[[], Any], timeout: float, describe: Callable[[], str] = lambda: "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not reached within {timeout}s\n{describe()}")


def originals(database_url: str, channel: str) -> dict[str, int]:
    """sha256 → number of non-duplicate rows stored from ``channel``."""
    engine = db.make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(Message.sha256, func.count())
                .where(Message.channel == channel, Message.status != "duplicate")
                .group_by(Message.sha256)
            )
            return {sha: n for sha, n in rows}
    finally:
        engine.dispose()


def unprocessed(database_url: str, channel: str) -> int:
    engine = db.make_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.scalar(select(func.count()).where(Message.channel == channel, Message.status == "received")) or 0
            )
    finally:
        engine.dispose()


def assert_stored_once(database_url: str, channel: str, sent: list[bytes]) -> None:
    """Every payload sent is stored exactly once as an original, nothing else is, and all are processed."""
    import hashlib

    expected = {hashlib.sha256(p).hexdigest() for p in sent}
    stored = originals(database_url, channel)
    twice = {sha: n for sha, n in stored.items() if n != 1}
    assert not twice, f"stored more than once: {len(twice)} payloads"
    assert set(stored) == expected, f"missing {len(expected - set(stored))}, unexpected {len(set(stored) - expected)}"
    assert unprocessed(database_url, channel) == 0
