"""A RabbitMQ node of one test's own, for the tests that stop and start the broker mid-run.

The machine's broker (127.0.0.1:5672, ``tests/services/rabbitmq.py``) is shared with other test runs and is
never stopped. ``own_broker`` starts another node as the ``rabbitmq`` OS user: its own node name, AMQP and
distribution ports on 127.0.0.1, Mnesia and log folders in a fresh temporary folder, no plugins. ``stop``
(``rabbitmqctl -n <node> stop``) and ``start`` again keep the Mnesia folder, so durable queues and persistent
messages survive the restart. The folder is removed afterwards.

A missing ``rabbitmq-server`` fails the test that needs it (``./dev test`` installs it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pika
import pytest

from tests.services import missing

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class OwnBroker:
    """A RabbitMQ node of this test only: ``start``, ``stop`` (``rabbitmqctl -n node stop``), ``start`` again;
    the Mnesia folder stays, so durable queues and persistent messages survive a restart."""

    base: Path
    node: str
    port: int
    dist_port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def start(self, timeout: float = 90) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": "/var/lib/rabbitmq",  # the rabbitmq user's Erlang cookie, so rabbitmqctl can reach the node
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": str(self.base / "pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        out = open(self.base / "server.out", "ab")  # noqa: SIM115 - the child holds it; closed below
        try:
            self.proc = subprocess.Popen(
                ["runuser", "-u", "rabbitmq", "--", str(SERVER)],
                env=env,
                cwd="/var/lib/rabbitmq",
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"own RabbitMQ node exited:\n{(self.base / 'server.out').read_text(errors='replace')}")
            with contextlib.suppress(Exception):
                pika.BlockingConnection(pika.URLParameters(self.url)).close()
                return
            time.sleep(0.2)
        pytest.fail(f"own RabbitMQ node did not answer on {self.port}")

    def stop(self) -> None:
        if self.proc is None:
            return
        subprocess.run(["rabbitmqctl", "-q", "-n", self.node, "stop"], capture_output=True, timeout=60, check=False)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # runuser; the node itself was asked to stop above
            self.proc.wait()
        self.proc = None


@pytest.fixture
def own_broker() -> Iterator[OwnBroker]:
    """A running RabbitMQ node of this test's own (see the module docstring); stopped and removed afterwards."""
    if not SERVER.exists() or shutil.which("rabbitmqctl") is None:
        missing("rabbitmq-server", "the restart tests start a RabbitMQ node of their own")
    base = Path(tempfile.mkdtemp(prefix="gw-rabbit-"))
    port = _free_port()
    (base / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{port}\nloopback_users = none\n")
    (base / "enabled_plugins").write_text("[].\n")
    (base / "rabbitmq-env.conf").write_text("")
    for sub in ("mnesia", "log"):
        (base / sub).mkdir()
    subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(base)], check=True)
    base.chmod(0o755)
    broker = OwnBroker(base, f"gwtest-{uuid.uuid4().hex[:8]}@localhost", port, _free_port())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(base, ignore_errors=True)
