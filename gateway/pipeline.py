"""Processing of one stored payload: parse → validate → map → persist, as a list of small steps.

Each step is a function ``step(work) -> None`` (structlog's processor shape): it reads what earlier steps left
on :class:`Work` and adds its own result, or raises a coded :class:`GatewayError`. All steps run in one
transaction that also locks the message row, so a payload's canonical effects, its events, its outbox
deliveries and its final status commit together: a crash anywhere leaves it ``received``, to be processed
again from its raw bytes, and two workers never both process it.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from gateway.canonical import MappedMessage
from gateway.config import FolderChannel, PartnerConfig, RouteConfig
from gateway.edifact import Interchange, validator
from gateway.edifact import Message as EdifactMessage
from gateway.edifact.envelope import first_error, read_all
from gateway.errors import GatewayError
from gateway.formats import sniff
from gateway.mapping import MappingTable
from gateway.mapping.engine import apply
from gateway.model import Message, MessageStatus
from gateway.store import messages, outbox
from gateway.store.canonical import CanonicalWriter

log = structlog.get_logger("gateway.pipeline")


@dataclass
class Work:
    """What the steps share while one payload is processed."""

    session: Session
    message: Message
    mappings: MappingTable
    routes: Mapping[str, RouteConfig]
    partners: Mapping[str, PartnerConfig] = field(default_factory=dict)
    channels: Mapping[str, FolderChannel] = field(default_factory=dict)
    format: str | None = None
    interchanges: list[Interchange] = field(default_factory=list)
    messages: list[EdifactMessage] = field(default_factory=list)
    mapped: list[MappedMessage] = field(default_factory=list)

    @property
    def partner(self) -> str | None:
        return self.message.partner.code if self.message.partner else None

    def learned(self) -> dict[str, Any]:
        """Facts about the payload worth keeping on its row even when a later step fails."""
        return {
            "format": self.format,
            "message_type": ",".join(sorted({m.type for m in self.messages})) or None,
            "interchange_ref": self.interchanges[0].reference if self.interchanges else None,
            "message_count": len(self.messages),
        }


def parse(work: Work) -> None:
    work.format = sniff(work.message.raw)
    if work.format != "edifact":
        raise GatewayError("FMT-2", f"{work.format.upper()} payloads are not supported yet", step="parse")
    channel = work.channels.get(work.message.channel)
    allow_bare = bool(channel and channel.allow_bare_edifact)
    work.interchanges, work.messages = read_all(work.message.raw, allow_bare=allow_bare)


def validate(work: Work) -> None:
    """Envelopes first, then each message against its definition in ``edifact/`` (where one exists)."""
    error = first_error(work.interchanges, work.messages)
    if error is not None:
        raise error
    if not work.messages:
        raise GatewayError("EDI-13", "the interchange holds no message", step="validate")
    partner = work.partners.get(work.partner or "")
    agreed = partner.edifact_versions if partner else None
    for msg in work.messages:
        problems = validator.validate(msg, agreed_versions=agreed)
        if problems:
            raise problems[0].as_error(msg.number)


def map_records(work: Work) -> None:
    for msg in work.messages:
        mapping = work.mappings.find(format="edifact", message=msg.type, version=msg.version, partner=work.partner)
        work.mapped.append(apply(mapping, msg))


def persist(work: Work) -> None:
    writer = CanonicalWriter(work.session, work.message, work.routes)
    for mapped in work.mapped:
        writer.write(mapped)
    work.session.flush()


Step = Callable[[Work], None]
# (name, step, status the message reaches when the step succeeds)
STEPS: Sequence[tuple[str, Step, MessageStatus | None]] = (
    ("parse", parse, MessageStatus.PARSED),
    ("validate", validate, None),
    ("map", map_records, MessageStatus.MAPPED),
    ("persist", persist, MessageStatus.DONE),
)


@dataclass(frozen=True)
class Outcome:
    message_id: int
    status: str
    error: GatewayError | None = None
    learned: dict[str, Any] = field(default_factory=dict)


class Pipeline:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        mappings: MappingTable,
        routes: Mapping[str, RouteConfig],
        steps: Sequence[tuple[str, Step, MessageStatus | None]] = STEPS,
        partners: Mapping[str, PartnerConfig] | None = None,
        channels: Mapping[str, FolderChannel] | None = None,
    ) -> None:
        self.partners = dict(partners or {})
        self.channels = dict(channels or {})
        self.sessions = sessions
        self.mappings = mappings
        self.routes = routes
        self.steps = steps

    def process(self, message_id: int, attempts: int = 3) -> Outcome | None:
        """Process a received message; None when it was not ours to process (done, or held by another worker)."""
        with structlog.contextvars.bound_contextvars(message_id=message_id):
            for attempt in range(1, attempts + 1):
                try:
                    return self._process(message_id)
                except IntegrityError as exc:  # a concurrent worker created the same natural key first
                    if attempt == attempts:
                        return self._fail(message_id, GatewayError("PER-1", str(exc.orig), step="persist"), [], {})
                    log.info("retrying after a conflict", attempt=attempt, error=str(exc.orig))
                except OperationalError as exc:  # the database is down or locked: not the message's fault
                    log.warning("database unavailable; the message stays received", error=str(exc.orig))
                    return None
        return None

    def _process(self, message_id: int) -> Outcome | None:
        steps: list[dict[str, Any]] = []
        learned: dict[str, Any] = {}
        current = "parse"
        try:
            with self.sessions.begin() as session:
                msg = messages.claim(session, message_id)
                if msg is None:
                    return None
                steps.extend(msg.steps)  # history of earlier attempts (reprocessing) stays
                work = Work(session, msg, self.mappings, self.routes, self.partners, self.channels)
                for name, step, reached in self.steps:
                    current = name
                    try:
                        step(work)
                    finally:
                        learned = work.learned()
                    for key, value in learned.items():  # later steps (route conditions) read them
                        setattr(msg, key, value)
                    steps.append(messages.step_entry(name, "ok"))
                    if reached is not None:
                        msg.status = reached.value
                msg.steps = steps
                self._acknowledge(session, msg, None)
            log.info("processed", status=msg.status, message_type=msg.message_type, messages=msg.message_count)
            return Outcome(message_id, msg.status, learned=learned)
        except GatewayError as exc:
            exc.step = exc.step or current
            return self._fail(message_id, exc, steps, learned)
        except StaleDataError as exc:
            return self._fail(
                message_id, GatewayError("PER-1", f"stale form version: {exc}", step=current), steps, learned
            )
        except (IntegrityError, OperationalError):
            raise  # handled by process(): retry, or leave the message received
        except Exception as exc:  # a bug must not stop the gateway; the raw input stays for reprocessing
            log.error("internal error", exc_info=True)
            text = f"{type(exc).__name__}: {exc} at {traceback.extract_tb(exc.__traceback__)[-1].name}"
            return self._fail(message_id, GatewayError("INT-1", text, step=current), steps, learned)

    def _acknowledge(self, session: Session, msg: Message, error: GatewayError | None) -> None:
        """Events for the acknowledgements the partner agreement asks for, in the message's final transaction."""
        partner = self.partners.get(msg.partner.code) if msg.partner else None
        if partner is None or msg.format != "edifact" or not partner.acks:
            return
        facts = {"partner": msg.partner.code if msg.partner else None, "message_type": msg.message_type}
        detail = {"error": error.as_dict()} if error else {}
        if "contrl" in partner.acks:
            outbox.emit(session, "edifact.received", self.routes, facts, message_id=msg.id, detail=detail)
        if "aperak" in partner.acks and error is not None and error.step in ("map", "persist"):
            outbox.emit(session, "edifact.application_error", self.routes, facts, message_id=msg.id, detail=detail)

    def _fail(
        self, message_id: int, error: GatewayError, steps: list[dict[str, Any]], learned: dict[str, Any]
    ) -> Outcome:
        steps = [*steps, messages.step_entry(error.step, "failed")]
        with self.sessions.begin() as session:
            msg = messages.record_failure(session, message_id, error, steps, learned)
            if msg is not None:
                self._acknowledge(session, msg, error)
        log.warning("failed", code=error.code, step=error.step, error=error.text, **error.position.as_dict())
        return Outcome(message_id, MessageStatus.FAILED.value, error, learned)
