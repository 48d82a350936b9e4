"""RabbitMQ stops and comes back under the AMQP channel (a node of the test's own; the shared broker on 5672 is
never touched).

A gateway in this process (the fault is in the peer) consumes a quorum queue holding the payloads; mid-run the
node is stopped (``rabbitmqctl stop``: every connection closes, unacknowledged deliveries return to the queue
when the node comes back) and started again a few seconds later. More payloads are published after the restart.

The other direction, the AMQP sink publishing while the broker restarts, is proved by
``tests/integration/sinks/test_amqp_sink.py::test_a_broker_restart_in_the_middle_of_a_publish_run_loses_nothing``.
"""

from __future__ import annotations

import time
from pathlib import Path
from unittest.mock import MagicMock

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.channels.amqp import AmqpConsumer
from gateway.config import AmqpChannel
from tests.acceptance.crashkit import wait_for
from tests.conftest import write_config
from tests.faults.kit import (
    ROUTE,
    Dashboard,
    add_operator,
    assert_conpas_once,
    assert_received_once,
    containers_of,
    open_deliveries,
    originals_by_sha,
    payload,
    running,
    statuses,
)
from tests.services.rabbitmq import TestQueue
from tests.services.rabbitmq_node import OwnBroker

CHANNEL = "bus"
BEFORE = 300  # waiting in the queue when the gateway starts
AFTER = 50  # published once the node is back


def test_a_broker_restart_mid_consumption_loses_nothing_and_does_nothing_twice(
    tmp_path: Path, database_url: str, own_broker: OwnBroker
) -> None:
    """Breaks if a delivery is acked before its commit (lost with the node), a redelivered copy is stored as a
    second original or processed again (a second container.announced or CONPAS file), the consumer does not
    reconnect after the restart, messages are left in the queue or dead-lettered, or the outage is not shown:
    the channel down on /readyz and on the dashboard's overview while the node is away, up again after."""
    channel = {
        "type": "amqp",
        "url": own_broker.url,
        "queue": "fault-in",
        "prefetch": 20,
        "max_backoff": "1s",
        "delivery_limit": 20,
    }
    config = write_config(
        tmp_path,
        database_url,
        channels={CHANNEL: channel},
        routes={ROUTE: {"on": "container.announced", "render": "conpas", "to": {"type": "folder", "path": "outbox"}}},
    )
    add_operator(config)
    queue = TestQueue(own_broker.url, "fault-in")
    queue.with_channel(AmqpConsumer(CHANNEL, AmqpChannel.model_validate(channel), MagicMock()).declare)
    sent = [payload(i) for i in range(BEFORE + AFTER)]
    assert queue.publish(sent[:BEFORE]) == BEFORE

    def stored() -> int:
        return len(originals_by_sha(database_url, CHANNEL))

    gw = Gateway(config_mod.load(config))
    try:
        with running(gw) as url:
            ops = Dashboard(url)
            ops.login()
            wait_for(lambda: ops.shows({CHANNEL: "up"}), 30)
            wait_for(lambda: stored() >= 20, 60)
            own_broker.stop()
            at_stop = stored()
            assert at_stop < BEFORE, "the stop came after the last message"
            wait_for(lambda: ops.shows({CHANNEL: "down"}), 15)
            code, ready = ops.readyz()
            assert (code, ready) == (200, {"status": "ready", "channels": {CHANNEL: "down"}})  # the database is up
            time.sleep(2)  # reconnects keep failing meanwhile
            assert ops.shows({CHANNEL: "down"})

            own_broker.start()
            wait_for(lambda: ops.shows({CHANNEL: "up"}), 60)
            assert queue.publish(sent[BEFORE:]) == AFTER
            wait_for(lambda: stored() == BEFORE + AFTER and statuses(database_url, CHANNEL)["received"] == 0, 120)
            wait_for(lambda: queue.count() == 0 and open_deliveries(database_url) == 0, 60)
            assert ops.readyz() == (200, {"status": "ready", "channels": {CHANNEL: "up"}})
            ops.close()
    finally:
        gw.close()
    assert queue.count(queue.dead_letter_queue) == 0
    print(f"stored at the stop: {at_stop}; statuses: {dict(statuses(database_url, CHANNEL))}")
    assert_received_once(database_url, CHANNEL, sent, outcomes={"done"})
    containers = {n for i in range(len(sent)) for n in containers_of(i)}
    assert_conpas_once(database_url, tmp_path / "outbox", containers)
