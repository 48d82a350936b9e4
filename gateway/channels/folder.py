"""Drop-folder channel: the stand-in for scheduled carrier file drops.

A file is taken once its size and mtime have held still for ``settle`` seconds (a writer may still be busy),
stored and committed, processed, and only then moved: to ``archive`` when it was processed or is a duplicate,
to ``failed`` when it was rejected. A crash before the move leaves the file in place; taking it again finds
the stored copy and records a duplicate, so nothing is lost and nothing is processed twice. Where the file goes
follows the stored original's status, so a resent copy of a rejected file goes to ``failed`` too.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

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

    def run(self, stop: threading.Event) -> None:
        """Poll every ``poll`` seconds until ``stop``; one bad poll is logged and the next one comes."""
        while not stop.is_set():
            try:
                self.poll_once()
                self.up(1)
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
            if self._settled(path, now) and not self._refused(path):
                try:
                    self.take(path)
                    taken += 1
                except Exception:  # one unreadable or unmovable file must not hold up the others
                    log.error("file not taken", file=path.name, exc_info=True)
        self._seen = {p: v for p, v in self._seen.items() if p in present and p.exists()}
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
        shutil.move(path, target)
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
        raw = path.read_bytes()
        result = self.accept(
            raw, channel=self.name, partner=self.config.partner, filename=path.name, headers={"path": str(path)}
        )
        if result.outcome == "received":  # stored, but another worker has it (or the database blinked): next poll
            log.info("file stored, waiting for its processing", file=path.name, message_id=result.message_id)
            return result
        target_dir = self.config.failed if result.outcome == "failed" else self.config.archive
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / prefixed(f"{result.message_id}_", path.name)
        shutil.move(path, target)  # a rename when on the same file system
        self._seen.pop(path, None)
        log.info("file taken", file=path.name, status=result.status, moved_to=str(target), message_id=result.message_id)
        return result
