"""The gateway application: wires configuration, database, store, pipeline, dispatcher, channels and web.

`gateway run` holds every role in one process (the embedded default) or the roles named with ``--role``:
``receiver`` (the channels), ``worker`` (parse, validate, map, persist), ``dispatcher`` (outbound) and ``web``
(dashboard, API, the HTTP channel). Roles in other processes, on other hosts, share the database and learn of
new work through :mod:`gateway.queues` (RabbitMQ quorum queues when routes.yaml has ``queues``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gateway import config as config_mod
from gateway.channels import Channel, make_channels
from gateway.channels.folder import Taken
from gateway.config import ROLES, FolderChannel, GatewayConfig, HttpChannel, SftpChannel
from gateway.edifact import sender_id
from gateway.mapping import MappingTable
from gateway.metrics import Metrics
from gateway.model import Message, MessageStatus, utcnow
from gateway.outbound.dispatcher import Dispatcher
from gateway.pipeline import Outcome, Pipeline
from gateway.queues import DELIVERIES, RECEIVED, LocalNotices, RabbitQueues, parse_ids
from gateway.store import db, messages, outbox
from gateway.store.messages import MessageStore, Receipt

log = structlog.get_logger("gateway")


@dataclass
class Accepted:
    """What `gateway ingest --json` prints for one input (a contract kept by later versions)."""

    file: str
    status: str  # accepted | rejected | duplicate
    format: str | None = None
    message_type: str | None = None
    messages: int = 0
    message_ids: list[int] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Gateway:
    def __init__(self, config: GatewayConfig, *, migrate: bool | None = None) -> None:
        self.config = config
        self.engine = db.make_engine(config.database_url)
        if config.database.auto_migrate if migrate is None else migrate:
            db.upgrade(self.engine)
        self.sessions: sessionmaker[Session] = db.session_factory(self.engine)
        with self.sessions.begin() as s:
            owners = {name: ch.owner for name, ch in config.channels.items()}
            partner_ids = messages.sync_partners(s, config.partners, owners)
        self.store = MessageStore(self.sessions, partner_ids)
        self.mappings = MappingTable(config.mappings)
        self.pipeline = Pipeline(
            self.sessions,
            self.mappings,
            config.routes,
            partners=config.partners,
            channels=config.channels,
            xml=config.xml,
        )
        self.dispatcher = Dispatcher(
            self.sessions, config.routes, partners=config.partners, lease=timedelta(seconds=config.dispatch.lease)
        )
        self._partner_by_sender = {eid: code for code, p in config.partners.items() for eid in p.edifact_ids}
        self.metrics = Metrics(self.sessions, config.channels)
        self.local = LocalNotices()  # wakes this process's worker and dispatcher threads
        self.work_waiting = self.local.work  # set when a channel stored a payload for the worker
        self.queues = RabbitQueues(config.queues) if config.queues is not None else None
        self.channels: list[Channel] = make_channels(self)
        self.roles: tuple[str, ...] = ROLES  # what `run` runs here; `ingest` and tests use every role

    @classmethod
    def from_file(cls, path: Path, **kwargs: Any) -> Gateway:
        return cls(config_mod.load(path), **kwargs)

    def close(self) -> None:
        if self.queues is not None:
            self.queues.close()
        self.engine.dispose()

    # notices between roles ------------------------------------------------------------------------------
    def wake_workers(self, message_ids: list[int]) -> None:
        """Tell the workers (this process's, and through the queue the others') of stored messages."""
        self.local.received(message_ids)
        if self.queues is not None:
            self.queues.received(message_ids)

    def _wake_dispatchers(self, message_id: int) -> None:
        self.local.dispatch.set()
        if self.queues is not None:
            with self.sessions() as s:
                ids = outbox.queued_by(s, message_id)
            self.queues.deliveries(ids)

    # receive → store → process -------------------------------------------------------------------------
    def partner_of(self, raw: bytes) -> str | None:
        sender = sender_id(raw)
        return self._partner_by_sender.get(sender) if sender else None

    def receive(
        self,
        raw: bytes,
        *,
        channel: str,
        partner: str | None = None,
        filename: str | None = None,
        headers: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        resubmitted_from: int | None = None,
        wake: bool = True,
    ) -> Receipt:
        """Store ``raw`` (committed) and leave it to the worker; the channel acknowledges its sender after this.

        The partner is the one given, else the channel's (``channels.*.partner``), else the UNB sender's.
        ``resubmitted_from``: the failed message this one is an operator's edited copy of (dashboard).
        ``wake``: wake the worker (false when the caller processes the message itself)."""
        configured = self.config.channels.get(channel)
        partner = partner or (configured.owner if configured else None) or self.partner_of(raw)
        receipt = self.store.receive(
            raw,
            channel=channel,
            partner=partner,
            filename=filename,
            headers=headers,
            idempotency_key=idempotency_key,
            resubmitted_from=resubmitted_from,
        )
        if receipt.replayed:
            log.info("request replayed", message_id=receipt.message_id, channel=channel)
        elif receipt.duplicate:
            self.metrics.duplicates.labels(channel).inc()
            log.info(
                "duplicate", message_id=receipt.message_id, duplicate_of=receipt.duplicate_of, reason=receipt.reason
            )
        else:
            self.metrics.received.labels(channel).inc()
            if wake:
                self.wake_workers([receipt.message_id])
        return receipt

    def accept(
        self,
        raw: bytes,
        *,
        channel: str,
        partner: str | None = None,
        filename: str | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> Accepted:
        """Store (committed), then process at once; for callers that report the outcome (ingest, folders)."""
        receipt = self.receive(raw, channel=channel, partner=partner, filename=filename, headers=headers, wake=False)
        name = filename or f"<{channel}>"
        if receipt.duplicate:
            with self.sessions() as s:
                original = s.get_one(Message, receipt.duplicate_of)
                return Accepted(
                    name,
                    "duplicate",
                    original.format,
                    original.message_type,
                    original.message_count,
                    [receipt.message_id],
                )
        return _result(name, receipt.message_id, self.process(receipt.message_id))

    def process(self, message_id: int) -> Outcome | None:
        outcome = self.pipeline.process(message_id)
        if outcome is not None:
            self._wake_dispatchers(message_id)
        if outcome is not None and outcome.error is not None:
            with self.sessions() as s:
                channel = s.scalar(select(Message.channel).where(Message.id == message_id))
            self.metrics.failed.labels(channel or "?").inc()
        return outcome

    def reprocess(self, message_id: int) -> Accepted:
        """Process a failed message again from its raw bytes (after a mapping or partner fix)."""
        with self.sessions.begin() as s:
            msg = messages.reopen(s, message_id)
            name = msg.filename or f"<{msg.channel}>"
        return _result(name, message_id, self.process(message_id))

    def take(self, raw: bytes, **kwargs: Any) -> Taken:
        """The folder channel's receipt: store and process here (one process), or with a ``worker`` role
        elsewhere (``handoff``) store, tell the workers and report ``queued`` so the file is archived."""
        if self.handoff:
            receipt = self.receive(raw, **kwargs)
            return Taken("duplicate" if receipt.duplicate else "accepted", receipt.message_id, "queued")
        result = self.accept(raw, **kwargs)
        message_id = result.message_ids[0]
        with self.sessions() as s:
            row = s.get_one(Message, message_id)
            original = s.get_one(Message, row.duplicate_of_id) if row.duplicate_of_id else row
            return Taken(result.status, message_id, original.status)

    def process_received(self, limit: int = 100, older_than: float = 0.0) -> int:
        """Process messages left ``received`` (by a crash between store and process, or whose notice never
        came: only those stored more than ``older_than`` seconds ago); returns how many were processed here.
        One held by another worker, or left by a database error, does not count, so the worker loop waits
        before it looks again instead of spinning on it."""
        before = utcnow() - timedelta(seconds=older_than) if older_than else None
        with self.sessions() as s:
            ids = messages.received_ids(s, limit, before=before)
        return sum(self.process(message_id) is not None for message_id in ids)

    def work_notice(self, body: bytes) -> bool:
        """A worker's handling of a ``received`` notice: process the message(s) it names. False (put the notice
        back) only when the database did not answer; a message done or held by another worker is acknowledged."""
        for message_id in parse_ids(body):
            if self.process(message_id) is None and not self._database_answers():
                return False
        return True

    def dispatch_notice(self, body: bytes) -> bool:
        """A dispatcher's handling of a ``deliveries`` notice: send those that are due and not taken."""
        ids = parse_ids(body)
        try:
            self.dispatcher.run_once(limit=len(ids) or 1, ids=ids)
        except OperationalError:
            return False
        return True

    def _database_answers(self) -> bool:
        try:
            with self.sessions() as s:
                s.execute(select(1))
            return True
        except OperationalError:
            return False

    # the one-process run ---------------------------------------------------------------------------------
    def idle(self) -> bool:
        """Nothing waiting in folders, nothing received unprocessed, no delivery due."""
        if any(c.pending() for c in self.channels):
            return False
        with self.sessions() as s:
            received = s.scalar(select(func.count()).where(Message.status == MessageStatus.RECEIVED.value))
            due = s.scalar(select(func.count()).where(outbox.due_filter(utcnow(), self.dispatcher.disabled_routes)))
        return not received and not due

    def run(
        self,
        stop: threading.Event,
        *,
        until_idle: bool = False,
        http: bool | None = None,
        roles: tuple[str, ...] = ROLES,
    ) -> None:
        """Run ``roles`` until ``stop``: channels (receiver), the worker, the dispatcher, the HTTP server (web)."""
        unknown = sorted(set(roles) - set(ROLES))
        if unknown:
            raise ValueError(f"unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}")
        self.roles = roles
        threads: list[threading.Thread] = []
        if "receiver" in roles:
            threads += [
                threading.Thread(target=c.run, args=(stop,), name=f"channel:{c.name}", daemon=True)
                for c in self.channels
            ]
        loops: list[tuple[str, Callable[[], object], float, threading.Event | None]] = []
        sweep = self.config.queues.sweep if self.config.queues is not None else 1.0
        if "worker" in roles:
            if self.queues is not None:
                threads.append(self._consumer(RECEIVED, self.work_notice, stop))
                loops.append(("worker", lambda: self.process_received(older_than=sweep), sweep, None))
            else:
                loops.append(("worker", self.process_received, 1.0, self.local.work))
        if "dispatcher" in roles:
            if self.queues is not None:
                threads.append(self._consumer(DELIVERIES, self.dispatch_notice, stop))
            batch = self.config.dispatch.batch
            wake = self.local.dispatch if "worker" in roles else None  # a worker in this process tells it
            loops.append(("dispatcher", lambda: self.dispatcher.run_once(batch), self.config.dispatch.poll, wake))
        threads += [
            threading.Thread(target=_loop, args=(n, fn, every, wake, stop), name=n, daemon=True)
            for n, fn, every, wake in loops
        ]
        server = None
        if "web" in roles and (self.config.http.enabled if http is None else http):
            from gateway.web.server import start_server

            server = start_server(self, self.config.http.host, self.config.http.port)
            for name, ch in self.config.channels.items():
                if isinstance(ch, HttpChannel) and ch.enabled:
                    self.metrics.up.labels(name).set(1)
        for t in threads:
            t.start()
        log.info(
            "gateway running",
            roles=list(roles),
            channels=[c.name for c in self.channels] if "receiver" in roles else [],
            routes=list(self.config.routes),
            queues=self.queues.name("*") if self.queues is not None else None,
        )
        try:
            while not stop.wait(0.5):
                if until_idle and self.idle():
                    time.sleep(self._longest_settle() + 0.5)
                    if self.idle():
                        break
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
            if server is not None:
                server.stop()
            log.info("gateway stopped")

    def _consumer(self, kind: str, handle: Callable[[bytes], bool], stop: threading.Event) -> threading.Thread:
        assert self.queues is not None
        queues = self.queues
        pause = lambda: stop.wait(1.0)  # noqa: E731 - the database was away: let it come back
        return threading.Thread(
            target=queues.consume, args=(kind, handle, stop), kwargs={"pause": pause}, name=f"queue:{kind}", daemon=True
        )

    @property
    def handoff(self) -> bool:
        """Receivers hand payloads to workers in other processes (a run without the worker role)."""
        return "worker" not in self.roles

    def channel_states(self) -> dict[str, bool]:
        """Enabled channel → connected or listening (the ``gateway_channel_up`` gauge each channel sets), for the
        channels this process runs: with roles apart, a web process knows only its HTTP channel (the receivers'
        states are on their own ``/readyz`` and ``/metrics``)."""
        here = {"receiver", "web"} if "receiver" in self.roles else {"web"} & set(self.roles)
        return {
            name: bool(self.metrics.registry.get_sample_value("gateway_channel_up", {"channel": name}))
            for name, ch in self.config.channels.items()
            if ch.enabled and ("web" if isinstance(ch, HttpChannel) else "receiver") in here
        }

    def _longest_settle(self) -> float:
        """How long a file may wait in a folder before it is taken (for ``--until-idle``)."""
        settles = [ch.settle for ch in self.config.channels.values() if isinstance(ch, FolderChannel | SftpChannel)]
        return max(settles, default=0.0)


def _result(name: str, message_id: int, outcome: Outcome | None) -> Accepted:
    if outcome is None:  # another worker holds it: stored, and it will be processed
        return Accepted(name, "accepted", message_ids=[message_id])
    learned = outcome.learned
    result = Accepted(
        name,
        "rejected" if outcome.error else "accepted",
        learned.get("format"),
        learned.get("message_type") or None,
        learned.get("message_count", 0),
        [message_id],
    )
    if outcome.error:
        result.errors.append(outcome.error.as_dict())
    return result


def _loop(
    name: str, fn: Callable[[], object], every: float, wake: threading.Event | None, stop: threading.Event
) -> None:
    """Run ``fn`` again at once while it reports work done, else after ``every`` seconds or when ``wake`` is set;
    an error is logged and the loop goes on."""
    while not stop.is_set():
        try:
            busy = fn()
        except Exception:
            log.error("loop error", loop=name, exc_info=True)
            busy = 0
        if busy:
            continue
        if wake is None:
            stop.wait(every)
        else:
            wake.wait(every)
            wake.clear()
