"""The batched writer: a chunk of messages is loaded, decided and written together, and still behaves as if each
message had been written alone, in order.

What could break when rows are held in memory per chunk instead of read from the table per record: a later
message not seeing what an earlier one of the same chunk (or an earlier chunk of the same interchange) made;
the newest-wins rule or the "same event once" rule applied only against the table; a held delivery made in the
same chunk as the permit that should release it; a form update that no longer checks its version.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm.exc import StaleDataError

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.canonical import MappedMessage
from gateway.iso6346 import check_digit
from gateway.model import Booking, Container, Deal, Delivery, Event, Form, Message
from gateway.store import canonical
from gateway.store.canonical import CanonicalWriter
from tests.conftest import write_config

JST = ZoneInfo("Asia/Tokyo")
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=JST)


def number(n: int) -> str:
    first_ten = f"CHKU{n:06d}"
    return f"{first_ten}{check_digit(first_ten)}"


def coparn(messages: list[tuple[str, str, int]]) -> bytes:
    """One COPARN D.95B interchange: per message (booking, container, gross kg), in this order."""
    parts = ["UNA:+.? '\nUNB+UNOA:2+ONEY:ZZZ+JPTYOCY1:ZZZ+261124:0930+CHUNKS1'\n"]
    for i, (booking, container, gross) in enumerate(messages, start=1):
        parts.append(
            f"UNH+{i}+COPARN:D:95B:UN:SMDG16'\nBGM+126+B{i:06d}+9'\nRFF+BN:{booking}'\n"
            "TDT+20+012E+1++ONEY:172:20+++JD7712:103::ONE APUS'\nLOC+9+JPTYO:139:6'\nNAD+CA+ONEY:160:20'\n"
            f"EQD+CN+{container}+45G1:102:5++2+5'\nMEA+AAE+G+KGM:{gross}'\nCNT+16:1'\nUNT+10+{i}'\n"
        )
    parts.append(f"UNZ+{len(messages)}+CHUNKS1'\n")
    return "".join(parts).encode("ascii")


def test_a_message_after_the_chunk_boundary_finds_what_message_3_made(gateway: Gateway) -> None:
    """One file of CHUNK + 5 messages: message 3 opens the deal of booking SHARED; message CHUNK + 3 (the next
    chunk) announces another container on that booking and message CHUNK + 4 amends message 3's container;
    messages 2 and 4 announce the same container (the later wins). Breaks if a chunk does not see an earlier
    chunk's rows (a second deal, a duplicate container or booking), or if the last write of a container in a
    file is not the one kept."""
    size = canonical.CHUNK
    rows = [(f"BK{i:06d}", number(i), 20000 + i) for i in range(1, size + 6)]
    rows[2] = ("SHARED", number(900001), 11111)  # message 3
    rows[1] = ("BK000002", number(900003), 20000)  # messages 2 and 4: the same container, same booking
    rows[3] = ("BK000002", number(900003), 21000)
    rows[size + 2] = ("SHARED", number(900002), 22222)  # message CHUNK + 3, the next chunk
    rows[size + 3] = ("SHARED", number(900001), 12345)  # message CHUNK + 4 amends message 3's container
    result = gateway.accept(coparn(rows), channel="drops", partner="ONE", filename="chunks.edi")
    assert result.status == "accepted", result
    with gateway.sessions() as s:
        [shared] = s.scalars(select(Deal).where(Deal.booking_number == "SHARED")).all()
        assert sorted(c.number for c in shared.containers) == [number(900001), number(900002)]
        assert s.scalar(select(func.count()).select_from(Booking).where(Booking.booking_number == "SHARED")) == 1
        first = s.scalars(select(Container).where(Container.number == number(900001))).one()
        assert first.gross_kg == 12345
        form = s.scalars(select(Form).where(Form.subject == number(900001))).one()
        assert form.payload["gross_weight_kg"] == 12345 and form.version == 2
        twice = s.scalars(select(Container).where(Container.number == number(900003))).one()
        assert twice.gross_kg == 21000
        distinct_bookings = len({b for b, _, _ in rows})
        assert s.scalar(select(func.count()).select_from(Deal)) == distinct_bookings
        opened = s.scalars(select(Event).where(Event.kind == "deal.opened", Event.deal_id == shared.id)).all()
        assert len(opened) == 1
        announced = s.scalar(select(func.count()).select_from(Event).where(Event.kind == "container.announced"))
        assert announced == len(rows)  # every message changed its container
        assert s.scalar(select(func.count()).select_from(Delivery)) == announced
        ids = list(s.scalars(select(Event.id).order_by(Event.id)))
        assert ids == sorted(set(ids)) and len(ids) == len(set(ids))


def mapped(records: list[dict[str, Any]], issued_at: datetime | None = None, n: int = 1) -> MappedMessage:
    return MappedMessage.model_validate(
        {"number": n, "reference": str(n), "type": "X", "issued_at": issued_at, "records": records}
    )


class Batch:
    """Writes several mapped messages of one stored payload together, as one chunk."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.n = 0

    def __call__(self, messages: list[MappedMessage], chunk: int | None = None) -> int:
        self.n += 1
        receipt = self.gateway.store.receive(f"batch {self.n}".encode(), channel="drops", partner="ONE")
        with self.gateway.sessions.begin() as session:
            message = session.get_one(Message, receipt.message_id)
            writer = CanonicalWriter(session, message, self.gateway.config.routes, chunk=chunk)
            for m in messages:
                writer.add(m)
            writer.finish()
        return receipt.message_id


@pytest.fixture
def batch(gateway: Gateway) -> Iterator[Batch]:
    yield Batch(gateway)


BOOKING = {"entity": "shipment", "booking_number": "BK1", "carrier_scac": "ONEY"}


def test_in_one_chunk_the_newer_message_wins_whatever_the_order(batch: Batch, gateway: Gateway) -> None:
    """Two messages of one chunk set the same container's weight; the one issued later comes first. Breaks if
    newest-wins is checked only against the table (the older message would overwrite in memory)."""
    c = number(7)
    newer = mapped([BOOKING, {"entity": "container", "number": c, "gross_kg": 2000.0}], T0 + timedelta(hours=1), 1)
    older = mapped([BOOKING, {"entity": "container", "number": c, "gross_kg": 1000.0, "tare_kg": 3800.0}], T0, 2)
    batch([newer, older])
    with gateway.sessions() as s:
        row = s.scalars(select(Container).where(Container.number == c)).one()
        assert (row.gross_kg, row.tare_kg) == (2000.0, 3800.0)
        details = [e.detail for e in s.scalars(select(Event).where(Event.kind == "container.announced"))]
        assert details[-1]["superseded"] == ["gross_kg"] and details[-1]["changed"] == ["tare_kg"]


def test_the_same_container_event_twice_in_one_chunk_is_written_once(batch: Batch, gateway: Gateway) -> None:
    """Breaks if the "same (container, kind, time) once" rule looks only at events already in the table."""
    event = {"entity": "container_event", "container": number(8), "kind": "gate_in", "occurred_at": T0}
    batch([mapped([BOOKING, event], n=1), mapped([BOOKING, event], n=2)])
    batch([mapped([BOOKING, event], n=1)])  # and once more, from the table this time
    with gateway.sessions() as s:
        assert len(s.scalars(select(Event).where(Event.kind == "container.gate_in")).all()) == 1


def test_a_later_chunk_of_one_payload_updates_rows_an_earlier_chunk_made(batch: Batch, gateway: Gateway) -> None:
    """Chunks of 2 messages: message 3 names message 1's booking and amends its container; message 4 adds a
    container. Breaks if a chunk's rows are not found again by the next chunk of the same transaction."""
    c1, c2 = number(11), number(12)
    batch(
        [
            mapped([BOOKING, {"entity": "container", "number": c1, "gross_kg": 1000.0}], T0, 1),
            mapped([{**BOOKING, "booking_number": "BK2"}], T0, 2),
            mapped([BOOKING, {"entity": "container", "number": c1, "gross_kg": 1500.0}], T0, 3),
            mapped([BOOKING, {"entity": "container", "number": c2, "gross_kg": 900.0}], T0, 4),
        ],
        chunk=2,
    )
    with gateway.sessions() as s:
        deal = s.scalars(select(Deal).where(Deal.booking_number == "BK1")).one()
        assert {c.number: c.gross_kg for c in deal.containers} == {c1: 1500.0, c2: 900.0}
        assert s.scalar(select(func.count()).select_from(Deal)) == 2
        assert [e.kind for e in s.scalars(select(Event).where(Event.deal_id == deal.id).order_by(Event.id))] == [
            "deal.opened",
            "container.announced",
            "container.announced",
            "container.announced",
        ]


@pytest.fixture
def held_gateway(tmp_path: Path, database_url: str) -> Iterator[Gateway]:
    routes = {
        "conpas-prenotice": {
            "on": "container.announced",
            "when": {"direction": "export"},
            "render": "conpas",
            "require": "customs_permit",
            "to": {"type": "folder", "path": "outbox/conpas"},
        }
    }
    gw = Gateway(config_mod.load(write_config(tmp_path, database_url, routes=routes)))
    yield gw
    gw.close()


def test_a_permit_releases_a_delivery_held_earlier_in_the_same_chunk(held_gateway: Gateway) -> None:
    """Message 1 announces a container (its CONPAS delivery is held: no permit), message 2 of the same chunk is
    the export permit, message 3 announces another container. Breaks if the release looks only at deliveries
    already written (the first would stay held for ever) or if the permit is not seen by message 3."""
    gw = held_gateway
    permit = {"entity": "customs_status", "booking_number": "BK1", "status": "export_permitted"}
    Batch(gw)(
        [
            mapped([BOOKING, {"entity": "container", "number": number(21), "gross_kg": 1.0}], T0, 1),
            mapped([permit], T0, 2),
            mapped([BOOKING, {"entity": "container", "number": number(22), "gross_kg": 1.0}], T0, 3),
        ]
    )
    with gw.sessions() as s:
        deliveries = list(s.scalars(select(Delivery).order_by(Delivery.id)))
        assert [d.status for d in deliveries] == ["pending", "pending"]
        deal = s.scalars(select(Deal)).one()
        assert deal.customs_status == "export_permitted"
        assert {c.number: c.customs_status for c in deal.containers} == {
            number(21): "export_permitted",
            number(22): None,  # announced after the permit: the permit named no container of it
        }


def test_a_form_moved_by_another_writer_is_a_stale_data_error(gateway: Gateway, batch: Batch) -> None:
    """The writer updates a form with ``WHERE id = ? AND version = ?``. Breaks if the version is not checked
    (a concurrent worker's save would be overwritten silently instead of PER-1)."""
    c = number(31)
    batch([mapped([BOOKING, {"entity": "container", "number": c, "gross_kg": 1000.0}], T0)])
    receipt = gateway.store.receive(b"late", channel="drops", partner="ONE")
    message = mapped([BOOKING, {"entity": "container", "number": c, "gross_kg": 1200.0}], T0 + timedelta(hours=1))
    with pytest.raises(StaleDataError), gateway.sessions.begin() as session:
        writer = CanonicalWriter(session, session.get_one(Message, receipt.message_id), gateway.config.routes)
        writer.rows.preload([message])
        writer.write_message(message)
        session.execute(update(Form).values(version=Form.version + 1))  # another worker saved it meanwhile
        writer.store()
    with gateway.sessions() as s:
        form = s.scalars(select(Form)).one()
        assert form.payload["gross_weight_kg"] == 1000.0 and form.version == 1
