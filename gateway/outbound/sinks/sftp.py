"""SFTP sink (paramiko): upload each payload into a remote folder so that a reader never sees half a file.

The payload is written to ``.<idempotency key>.tmp`` in the remote folder, then renamed to its final name with
the ``posix-rename@openssh.com`` extension (which replaces an existing file atomically); a server without it gets
remove + rename. A resend under the same key replaces the same file.

Connecting is the SFTP channel's (``gateway.channels.sftp.open_transport``): the server's key is checked against
``known_hosts``/``host_key_sha256`` before any credential is sent. One connection per sink, kept between sends
and made again after it broke. Classification: network errors, timeouts and a lost connection are retryable; a
refused host key, a refused login, a missing folder and a permission error are permanent (a retry cannot help
until someone changes the configuration or the server).
"""

from __future__ import annotations

import contextlib
import errno
import io
import posixpath
import threading

import paramiko

from gateway.channels.sftp import HostKeyRefused, LoginFailed, open_sftp, open_transport
from gateway.config import SftpSink
from gateway.outbound.sinks import SinkError


class SftpSinkUploader:
    def __init__(self, config: SftpSink, route: str = "") -> None:
        self.config = config
        self.who = f"route {route}" if route else "an SFTP sink"
        self._lock = threading.Lock()  # one upload at a time over the one connection
        self._transport: paramiko.Transport | None = None
        self._sftp: paramiko.SFTPClient | None = None

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        sftp, transport, self._sftp, self._transport = self._sftp, self._transport, None, None
        with contextlib.suppress(Exception):
            if sftp is not None:
                sftp.close()
        with contextlib.suppress(Exception):
            if transport is not None:
                transport.close()

    def _client(self) -> paramiko.SFTPClient:
        if self._sftp is not None and self._transport is not None and self._transport.is_active():
            return self._sftp
        self._drop()
        transport = open_transport(self.config, self.who)
        try:
            sftp = open_sftp(transport, self.config.timeout)
        except BaseException:
            transport.close()
            raise
        self._transport, self._sftp = transport, sftp
        return sftp

    def send(self, payload: bytes, *, name: str, idempotency_key: str, content_type: str | None = None) -> bytes | None:
        if "/" in name or name.startswith(".") or not name:
            raise SinkError(f"refusing unsafe file name {name!r}", retryable=False)
        cfg = self.config
        final = posixpath.join(cfg.path, name)
        tmp = posixpath.join(cfg.path, f".{idempotency_key}.tmp")
        where = f"sftp://{cfg.host}:{cfg.port}/{final}"
        with self._lock:
            try:
                sftp = self._client()
            except HostKeyRefused as exc:
                raise SinkError(str(exc), retryable=False) from exc
            except (LoginFailed, paramiko.AuthenticationException) as exc:
                raise SinkError(f"{cfg.host}:{cfg.port}: login refused: {exc}", retryable=False) from exc
            except (OSError, EOFError, paramiko.SSHException) as exc:  # refused, reset, timeout, handshake
                raise SinkError(
                    f"{cfg.host}:{cfg.port}: cannot connect: {type(exc).__name__}: {exc}", retryable=True
                ) from exc
            try:
                sftp.putfo(io.BytesIO(payload), tmp, file_size=len(payload), confirm=True)
                _rename(sftp, tmp, final)
            except PermissionError as exc:
                self._remove_quietly(sftp, tmp)
                raise SinkError(f"{where}: permission denied: {exc}", retryable=False) from exc
            except FileNotFoundError as exc:
                self._remove_quietly(sftp, tmp)
                raise SinkError(f"{where}: the remote folder {cfg.path!r} does not exist", retryable=False) from exc
            except (OSError, EOFError, paramiko.SSHException) as exc:  # connection lost or the server failed
                self._remove_quietly(sftp, tmp)
                self._drop()
                raise SinkError(f"{where}: {type(exc).__name__}: {exc}", retryable=True) from exc
        return None

    def _remove_quietly(self, sftp: paramiko.SFTPClient, path: str) -> None:
        if self._transport is None or not self._transport.is_active():
            return
        with contextlib.suppress(Exception):
            sftp.remove(path)


def _rename(sftp: paramiko.SFTPClient, tmp: str, final: str) -> None:
    """Atomic replace where the server offers posix-rename; otherwise remove the old file, then rename."""
    try:
        sftp.posix_rename(tmp, final)
        return
    except (TimeoutError, EOFError):
        raise
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.ENOENT) or isinstance(exc, ConnectionError):
            raise
        # "Operation unsupported": an SFTP server without the OpenSSH extension
    with contextlib.suppress(FileNotFoundError):
        sftp.remove(final)
    sftp.rename(tmp, final)
