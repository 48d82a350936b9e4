"""Helpers of the sink tests: a gateway whose route sends to a given sink, and a dispatcher driven until settled."""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.model import Delivery, DeliveryAttempt
from tests.conftest import COPARN_EXAMPLE, write_config

ROUTE = "conpas-prenotice"


def gateway_to(tmp_path: Path, database_url: str, to: dict[str, Any], **retry: Any) -> Gateway:
    """A gateway whose CONPAS route sends to ``to`` with the retry policy ``retry`` (jitter 0 unless given)."""
    policy = {"max_attempts": 3, "initial_delay": "100ms", "multiplier": 2, "max_delay": "1s", "jitter": 0, **retry}
    routes = {ROUTE: {"on": "container.announced", "render": "conpas", "to": to, "retry": policy}}
    return Gateway(config_mod.load(write_config(tmp_path, database_url, routes=routes)))


def coparn(containers: int = 3) -> bytes:
    """The COPARN sample with its 3 containers, or only the first (1) announced."""
    data = COPARN_EXAMPLE.read_bytes()
    if containers == 1:
        data = data.replace(b"EQD+CN+MSCU", b"EQD+XX+MSCU").replace(b"EQD+CN+TGHU", b"EQD+XX+TGHU")
    return data


@dataclass
class Attempt:
    number: int
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    error: dict[str, Any] | None


def drive(gw: Gateway, timeout: float = 30.0) -> None:
    """Run the dispatcher (as its loop does, a pass every 20 ms) until no delivery is pending or sending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        gw.dispatcher.run_once()
        with gw.sessions() as s:
            open_ = s.scalars(select(Delivery).where(Delivery.status.in_(("pending", "sending")))).first()
        if open_ is None:
            return
        time.sleep(0.02)
    raise AssertionError(f"deliveries still open after {timeout} s")


def deliveries(gw: Gateway) -> list[tuple[Delivery, list[Attempt]]]:
    with gw.sessions() as s:
        found = []
        for d in s.scalars(select(Delivery).order_by(Delivery.id)):
            rows = s.scalars(
                select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == d.id).order_by(DeliveryAttempt.number)
            )
            found.append((d, [Attempt(a.number, a.started_at, a.finished_at, a.outcome, a.error) for a in rows]))
            s.expunge(d)
        return found


def gaps(attempts: list[Attempt]) -> list[float]:
    """Seconds between the end of each attempt and the start of the next."""
    return [
        (b.started_at - a.finished_at).total_seconds()
        for a, b in itertools.pairwise(attempts)
        if a.finished_at is not None
    ]


def coparn_batch(i: int) -> bytes:
    """The COPARN sample as interchange ``i``: its own reference and three containers of its own."""
    from gateway.iso6346 import check_digit

    data = COPARN_EXAMPLE.read_bytes().replace(b"+20261124001", f"+GW{i:08d}".encode())
    for old, owner, serial in (
        (b"CSQU3054383", "CSQU", 3 * i),
        (b"MSCU1234566", "MSCU", 3 * i + 1),
        (b"TGHU8765436", "TGHU", 3 * i + 2),
    ):
        first_ten = f"{owner}{500000 + serial:06d}"
        data = data.replace(old, f"{first_ten}{check_digit(first_ten) % 10}".encode())
    return data


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway test peer")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "peer.pem", tmp_path / "peer.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file
