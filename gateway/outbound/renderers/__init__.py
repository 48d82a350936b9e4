"""Renderers turn a delivery's canonical subject into the bytes a peer expects."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from gateway.config import PartnerConfig
from gateway.model import Delivery


@dataclass(frozen=True)
class Rendered:
    payload: bytes
    name: str  # a file name for folder and SFTP sinks
    content_type: str
    message_type: str  # stored on the outbound message row


class RenderError(Exception):
    """The payload cannot be produced (missing data, invalid against its schema): a permanent failure."""


@dataclass(frozen=True)
class RenderContext:
    """What a renderer may know beyond the database: the partner agreements of routes.yaml."""

    partners: Mapping[str, PartnerConfig] = field(default_factory=dict)


Renderer = Callable[[Session, Delivery, RenderContext], Rendered]


def renderer(name: str) -> Renderer:
    from gateway.outbound.renderers import acks, conpas

    known: dict[str, Renderer] = {"conpas": conpas.render, "contrl": acks.render_contrl, "aperak": acks.render_aperak}
    return known[name]
