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
from gateway.config import ChannelBase, MappingRule, PartnerConfig, RouteConfig, XmlConfig
from gateway.edifact import Interchange, validator
from gateway.edifact import Message as EdifactMessage
from gateway.edifact.envelope import first_error, read_all
from gateway.errors import GatewayError, Position
from gateway.formats import csv as csvformat
from gateway.formats import json as jsonformat
from gateway.formats import sniff
from gateway.formats import xml as xmlformat
from gateway.mapping import MappingTable
from gateway.mapping.engine import apply, apply_source
from gateway.mapping.language import Mapping as LoadedMapping
from gateway.mapping.sources import CsvSource, XmlSource
from gateway.model import Message, MessageStatus
from gateway.naccs.reply import ReplyPart, parse_part
from gateway.outbound.renderers import conpas
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
    channels: Mapping[str, ChannelBase] = field(default_factory=dict)
    xml: XmlConfig = field(default_factory=XmlConfig)
    format: str | None = None
    message_type: str | None = None
    interchanges: list[Interchange] = field(default_factory=list)  # EDIFACT
    messages: list[EdifactMessage] = field(default_factory=list)  # EDIFACT
    document: Any = None  # XML: the root element
    table: csvformat.Table | None = None  # CSV
    csv_rule: tuple[MappingRule, LoadedMapping] | None = None  # CSV: chosen when parsing, used when mapping
    mapped: list[MappedMessage] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)  # CSV rows skipped under `bad_rows: skip`
    naccs: ReplyPart | None = None  # a NACCS output message (or a part of a split one)
    json_items: list[dict[str, Any]] = field(default_factory=list)  # JSON: the documents of one known "type"
    json_list: bool = False  # JSON: the payload was a list (positions are $[i]...)
    writer: CanonicalWriter | None = None  # EDIFACT: map hands it full chunks, persist writes the rest

    def canonical_writer(self) -> CanonicalWriter:
        if self.writer is None:
            self.writer = CanonicalWriter(self.session, self.message, self.routes)
        return self.writer

    @property
    def partner(self) -> str | None:
        return self.message.partner.code if self.message.partner else None

    def learned(self) -> dict[str, Any]:
        """Facts about the payload worth keeping on its row even when a later step fails."""
        if self.format == "edifact":
            return {
                "format": self.format,
                "message_type": ",".join(sorted({m.type for m in self.messages})) or None,
                "interchange_ref": self.interchanges[0].reference if self.interchanges else None,
                "message_count": len(self.messages),
            }
        if self.format == "naccs":
            handover = self.naccs.header.handover if self.naccs else None
            return {
                "format": self.format,
                "message_type": self.message_type,
                "interchange_ref": handover or None,
                "message_count": 1 if self.naccs else 0,
            }
        if self.format == "json":
            return {"format": self.format, "message_type": self.message_type, "message_count": len(self.json_items)}
        count = len(self.table.rows) if self.table else (1 if self.document is not None else 0)
        return {"format": self.format, "message_type": self.message_type, "message_count": count}


def parse(work: Work) -> None:
    work.format = sniff(work.message.raw)
    PARSERS[work.format](work)


def parse_edifact(work: Work) -> None:
    channel = work.channels.get(work.message.channel)
    allow_bare = bool(channel and channel.allow_bare_edifact)
    work.interchanges, work.messages = read_all(work.message.raw, allow_bare=allow_bare)


def parse_xml(work: Work) -> None:
    work.document = xmlformat.parse(work.message.raw, max_bytes=work.xml.max_bytes, max_depth=work.xml.max_depth)
    work.message_type = xmlformat.document_type(work.document)[1]


def parse_csv(work: Work) -> None:
    """The mapping says how to read the file (encoding, delimiter, header row), so it is chosen here."""
    work.csv_rule = work.mappings.find_rule(
        format="csv", message=None, version=None, partner=work.partner, channel=work.message.channel
    )
    mapping = work.csv_rule[1]
    work.message_type = mapping.message
    opts = mapping.csv
    work.table = csvformat.read(
        work.message.raw, encoding=opts.encoding, delimiter=opts.delimiter, header_row=opts.header_row
    )


def parse_naccs(work: Work) -> None:
    """A NACCS output message: its output common header (OUT-20 when unreadable); the body is read once whole."""
    work.naccs = parse_part(work.message.raw)
    header = work.naccs.header
    work.message_type = f"NACCS-{header.output_code or header.business_code}"[:32]


def parse_json(work: Work) -> None:
    """JSON (``formats/json.py``: size and depth refused before decoding, FMT-9/10); its ``"type"`` says what it
    is (FMT-11 "no handler for this JSON document" when no reader knows it)."""
    document = jsonformat.parse(work.message.raw, max_bytes=jsonformat.MAX_BYTES, max_depth=jsonformat.MAX_DEPTH)
    work.message_type, work.json_items = jsonformat.kind(document)
    work.json_list = isinstance(document, list)


def json_path(work: Work, index: int, inner: str = "$") -> str:
    """``inner`` (a JSON path inside item ``index``) as a path in the payload: ``$[1].x`` in a list, ``$.x`` else."""
    return f"$[{index}]{inner[1:]}" if work.json_list else inner


PARSERS: dict[str, Callable[[Work], None]] = {
    "edifact": parse_edifact,
    "xml": parse_xml,
    "json": parse_json,
    "csv": parse_csv,
    "naccs": parse_naccs,
}


def validate(work: Work) -> None:
    """EDIFACT: envelopes, then each message against ``edifact/``. XML: its schema. JSON: each document against its
    type's schema (CONPAS answers: ``schemas/conpas-answer.schema.json``, FMT-12). CSV: nothing (per row, in map)."""
    if work.format == "json":
        validate_json(work)
        return
    if work.format == "xml":
        extra = tuple(xmlformat.SchemaEntry(x.namespace, x.root, x.xsd) for x in work.xml.schemas)
        xmlformat.catalog(extra).validate(work.document)
        return
    if work.format in ("csv", "naccs"):
        return
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


def validate_json(work: Work) -> None:
    """FMT-12 at the first problem of the first invalid document, its JSON path in the payload as position."""
    for i, item in enumerate(work.json_items):
        errors = conpas.answer_errors(item)
        if errors:
            first = errors[0]
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise GatewayError(
                "FMT-12",
                f"the CONPAS pre-matching answer does not validate against {conpas.ANSWER_SCHEMA_FILE.name}: "
                f"{first.message}{more}",
                Position(path=json_path(work, i, first.json_path)),
                step="validate",
            )


def map_records(work: Work) -> None:
    if work.format == "xml":
        name = work.message_type
        mapping = work.mappings.find(
            format="xml", message=name, version=None, partner=work.partner, channel=work.message.channel
        )
        source = XmlSource(work.document, namespaces=mapping.namespaces, reference=name or "", type=name or "")
        work.mapped.append(apply_source(mapping, source))
        return
    if work.format == "csv":
        map_csv_rows(work)
        return
    if work.format in ("naccs", "json"):
        return  # a NACCS reply or a CONPAS answer is not mapped: persist matches it to what it answers
    map_edifact(work)


def map_edifact(work: Work) -> None:
    """Each message, in chunks: a full chunk goes to the writer at once (persisted in this same transaction), so
    a huge interchange never holds more than one chunk of mapped records; persist writes the last one.

    A persist error of an earlier chunk surfaces here, still as a persist error (PER-1 for a stale form)."""
    writer = work.canonical_writer()
    found: dict[tuple[str, str], LoadedMapping] = {}
    channel = work.message.channel
    for msg in work.messages:
        key = (msg.type, msg.version)
        mapping = found.get(key)
        if mapping is None:
            mapping = found[key] = work.mappings.find(
                format="edifact", message=msg.type, version=msg.version, partner=work.partner, channel=channel
            )
        work.mapped.append(apply(mapping, msg))
        msg.segments = msg.segments[:1]  # mapped: its segments are not read again (the UNH stays, as header)
        if len(work.mapped) >= writer.chunk:
            chunk, work.mapped = work.mapped, []
            try:
                writer.write_many(chunk)
            except StaleDataError as exc:
                raise GatewayError("PER-1", f"stale form version: {exc}", step="persist") from None


def map_csv_rows(work: Work) -> None:
    """Each row is one message. A bad row rejects the file, or with ``bad_rows: skip`` is noted and skipped."""
    assert work.table is not None and work.csv_rule is not None
    rule, mapping = work.csv_rule
    for line, row in work.table.rows:
        try:
            work.mapped.append(apply_source(mapping, CsvSource(row, line=line, type=mapping.message or "CSV")))
        except GatewayError as exc:
            if rule.bad_rows != "skip":
                raise
            work.problems.append({**exc.as_dict(), "step": "map", "row": line})
    if not work.mapped:
        raise GatewayError("MAP-2", "no row of the CSV file could be mapped", step="map")


def persist(work: Work) -> None:
    writer = work.canonical_writer()
    if work.naccs is not None:
        writer.naccs_reply(work.naccs)
    for i, answer in enumerate(work.json_items):  # CONPAS pre-matching answers, recorded as the HTTP path does
        conpas.record_inbound_answer(
            work.session,
            answer,
            work.routes,
            message_id=work.message.id,
            partner=work.partner,
            path=json_path(work, i),
        )
    for mapped in work.mapped:
        writer.add(mapped)
    writer.finish()
    work.message.problems = work.problems
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
        channels: Mapping[str, ChannelBase] | None = None,
        xml: XmlConfig | None = None,
    ) -> None:
        self.xml = xml or XmlConfig()
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
                work = Work(session, msg, self.mappings, self.routes, self.partners, self.channels, self.xml)
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
