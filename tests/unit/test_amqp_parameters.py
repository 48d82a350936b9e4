"""AMQP connection parameters: verifying TLS for amqps://, the heartbeat, the URL from the environment."""

from __future__ import annotations

import ssl
from pathlib import Path
from unittest.mock import MagicMock
from urllib.parse import quote

import pytest

from gateway.channels.amqp import AmqpConsumer
from gateway.config import AmqpChannel, AmqpSink, QueuesConfig
from gateway.outbound.sinks.amqp import AmqpSinkPublisher
from gateway.queues import RabbitQueues


def consumer(**fields: object) -> AmqpConsumer:
    return AmqpConsumer("bus", AmqpChannel.model_validate({"type": "amqp", "queue": "q", **fields}), MagicMock())


def test_amqps_verifies_the_server_certificate_and_host_name() -> None:
    """Breaks if amqps:// connects without checking the certificate or the host name it was issued for (pika's
    own default context for amqps:// has no server name, so the handshake would not check the name)."""
    params = consumer(url="amqps://gw:secret@broker.example.jp:5671/edi").parameters()
    assert params.ssl_options is not None
    context = params.ssl_options.context
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert params.ssl_options.server_hostname == "broker.example.jp"
    assert (params.host, params.port, params.virtual_host) == ("broker.example.jp", 5671, "edi")


def test_amqps_with_pika_ssl_options_still_verifies(tmp_path: Path) -> None:
    """Breaks if the URL's ssl_options (pika's way to name a private CA) could switch verification off."""
    options = quote(repr({"ca_path": str(tmp_path), "server_hostname": "mq.example.jp"}))
    url = f"amqps://broker.example.jp/%2F?ssl_options={options}"
    params = consumer(url=url).parameters()
    assert params.ssl_options is not None
    assert params.ssl_options.context.verify_mode == ssl.CERT_REQUIRED
    assert params.ssl_options.context.check_hostname is True
    assert params.ssl_options.server_hostname == "mq.example.jp"


def test_plain_amqp_has_no_tls_and_takes_the_heartbeat() -> None:
    params = consumer(heartbeat=15).parameters()
    assert params.ssl_options is None
    assert params.heartbeat == 15
    assert params.client_properties is not None and "bus" in params.client_properties["connection_name"]


def test_the_url_comes_from_url_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Breaks if url_env is ignored (the password would have to stand in routes.yaml) or a missing variable
    connects to the default broker instead of failing."""
    monkeypatch.setenv("GW_TEST_AMQP", "amqp://gw:pw@127.0.0.2:5673/edi")
    assert consumer(url_env="GW_TEST_AMQP").parameters().port == 5673
    monkeypatch.delenv("GW_TEST_AMQP")
    with pytest.raises(RuntimeError, match="GW_TEST_AMQP"):
        consumer(url_env="GW_TEST_AMQP").parameters()


def test_dead_letter_names_default_to_the_queue_name() -> None:
    c = consumer(delivery_limit=7)
    assert (c.dead_letter_exchange, c.dead_letter_queue) == ("q.dlx", "q.dead")
    assert c.queue_arguments()["x-delivery-limit"] == 7
    assert (
        consumer(dead_letter_exchange="dlx", dead_letter_queue="dead").queue_arguments()["x-dead-letter-routing-key"]
        == "dead"
    )


def test_the_sink_and_the_queues_verify_amqps_as_the_channel_does() -> None:
    """Breaks if the AMQP sink or the notice queues between roles connected over amqps:// without checking the
    host name (the sink once built its own parameters and left pika's default context in place)."""
    url = "amqps://mq.example.jp/%2F"
    sink = AmqpSinkPublisher(AmqpSink.model_validate({"type": "amqp", "url": url, "routing_key": "k"}))
    queues = RabbitQueues(QueuesConfig(url=url))
    for params in (sink.parameters(), queues.parameters("publisher")):
        assert params.ssl_options is not None
        assert params.ssl_options.context.verify_mode == ssl.CERT_REQUIRED
        assert params.ssl_options.context.check_hostname is True
        assert params.ssl_options.server_hostname == "mq.example.jp"
