"""Renderers turn a delivery's canonical subject into the bytes a peer expects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from gateway.model import Delivery


@dataclass(frozen=True)
class Rendered:
    payload: bytes
    name: str  # a file name for folder and SFTP sinks
    content_type: str
    message_type: str  # stored on the outbound message row


class RenderError(Exception):
    """The payload cannot be produced (missing data, invalid against its schema): a permanent failure."""


Renderer = Callable[[Session, Delivery], Rendered]


def renderer(name: str) -> Renderer:
    from gateway.outbound.renderers import conpas

    known: dict[str, Renderer] = {"conpas": conpas.render}
    return known[name]
