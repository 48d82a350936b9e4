"""Renderers turn a delivery's canonical subject into the bytes a peer expects."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from gateway.config import PartnerConfig, RouteConfig
from gateway.model import Delivery


@dataclass(frozen=True)
class Rendered:
    payload: bytes
    name: str  # a file name for folder and SFTP sinks
    content_type: str
    message_type: str  # stored on the outbound message row


class RenderError(Exception):
    """The payload cannot be produced (missing data, invalid against its schema): a permanent failure.

    ``code`` is the error code the delivery dies with (OUT-1 unless the renderer knows better, e.g. OUT-10 for a
    NACCS value that is too long); the text starts with it, so it shows wherever the text is recorded.
    """

    def __init__(self, text: str, code: str = "OUT-1") -> None:
        super().__init__(text if code == "OUT-1" else f"{code}: {text}")
        self.code = code


@dataclass(frozen=True)
class RenderContext:
    """What a renderer may know beyond the database: the partner agreements of routes.yaml."""

    partners: Mapping[str, PartnerConfig] = field(default_factory=dict)
    # the routes of routes.yaml: a renderer with per-route options (naccs) reads its own route's
    routes: Mapping[str, RouteConfig] = field(default_factory=dict)


Renderer = Callable[[Session, Delivery, RenderContext], Rendered]
# records a peer's answer to a delivered payload (the HTTP response body) in the session that settles it
AnswerRecorder = Callable[[Session, Delivery, bytes, RenderContext], None]
# turns the stored payload into the bytes on the wire at send time (a secret the database must never hold);
# raises SinkError(retryable=False) when it cannot
SendPreparer = Callable[[bytes], bytes]


def renderer(name: str) -> Renderer:
    from gateway.outbound.renderers import acks, conpas
    from gateway.outbound.renderers import naccs as naccs_renderer

    known: dict[str, Renderer] = {
        "conpas": conpas.render,
        "contrl": acks.render_contrl,
        "aperak": acks.render_aperak,
        "naccs": naccs_renderer.render,
    }
    return known[name]


def answer_recorder(name: str) -> AnswerRecorder | None:
    """The ``record_answer`` of renderer ``name``'s module, or None when its peers' answers are not recorded."""
    from gateway.outbound.renderers import conpas

    known: dict[str, AnswerRecorder] = {"conpas": conpas.record_answer}
    return known.get(name)


def send_preparer(route: RouteConfig) -> SendPreparer | None:
    """What route ``route``'s renderer adds to each payload at send time, or None (most send what is stored)."""
    from gateway.outbound.renderers import naccs

    return naccs.password_writer(route) if route.render == "naccs" else None
