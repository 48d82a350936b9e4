"""Outbound: CONPAS files from the outbox, retries that survive restarts, dead letters that keep everything."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.model import Delivery, DeliveryAttempt, Message, utcnow
from gateway.outbound.sinks import SinkError


def test_one_conpas_file_per_container_matching_the_input(gateway: Gateway, coparn: bytes, tmp_path: Path) -> None:
    gateway.accept(coparn, channel="drops")
    assert gateway.dispatcher.drain() == 3
    files = sorted((tmp_path / "outbox" / "conpas").glob("*.json"))
    docs = {d["container_number"]: d for d in (json.loads(f.read_text()) for f in files)}
    assert set(docs) == {"CSQU3054383", "MSCU1234566", "TGHU8765436"}
    assert {(d["vessel_name"], d["voyage"]) for d in docs.values()} == {("ONE APUS", "012E")}
    assert docs["CSQU3054383"]["booking_number"] == "ONEYTYOA12345"
    assert docs["TGHU8765436"]["booking_number"] == "ONEYTYOA12346"
    assert docs["CSQU3054383"]["seal_numbers"] == ["SL123456", "SH998877"]
    assert (
        docs["CSQU3054383"]["length_code"],
        docs["CSQU3054383"]["height_code"],
        docs["CSQU3054383"]["type_code"],
    ) == ("4", "5", "G1")
    assert docs["MSCU1234566"]["reefer"] == {"temperature": -18.0, "unit": "CEL"}
    assert docs["TGHU8765436"]["dangerous_goods"] == [{"un_number": "1263", "class": "3", "packing_group": "III"}]
    with gateway.sessions() as s:
        deliveries = list(s.scalars(select(Delivery)))
        assert {d.status for d in deliveries} == {"done"} and all(d.attempts == 1 for d in deliveries)
        out = [m for m in s.scalars(select(Message).where(Message.direction == "out"))]
        assert len(out) == 3 and {m.status for m in out} == {"sent"}
        assert {m.raw for m in out} == {f.read_bytes() for f in files}  # what was sent is what is stored
    assert not list((tmp_path / "outbox" / "conpas").glob(".*"))  # no temporary files left


class Flaky:
    """A sink failing its first ``failures`` sends, retryable or not."""

    def __init__(self, failures: int, retryable: bool = True) -> None:
        self.failures, self.retryable, self.sent = failures, retryable, []  # type: ignore[var-annotated]

    def send(self, payload: bytes, *, name: str, idempotency_key: str, content_type: str | None = None) -> bytes | None:
        if self.failures > 0:
            self.failures -= 1
            raise SinkError("peer unavailable", retryable=self.retryable)
        self.sent.append((name, idempotency_key, payload))
        return None


def _make_due(gateway: Gateway) -> None:
    with gateway.sessions.begin() as s:
        for d in s.scalars(select(Delivery).where(Delivery.status == "pending")):
            d.next_attempt_at = utcnow() - timedelta(seconds=1)


def test_retryable_failures_back_off_then_succeed(gateway: Gateway, coparn: bytes) -> None:
    gateway.accept(
        coparn.replace(b"EQD+CN+MSCU", b"EQD+XX+MSCU").replace(b"EQD+CN+TGHU", b"EQD+XX+TGHU"), channel="drops"
    )
    sink = Flaky(failures=2)
    gateway.dispatcher.sinks["conpas-prenotice"] = sink
    before = utcnow()
    assert gateway.dispatcher.run_once() == 1
    with gateway.sessions() as s:
        d = s.scalars(select(Delivery)).one()
        assert (d.status, d.attempts) == ("pending", 1)
        assert (
            timedelta(seconds=0.9) <= d.next_attempt_at - before <= timedelta(seconds=3)
        )  # initial_delay 1s, no jitter
    assert gateway.dispatcher.run_once() == 0  # not due yet: the schedule is in the database
    _make_due(gateway)
    gateway.dispatcher.run_once()
    _make_due(gateway)
    gateway.dispatcher.run_once()
    with gateway.sessions() as s:
        d = s.scalars(select(Delivery)).one()
        attempts = list(s.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.number)))
        assert d.status == "done" and [a.outcome for a in attempts] == ["retry", "retry", "ok"]
        assert attempts[0].error == {"code": "OUT-2", "text": "peer unavailable"}
    assert len(sink.sent) == 1 and sink.sent[0][1] == d.idempotency_key


def test_exhausted_retries_and_permanent_failures_go_dead_keeping_the_payload(gateway: Gateway, coparn: bytes) -> None:
    gateway.accept(coparn, channel="drops")
    gateway.dispatcher.sinks["conpas-prenotice"] = Flaky(failures=99)
    for _ in range(3):  # max_attempts: 3
        _make_due(gateway)
        gateway.dispatcher.run_once()
    with gateway.sessions() as s:
        deliveries = list(s.scalars(select(Delivery)))
        assert {d.status for d in deliveries} == {"dead"} and {d.attempts for d in deliveries} == {3}
        assert all(s.get_one(Message, d.message_id).raw.startswith(b"{") for d in deliveries if d.message_id)
    gateway.accept(coparn.replace(b"20261124001", b"X").replace(b"KGM:24500", b"KGM:1"), channel="drops")
    gateway.dispatcher.sinks["conpas-prenotice"] = Flaky(failures=1, retryable=False)
    gateway.dispatcher.run_once()
    with gateway.sessions() as s:
        newest = s.scalars(select(Delivery).order_by(Delivery.id.desc())).first()
        assert newest is not None and (newest.status, newest.attempts) == ("dead", 1)


def test_an_expired_lease_is_reclaimed_and_resent_under_the_same_key(
    gateway: Gateway, coparn: bytes, tmp_path: Path
) -> None:
    """A dispatcher that died after sending leaves its claim; after the lease another sends the same file again."""
    from gateway.store import outbox

    gateway.accept(coparn, channel="drops")
    with gateway.sessions.begin() as s:
        [(first_id, token), *_] = outbox.claim_due(s, limit=10, lease=timedelta(seconds=-1))
    prepared = gateway.dispatcher._prepare(first_id, token)  # rendered and sent, then the process died
    assert prepared is not None
    _, payload, name, key, *_ = prepared
    gateway.dispatcher.sinks["conpas-prenotice"].send(payload, name=name, idempotency_key=key)
    assert gateway.dispatcher.run_once() == 3  # leases expired: all three taken again
    files = sorted((tmp_path / "outbox" / "conpas").glob("*.json"))
    assert len(files) == 3 and name in {f.name for f in files}  # the resend replaced the same file
    with gateway.sessions() as s:
        first = s.get_one(Delivery, first_id)
        assert (first.status, first.idempotency_key, first.attempts) == ("done", key, 1)


def test_a_dispatcher_whose_lease_was_taken_over_neither_sends_nor_settles(gateway: Gateway, coparn: bytes) -> None:
    from gateway.store import outbox

    gateway.accept(coparn, channel="drops")
    with gateway.sessions.begin() as s:
        [(delivery_id, old_token), *_] = outbox.claim_due(s, limit=10, lease=timedelta(seconds=-1))
    with gateway.sessions.begin() as s:  # a second dispatcher takes it over after the lease ran out
        taken = dict(outbox.claim_due(s, limit=10, lease=timedelta(minutes=5)))
    assert delivery_id in taken and taken[delivery_id] != old_token
    sink = Flaky(failures=0)
    gateway.dispatcher.sinks["conpas-prenotice"] = sink
    gateway.dispatcher.deliver(delivery_id, old_token)  # the first one wakes up
    assert sink.sent == []
    with gateway.sessions() as s:
        d = s.get_one(Delivery, delivery_id)
        assert (d.status, d.attempts) == ("sending", 0)
    gateway.dispatcher.deliver(delivery_id, taken[delivery_id])
    assert len(sink.sent) == 1


def test_route_conditions_see_the_message_type(tmp_path: Path, database_url: str, coparn: bytes) -> None:
    from gateway import config as config_mod
    from tests.conftest import write_config

    routes = {
        "only-codeco": {
            "on": "container.announced",
            "when": {"message_type": ["CODECO"]},
            "render": "conpas",
            "to": {"type": "folder", "path": "out/codeco"},
        },
        "only-coparn-full": {
            "on": "container.announced",
            "when": {"message_type": ["COPARN"], "full_empty": "full"},
            "render": "conpas",
            "to": {"type": "folder", "path": "out/coparn"},
        },
    }
    gw = Gateway(config_mod.load(write_config(tmp_path, database_url, routes=routes)))
    try:
        gw.accept(coparn.replace(b"MSCU1234566+22R1:102:5++2+5", b"MSCU1234566+22R1:102:5++2+4"), channel="drops")
        gw.dispatcher.drain()
        with gw.sessions() as s:
            by_route = {r: n for r, n in s.execute(select(Delivery.route, func.count()).group_by(Delivery.route))}
        assert by_route == {"only-coparn-full": 2}  # not CODECO, not the empty box
        assert len(list((tmp_path / "out" / "coparn").glob("*.json"))) == 2
    finally:
        gw.close()


def test_a_disabled_route_waits_and_a_removed_one_dies(tmp_path: Path, database_url: str, coparn: bytes) -> None:
    from gateway import config as config_mod
    from tests.conftest import write_config

    route = {"on": "container.announced", "render": "conpas", "to": {"type": "folder", "path": "out"}}
    gw = Gateway(config_mod.load(write_config(tmp_path, database_url, routes={"a": route, "b": route})))
    gw.accept(coparn, channel="drops")  # three deliveries queued on each route
    gw.close()
    paused = {"a": {**route, "enabled": False}}  # "a" paused, "b" removed from routes.yaml
    gw = Gateway(config_mod.load(write_config(tmp_path, database_url, routes=paused)))
    try:
        assert gw.dispatcher.drain() == 3  # only b's, which die
        with gw.sessions() as s:
            states = {(d.route, d.status) for d in s.scalars(select(Delivery))}
            assert states == {("a", "pending"), ("b", "dead")}
            dead = s.scalars(select(Delivery).where(Delivery.route == "b")).first()
            assert dead is not None and dead.last_error is not None and dead.last_error["code"] == "OUT-1"
        assert gw.idle()  # paused deliveries do not keep `run --until-idle` from stopping
    finally:
        gw.close()


def test_a_renderer_bug_kills_the_delivery_instead_of_leaving_it_claimed(
    gateway: Gateway, coparn: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gateway.outbound.dispatcher as dispatcher_mod

    def broken(_name: str) -> object:
        def render(*_: object) -> object:
            raise IndexError("bug")

        return render

    gateway.accept(coparn, channel="drops")
    monkeypatch.setattr(dispatcher_mod, "renderer", broken)
    assert gateway.dispatcher.run_once() == 3
    with gateway.sessions() as s:
        codes = {(d.status, d.last_error["code"] if d.last_error else None) for d in s.scalars(select(Delivery))}
        assert codes == {("dead", "OUT-1")}


def test_a_sink_that_raises_something_unexpected_is_retried(gateway: Gateway, coparn: bytes) -> None:
    class Broken:
        def send(
            self, payload: bytes, *, name: str, idempotency_key: str, content_type: str | None = None
        ) -> bytes | None:
            raise KeyError("bug")

    gateway.accept(coparn, channel="drops")
    gateway.dispatcher.sinks["conpas-prenotice"] = Broken()
    gateway.dispatcher.run_once()
    with gateway.sessions() as s:
        assert {(d.status, d.attempts) for d in s.scalars(select(Delivery))} == {("pending", 1)}


class Slow(Flaky):
    """A sink that takes ``seconds`` for every send."""

    def __init__(self, seconds: float) -> None:
        super().__init__(failures=0)
        self.seconds = seconds

    def send(self, payload: bytes, *, name: str, idempotency_key: str, content_type: str | None = None) -> bytes | None:
        import time

        time.sleep(self.seconds)
        return super().send(payload, name=name, idempotency_key=idempotency_key, content_type=content_type)


def test_a_batch_whose_lease_ran_out_sends_no_more_of_it(gateway: Gateway, coparn: bytes) -> None:
    """Breaks if a dispatcher went on sending a claimed batch after slow peers ate its lease: the deliveries
    left would be taken over by another dispatcher and sent twice. The ones it had sent are still settled."""
    gateway.accept(coparn, channel="drops")  # three deliveries
    gateway.dispatcher.lease = timedelta(seconds=1)
    sink = Slow(1.0)
    gateway.dispatcher.sinks["conpas-prenotice"] = sink
    assert gateway.dispatcher.run_once() == 3
    assert len(sink.sent) == 1  # the first send took the whole lease
    with gateway.sessions() as s:
        statuses = sorted(d.status for d in s.scalars(select(Delivery)))
        attempts = list(s.scalars(select(DeliveryAttempt)))
    assert statuses == ["done", "sending", "sending"]
    assert len(attempts) == 1 and attempts[0].finished_at >= attempts[0].started_at
    sink.seconds = 0
    import time

    time.sleep(0.2)  # past the lease for certain
    assert gateway.dispatcher.run_once() == 2  # taken over once the lease has run out
    assert len({key for _, key, _ in sink.sent}) == 3
