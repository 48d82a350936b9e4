"""Folder sink: write to a temporary name, fsync, then rename, so a reader never sees half a file.

The file name carries the delivery's idempotency key, so a resend after a crash replaces the same file.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from gateway.outbound.sinks import SinkError


class FolderSinkWriter:
    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, payload: bytes, *, name: str, idempotency_key: str, content_type: str | None = None) -> bytes | None:
        if "/" in name or name.startswith("."):
            raise SinkError(f"refusing unsafe file name {name!r}", retryable=False)
        tmp = self.path / f".{idempotency_key}.tmp"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path / name)
            dir_fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:  # a full disk or a missing mount may heal: retry
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            # the cause first: the dashboard shortens long errors, and the path can be long
            raise SinkError(f"{exc.strerror or exc}: cannot write {self.path / name}", retryable=True) from exc
        return None
