"""SMTP sink (the NACCS two-way mail transport) against a local aiosmtpd server on loopback."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from gateway.config import SmtpSink
from gateway.outbound.sinks import SinkError
from gateway.outbound.sinks.smtp import SmtpSinkMailer
from tests.integration.sinks.support import coparn, deliveries, drive, gateway_to, self_signed

# a NACCS-like body: kanji and half-width kana in EUC-JP, CRLF line ends, a line starting with a dot
NACCS_BODY = "ECR01 輸出申告 ｶﾌﾞｼｷｶﾞｲｼｬ\r\n.DOT LINE\r\n港湾 ＡＢＣ\r\n".encode("euc_jp")


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]
    content: bytes


@dataclass
class Handler:
    mails: list[Mail] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # recipient → SMTP answer

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(
            Mail(envelope.mail_from, list(envelope.rcpt_tos), list(envelope.mail_options), envelope.content)
        )
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SmtpPeer:
    handler: Handler
    port: int


def _serve(**smtp: Any) -> Iterator[SmtpPeer]:
    handler = Handler()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **smtp)
    controller.start()
    try:
        yield SmtpPeer(handler, port)
    finally:
        controller.stop()


@pytest.fixture
def smtp_peer() -> Iterator[SmtpPeer]:
    yield from _serve()


def sink_config(port: int, **overrides: Any) -> dict[str, Any]:
    return {
        "type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "mail_from": "gateway@port.example.jp",
        "mail_to": ["naccs-in@naccs.example.jp"],
        "subject": "NACCS ECR",
        "timeout": "5s",
        **overrides,
    }


def _split(content: bytes) -> tuple[email.message.EmailMessage, bytes]:
    head, _, body = content.partition(b"\r\n\r\n")
    message = email.message_from_bytes(head + b"\r\n\r\n", policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message, body


def test_the_euc_jp_body_arrives_byte_for_byte_with_the_right_headers(smtp_peer: SmtpPeer) -> None:
    """The payload is the body, unchanged (EUC-JP bytes, CRLF, the leading dot unstuffed again by the server);
    headers: From, To, Subject, text/plain; charset="EUC-JP", 8bit, Message-ID from the key; BODY=8BITMIME
    asked for. Breaks if the body is re-encoded (base64, quoted-printable, UTF-8), a header is wrong, or
    dot-stuffing is skipped."""
    sink = SmtpSinkMailer(SmtpSink(**sink_config(smtp_peer.port)))
    sink.send(NACCS_BODY, name="ecr.txt", idempotency_key="3f2a9c")
    [mail] = smtp_peer.handler.mails
    assert mail.mail_from == "gateway@port.example.jp" and mail.rcpt_tos == ["naccs-in@naccs.example.jp"]
    assert "BODY=8BITMIME" in mail.mail_options
    headers, body = _split(mail.content)
    assert body == NACCS_BODY
    assert headers["From"] == "gateway@port.example.jp" and headers["To"] == "naccs-in@naccs.example.jp"
    assert headers["Subject"] == "NACCS ECR"
    assert headers["Message-ID"] == "<3f2a9c@port.example.jp>"
    assert headers["Content-Type"] == 'text/plain; charset="EUC-JP"'
    assert headers["Content-Transfer-Encoding"] == "8bit"
    assert body.decode("euc_jp").startswith("ECR01 輸出申告")


def test_a_delivery_is_mailed_through_the_dispatcher_with_its_key(
    smtp_peer: SmtpPeer, tmp_path: Path, database_url: str
) -> None:
    """A route with an smtp sink: the stored payload is the body, Message-ID carries the delivery's key, the
    configured charset is announced. Breaks if the route's to: smtp is not built, or the key is not used."""
    to = sink_config(smtp_peer.port, charset="UTF-8", mail_to=["a@x.example", "b@x.example"])
    gw = gateway_to(tmp_path, database_url, to)
    try:
        gw.accept(coparn(1), channel="drops")
        drive(gw)
        [(delivery, _)] = deliveries(gw)
        assert delivery.status == "done"
        [mail] = smtp_peer.handler.mails
        headers, body = _split(mail.content)
        assert headers["Message-ID"] == f"<{delivery.idempotency_key}@port.example.jp>"
        assert headers["Content-Type"] == 'text/plain; charset="UTF-8"'
        assert headers["To"] == "a@x.example, b@x.example" and mail.rcpt_tos == ["a@x.example", "b@x.example"]
        assert body.startswith(b"{")
    finally:
        gw.close()


def test_refusals_5xx_permanent_4xx_retryable_down_retryable(smtp_peer: SmtpPeer) -> None:
    """550 for the recipient: permanent; 451: retryable; nothing listening: retryable. Breaks if the SMTP reply
    class is not what decides."""
    smtp_peer.handler.refuse = {"gone@x.example": "550 no such user", "busy@x.example": "451 try later"}
    with pytest.raises(SinkError) as gone:
        SmtpSinkMailer(SmtpSink(**sink_config(smtp_peer.port, mail_to=["gone@x.example"]))).send(
            b"x", name="a", idempotency_key="k"
        )
    assert not gone.value.retryable and "550" in str(gone.value)
    with pytest.raises(SinkError) as busy:
        SmtpSinkMailer(SmtpSink(**sink_config(smtp_peer.port, mail_to=["busy@x.example"]))).send(
            b"x", name="a", idempotency_key="k"
        )
    assert busy.value.retryable and "451" in str(busy.value)
    with pytest.raises(SinkError) as down:
        SmtpSinkMailer(SmtpSink(**sink_config(_free_port()))).send(b"x", name="a", idempotency_key="k")
    assert down.value.retryable
    assert smtp_peer.handler.mails == []


def test_starttls_is_verified_and_never_skipped(tmp_path: Path) -> None:
    """A server with STARTTLS and a self-signed certificate: refused without ca_file, mailed with it; a server
    without STARTTLS is a permanent error when starttls is configured (no silent plain text). Breaks if the
    certificate is not checked or the sink falls back to plain text."""
    cert_file, key_file = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    for peer in _serve(tls_context=context, require_starttls=True):
        with pytest.raises(SinkError) as unverified:
            SmtpSinkMailer(SmtpSink(**sink_config(peer.port, security="starttls"))).send(
                NACCS_BODY, name="a", idempotency_key="k1"
            )
        assert "CERTIFICATE_VERIFY_FAILED" in str(unverified.value)
        assert peer.handler.mails == []
        sink = SmtpSinkMailer(SmtpSink(**sink_config(peer.port, security="starttls", ca_file=str(cert_file))))
        sink.send(NACCS_BODY, name="a", idempotency_key="k2")
        assert [_split(m.content)[1] for m in peer.handler.mails] == [NACCS_BODY]
    for plain in _serve():
        with pytest.raises(SinkError) as no_tls:
            SmtpSinkMailer(SmtpSink(**sink_config(plain.port, security="starttls"))).send(
                b"x", name="a", idempotency_key="k3"
            )
        assert not no_tls.value.retryable and plain.handler.mails == []
