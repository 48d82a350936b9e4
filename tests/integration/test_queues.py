"""Notices between roles through the machine's RabbitMQ (gateway/queues.py) and the Gateway's use of them: what a
receiver, a worker and a dispatcher publish and consume, and how work whose notice is lost still gets done."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
from sqlalchemy import select

from gateway import config as config_mod
from gateway import queues as queues_mod
from gateway.app import Gateway
from gateway.config import QueuesConfig
from gateway.model import Delivery, Message
from gateway.queues import DELIVERIES, RECEIVED, RabbitQueues, parse_ids
from tests.acceptance.crashkit import wait_for
from tests.conftest import COPARN_EXAMPLE, write_config


@pytest.fixture
def queues(amqp_url: str) -> Iterator[RabbitQueues]:
    """Queues of this test's own prefix, deleted afterwards."""
    rabbit = RabbitQueues(QueuesConfig(url=amqp_url, prefix=f"gw-test-{uuid.uuid4().hex[:8]}"))
    yield rabbit
    rabbit.close()
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    with contextlib.closing(connection):
        channel = connection.channel()
        for kind in (RECEIVED, DELIVERIES):
            channel.queue_delete(rabbit.name(kind))


def take_all(queues: RabbitQueues, kind: str) -> list[bytes]:
    url = queues.config.url
    connection = pika.BlockingConnection(pika.URLParameters(url))
    with contextlib.closing(connection):
        channel = connection.channel()
        bodies = []
        while True:
            method, _props, body = channel.basic_get(queues.name(kind), auto_ack=True)
            if method is None:
                return bodies
            bodies.append(body)


def queued_gateway(tmp_path: Path, database_url: str, queues: RabbitQueues) -> Gateway:
    config = write_config(
        tmp_path, database_url, queues={"url": queues.config.url, "prefix": queues.config.prefix, "sweep": "1s"}
    )
    return Gateway(config_mod.load(config))


def test_parse_ids_takes_an_id_or_a_list_and_ignores_the_rest() -> None:
    """Breaks if a malformed notice (from another publisher on the same broker) raised in the consumer."""
    assert parse_ids(b"42") == [42]
    assert parse_ids(b"[1, 2, 3]") == [1, 2, 3]
    assert parse_ids(b"true") == [] and parse_ids(b'["1"]') == [] and parse_ids(b"\xff") == []


def test_queues_refuse_a_password_in_routes_yaml() -> None:
    """Breaks if a broker password could sit in routes.yaml instead of the environment."""
    with pytest.raises(ValueError, match="url_env"):
        QueuesConfig(url="amqp://gw:secret@127.0.0.1/")


def test_a_notice_put_back_while_the_database_is_away_comes_again(queues: RabbitQueues) -> None:
    """Breaks if a notice the handler could not act on were acknowledged (its work would wait for a sweep) or if
    the consumer did not pause after putting it back."""
    queues.received([7])
    seen: list[bytes] = []
    pauses: list[int] = []
    stop = threading.Event()

    def handle(body: bytes) -> bool:
        seen.append(body)
        if len(seen) == 2:
            stop.set()
        return len(seen) > 1  # the first time the "database" is away

    thread = threading.Thread(
        target=queues.consume, args=(RECEIVED, handle, stop), kwargs={"pause": lambda: pauses.append(1)}
    )
    thread.start()
    thread.join(timeout=30)
    assert seen == [b"7", b"7"] and pauses == [1]
    assert take_all(queues, RECEIVED) == []  # acknowledged the second time


def test_long_work_keeps_the_connection_and_its_notice(amqp_url: str, queues: RabbitQueues) -> None:
    """Breaks if the consumer stopped answering heartbeats while a notice's work went on (a 200 MB interchange
    takes minutes): the broker would close the connection, the acknowledgement would fail and the notice would go
    to another worker while this one still processed it."""
    slow = RabbitQueues(queues.config.model_copy(update={"heartbeat": 1}))
    slow.received([9])
    seen: list[bytes] = []
    stop = threading.Event()

    def handle(body: bytes) -> bool:
        seen.append(body)
        time.sleep(4.5)  # several heartbeat intervals
        stop.set()
        return True

    thread = threading.Thread(target=slow.consume, args=(RECEIVED, handle, stop), kwargs={"pause": lambda: None})
    thread.start()
    thread.join(timeout=60)
    slow.close()
    assert seen == [b"9"]
    assert take_all(queues, RECEIVED) == []  # acknowledged on the connection that received it


def test_a_receiver_without_the_worker_role_stores_archives_and_tells_the_workers(
    tmp_path: Path, database_url: str, queues: RabbitQueues
) -> None:
    """Breaks if a receiver process processed payloads itself (scale-out would not spread the work), left the
    file in the folder (stored again and again as duplicates), or did not publish the message's id."""
    gw = queued_gateway(tmp_path, database_url, queues)
    try:
        gw.roles = ("receiver",)
        (tmp_path / "inbox").mkdir()
        (tmp_path / "inbox" / "a.edi").write_bytes(COPARN_EXAMPLE.read_bytes())
        poller = gw.channels[0]
        assert poller.poll_once() == 1  # type: ignore[attr-defined]
        with gw.sessions() as s:
            msg = s.scalars(select(Message)).one()
            assert msg.status == "received"
        assert [p.name for p in (tmp_path / "archive").iterdir()] == [f"{msg.id}_a.edi"]
        assert take_all(queues, RECEIVED) == [str(msg.id).encode()]
    finally:
        gw.close()


def test_a_worker_processes_a_notice_and_tells_the_dispatchers_which_deliveries(
    tmp_path: Path, database_url: str, queues: RabbitQueues, coparn: bytes
) -> None:
    """Breaks if the worker's notice handling did not process the message, acknowledged a notice for work it
    could not do, or did not hand the dispatchers the ids of the deliveries the message queued."""
    gw = queued_gateway(tmp_path, database_url, queues)
    try:
        receipt = gw.receive(coparn, channel="drops")
        assert take_all(queues, RECEIVED) == [str(receipt.message_id).encode()]
        assert gw.work_notice(str(receipt.message_id).encode()) is True
        assert gw.work_notice(str(receipt.message_id).encode()) is True  # a second notice: done already, acked
        with gw.sessions() as s:
            assert s.get_one(Message, receipt.message_id).status == "done"
            ids = list(s.scalars(select(Delivery.id).order_by(Delivery.id)))
        assert len(ids) == 3  # three containers, one CONPAS pre-notification each
        notices = take_all(queues, DELIVERIES)
        assert [parse_ids(n) for n in notices] == [ids]
        assert gw.dispatch_notice(notices[0]) is True
        with gw.sessions() as s:
            assert {d.status for d in s.scalars(select(Delivery))} == {"done"}
    finally:
        gw.close()


def test_work_whose_notice_was_lost_is_found_by_the_sweep(
    tmp_path: Path, database_url: str, coparn: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Breaks if a broker that does not answer made the store fail (the sender must be acknowledged once the
    payload is committed), if every receipt waited for the broker's timeout again, or if the worker's sweep did
    not find a message no notice announced."""
    monkeypatch.setattr(queues_mod, "PUBLISH_TIMEOUT", 1.0)
    silent = socket.socket()  # accepts connections (the kernel does) and never says a word
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    config = write_config(tmp_path, database_url, queues={"url": f"amqp://guest:guest@127.0.0.1:{port}/%2F"})
    gw = Gateway(config_mod.load(config))
    try:
        receipt = gw.receive(coparn, channel="drops")
        assert not receipt.duplicate
        started = time.monotonic()
        second = gw.receive(coparn.replace(b"20261124001", b"20261124002"), channel="drops")
        assert time.monotonic() - started < 0.5  # publishing rests after a failure: no connect attempt per receipt
        wait_for(lambda: gw.process_received(older_than=0.0) == 2, 10)
        assert second.message_id != receipt.message_id
        with gw.sessions() as s:
            assert s.get_one(Message, receipt.message_id).status == "done"
    finally:
        gw.close()


def test_run_refuses_an_unknown_role(tmp_path: Path, database_url: str) -> None:
    """Breaks if a typo in a role ran nothing silently."""
    gw = Gateway(config_mod.load(write_config(tmp_path, database_url)))
    try:
        with pytest.raises(ValueError, match="unknown role 'workers'"):
            gw.run(threading.Event(), roles=("workers",))
    finally:
        gw.close()


def test_a_web_process_reports_only_the_channels_it_runs(tmp_path: Path, database_url: str) -> None:
    """Breaks if a web-only process (roles apart) showed the receivers' channels as down on /readyz and the
    dashboard: it does not run them, so it cannot know."""
    channels = {
        "drops": {"type": "folder", "path": "inbox", "archive": "archive", "failed": "failed"},
        "api": {"type": "http"},
    }
    gw = Gateway(config_mod.load(write_config(tmp_path, database_url, channels=channels)))
    try:
        assert set(gw.channel_states()) == {"drops", "api"}  # one process: every role
        gw.roles = ("web",)
        assert set(gw.channel_states()) == {"api"}
        gw.roles = ("worker", "dispatcher")
        assert gw.channel_states() == {}
    finally:
        gw.close()
