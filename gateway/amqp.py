"""RabbitMQ connection settings, one way for the AMQP channel, the AMQP sink and the queues between roles.

The password lives in the URL, so the URL comes from an environment variable (``url_env``) or is RabbitMQ's
local guest default; it is never logged. ``amqps://`` always verifies the certificate *and* the host name:
pika's own default context for ``amqps://`` has no server name to check.
"""

from __future__ import annotations

import os
import ssl
from urllib.parse import parse_qs, urlsplit

import pika


class MissingUrl(RuntimeError):
    """``url_env`` names a variable that is not set."""


def url_from(url: str, url_env: str | None) -> str:
    if url_env is None:
        return url
    value = os.environ.get(url_env)
    if not value:
        raise MissingUrl(f"environment variable {url_env} (url_env) is not set")
    return value


def parameters(url: str, *, heartbeat: int, name: str, timeout: float | None = None) -> pika.URLParameters:
    """Connection parameters: the URL, the heartbeat, a connection name RabbitMQ shows, verified TLS."""
    params = pika.URLParameters(url)
    params.heartbeat = heartbeat
    params.client_properties = {"connection_name": f"port-gateway {name} pid {os.getpid()}"}
    if timeout is not None:
        params.socket_timeout = timeout
        params.blocked_connection_timeout = timeout
        params.stack_timeout = timeout  # the whole connection set-up (TCP, TLS, AMQP handshake)
        params.connection_attempts = 1
    if params.ssl_options is not None:  # amqps://
        given = params.ssl_options
        context = given.context if "ssl_options" in parse_qs(urlsplit(url).query) else ssl.create_default_context()
        context.verify_mode = ssl.CERT_REQUIRED
        context.check_hostname = True
        params.ssl_options = pika.SSLOptions(context, server_hostname=given.server_hostname or params.host)
    return params


def quorum_arguments(delivery_limit: int) -> dict[str, object]:
    return {"x-queue-type": "quorum", "x-delivery-limit": delivery_limit}


def describe(exc: BaseException) -> str:
    """An exception for a log line: its type, and its text when it has one (pika's often have none)."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
