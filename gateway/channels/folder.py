"""Drop-folder channel: the stand-in for scheduled carrier file drops.

A file is taken once its size and mtime have held still for ``settle`` seconds (a writer may still be busy),
stored and committed, processed, and only then moved: to ``archive`` when it was processed or is a duplicate,
to ``failed`` when it was rejected. A crash before the move leaves the file in place; taking it again finds
the stored copy and records a duplicate, so nothing is lost and nothing is processed twice. Where the file goes
follows the stored original's status, so a resent copy of a rejected file goes to ``failed`` too.

A move that fails (the archive's disk is full, a permission, a missing mount) leaves the file where it was and is
logged; the channel shows down (``gateway_channel_up`` 0) while any stored file waits for its move. Within one
run the file is not stored again: only the move is retried at each poll, and succeeds once space returns (after
a restart the file is stored once more, as a duplicate). Across file systems the move copies into a hidden
temporary file beside the target, syncs it, renames it into place and only then removes the source, so the
archive never holds half a file under its final name.

When the database does not answer (``OperationalError``) the poll stops at the first file: the error is logged
once per poll, the channel shows down, and the files wait in the folder for the next poll.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
from sqlalchemy.exc import OperationalError

from gateway.config import FolderChannel

log = structlog.get_logger("gateway.channel.folder")


@dataclass(frozen=True)
class Taken:
    status: str  # accepted | rejected | duplicate
    message_id: int
    outcome: str  # the stored (original's) status: done, failed, or received when not processed yet


Accept = Callable[..., Taken]


NAME_MAX = 255  # bytes in one file name (Linux and most SFTP servers' file systems)


def prefixed(prefix: str, name: str) -> str:
    """``prefix + name``, cut to fit ``NAME_MAX`` bytes: the middle of the name goes, its last 16 bytes (the
    extension) stay. A 250-byte name made a 255+ byte archive name the move could never create."""
    whole = prefix + name
    if len(whole.encode("utf-8", "surrogateescape")) <= NAME_MAX:
        return whole
    raw = name.encode("utf-8", "surrogateescape")
    tail = raw[-16:].decode("utf-8", "ignore")
    room = NAME_MAX - len(prefix.encode("utf-8", "surrogateescape")) - len(tail.encode("utf-8", "surrogateescape"))
    head = raw[:room].decode("utf-8", "ignore")
    return prefix + head + tail


class FolderPoller:
    def __init__(self, name: str, config: FolderChannel, accept: Accept, up: Callable[[float], None]) -> None:
        self.name = name
        self.config = config
        self.accept = accept
        self.up = up  # 1 while the folder can be read, else 0 (the channel's gauge)
        self._seen: dict[Path, tuple[int, float, float]] = {}  # path → size, mtime, when first seen so
        self._unmoved: dict[Path, tuple[int, float, Taken]] = {}  # stored, move failed: path → size, mtime, taken

    def run(self, stop: threading.Event) -> None:
        """Poll every ``poll`` seconds until ``stop``; one bad poll is logged and the next one comes."""
        while not stop.is_set():
            try:
                self.poll_once()
                self.up(0 if self._unmoved else 1)  # a file stored but not archived: the operator must see it
            except Exception:
                self.up(0)
                log.error("poll failed", channel=self.name, exc_info=True)
            stop.wait(self.config.poll)

    def poll_once(self) -> int:
        """Take every settled file; returns how many were taken."""
        self.config.path.mkdir(parents=True, exist_ok=True)
        taken = 0
        now = time.monotonic()
        present = set()
        for path in self._waiting():
            present.add(path)
            if self._settled(path, now):
                try:
                    if self._refused(path):
                        continue
                    self.take(path)
                    taken += 1
                except OperationalError:  # the database is away: the other files would fail the same way
                    raise  # one "poll failed" per poll (not one per file), the channel down until it answers
                except Exception:  # one unreadable or unmovable file must not hold up the others
                    log.error("file not taken", file=path.name, exc_info=True)
        self._seen = {p: v for p, v in self._seen.items() if p in present and p.exists()}
        self._unmoved = {p: v for p, v in self._unmoved.items() if p in present and p.exists()}
        return taken

    def pending(self) -> int:
        """Files waiting in the folder (for idle detection)."""
        return len(self._waiting()) if self.config.path.is_dir() else 0

    def _waiting(self) -> list[Path]:
        """Files matching the pattern, in name order; dot files are writers' temporaries."""
        return sorted(
            p for p in self.config.path.glob(self.config.pattern) if p.is_file() and not p.name.startswith(".")
        )

    def _settled(self, path: Path, now: float) -> bool:
        try:
            st = path.stat()
        except FileNotFoundError:
            return False
        if self.config.settle <= 0:
            return True
        seen = self._seen.get(path)
        if seen is None or seen[:2] != (st.st_size, st.st_mtime):
            self._seen[path] = (st.st_size, st.st_mtime, now)
            return False
        return now - seen[2] >= self.config.settle

    def _refused(self, path: Path) -> bool:
        """True when ``path`` is larger than ``max_bytes``: it is moved to ``failed`` as ``oversize_<name>``
        without being read (reading a 2 GB file whole would take the gateway's memory) and logged."""
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return True
        if size <= self.config.max_bytes:
            return False
        self.config.failed.mkdir(parents=True, exist_ok=True)
        target = self.config.failed / prefixed("oversize_", path.name)
        n = 1
        while target.exists():  # the same name refused before: keep both
            n += 1
            target = self.config.failed / prefixed(f"oversize_{n}_", path.name)
        _move(path, target)
        log.error(
            "file refused: too large",
            channel=self.name,
            file=path.name,
            size=size,
            limit=self.config.max_bytes,
            moved_to=str(target),
        )
        return True

    def take(self, path: Path) -> Taken:
        st = path.stat()
        before = self._unmoved.get(path)
        if before is not None and before[:2] == (st.st_size, st.st_mtime):
            result = before[2]  # stored (and processed) earlier in this run; only the move failed
        else:
            raw = path.read_bytes()
            result = self.accept(
                raw, channel=self.name, partner=self.config.partner, filename=path.name, headers={"path": str(path)}
            )
        if result.outcome == "received":  # stored, but another worker has it (or the database blinked): next poll
            log.info("file stored, waiting for its processing", file=path.name, message_id=result.message_id)
            return result
        target_dir = self.config.failed if result.outcome == "failed" else self.config.archive
        target = target_dir / prefixed(f"{result.message_id}_", path.name)
        try:
            target_dir.mkdir(parents=True, exist_ok=True)
            _move(path, target)
        except OSError as exc:
            self._unmoved[path] = (st.st_size, st.st_mtime, result)
            log.error(
                "file stored but not moved; the move is retried at the next poll",
                file=path.name,
                message_id=result.message_id,
                status=result.status,
                outcome=result.outcome,
                target=str(target),
                error=f"{type(exc).__name__}: {exc}",
            )
            raise
        self._unmoved.pop(path, None)
        self._seen.pop(path, None)
        log.info("file taken", file=path.name, status=result.status, moved_to=str(target), message_id=result.message_id)
        return result


def _move(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``; across file systems copy into a hidden temporary file beside ``target``,
    sync it, rename it into place, then remove ``source``. On failure nothing is left at ``target`` and the
    source stays."""
    try:
        os.rename(source, target)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    tmp = target.with_name(f".{target.name}.part")
    try:
        shutil.copyfile(source, tmp)
        with open(tmp, "rb") as copied:
            os.fsync(copied.fileno())
        shutil.copystat(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    source.unlink()
