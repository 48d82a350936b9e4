"""The gateway as separate roles on PostgreSQL and RabbitMQ: one receiver, two workers, two dispatchers, each its
own ``gateway run --role ...`` process. One worker and one dispatcher are SIGKILLed in the middle of the run, and
every message must still be processed exactly once in effect: stored once, persisted once (one container row,
one ``container.announced`` event, one delivery per container), and one CONPAS file per container.

A worker killed mid-transaction leaves nothing (PostgreSQL rolls it back) and its unacknowledged notices go back
to the ``<prefix>.received`` queue, where the other worker takes them. A dispatcher killed mid-send leaves its
claimed deliveries ``sending`` under a lease (2 s here): the other dispatcher takes them over when the lease
runs out and sends the same rendered bytes under the same idempotency key, so the folder sink writes the same
file name again (one file per delivery, whatever the number of attempts).
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any

import pika
import pytest
from sqlalchemy import func, select

from gateway.iso6346 import check_digit
from gateway.model import Container, Delivery, Event, Message
from gateway.store import db
from tests.acceptance.crashkit import GatewayProcess, wait_for
from tests.conftest import write_config
from tests.services import rabbitmq_node
from tests.services.rabbitmq_node import OwnBroker

FILES = 400
own_broker = rabbitmq_node.own_broker  # a RabbitMQ node of the test's own, to stop and start
HEADER = "UNA:+.? '\nUNB+UNOA:2+ONEY:ZZZ+JPTYOCY1:ZZZ+261124:0930+S{n:08d}'\n"
MESSAGE = (
    "UNH+1+COPARN:D:95B:UN:SMDG16'\nBGM+126+BKG{n:07d}+9'\nRFF+BN:ONEYTYO{n:07d}'\n"
    "TDT+20+{voyage}+1++ONEY:172:20+++JD7712:103::ONE APUS'\nLOC+9+JPTYO:139:6'\nLOC+11+USLAX:139:6'\n"
    "DTM+133:202612011800:203'\nNAD+CA+ONEY:160:20'\nEQD+CN+{container}+45G1:102:5++2+5'\n"
    "MEA+AAE+G+KGM:24500'\nMEA+AAE+VGM+KGM:28350'\nCNT+16:1'\nUNT+13+1'\nUNZ+1+S{n:08d}'\n"
)


def container_number(n: int) -> str:
    first_ten = f"SCAU{n:06d}"
    return f"{first_ten}{check_digit(first_ten)}"


def coparn(n: int) -> bytes:
    """One interchange, one message, its own booking and container: each payload has effects of its own."""
    return (HEADER.format(n=n) + MESSAGE.format(n=n, voyage=f"{n % 7:03d}E", container=container_number(n))).encode()


def routes_yaml(tmp_path: Path, database_url: str, amqp_url: str, prefix: str = "gateway") -> Path:
    """The tests' usual routes.yaml (folder channel ``drops``, COPARN mapping, CONPAS route to outbox/conpas) with
    queues between roles, a 2 s sweep and a 2 s lease, so that taking over a killed process's work is quick."""
    return write_config(
        tmp_path,
        database_url,
        queues={"url": amqp_url, "prefix": prefix, "sweep": "2s", "max_backoff": "2s"},
        dispatch={"lease": "2s", "poll": "500ms", "batch": 20},
    )


def counts(url: str) -> dict[str, int]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            by_status = dict(conn.execute(select(Message.status, func.count()).group_by(Message.status)).all())
            deliveries = dict(conn.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
        return {
            **{f"message.{k}": v for k, v in by_status.items()},
            **{f"delivery.{k}": v for k, v in deliveries.items()},
        }
    finally:
        engine.dispose()


@pytest.fixture
def queue_prefix(amqp_url: str) -> Any:
    prefix = f"gw-test-{uuid.uuid4().hex[:8]}"
    yield prefix
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    with contextlib.closing(connection):
        channel = connection.channel()
        for kind in ("received", "deliveries"):
            channel.queue_delete(f"{prefix}.{kind}")


@pytest.mark.postgresql
def test_two_workers_and_two_dispatchers_survive_a_sigkill_of_one_each(
    tmp_path: Path, postgres_url: str, amqp_url: str, queue_prefix: str
) -> None:
    """Breaks if a notice is acknowledged before its work is committed (a killed worker's message would stay
    unprocessed until no one looks), if a worker or dispatcher claims work another holds (a message persisted
    twice: two containers, two events, two deliveries), if a killed dispatcher's claimed delivery is never taken
    over, or sent under another key (two CONPAS files for one container), or if receivers process instead of
    handing over to the workers."""
    config = routes_yaml(tmp_path, postgres_url, amqp_url, queue_prefix)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for n in range(FILES):
        (inbox / f".{n:05d}.tmp").write_bytes(coparn(n))

    def role(name: str, *roles: str) -> GatewayProcess:
        return GatewayProcess(config, *(a for r in roles for a in ("--role", r)), name=name)

    workers = [role("worker-a", "worker"), role("worker-b", "worker")]
    dispatchers = [role("dispatcher-a", "dispatcher"), role("dispatcher-b", "dispatcher")]
    receiver = role("receiver", "receiver")
    processes = [receiver, *workers, *dispatchers]
    try:
        for proc in processes[1:]:
            proc.start()
        receiver.start()
        for tmp in sorted(inbox.glob(".*.tmp")):  # the receiver sees whole files only
            tmp.rename(inbox / f"{tmp.stem.lstrip('.')}.edi")

        wait_for(lambda: counts(postgres_url).get("message.done", 0) >= FILES // 4, 120, workers[0].describe)
        workers[0].kill()
        wait_for(lambda: counts(postgres_url).get("delivery.done", 0) >= FILES // 4, 120, dispatchers[0].describe)
        dispatchers[0].kill()
        at_kill = counts(postgres_url)
        assert at_kill.get("message.done", 0) < FILES, f"the worker was killed too late to test anything: {at_kill}"
        assert at_kill.get("delivery.done", 0) < FILES, f"the dispatcher was killed too late: {at_kill}"
        wait_until_finished(postgres_url, workers[1])
    finally:
        for proc in processes:
            proc.stop()

    assert_once(tmp_path, postgres_url)


@pytest.mark.postgresql
def test_roles_go_on_through_a_broker_outage_and_lose_nothing(
    tmp_path: Path, postgres_url: str, own_broker: OwnBroker
) -> None:
    """Breaks if a receiver's failed publish failed the receipt, if workers stopped when their notices stopped
    (the sweep must find what was stored meanwhile), if consumers did not reconnect once the broker was back, or
    if notices published before the outage and redelivered after it made anything happen twice."""
    config = routes_yaml(tmp_path, postgres_url, own_broker.url)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    processes = [
        GatewayProcess(config, "--role", "receiver", name="receiver"),
        GatewayProcess(config, "--role", "worker", name="worker"),
        GatewayProcess(config, "--role", "dispatcher", name="dispatcher"),
    ]
    half = FILES // 2
    try:
        for proc in processes:
            proc.start()
        for n in range(half):
            (inbox / f".{n:05d}.tmp").write_bytes(coparn(n))
            (inbox / f".{n:05d}.tmp").rename(inbox / f"{n:05d}.edi")
        wait_for(lambda: counts(postgres_url).get("message.done", 0) >= FILES // 8, 120, processes[1].describe)
        own_broker.stop()
        during = counts(postgres_url).get("message.done", 0)
        for n in range(half, FILES):  # dropped while the broker is away
            (inbox / f".{n:05d}.tmp").write_bytes(coparn(n))
            (inbox / f".{n:05d}.tmp").rename(inbox / f"{n:05d}.edi")
        # no notices now: the worker's sweep (2 s) and the dispatcher's poll keep the work going
        wait_for(lambda: counts(postgres_url).get("message.done", 0) > during + 50, 120, processes[1].describe)
        assert during < FILES
        own_broker.start()
        wait_until_finished(postgres_url, processes[1])
    finally:
        for proc in processes:
            proc.stop()
    assert_once(tmp_path, postgres_url)
    logs = "".join(proc.log_path.read_text() for proc in processes)
    assert "notices not published for a while" in logs  # the receiver saw the outage and went on
    assert "queue consumer disconnected" in logs


def wait_until_finished(url: str, watched: GatewayProcess) -> None:
    def finished() -> bool:
        c = counts(url)
        return c.get("message.done", 0) == FILES and c.get("delivery.done", 0) == FILES

    wait_for(finished, 180, lambda: f"{counts(url)}\n{watched.describe()}")


def assert_once(tmp_path: Path, postgres_url: str) -> None:
    """Every payload stored once, processed once, one container, event, delivery and CONPAS file each."""
    final = counts(postgres_url)
    assert final.get("message.received", 0) == 0 and final.get("message.failed", 0) == 0, final
    assert final.get("message.duplicate", 0) == 0, final  # the receiver was never killed: nothing resent
    engine = db.make_engine(postgres_url)
    try:
        with engine.connect() as conn:
            per_container = dict(conn.execute(select(Container.number, func.count()).group_by(Container.number)).all())
            announced = conn.scalar(select(func.count()).where(Event.kind == "container.announced"))
            deliveries = conn.scalar(select(func.count()).select_from(Delivery))
            steps = [row[0] for row in conn.execute(select(Message.steps).where(Message.direction == "in"))]
    finally:
        engine.dispose()
    assert set(per_container) == {container_number(n) for n in range(FILES)}
    assert set(per_container.values()) == {1}, "a container persisted twice"
    assert announced == FILES and deliveries == FILES, (announced, deliveries)
    assert all([s["step"] for s in st].count("persist") == 1 for st in steps), "a message processed twice"
    files = sorted(p.name for p in (tmp_path / "outbox" / "conpas").iterdir())
    assert len(files) == FILES, f"{len(files)} CONPAS files for {FILES} containers"
    assert {name.split("_")[0] for name in files} == set(per_container)
    assert len(list((tmp_path / "archive").iterdir())) == FILES
