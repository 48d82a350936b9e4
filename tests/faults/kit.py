"""What the fault tests share: payloads with containers of their own, the checks that nothing was lost or
processed twice in effect, and an operator's view of the dashboard over HTTP.

"Processed twice in effect" is checked where it would show: a second ``container.announced`` event, a second
CONPAS delivery for a container, or a second CONPAS file for one delivery or container in the sink's folder.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.iso6346 import check_digit
from gateway.model import Container, Delivery, Event, Message
from gateway.store import db, users
from tests.conftest import COPARN_EXAMPLE

OPERATOR = "fault-ops"
PASSWORD = "fault-operator-password"
ROUTE = "conpas-prenotice"


# payloads ---------------------------------------------------------------------------------------------------
def containers_of(i: int) -> list[str]:
    """The three ISO 6346 container numbers of payload ``i`` (valid check digits, own serials)."""
    numbers = []
    for owner, serial in (("CSQU", 3 * i), ("MSCU", 3 * i + 1), ("TGHU", 3 * i + 2)):
        first_ten = f"{owner}{600000 + serial:06d}"
        numbers.append(f"{first_ten}{check_digit(first_ten) % 10}")
    return numbers


def payload(i: int) -> bytes:
    """The COPARN sample as interchange ``i``: its own interchange reference, bookings and three containers, so
    every payload announces three new containers (three CONPAS deliveries) on deals of its own."""
    data = COPARN_EXAMPLE.read_bytes().replace(b"+20261124001", f"+FT{i:08d}".encode())
    data = data.replace(b"ONEYTYOA12345", f"ONEYF{i:07d}A".encode()).replace(
        b"ONEYTYOA12346", f"ONEYF{i:07d}B".encode()
    )
    data = data.replace(b"BKG2611001", f"FB{i:07d}A".encode()).replace(b"BKG2611002", f"FB{i:07d}B".encode())
    for old, new in zip((b"CSQU3054383", b"MSCU1234566", b"TGHU8765436"), containers_of(i), strict=True):
        data = data.replace(old, new.encode())
    return data


def sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


# the database -----------------------------------------------------------------------------------------------
@contextmanager
def connected(database_url: str) -> Iterator[Any]:
    engine = db.make_engine(database_url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def statuses(database_url: str, channel: str) -> collections.Counter[str]:
    """Inbound message status → count for ``channel``."""
    with connected(database_url) as conn:
        rows = conn.execute(
            select(Message.status, func.count()).where(Message.channel == channel).group_by(Message.status)
        )
        return collections.Counter({status: n for status, n in rows})


def originals_by_sha(database_url: str, channel: str) -> dict[str, list[str]]:
    """sha256 → the statuses of its non-duplicate rows from ``channel``."""
    found: dict[str, list[str]] = {}
    with connected(database_url) as conn:
        for digest, status in conn.execute(
            select(Message.sha256, Message.status).where(Message.channel == channel, Message.status != "duplicate")
        ):
            found.setdefault(digest, []).append(status)
    return found


def assert_received_once(database_url: str, channel: str, sent: list[bytes], *, outcomes: set[str]) -> None:
    """Every payload stored exactly once as an original (copies only as ``duplicate`` rows), nothing else
    stored, and each original processed to one of ``outcomes`` (nothing left ``received``)."""
    stored = originals_by_sha(database_url, channel)
    expected = {sha(p) for p in sent}
    twice = {d: s for d, s in stored.items() if len(s) != 1}
    assert not twice, f"{len(twice)} payloads stored more than once as originals"
    assert set(stored) == expected, f"missing {len(expected - set(stored))}, unexpected {len(set(stored) - expected)}"
    unsettled = collections.Counter(s[0] for s in stored.values() if s[0] not in outcomes)
    assert not unsettled, f"originals not processed to {sorted(outcomes)}: {dict(unsettled)}"


def open_deliveries(database_url: str) -> int:
    with connected(database_url) as conn:
        return int(conn.scalar(select(func.count()).where(Delivery.status.in_(("pending", "sending", "held")))) or 0)


def deliveries_in(database_url: str, status: str) -> int:
    with connected(database_url) as conn:
        return int(conn.scalar(select(func.count()).where(Delivery.status == status)) or 0)


@dataclass
class Conpas:
    """What the CONPAS route did, read back: per container, announced events, deliveries and files."""

    announced: collections.Counter[str]  # container number → container.announced events
    deliveries: dict[str, list[tuple[str, str]]]  # container number → [(status, idempotency key)]
    files: dict[str, list[str]]  # container number → file names in the sink's folder
    keys_in_files: collections.Counter[str]  # pre_notification_id → files carrying it
    leftovers: list[str]  # temporary files of the sink


def conpas(database_url: str, outbox: Path) -> Conpas:
    announced: collections.Counter[str] = collections.Counter()
    deliveries: dict[str, list[tuple[str, str]]] = {}
    with connected(database_url) as conn:
        for number, n in conn.execute(
            select(Container.number, func.count())
            .join(Event, Event.container_id == Container.id)
            .where(Event.kind == "container.announced")
            .group_by(Container.number)
        ):
            announced[number] = n
        for number, status, key in conn.execute(
            select(Container.number, Delivery.status, Delivery.idempotency_key)
            .join(Container, Delivery.container_id == Container.id)
            .where(Delivery.route == ROUTE)
        ):
            deliveries.setdefault(number, []).append((status, key))
    files: dict[str, list[str]] = {}
    keys: collections.Counter[str] = collections.Counter()
    leftovers = []
    for path in sorted(outbox.iterdir()) if outbox.is_dir() else []:
        if path.name.startswith("."):
            leftovers.append(path.name)
            continue
        files.setdefault(path.name.split("_", 1)[0], []).append(path.name)
        keys[json.loads(path.read_bytes())["pre_notification_id"]] += 1
    return Conpas(announced, deliveries, files, keys, leftovers)


def assert_conpas_once(database_url: str, outbox: Path, containers: set[str]) -> Conpas:
    """Each container announced once, one CONPAS delivery for it, done, and one file in the sink's folder
    carrying that delivery's key (a resend replaces its own file; two files would mean two keys)."""
    found = conpas(database_url, outbox)
    assert set(found.announced) == containers, (
        f"announced: missing {len(containers - set(found.announced))}, extra {len(set(found.announced) - containers)}"
    )
    assert {n for n, c in found.announced.items() if c != 1} == set(), "a container announced twice"
    twice = {n: d for n, d in found.deliveries.items() if len(d) != 1}
    assert not twice, f"containers with more than one CONPAS delivery: {len(twice)}"
    assert set(found.deliveries) == containers
    not_done = collections.Counter(d[0][0] for d in found.deliveries.values() if d[0][0] != "done")
    assert not not_done, f"deliveries not done: {dict(not_done)}"
    assert set(found.files) == containers, f"files missing for {len(containers - set(found.files))} containers"
    assert {n: f for n, f in found.files.items() if len(f) != 1} == {}, "two CONPAS files for one container"
    keys = {d[0][1] for d in found.deliveries.values()}
    assert set(found.keys_in_files) == keys and set(found.keys_in_files.values()) == {1}
    assert found.leftovers == [], f"temporary files left: {found.leftovers[:5]}"
    return found


# a full disk -----------------------------------------------------------------------------------------------
def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte with one file (delete it to give the space back)."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as fh:
        for chunk in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while fh.write(b"\0" * chunk):
                    pass
    return filler


# the operator's view ----------------------------------------------------------------------------------------
def add_operator(config: Path) -> None:
    """The dashboard user the tests log in as (the database is migrated on the way)."""
    gw = Gateway(config_mod.load(config))
    try:
        with gw.sessions.begin() as s:
            users.add(s, OPERATOR, PASSWORD, "operator")
    finally:
        gw.close()


class Dashboard:
    """An operator logged in over the login form (httpx; the session cookie is kept by the client)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.Client(base_url=url, timeout=15, follow_redirects=False)

    def login(self) -> None:
        form = self.client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token, form.text[:500]
        answer = self.client.post("/login", data={"login": OPERATOR, "password": PASSWORD, "csrf_token": token[1]})
        assert answer.status_code == 303, answer.text[:500]

    def readyz(self) -> tuple[int, dict[str, Any]]:
        answer = self.client.get("/readyz")
        return answer.status_code, answer.json()

    def channel_states(self) -> dict[str, str]:
        """Channel → "up"/"down" as the overview page shows them (its channels table, Japanese labels)."""
        page = self.client.get("/dashboard")
        assert page.status_code == 200, page.status_code
        rows = re.findall(
            r'<tr data-channel="([^"]+)" data-up="(true|false)"[^>]*><td>[^<]*</td><td>([^<]*)</td>', page.text
        )
        for _name, up, label in rows:
            assert label == ("稼働中" if up == "true" else "停止中"), label
        return {name: ("up" if up == "true" else "down") for name, up, _label in rows}

    def refreshed_states(self) -> dict[str, str]:
        """The same from ``/dashboard/overview.json``, which the page's script redraws the table from."""
        listed = self.client.get("/dashboard/overview.json").json()["channels"]
        return {c["name"]: ("up" if c["up"] else "down") for c in listed}

    def shows(self, states: dict[str, str]) -> bool:
        """Both the page and its refresh show ``states``."""
        return self.channel_states() == states and self.refreshed_states() == states

    def deliveries(self, status: str) -> str:
        page = self.client.get("/dashboard/deliveries", params={"status": status})
        assert page.status_code == 200, page.status_code
        return page.text

    def close(self) -> None:
        self.client.close()


@contextmanager
def running(gw: Gateway) -> Iterator[str]:
    """``gw.run`` (every channel, the worker, the dispatcher) in a thread, with its HTTP server on a loopback
    port of its own; yields the server's URL and stops everything afterwards."""
    from gateway.web.server import start_server

    stop = threading.Event()
    server = start_server(gw, "127.0.0.1", 0)
    thread = threading.Thread(target=gw.run, args=(stop,), kwargs={"http": False}, name="gateway", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        stop.set()
        thread.join(60)
        server.stop()
