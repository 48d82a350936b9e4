"""Outbound: replaying dead deliveries, ordering per key where a route asks, several dispatchers side by side."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.model import Delivery, DeliveryAttempt, Message, utcnow
from gateway.outbound.dispatcher import Dispatcher
from gateway.outbound.sinks import SinkError
from gateway.store import outbox
from tests.conftest import write_config

ROUTE = "conpas-prenotice"
RETRY = {"max_attempts": 3, "initial_delay": "1s", "multiplier": 2, "max_delay": "10s", "jitter": 0}


class Recorder:
    """A sink recording every send; it fails (retryably unless told) while ``failing(name)`` says so."""

    def __init__(self, failing: Any = None, retryable: bool = True) -> None:
        self.failing = failing or (lambda name: False)
        self.retryable = retryable
        self.sent: list[tuple[str, str, bytes]] = []

    def send(self, payload: bytes, *, name: str, idempotency_key: str, content_type: str | None = None) -> bytes | None:
        if self.failing(name):
            raise SinkError("peer unavailable", retryable=self.retryable)
        self.sent.append((name, idempotency_key, payload))
        return None


def _gateway(tmp_path: Path, database_url: str, **route: Any) -> Gateway:
    routes = {
        ROUTE: {
            "on": "container.announced",
            "render": "conpas",
            "to": {"type": "folder", "path": "outbox/conpas"},
            "retry": RETRY,
            **route,
        }
    }
    return Gateway(config_mod.load(write_config(tmp_path, database_url, routes=routes)))


def _make_due(gw: Gateway, *ids: int) -> None:
    with gw.sessions.begin() as s:
        for d in s.scalars(select(Delivery).where(Delivery.status == "pending")):
            if not ids or d.id in ids:
                d.next_attempt_at = utcnow() - timedelta(seconds=1)


def _copy(gw: Gateway, delivery_id: int, n: int = 1) -> list[int]:
    """``n`` more deliveries of the same route, event, deal and container (created later: higher ids)."""
    with gw.sessions.begin() as s:
        original = s.get_one(Delivery, delivery_id)
        copies = [
            Delivery(
                route=original.route,
                event_id=original.event_id,
                deal_id=original.deal_id,
                container_id=original.container_id,
                status="pending",
                idempotency_key=uuid.uuid4().hex,
            )
            for _ in range(n)
        ]
        s.add_all(copies)
        s.flush()
        return [c.id for c in copies]


def _deliveries(gw: Gateway) -> dict[int, tuple[str, int]]:
    with gw.sessions() as s:
        return {d.id: (d.status, d.attempts) for d in s.scalars(select(Delivery))}


# --- replay -----------------------------------------------------------------------------------------------------


def test_a_replay_sends_the_same_bytes_under_a_new_key_and_leaves_the_original_dead(
    tmp_path: Path, database_url: str, coparn: bytes
) -> None:
    gw = _gateway(tmp_path, database_url)
    try:
        gw.accept(coparn, channel="drops")
        gw.dispatcher.sinks[ROUTE] = Recorder(failing=lambda name: True, retryable=False)
        assert gw.dispatcher.drain() == 3
        with gw.sessions() as s:
            dead = s.scalars(select(Delivery).order_by(Delivery.id)).first()
            assert dead is not None and dead.status == "dead"
            dead_id, dead_key, dead_message = dead.id, dead.idempotency_key, dead.message_id
            rendered, rendered_name = s.get_one(Message, dead_message).raw, s.get_one(Message, dead_message).filename

        with gw.sessions.begin() as s:
            replayed = outbox.replay(s, dead_id)
            replay_id = replayed.id
        sink = Recorder()
        gw.dispatcher.sinks[ROUTE] = sink
        assert gw.dispatcher.drain() == 1
        [(name, key, payload)] = sink.sent
        assert payload == rendered and key != dead_key  # the same bytes, a new key
        assert name == rendered_name  # a folder peer gets the same file again (the name was rendered once)
        with gw.sessions() as s:
            original, replay = s.get_one(Delivery, dead_id), s.get_one(Delivery, replay_id)
            assert (original.status, original.attempts, original.replay_of_id) == ("dead", 1, None)
            assert [a.outcome for a in original.attempt_log] == ["dead"]
            assert (replay.status, replay.attempts, replay.replay_of_id) == ("done", 1, dead_id)
            assert replay.message_id == dead_message and replay.idempotency_key == key
            assert s.get_one(Message, dead_message).status == "sent"
            assert outbox.summary(s, original, attempts=True)["replays"] == [replay_id]

        with gw.sessions.begin() as s, pytest.raises(outbox.ReplayError, match="already replayed"):
            outbox.replay(s, dead_id)  # its replay is done: a second would send twice
        with gw.sessions.begin() as s, pytest.raises(outbox.ReplayError, match="only a dead delivery"):
            outbox.replay(s, replay_id)
        with gw.sessions.begin() as s, pytest.raises(LookupError):
            outbox.replay(s, 999_999)
    finally:
        gw.close()


def test_a_delivery_that_died_before_rendering_is_rendered_anew_on_replay(
    tmp_path: Path, database_url: str, coparn: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gateway.outbound.dispatcher as dispatcher_mod

    gw = _gateway(tmp_path, database_url)
    try:
        gw.accept(coparn, channel="drops")
        real = dispatcher_mod.renderer

        def broken(_name: str) -> object:
            def render(*_: object) -> object:
                raise IndexError("bug")

            return render

        monkeypatch.setattr(dispatcher_mod, "renderer", broken)
        gw.dispatcher.drain()
        monkeypatch.setattr(dispatcher_mod, "renderer", real)  # the fix
        with gw.sessions.begin() as s:
            ids = [outbox.replay(s, d.id).id for d in s.scalars(select(Delivery).order_by(Delivery.id))]
        assert gw.dispatcher.drain() == 3
        assert len(list((tmp_path / "outbox" / "conpas").glob("*.json"))) == 3
        with gw.sessions() as s:
            assert {s.get_one(Delivery, i).status for i in ids} == {"done"}
    finally:
        gw.close()


# --- ordering per key -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order_by", ["container", "deal"])
def test_deliveries_of_one_key_go_in_creation_order_and_other_keys_are_not_held_up(
    tmp_path: Path, database_url: str, coparn: bytes, order_by: str
) -> None:
    gw = _gateway(tmp_path, database_url, order_by=order_by)
    try:
        gw.accept(coparn, channel="drops")  # three deliveries: CSQU3054383, MSCU1234566, TGHU8765436
        with gw.sessions() as s:
            rows = list(s.scalars(select(Delivery).order_by(Delivery.id)))
            first = rows[0].id
            same_deal = [d.id for d in rows[1:] if d.deal_id == rows[0].deal_id]
            other_deal = [d.id for d in rows[1:] if d.deal_id != rows[0].deal_id]
        [second] = _copy(gw, first)  # a later delivery for the same container (and deal)
        fail_first = {"on": True}
        sink = Recorder(failing=lambda name: fail_first["on"] and name.startswith("CSQU3054383"))
        gw.dispatcher.sinks[ROUTE] = sink

        gw.dispatcher.run_once()
        states = _deliveries(gw)
        assert states[first] == ("pending", 1)  # failed retryably, backing off
        assert states[second] == ("pending", 0)  # held back behind it
        held = same_deal if order_by == "deal" else []
        for other in [*same_deal, *other_deal]:
            assert states[other] == (("pending", 0) if other in held else ("done", 1))
        assert gw.dispatcher.run_once() == 0  # the first is not due yet, the second still waits

        fail_first["on"] = False
        _make_due(gw, first)
        assert gw.dispatcher.run_once() == 1  # only the first: the second was held when the claim was made
        assert gw.dispatcher.drain() == 1 + len(held)
        states = _deliveries(gw)
        assert states[first] == ("done", 2) and states[second] == ("done", 1)
        keys = _keys(gw)
        csqu = [key for name, key, _ in sink.sent if name.startswith("CSQU3054383")]
        assert csqu == [keys[first], keys[second]]  # creation order
    finally:
        gw.close()


def _keys(gw: Gateway) -> dict[int, str]:
    with gw.sessions() as s:
        return {d.id: d.idempotency_key for d in s.scalars(select(Delivery))}


def test_a_dead_delivery_no_longer_holds_later_ones_and_unordered_routes_never_wait(
    tmp_path: Path, database_url: str, coparn: bytes
) -> None:
    gw = _gateway(tmp_path, database_url, order_by="container")
    try:
        gw.accept(coparn, channel="drops")
        with gw.sessions() as s:
            first = s.scalars(select(Delivery.id).order_by(Delivery.id)).first()
        assert first is not None
        [second] = _copy(gw, first)
        gw.dispatcher.sinks[ROUTE] = Recorder(failing=lambda name: name.startswith("CSQU"), retryable=False)
        gw.dispatcher.run_once()
        assert _deliveries(gw)[first] == ("dead", 1) and _deliveries(gw)[second] == ("pending", 0)
        gw.dispatcher.sinks[ROUTE] = Recorder()
        assert gw.dispatcher.drain() == 1 and _deliveries(gw)[second] == ("done", 1)
    finally:
        gw.close()


def test_a_route_without_order_by_sends_deliveries_of_one_container_side_by_side(
    tmp_path: Path, database_url: str, coparn: bytes
) -> None:
    gw = _gateway(tmp_path, database_url)
    try:
        gw.accept(coparn, channel="drops")
        with gw.sessions() as s:
            first = s.scalars(select(Delivery.id).order_by(Delivery.id)).first()
        assert first is not None
        [second] = _copy(gw, first)
        gw.dispatcher.sinks[ROUTE] = Recorder(failing=lambda name: name.startswith("CSQU"))
        assert gw.dispatcher.run_once() == 4
        assert _deliveries(gw)[first] == ("pending", 1) and _deliveries(gw)[second] == ("pending", 1)
    finally:
        gw.close()


# --- several dispatchers ------------------------------------------------------------------------------------------


def test_two_dispatchers_side_by_side_send_each_delivery_exactly_once(
    tmp_path: Path, database_url: str, coparn: bytes
) -> None:
    gw = _gateway(tmp_path, database_url)
    try:
        gw.accept(coparn, channel="drops")
        with gw.sessions() as s:
            first = s.scalars(select(Delivery.id).order_by(Delivery.id)).first()
        assert first is not None
        _copy(gw, first, 197)  # 200 due deliveries
        dispatchers = [Dispatcher(gw.sessions, gw.config.routes) for _ in range(2)]
        counts = [0, 0]
        errors: list[BaseException] = []
        start = threading.Barrier(2)

        def work(i: int) -> None:
            try:
                start.wait()
                counts[i] = dispatchers[i].drain(limit=10)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        assert sum(counts) == 200
        assert len(list((tmp_path / "outbox" / "conpas").glob("*.json"))) == 200
        with gw.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "done")) == 200
            per_delivery = dict(
                s.execute(select(DeliveryAttempt.delivery_id, func.count()).group_by(DeliveryAttempt.delivery_id)).all()
            )
            assert len(per_delivery) == 200 and set(per_delivery.values()) == {1}
    finally:
        gw.close()
