"""The gateway's own SFTP endpoint: partners push files, each into its own folder.

A partner logs in with its partner code as the user name and one of its public keys (nothing else is
accepted) and sees ``root/<partner code>/`` as ``/``. Every path it gives is resolved inside that folder:
``..`` above ``/``, and symbolic links leading out of it, are refused with permission denied.

An upload is written to a temporary file (``.gateway-upload-*``, never listed) in the partner's folder. When the
client closes the file, the server reads it and calls :meth:`Gateway.receive`, which returns after the commit;
only then is the close answered with OK and the temporary file removed. When the store fails the close is
answered with a failure, so the client knows it must send the file again. An upload the client never closed
(it went away, or the gateway was stopped or killed) is discarded and was never acknowledged; a resend of a
file whose close had been committed but not answered is recorded as a duplicate, never processed twice.

One thread accepts connections; each connection has its own paramiko ``Transport`` (and threads), so one slow
or broken client holds up nobody else.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import os
import posixpath
import secrets
import socket
import stat
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paramiko
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
    OPEN_SUCCEEDED,
)
from paramiko.sftp import (
    SFTP_FAILURE,
    SFTP_NO_SUCH_FILE,
    SFTP_OK,
    SFTP_OP_UNSUPPORTED,
    SFTP_PERMISSION_DENIED,
)

from gateway.channels import Backoff
from gateway.config import SftpServerChannel

if TYPE_CHECKING:
    from gateway.app import Gateway

log = structlog.get_logger("gateway.channel.sftp_server")

TEMP_PREFIX = ".gateway-upload-"
LOGIN_GRACE = 30.0  # seconds a connection has to log in
MAX_CONNECTIONS = 64  # connections at once; more are closed at once
MAX_OPEN_FILES = 32  # files one SFTP session may hold open at once
ACCEPT_TICK = 0.5  # how often the accept loop looks at the stop event
STORED_REMEMBERED = 1000  # stored paths per session that stat still reports


class UploadNotStored(Exception):
    """Raised from a file handle's close: paramiko answers the client's close with SFTP_FAILURE."""


def sftp_errno(exc: OSError) -> int:
    """The SFTP status for an OS error."""
    return int(paramiko.SFTPServer.convert_errno(exc.errno or errno.EIO))


# keys ---------------------------------------------------------------------------------------------------------
def key_blob(line: str) -> bytes | None:
    """The key blob of an OpenSSH public key line (``type base64 [comment]``), or None when it is not one.

    Lines with options before the key type (``from="..." ssh-ed25519 ...``) are not supported: None."""
    parts = line.split()
    if len(parts) < 2:
        return None
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        return None
    if len(blob) < 4:
        return None
    (n,) = struct.unpack(">I", blob[:4])
    return blob if blob[4 : 4 + n] == parts[0].encode() else None  # the blob names its own type


def read_authorized_keys(lines: Iterable[str], source: str) -> set[bytes]:
    keys: set[bytes] = set()
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        blob = key_blob(text)
        if blob is None:
            log.warning(
                "not an OpenSSH public key line, ignored (options are not supported)", source=source, line=number
            )
        else:
            keys.add(blob)
    return keys


def load_host_key(path: Path) -> paramiko.PKey:
    """The server's private key; an Ed25519 key is generated there (mode 0600) when the file is missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temp, path)  # never replaces a key another process wrote meanwhile
            generated = True
        except FileExistsError:
            generated = False
        finally:
            temp.unlink()
        if generated:
            key = paramiko.PKey.from_path(path)
            log.info("sftp host key generated", path=str(path), fingerprint=key.fingerprint)
            return key
    if path.stat().st_mode & 0o077:
        log.warning("sftp host key is readable by others: chmod 600 it", path=str(path))
    return paramiko.PKey.from_path(path)


# the server ---------------------------------------------------------------------------------------------------
class SftpServer:
    """The ``sftp_server`` channel: listens on ``host:port`` until ``stop``."""

    def __init__(self, name: str, config: SftpServerChannel, gateway: Gateway) -> None:
        self.name = name
        self.config = config
        self.gateway = gateway
        self.port: int | None = None  # the bound port once listening (config.port may be 0)
        self.listening = threading.Event()
        self.host_key: paramiko.PKey | None = None
        self._keys: dict[str, set[bytes]] = {}
        for user, cfg in config.users.items():
            if user in ("", ".", "..") or "/" in user or "\x00" in user:
                log.error("sftp user name cannot be a folder name, ignored", channel=name, user=user)
                continue
            self._keys[user] = read_authorized_keys(cfg.authorized_keys, f"channels.{name}.users.{user}")
        self._lock = threading.Lock()
        self._uploads = 0
        self._connections: dict[threading.Thread, paramiko.Transport | None] = {}

    # the channel protocol
    def pending(self) -> int:
        """Uploads open right now (written, not yet closed)."""
        with self._lock:
            return self._uploads

    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop``; a failure to start (key, port) is logged and tried again with backoff."""
        backoff = Backoff(30.0)
        while not stop.is_set():
            try:
                self.host_key = load_host_key(self.config.host_key)
                self._prepare_folders()
                listener = self._listen()
            except Exception:
                log.error("sftp server cannot start", channel=self.name, exc_info=True)
                stop.wait(backoff.next())
                continue
            backoff.reset()
            try:
                self._serve(listener, stop)
            except Exception:
                log.error("sftp server loop failed", channel=self.name, exc_info=True)
                stop.wait(backoff.next())
            finally:
                listener.close()
                self.listening.clear()
                self.gateway.metrics.up.labels(self.name).set(0)
                self._close_connections()
        log.info("sftp server stopped", channel=self.name)

    # set-up
    def _prepare_folders(self) -> None:
        """Each partner's folder exists; uploads a killed process left unanswered are removed."""
        self.config.root.mkdir(parents=True, exist_ok=True)
        for user in self._keys:
            home = self.config.root / user
            home.mkdir(mode=0o750, exist_ok=True)
            for stale in home.glob(TEMP_PREFIX + "*"):
                stale.unlink(missing_ok=True)
                log.info("unfinished upload removed", channel=self.name, partner=user, file=stale.name)

    def _listen(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.config.host, self.config.port))
            listener.listen(64)
            listener.settimeout(ACCEPT_TICK)
        except Exception:
            listener.close()
            raise
        self.port = int(listener.getsockname()[1])
        assert self.host_key is not None
        self.gateway.metrics.up.labels(self.name).set(1)
        self.listening.set()
        log.info(
            "sftp server listening",
            channel=self.name,
            host=self.config.host,
            port=self.port,
            fingerprint=self.host_key.fingerprint,
        )
        return listener

    def _serve(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                sock, peer = listener.accept()
            except TimeoutError:
                self._reap()
                continue
            except OSError:  # e.g. too many open files: wait a little, the listener itself is fine
                log.warning("sftp accept failed", channel=self.name, exc_info=True)
                stop.wait(ACCEPT_TICK)
                continue
            self._reap()
            with self._lock:
                crowded = len(self._connections) >= MAX_CONNECTIONS
            if crowded:
                log.warning("sftp connection refused: too many connections", channel=self.name, peer=peer[0])
                self.gateway.metrics.refused.labels(self.name, "connections").inc()
                sock.close()
                continue
            thread = threading.Thread(
                target=self._connection, args=(sock, f"{peer[0]}:{peer[1]}", stop), name=f"sftp:{peer}", daemon=True
            )
            with self._lock:
                self._connections[thread] = None
            thread.start()

    def _reap(self) -> None:
        with self._lock:
            for thread in [t for t in self._connections if not t.is_alive() and t.ident is not None]:
                del self._connections[thread]

    def _close_connections(self) -> None:
        with self._lock:
            connections = list(self._connections.items())
        for _, transport in connections:
            if transport is not None:
                transport.close()
        for thread, _ in connections:
            thread.join(timeout=10)
        self._reap()

    # one connection
    def _connection(self, sock: socket.socket, peer: str, stop: threading.Event) -> None:
        """Handshake, log in within LOGIN_GRACE, then serve SFTP until the client or ``stop`` ends it."""
        transport: paramiko.Transport | None = None
        try:
            sock.settimeout(None)
            transport = paramiko.Transport(sock)
            with self._lock:
                self._connections[threading.current_thread()] = transport
            assert self.host_key is not None
            transport.add_server_key(self.host_key)
            login = Login(self, transport, peer)
            transport.set_subsystem_handler("sftp", paramiko.SFTPServer, sftp_si=PartnerFolder)
            try:
                transport.start_server(server=login)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                cause = transport.get_exception()
                log.info("sftp handshake failed", channel=self.name, peer=peer, error=str(cause or exc))
                return
            deadline = time.monotonic() + LOGIN_GRACE
            sessions: list[paramiko.Channel] = []  # held: paramiko closes a session whose Channel is collected
            while transport.is_active() and not stop.is_set():
                if not transport.is_authenticated() and time.monotonic() > deadline:
                    log.info("sftp login timed out", channel=self.name, peer=peer)
                    break
                session = transport.accept(timeout=ACCEPT_TICK)  # the subsystem handler serves it
                sessions = [c for c in sessions if not c.closed] + ([session] if session is not None else [])
            if not transport.is_authenticated() and login.refused:
                self.gateway.metrics.refused.labels(self.name, "auth").inc()
        except Exception:
            log.error("sftp connection failed", channel=self.name, peer=peer, exc_info=True)
        finally:
            if transport is not None:
                transport.close()
            else:
                sock.close()

    # used by Login and the SFTP handles
    def authorized(self, user: str, key: paramiko.PKey) -> bool:
        keys = self._keys.get(user)
        if keys is None:
            return False
        blob = key.asbytes()
        if blob in keys:
            return True
        path = self.config.users[user].authorized_keys_file
        if path is None:
            return False
        try:
            text = path.read_text(encoding="utf-8")  # read at every login, as sshd does
        except OSError as exc:
            log.warning("sftp authorized_keys_file unreadable", channel=self.name, user=user, error=str(exc))
            return False
        return blob in read_authorized_keys(text.splitlines(), str(path))

    def upload_started(self) -> None:
        with self._lock:
            self._uploads += 1

    def upload_ended(self) -> None:
        with self._lock:
            self._uploads -= 1

    def refuse(self, reason: str, event: str, **fields: Any) -> None:
        self.gateway.metrics.refused.labels(self.name, reason).inc()
        log.warning(event, channel=self.name, **fields)


class Login(paramiko.ServerInterface):
    """Public-key logins only; the login name is the partner code and the key must be one of that partner's."""

    def __init__(self, server: SftpServer, transport: paramiko.Transport, peer: str) -> None:
        self.server = server
        self.transport = transport
        self.peer = peer
        self.refused = False

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if self.server.authorized(username, key):
            return AUTH_SUCCESSFUL
        self.refused = True
        log.info(
            "sftp key refused",
            channel=self.server.name,
            peer=self.peer,
            user=username,
            key=f"{key.get_name()} {key.fingerprint}",
        )
        return AUTH_FAILED

    def check_auth_password(self, username: str, password: str) -> int:
        self.refused = True
        log.info("sftp password refused", channel=self.server.name, peer=self.peer, user=username)
        return AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return OPEN_SUCCEEDED
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class PartnerFolder(paramiko.SFTPServerInterface):
    """One SFTP session of a logged-in partner, confined to ``root/<partner>/``."""

    def __init__(self, server: paramiko.ServerInterface, *args: Any, **kwargs: Any) -> None:
        super().__init__(server, *args, **kwargs)
        assert isinstance(server, Login) and server.transport.is_authenticated()
        self.login = server
        self.channel = server.server
        self.partner = str(server.transport.get_username())  # the name that logged in, not one merely tried
        self.home = Path(os.path.realpath(self.channel.config.root / self.partner))
        self.ended = False
        self.files = 0  # open file handles
        # path → attributes of the files stored in this session, which stat reports after their local file is
        # gone: a client that confirms an upload with a stat (paramiko's put) sees it only once it is committed
        self.stored: OrderedDict[str, paramiko.SFTPAttributes] = OrderedDict()

    def session_started(self) -> None:
        log.info("sftp session", channel=self.channel.name, partner=self.partner, peer=self.login.peer)

    def remember(self, path: str, size: int) -> None:
        attrs = paramiko.SFTPAttributes()
        attrs.st_size = size
        attrs.st_mode = stat.S_IFREG | 0o640
        attrs.st_mtime = attrs.st_atime = int(time.time())
        attrs.filename = posixpath.basename(path)
        self.stored[path] = attrs
        while len(self.stored) > STORED_REMEMBERED:
            self.stored.popitem(last=False)

    def session_ended(self) -> None:
        self.ended = True  # handles paramiko closes from now on were left open by the client: discard them

    # paths
    @staticmethod
    def virtual(path: str, *, clamp: bool = False) -> str | None:
        """The path as the partner sees it, normalised; None when it climbs above ``/`` (unless ``clamp``)."""
        parts: list[str] = []
        for part in path.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if parts:
                    parts.pop()
                elif not clamp:
                    return None
            else:
                parts.append(part)
        return "/" + "/".join(parts)

    def local(self, path: str, *, home_ok: bool = True) -> Path | int:
        """The local path for a client's path, or SFTP_PERMISSION_DENIED when it would leave the folder."""
        virtual = self.virtual(path) if "\x00" not in path else None
        if virtual is None:
            return self._denied(path)
        if virtual == "/":
            return self.home if home_ok else self._denied(path)
        local = self.home / virtual[1:]
        if local.name.startswith(TEMP_PREFIX):
            return self._denied(path)
        for real in (os.path.realpath(local.parent), os.path.realpath(local)):  # symlinks that lead out
            if real != str(self.home) and not real.startswith(str(self.home) + os.sep):
                return self._denied(path)
        return local

    def _denied(self, path: str) -> int:
        self.channel.refuse("path", "sftp path refused", partner=self.partner, path=path[:300])
        return SFTP_PERMISSION_DENIED

    # files
    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> paramiko.SFTPHandle | int:
        local = self.local(path, home_ok=False)
        if isinstance(local, int):
            return local
        if self.files >= MAX_OPEN_FILES:
            log.warning("sftp session has too many open files", channel=self.channel.name, partner=self.partner)
            return SFTP_FAILURE
        try:
            if flags & (os.O_WRONLY | os.O_RDWR):
                if flags & os.O_APPEND:
                    return SFTP_OP_UNSUPPORTED  # every upload is a whole new file
                if not local.parent.is_dir():
                    return SFTP_NO_SUCH_FILE
                if local.is_dir() or (flags & os.O_EXCL and local.exists()):
                    return SFTP_FAILURE
                virtual = str(self.virtual(path))
                self.stored.pop(virtual, None)
                return Upload(self, virtual, local.name)
            if not local.is_file():
                return SFTP_NO_SUCH_FILE if not local.exists() else SFTP_FAILURE
            return Download(self, os.open(local, os.O_RDONLY))
        except OSError as exc:
            return sftp_errno(exc)

    def list_folder(self, path: str) -> list[paramiko.SFTPAttributes] | int:
        local = self.local(path)
        if isinstance(local, int):
            return local
        try:
            entries = []
            for name in sorted(os.listdir(local)):
                if name.startswith(TEMP_PREFIX):
                    continue
                entries.append(paramiko.SFTPAttributes.from_stat(os.lstat(local / name), name))
            return entries
        except OSError as exc:
            return sftp_errno(exc)

    def stat(self, path: str) -> paramiko.SFTPAttributes | int:
        return self._stat(path, os.stat)

    def lstat(self, path: str) -> paramiko.SFTPAttributes | int:
        return self._stat(path, os.lstat)

    def _stat(self, path: str, how: Any) -> paramiko.SFTPAttributes | int:
        local = self.local(path)
        if isinstance(local, int):
            return local
        try:
            return paramiko.SFTPAttributes.from_stat(how(local), local.name)
        except FileNotFoundError as exc:
            stored = self.stored.get(str(self.virtual(path)))
            return stored if stored is not None else sftp_errno(exc)
        except OSError as exc:
            return sftp_errno(exc)

    def remove(self, path: str) -> int:
        return self._do(path, lambda p: p.unlink())

    def rmdir(self, path: str) -> int:
        return self._do(path, lambda p: p.rmdir())

    def mkdir(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        return self._do(path, lambda p: p.mkdir(mode=0o750))

    def chattr(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        return self._do(path, lambda p: p.lstat())  # attributes are not kept; the path must exist

    def rename(self, oldpath: str, newpath: str) -> int:
        return self._rename(oldpath, newpath, replace=False)

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        return self._rename(oldpath, newpath, replace=True)

    def _rename(self, oldpath: str, newpath: str, *, replace: bool) -> int:
        old = self.local(oldpath, home_ok=False)
        if isinstance(old, int):
            return old
        new = self.local(newpath, home_ok=False)
        if isinstance(new, int):
            return new
        if not replace and new.exists():
            return SFTP_FAILURE
        return self._do(oldpath, lambda p: os.replace(p, new), local=old)

    def _do(self, path: str, action: Any, local: Path | int | None = None) -> int:
        target = self.local(path, home_ok=False) if local is None else local
        if isinstance(target, int):
            return target
        try:
            action(target)
        except OSError as exc:
            return sftp_errno(exc)
        return SFTP_OK

    def canonicalize(self, path: str) -> str:
        """The partner's view: ``/`` is its folder, and ``..`` at ``/`` stays at ``/`` (as in a chroot)."""
        return str(self.virtual(path.replace("\x00", ""), clamp=True))

    def readlink(self, path: str) -> str | int:
        return SFTP_OP_UNSUPPORTED

    def symlink(self, target_path: str, path: str) -> int:
        return self._denied(path)


class Download(paramiko.SFTPHandle):
    """A file in the partner's folder, opened for reading."""

    def __init__(self, folder: PartnerFolder, fd: int) -> None:
        super().__init__(os.O_RDONLY)
        self.folder = folder
        self.fd = fd
        folder.files += 1

    def read(self, offset: int, length: int) -> bytes | int:
        try:
            return os.pread(self.fd, length, offset)
        except OSError as exc:
            return sftp_errno(exc)

    def write(self, offset: int, data: Any) -> int:
        return SFTP_PERMISSION_DENIED

    def stat(self) -> paramiko.SFTPAttributes | int:
        return paramiko.SFTPAttributes.from_stat(os.fstat(self.fd))

    def chattr(self, attr: paramiko.SFTPAttributes) -> int:
        return SFTP_OK

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            self.folder.files -= 1


class Upload(paramiko.SFTPHandle):
    """A file being uploaded: a temporary file until the close, which stores it (committed) or fails."""

    def __init__(self, folder: PartnerFolder, path: str, filename: str) -> None:
        super().__init__(os.O_RDWR)
        self.folder = folder
        self.path = path  # as the partner named it
        self.filename = filename
        self.temp = folder.home / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        self.fd = os.open(self.temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        folder.files += 1
        self.size = 0
        self.too_large = False
        self.finished = False
        folder.channel.upload_started()

    def write(self, offset: int, data: Any) -> int:
        if self.finished:
            return SFTP_FAILURE
        end = offset + len(data)
        limit = self.folder.channel.config.max_file_bytes
        if end > limit or self.too_large:
            if not self.too_large:
                self.too_large = True
                os.ftruncate(self.fd, 0)  # its bytes are not wanted
                self.folder.channel.refuse(
                    "size", "sftp upload too large", partner=self.folder.partner, path=self.path, limit=limit
                )
            return SFTP_FAILURE
        try:
            os.pwrite(self.fd, data, offset)
        except OSError as exc:
            return sftp_errno(exc)
        self.size = max(self.size, end)
        return SFTP_OK

    def read(self, offset: int, length: int) -> bytes | int:
        try:
            return os.pread(self.fd, length, offset)
        except OSError as exc:
            return sftp_errno(exc)

    def stat(self) -> paramiko.SFTPAttributes | int:
        return paramiko.SFTPAttributes.from_stat(os.fstat(self.fd))

    def chattr(self, attr: paramiko.SFTPAttributes) -> int:
        return SFTP_OK  # times and modes are not kept

    def close(self) -> None:
        """The client's close: store (committed), then OK. Raising makes paramiko answer SFTP_FAILURE; the handle
        stays open, so a close sent again tries the store again. A close paramiko makes at the end of the
        session (the client never closed the file) discards the upload."""
        if self.finished:
            return
        folder = self.folder
        channel = folder.channel
        if folder.ended:
            self._finish()
            log.info("sftp upload abandoned", channel=channel.name, partner=folder.partner, path=self.path)
            return
        if self.too_large:
            raise UploadNotStored(f"{self.path} is larger than {channel.config.max_file_bytes} bytes")
        size = os.fstat(self.fd).st_size
        if size > channel.config.max_file_bytes:  # a truncating setstat could not grow it, but be sure
            raise UploadNotStored(f"{self.path} is too large")
        raw = os.pread(self.fd, size, 0) if size else b""
        if not raw:
            self._finish()
            channel.refuse("empty", "sftp empty upload ignored", partner=folder.partner, path=self.path)
            return
        try:
            receipt = channel.gateway.receive(
                raw,
                channel=channel.name,
                partner=folder.partner,
                filename=self.filename,
                headers={"path": self.path, "size": len(raw), "login": folder.partner, "peer": folder.login.peer},
            )
        except Exception as exc:
            log.error(
                "sftp upload not stored", channel=channel.name, partner=folder.partner, path=self.path, exc_info=True
            )
            raise UploadNotStored(f"{self.path} was not stored: {type(exc).__name__}") from exc
        self._finish()
        folder.remember(self.path, len(raw))
        log.info(
            "sftp upload stored",
            channel=channel.name,
            partner=folder.partner,
            path=self.path,
            size=len(raw),
            message_id=receipt.message_id,
            duplicate_of=receipt.duplicate_of,
        )

    def _finish(self) -> None:
        self.finished = True
        with contextlib.suppress(OSError):
            os.close(self.fd)
        try:
            self.temp.unlink()
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                log.warning("sftp temporary file not removed", file=str(self.temp), error=str(exc))
        self.folder.files -= 1
        self.folder.channel.upload_ended()
