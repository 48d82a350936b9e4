"""SMTP sink (smtplib): each payload is the body of one mail, the NACCS two-way mail transport.

The body is the payload's bytes as rendered (EUC-JP by default), announced as ``text/plain; charset="EUC-JP"``
with ``Content-Transfer-Encoding: 8bit``; lines end in CRLF as SMTP requires (a bare LF or CR becomes CRLF,
nothing else changes). ``BODY=8BITMIME`` is asked for when the server offers it. ``Message-ID`` is derived from
the delivery's idempotency key, so a resend after a lost answer carries the same id and the receiving side can
recognise it.

``security``: ``starttls`` (the default; a server that does not offer STARTTLS is an error, never a downgrade),
``ssl`` (SMTPS) or ``none``. Certificates are verified against the system's CAs or ``ca_file``. The password
comes from ``password_env`` and is never logged.

Classification: a refused or lost connection, a timeout and 4xx answers are retryable; 5xx answers, a refused
login and a server without STARTTLS are permanent. When the server takes the mail for some recipients and
refuses others, the error is permanent (a resend would mail the others twice) and names the refused ones.
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
from collections.abc import Mapping
from email.header import Header
from email.utils import formatdate

from gateway.config import SmtpSink
from gateway.outbound.sinks import SinkError

_EOL = re.compile(rb"\r\n|\r|\n")


class SmtpSinkMailer:
    def __init__(self, config: SmtpSink) -> None:
        self.config = config
        self.context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)

    def message(self, payload: bytes, *, idempotency_key: str) -> bytes:
        """The whole mail: headers, blank line, the payload with CRLF line ends."""
        cfg = self.config
        domain = cfg.mail_from.rpartition("@")[2].strip(">") or "port-gateway"
        subject = cfg.subject
        if not subject.isascii():
            subject = Header(subject, "utf-8").encode()
        headers = [
            f"From: {cfg.mail_from}",
            f"To: {', '.join(cfg.mail_to)}",
            f"Subject: {subject}",
            f"Date: {formatdate(localtime=False, usegmt=True)}",
            f"Message-ID: <{idempotency_key}@{domain}>",
            "MIME-Version: 1.0",
            f'Content-Type: text/plain; charset="{cfg.charset}"',
            "Content-Transfer-Encoding: 8bit",
        ]
        body = _EOL.sub(b"\r\n", payload)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        return ("\r\n".join(headers) + "\r\n\r\n").encode("ascii") + body

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        server: smtplib.SMTP
        if cfg.security == "ssl":
            server = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=self.context)
        else:
            server = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        try:
            server.ehlo()
            if cfg.security == "starttls":
                server.starttls(context=self.context)  # SMTPNotSupportedError when not offered: no downgrade
                server.ehlo()
            if cfg.username is not None and cfg.password_env is not None:
                password = os.environ.get(cfg.password_env)
                if password is None:
                    raise SinkError(
                        f"the environment variable {cfg.password_env} (password_env) is not set", retryable=False
                    )
                server.login(cfg.username, password)
        except BaseException:
            server.close()
            raise
        return server

    def send(self, payload: bytes, *, name: str, idempotency_key: str, content_type: str | None = None) -> bytes | None:
        """The mail body is always the NACCS ``text/plain`` of the configured charset; ``content_type`` is not used."""
        cfg = self.config
        where = f"smtp {cfg.host}:{cfg.port}"
        mail = self.message(payload, idempotency_key=idempotency_key)
        try:
            server = self._connect()
            try:
                options = ["BODY=8BITMIME"] if server.has_extn("8bitmime") else []
                refused = server.sendmail(cfg.mail_from, cfg.mail_to, mail, mail_options=options)
            finally:
                try:
                    server.quit()
                except (smtplib.SMTPException, OSError):
                    server.close()
        except smtplib.SMTPRecipientsRefused as exc:  # every recipient refused
            codes = [code for code, _ in exc.recipients.values()]
            text = f"{where}: every recipient refused: {_refusals(exc.recipients)}"
            raise SinkError(text, retryable=all(400 <= c < 500 for c in codes)) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise SinkError(f"{where}: {exc} (security: {cfg.security})", retryable=False) from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise SinkError(f"{where}: login refused: {exc.smtp_code}", retryable=False) from exc
        except smtplib.SMTPResponseException as exc:
            text = f"{where}: {exc.smtp_code} {_text(exc.smtp_error)}"
            raise SinkError(text, retryable=400 <= exc.smtp_code < 500) from exc
        except (smtplib.SMTPException, OSError) as exc:  # refused, lost, timed out, TLS failure
            raise SinkError(f"{where}: {type(exc).__name__}: {exc}", retryable=True) from exc
        if refused:
            raise SinkError(f"{where}: mailed, but some recipients refused: {_refusals(refused)}", retryable=False)
        return None


def _refusals(recipients: Mapping[str, tuple[int, bytes | str]]) -> str:
    return "; ".join(f"{r} {code} {_text(text)}" for r, (code, text) in recipients.items())


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
