"""OpenSSH sshd on a loopback port for the SFTP polling tests (fixtures; see tests/services/__init__.py).

``sshd`` starts ``/usr/sbin/sshd -D -e -f <config>`` on a free 127.0.0.1 port with a generated config, its own
Ed25519 host key and an authorized key for ``root`` (the tests run as root; root may log in by key only), all
in the test's tmp folder. Sessions get ``internal-sftp`` and nothing else (no shell, no forwarding). The test
reads and writes the remote folders directly on disk: the server and the test see the same files.

``sftp_password_user`` adds a throwaway account with a random password for the password-authentication test
(home in a fresh /tmp folder owned by it) and removes it afterwards; root's password is never touched.

A missing ``/usr/sbin/sshd`` fails the test (``./dev test`` installs it).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.services import missing

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def keygen(path: Path, kind: str = "ed25519", passphrase: str = "") -> Path:
    """A new key pair at ``path`` (private) and ``path.pub``."""
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", kind, "-N", passphrase, "-C", path.name, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def fingerprint(pub: Path) -> str:
    """``SHA256:…`` as ``ssh-keygen -lf`` prints it."""
    out = subprocess.run([SSH_KEYGEN, "-lf", str(pub)], check=True, capture_output=True, text=True).stdout
    return out.split()[1]


@dataclass
class Sshd:
    """One sshd: ``start``, ``stop`` (the listener and every session it forked) and ``start`` again."""

    root: Path  # config, keys and log live here
    port: int
    host_key: Path  # private; .pub beside it
    client_key: Path  # root's key (no passphrase); .pub is in authorized_keys
    user: str = "root"
    host: str = HOST
    max_sessions: int = 64  # channels per connection (OpenSSH's MaxSessions); change, then stop() and start()
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def config(self) -> Path:
        return self.root / "sshd_config"

    @property
    def log(self) -> Path:
        return self.root / "sshd.log"

    @property
    def host_key_line(self) -> str:
        """``ssh-ed25519 AAAA…`` (type and base64, no comment)."""
        return " ".join(self.host_key.with_suffix(".pub").read_text().split()[:2])

    @property
    def host_fingerprint(self) -> str:
        return fingerprint(self.host_key.with_suffix(".pub"))

    def channel(self, remote: Path, **overrides: Any) -> dict[str, Any]:
        """An ``sftp`` channel of routes.yaml on this server: its key pinned by fingerprint, fast polls."""
        return {
            "type": "sftp",
            "host": self.host,
            "port": self.port,
            "username": self.user,
            "key_file": str(self.client_key),
            "host_key_sha256": [self.host_fingerprint],
            "path": str(remote),
            "pattern": "*.edi",
            "poll": "100ms",
            "settle": 0,
            "timeout": "5s",
            "max_backoff": "1s",
            **overrides,
        }

    def known_hosts(self, path: Path, key_line: str | None = None) -> Path:
        """A known_hosts file pinning ``key_line`` (default: this server's key) for ``[127.0.0.1]:port``."""
        path.write_text(f"[{self.host}]:{self.port} {key_line or self.host_key_line}\n")
        return path

    def write_config(self) -> None:
        self.config.write_text(
            "\n".join(
                [
                    f"ListenAddress {self.host}:{self.port}",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.root / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.root / 'authorized_keys'} .ssh/authorized_keys",
                    "PermitRootLogin prohibit-password",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication yes",
                    "KbdInteractiveAuthentication no",
                    "PermitEmptyPasswords no",
                    "UsePAM no",
                    "StrictModes no",
                    "DisableForwarding yes",
                    "PermitTTY no",
                    f"MaxSessions {self.max_sessions}",
                    "MaxStartups 64",
                    "LoginGraceTime 30",
                    "LogLevel VERBOSE",
                    "Subsystem sftp internal-sftp",
                    "ForceCommand internal-sftp",
                    "",
                ]
            )
        )

    def start(self, timeout: float = 15) -> None:
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)  # privilege separation directory
        self.write_config()
        self.starts += 1
        log = open(self.log, "ab")  # noqa: SIM115 - the child holds it; closed below
        try:
            self.proc = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"sshd exited with {self.proc.returncode}:\n{self.log.read_text(errors='replace')}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"sshd did not answer on {self.host}:{self.port}:\n{self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        """Stop the listener and the session processes it forked (they run in their own sessions)."""
        if self.proc is None:
            return
        victims = [self.proc.pid, *_descendants(self.proc.pid)]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        deadline = time.monotonic() + 5
        for pid in victims[1:]:
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
        self.proc = None


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> list[int]:
    tree = _children()
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    """A running sshd on a free loopback port; root logs in with ``sshd.client_key``."""
    if not SSHD.is_file():
        missing("OpenSSH sshd", f"{SSHD} is missing (Debian package openssh-server)")
    root = tmp_path / "sshd"
    root.mkdir()
    host_key = keygen(root / "ssh_host_ed25519_key")
    client_key = keygen(root / "client_ed25519")
    (root / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    server = Sshd(root=root, port=_free_port(), host_key=host_key, client_key=client_key)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class PasswordUser:
    name: str
    password: str
    home: Path  # owned by the user; a folder the test can use as the remote path


@pytest.fixture
def sftp_password_user() -> Iterator[PasswordUser]:
    """A throwaway local account with a random password (removed afterwards), for password authentication."""
    if os.geteuid() != 0:
        pytest.fail("the password-authentication test adds a throwaway account and needs root", pytrace=False)
    name = f"gwsftp{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(18)
    home = Path(tempfile.mkdtemp(prefix="gw-sftp-home-"))
    nologin = "/usr/sbin/nologin" if Path("/usr/sbin/nologin").exists() else "/bin/false"
    subprocess.run(
        ["useradd", "--no-create-home", "--home-dir", str(home), "--shell", nologin, "--user-group", name],
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True, capture_output=True)
        uid, gid = _ids(name)
        os.chown(home, uid, gid)
        yield PasswordUser(name, password, home)
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def _ids(name: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid
