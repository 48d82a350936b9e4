"""A PostgreSQL cluster of one test's own, for the tests that crash and restart the database mid-run.

The machine's PostgreSQL (127.0.0.1:5432) is shared with other test runs and is never stopped. ``own_postgres``
runs ``initdb`` into a fresh temporary folder and ``pg_ctl start`` on a free loopback port (its Unix socket in
that folder too), as the ``postgres`` OS user through ``runuser`` when the tests run as root. Trust
authentication, loopback only. ``restart("immediate")`` is a crash: the server stops without a checkpoint and
recovers from its WAL at the next start. The cluster is stopped and removed afterwards.

Missing binaries (``/usr/lib/postgresql/<version>/bin``) fail the test that needs them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.services import missing

HOST = "127.0.0.1"
USER = "gateway"
DATABASE = "gateway"


def binaries() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has initdb and pg_ctl."""
    found = [
        p / "bin"
        for p in Path("/usr/lib/postgresql").glob("*")
        if (p / "bin" / "initdb").is_file() and (p / "bin" / "pg_ctl").is_file()
    ]
    return max(found, key=lambda b: int(b.parent.name) if b.parent.name.isdigit() else 0) if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class OwnPostgres:
    """One cluster: ``start``, ``stop(mode)``, ``restart(mode)``; ``url`` for the gateway."""

    bin: Path
    base: Path  # data, socket and log live here
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@{HOST}:{self.port}/{DATABASE}"

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A PostgreSQL binary as the ``postgres`` user (when root), in the cluster's folder."""
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.base)
        if check and done.returncode != 0:
            pytest.fail(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{self.tail()}")
        return done

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no server log)"

    def init(self) -> None:
        self.run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as fh:
            fh.write(
                f"listen_addresses = '{HOST}'\nport = {self.port}\nunix_socket_directories = '{self.base}'\n"
                "shared_buffers = 16MB\nmax_connections = 40\n"
            )

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast`` (clean) or ``immediate`` (a crash: no checkpoint, recovery at the next start)."""
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def restart(self, mode: str = "immediate") -> None:
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", mode, "-w", "-t", "60", "restart")

    def running(self) -> bool:
        return self.run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def create_database(self) -> None:
        self.run("createdb", "-h", HOST, "-p", str(self.port), "-U", USER, DATABASE)


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    """A running cluster of this test's own with an empty database ``gateway`` (see the module docstring)."""
    found = binaries()
    if found is None:
        missing("PostgreSQL server binaries", "no /usr/lib/postgresql/<version>/bin/initdb (Debian package postgresql)")
        raise AssertionError  # missing() fails the test
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        missing("runuser", "the cluster runs as the postgres user")
    base = Path(tempfile.mkdtemp(prefix="gw-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    base.chmod(0o755)
    cluster = OwnPostgres(found, base, _free_port())
    started = time.monotonic()
    cluster.init()
    cluster.start()
    cluster.create_database()
    print(f"own PostgreSQL on {HOST}:{cluster.port} in {time.monotonic() - started:.1f} s")
    try:
        yield cluster
    finally:
        cluster.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)
