"""structlog set-up: JSON lines when stderr is not a terminal, readable lines when it is.

Logs go to stderr so that ``gateway ingest --json`` keeps stdout for its results. Code binds ``message_id``
(and ``delivery_id``) with ``structlog.contextvars.bound_contextvars`` so every line about a message says which.
Payloads and secrets are never logged.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure(level: str = "INFO", json_lines: bool | None = None) -> None:
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer(colors=False)
    )
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if json_lines:
        processors.append(structlog.processors.format_exc_info)
    processors.append(renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
