"""AMQP channel under SIGKILL: 1,000 persistent messages in a quorum queue, the gateway killed while consuming,
restarted, and every message stored exactly once, nothing left unacknowledged and nothing dead-lettered.

A message is acked only after its commit, so the kill can leave a stored message unacked: RabbitMQ redelivers it
after the restart and the store records it as a duplicate, never as a second original. A message delivered but
not yet stored when the process died is redelivered and stored then.
"""

from __future__ import annotations

from pathlib import Path
from unittest.mock import MagicMock

from gateway.channels.amqp import AmqpConsumer
from gateway.config import AmqpChannel
from tests.acceptance.crashkit import (
    COUNT,
    GatewayProcess,
    assert_stored_once,
    originals,
    payloads,
    unprocessed,
    wait_for,
)
from tests.conftest import write_config
from tests.services.rabbitmq import TestQueue

CHANNEL = "bus"


def test_sigkill_mid_consumption_loses_nothing_and_stores_nothing_twice(
    tmp_path: Path, database_url: str, amqp_queue: TestQueue
) -> None:
    """Breaks if a delivery is acked before its commit (a message acked but not stored would be missing after
    the kill), if an unacked one is not redelivered or is stored twice as an original, or if the restarted
    consumer leaves messages unacknowledged or dead-letters any."""
    channel = {"type": "amqp", "url": amqp_queue.url, "queue": amqp_queue.name, "prefetch": 50}
    config = write_config(tmp_path, database_url, channels={CHANNEL: channel}, routes={})
    # the queue exists before the gateway starts, declared as the channel declares it; then 1,000 messages wait
    declarer = AmqpConsumer(CHANNEL, AmqpChannel.model_validate(channel), MagicMock())
    amqp_queue.with_channel(declarer.declare)
    sent = payloads(COUNT)
    assert amqp_queue.publish(sent) == COUNT

    def stored() -> int:
        return sum(originals(database_url, CHANNEL).values())

    gateway = GatewayProcess(config)
    try:
        gateway.start()
        wait_for(lambda: stored() >= 300, 120, gateway.describe)
        gateway.kill()
        at_kill = stored()
        assert at_kill < COUNT, "the kill came too late to test anything"
        wait_for(lambda: amqp_queue.consumers() == 0, 30)  # the broker saw the connection die
        waiting = amqp_queue.count()  # and returned the dead consumer's unacked deliveries to the queue
        assert COUNT - at_kill <= waiting <= COUNT - at_kill + channel["prefetch"]

        gateway.start()
        wait_for(
            lambda: amqp_queue.count() == 0 and stored() == COUNT and unprocessed(database_url, CHANNEL) == 0,
            180,
            gateway.describe,
        )
    finally:
        gateway.stop()  # the consumer's connection closes: anything still unacknowledged returns to the queue
    assert amqp_queue.count() == 0
    assert amqp_queue.count(amqp_queue.dead_letter_queue) == 0
    assert_stored_once(database_url, CHANNEL, sent)
