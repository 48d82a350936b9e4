"""Fixtures of the fault tests: peers of their own to stop, crash and fill (never the machine's shared
PostgreSQL on 5432 or RabbitMQ on 5672, which other test runs use).

- ``own_broker``: a RabbitMQ node of the test's own (``tests/services/rabbitmq_node.py``);
- ``own_postgres``: a PostgreSQL cluster of the test's own (``tests/services/postgres_node.py``);
- ``tiny_disk``: a 256 KB tmpfs mounted in the test's tmp folder (root only), unmounted afterwards;
- ``sshd`` comes from ``tests/services/sshd.py`` (a plugin of the root conftest).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import missing, postgres_node, rabbitmq_node

own_broker = rabbitmq_node.own_broker
own_postgres = postgres_node.own_postgres

TINY = "256k"  # 64 pages: room for the test's archive and sink files once the filler is gone


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of 256 KB: a disk that fills up with one filler file."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if os.geteuid() != 0:
        missing("mount", "the disk-full test mounts a 256 KB tmpfs and must run as root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TINY},mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        missing("mount", f"mount -t tmpfs was refused ({done.stderr.strip()})")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=30, check=False)
