"""HTTP sink (httpx): send each payload to a URL with the delivery's key as ``Idempotency-Key``.

TLS certificates are always verified: against the system's CAs, or against ``ca_file`` alone for a peer with a
private CA; there is no switch to turn verification off. Header values taken from the environment
(``headers_env``, e.g. a bearer token) are read at each send and never written to a log or an error text.

The ``Content-Type`` is the rendered message's (``send(content_type=)``) unless the route sets ``content_type``.
A 2xx answer's body is returned to the dispatcher (CONPAS: the pre-matching answer it records).

Classification: 2xx is done; a network error, a timeout, 5xx and 429 are retryable (``Retry-After`` is passed on
in :attr:`SinkError.retry_after`, and the dispatcher waits at least that long); 3xx and every other 4xx are
permanent. The error text keeps the first 2 KB of the answer's body, which is usually where the peer says what
was wrong.
"""

from __future__ import annotations

import os
import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from gateway.config import HttpSink
from gateway.outbound.sinks import SinkError

BODY_IN_ERROR = 2048  # bytes of the answer's body kept in the error text


class HttpSinkSender:
    def __init__(self, config: HttpSink) -> None:
        self.config = config
        verify = ssl.create_default_context(cafile=str(config.ca_file)) if config.ca_file else True
        timeout = httpx.Timeout(config.read_timeout, connect=config.connect_timeout)
        self.client = httpx.Client(verify=verify, timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def _headers(self, idempotency_key: str, content_type: str | None) -> dict[str, str]:
        # the route's own content_type wins when routes.yaml sets one; otherwise the rendered message's type
        if "content_type" in self.config.model_fields_set or content_type is None:
            content_type = self.config.content_type
        headers = {"Content-Type": content_type, **self.config.headers}
        for header, variable in self.config.headers_env.items():
            value = os.environ.get(variable)
            if value is None:  # a retry would not find it either: the process must be restarted with it
                raise SinkError(
                    f"the environment variable {variable} (headers_env.{header}) is not set", retryable=False
                )
            headers[header] = value
        headers["Idempotency-Key"] = idempotency_key
        return headers

    def send(self, payload: bytes, *, name: str, idempotency_key: str, content_type: str | None = None) -> bytes | None:
        """The answer's body on 2xx (b"" when it has none); SinkError otherwise."""
        cfg = self.config
        target = f"{cfg.method} {cfg.url}"
        headers = self._headers(idempotency_key, content_type)
        try:
            answer = self.client.request(cfg.method, cfg.url, content=payload, headers=headers)
        except httpx.TimeoutException as exc:
            raise SinkError(f"{target}: timed out ({type(exc).__name__})", retryable=True) from exc
        except httpx.TransportError as exc:  # refused, reset, DNS, TLS (a bad certificate may be replaced)
            raise SinkError(f"{target}: {type(exc).__name__}: {exc}", retryable=True) from exc
        status = answer.status_code
        if 200 <= status < 300:
            return answer.content
        body = answer.content[:BODY_IN_ERROR].decode("utf-8", errors="replace")
        text = f"{target} answered {status} {answer.reason_phrase}: {body}"
        if status >= 500 or status == 429:
            raise SinkError(text, retryable=True, retry_after=_retry_after(answer.headers.get("Retry-After")))
        raise SinkError(text, retryable=False)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date; None when absent or odd."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
