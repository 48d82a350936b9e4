"""SFTP polling channel: scheduled carrier drops fetched from a partner's SFTP server (paramiko).

One connection (a :class:`paramiko.Transport`) per channel. Before logging in, the server's key is checked
against the keys pinned in the channel's config (an OpenSSH ``known_hosts`` file and/or ``SHA256:`` fingerprints
as ``ssh-keygen -lf`` prints them); any other key is refused, with the host, port, key type and fingerprint it
offered in the log, and no credentials are sent. Then password (from the environment variable ``password_env``)
and/or key authentication.

Every ``poll`` the remote folder is listed; a file whose name matches ``pattern`` (dot files, folders and links
are skipped; so is a listed name that is not a plain file name, with a separator, a NUL or over 255 bytes:
:func:`plain_name`, logged once and counted in ``gateway_channel_refused{reason="name"}``) is taken once its size
and mtime have held still for ``settle`` seconds, remembered across polls.
Taking a file: download it into memory (at most :data:`MAX_FILE_BYTES`; a larger file is refused, counted in
``gateway_channel_refused{reason="size"}`` and left where it is), check it did not change while being read,
:meth:`Gateway.receive` it (which returns after the commit), and only then delete it or rename it into
``move_to`` as ``<message id>_<name>``. A crash between the commit and the delete leaves the file on the server:
the next run downloads it again and the store records a duplicate, which is never processed. Within one run a
file that was stored but could not be deleted is not downloaded again; only the delete is retried.

At most ``concurrency`` files are taken at once, each worker thread with its own SFTP channel over the shared
transport (worker 0 uses the listing channel). A connection error, a timeout or a refused key marks the channel
down (``gateway_channel_up``) and reconnects with :class:`Backoff`; a file that fails is logged and the others
go on; :meth:`SftpPoller.run` only returns when ``stop`` is set.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import posixpath
import socket
import stat
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import paramiko
import structlog

from gateway.channels import Backoff
from gateway.channels.folder import prefixed
from gateway.config import SftpChannel

if TYPE_CHECKING:
    from gateway.app import Gateway

log = structlog.get_logger("gateway.channel.sftp")

MAX_FILE_BYTES = 100_000_000  # a file is read into memory whole; larger ones are refused and left on the server

# the host key algorithms that verify a key of each known_hosts type (paramiko names RSA keys "ssh-rsa")
_ALGORITHMS = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")}


class HostKeyRefused(Exception):
    """The server offered a key that is not pinned for the channel."""


class LoginFailed(Exception):
    """Authentication could not even be tried (missing password variable) or the server refused it."""


class ListingFailed(Exception):
    """The remote folder could not be listed (missing, no permission, or the connection failed)."""


class ConnectionLost(Exception):
    """The transport closed under a poll."""


@dataclass(frozen=True)
class Remote:
    """A remote file as listed."""

    name: str
    path: str
    size: int
    mtime: int


class _Connection:
    """A logged-in transport and up to ``concurrency`` SFTP channels over it (``client(0)`` also lists)."""

    def __init__(self, transport: paramiko.Transport, first: paramiko.SFTPClient, size: int, timeout: float):
        self.transport = transport
        self.timeout = timeout
        self.clients: list[paramiko.SFTPClient | None] = [first] + [None] * (size - 1)
        self.limit = size  # lowered when the server refuses more channels (OpenSSH: MaxSessions)

    @property
    def active(self) -> bool:
        return self.transport.is_active()

    def client(self, i: int) -> paramiko.SFTPClient:
        found = self.clients[i]
        if found is None:
            found = open_sftp(self.transport, self.timeout)
            self.clients[i] = found
        return found

    def drop(self, i: int) -> None:
        """Close worker ``i``'s channel (after an error its state is unknown); the next use opens a new one."""
        found, self.clients[i] = self.clients[i], None
        if found is not None:
            with contextlib.suppress(Exception):  # closing a broken channel may fail too
                found.close()

    def close(self) -> None:
        for i in range(len(self.clients)):
            self.drop(i)
        self.transport.close()


def open_sftp(transport: paramiko.Transport, timeout: float) -> paramiko.SFTPClient:
    """An SFTP client on ``transport`` whose every request gives up after ``timeout`` seconds."""
    sftp = paramiko.SFTPClient.from_transport(transport)
    if sftp is None:  # paramiko returns None when the channel could not be opened
        raise paramiko.SSHException("the server did not open an SFTP channel")
    channel = sftp.get_channel()
    if channel is not None:
        channel.settimeout(timeout)  # no request waits longer than this
    return sftp


class SftpPoller:
    def __init__(self, name: str, config: SftpChannel, gateway: Gateway) -> None:
        self.name = name
        self.config = config
        self.gateway = gateway
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[int, int, float]] = {}  # remote path → size, mtime, since when unchanged
        self._stored: dict[str, tuple[int, int, int]] = {}  # stored, not yet removed: path → size, mtime, message id
        self._too_large: set[tuple[str, int, int]] = set()  # refused (path, size, mtime): not pending, logged once
        self._bad_names: set[str] = set()  # listed names that are not plain file names: skipped, logged once
        self._looked = threading.Event()  # a listing was made, or the server could not be reached

    # the loop ----------------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Connect, poll every ``poll`` seconds, reconnect with backoff after any failure, until ``stop``."""
        backoff = Backoff(self.config.max_backoff)
        while not stop.is_set():
            conn: _Connection | None = None
            try:
                conn = self.connect()
                self._up(True)
                log.info("sftp connected", channel=self.name, host=self.config.host, port=self.config.port)
                while not stop.is_set():
                    self.poll_once(conn, stop)
                    backoff.reset()  # a whole poll worked: the next failure starts again from 1 s
                    stop.wait(self.config.poll)
            except HostKeyRefused as exc:
                log.error("sftp host key refused", channel=self.name, error=str(exc))
            except Exception as exc:  # a peer, network or login failure: never the end of the loop
                log.warning(
                    "sftp connection failed",
                    channel=self.name,
                    host=self.config.host,
                    port=self.config.port,
                    error=f"{type(exc).__name__}: {exc}",
                )
            finally:
                self._up(False)
                self._looked.set()  # run --until-idle does not wait for a server it cannot reach
                if conn is not None:
                    conn.close()
            if not stop.is_set():
                delay = backoff.next()
                log.info("sftp reconnecting", channel=self.name, in_seconds=round(delay, 2))
                stop.wait(delay)

    def pending(self) -> int:
        """Matching files seen on the server and not yet taken (refused oversize files do not count); 1 until
        the first listing or failed connect, so ``run --until-idle`` does not stop before it looked."""
        return len(self._seen) if self._looked.is_set() else 1

    def _up(self, up: bool) -> None:
        self.gateway.metrics.up.labels(self.name).set(1 if up else 0)

    # connecting --------------------------------------------------------------------------------------------
    def connect(self) -> _Connection:
        """A transport whose server key is pinned, logged in, with one SFTP channel."""
        cfg = self.config
        transport = open_transport(cfg, f"channel {self.name}")
        try:
            conn = _Connection(transport, open_sftp(transport, cfg.timeout), cfg.concurrency, cfg.timeout)
        except BaseException:
            transport.close()
            raise
        if cfg.after == "move" and cfg.move_to:
            self._ensure_folder(conn.client(0), cfg.move_to)
        return conn

    def _ensure_folder(self, sftp: paramiko.SFTPClient, folder: str) -> None:
        try:
            sftp.stat(folder)
        except FileNotFoundError:
            try:
                sftp.mkdir(folder)
                log.info("sftp folder created", channel=self.name, folder=folder)
            except OSError as exc:  # the renames will fail and say so, file by file
                log.warning("sftp move_to folder missing", channel=self.name, folder=folder, error=str(exc))

    # polling -----------------------------------------------------------------------------------------------
    def poll_once(self, conn: _Connection, stop: threading.Event | None = None) -> int:
        """List, take every settled file (``concurrency`` at once); returns how many were taken."""
        settled = self.settled(self.listing(conn.client(0)), time.monotonic())
        self._looked.set()
        taken = self._take_all(conn, settled, stop or threading.Event()) if settled else 0
        if not conn.active:
            raise ConnectionLost("the SSH connection closed")
        return taken

    def listing(self, sftp: paramiko.SFTPClient) -> list[Remote]:
        """Regular files in ``path`` whose names match ``pattern``, dot files left out, in name order."""
        cfg = self.config
        found = []
        try:
            entries = sftp.listdir_attr(cfg.path)
        except OSError as exc:
            raise ListingFailed(f"cannot list the remote folder {cfg.path!r}: {exc}") from exc
        bad: set[str] = set()
        for attrs in entries:
            name = attrs.filename
            if name.startswith(".") or not fnmatch.fnmatchcase(name, cfg.pattern):
                continue
            if not plain_name(name):
                bad.add(name)
                continue
            if attrs.st_mode is not None and not stat.S_ISREG(attrs.st_mode):
                continue  # folders, links, devices
            path = name if cfg.path in ("", ".") else posixpath.join(cfg.path, name)
            found.append(Remote(name, path, attrs.st_size or 0, attrs.st_mtime or 0))
        for name in sorted(bad - self._bad_names):
            self.gateway.metrics.refused.labels(self.name, "name").inc()
            log.error("sftp file refused: not a plain file name", channel=self.name, name=name[:300])
        self._bad_names = bad
        return sorted(found, key=lambda r: r.name)

    def settled(self, listed: list[Remote], now: float) -> list[Remote]:
        """The files whose size and mtime held still for ``settle``; remembers the rest for the next poll."""
        ready: list[Remote] = []
        seen: dict[str, tuple[int, int, float]] = {}
        with self._lock:
            for r in listed:
                if (r.path, r.size, r.mtime) in self._too_large:
                    continue
                before = self._seen.get(r.path)
                since = before[2] if before is not None and before[:2] == (r.size, r.mtime) else now
                seen[r.path] = (r.size, r.mtime, since)
                if self.config.settle <= 0 or (before is not None and now - since >= self.config.settle):
                    ready.append(r)
            self._seen = seen
            self._stored = {p: v for p, v in self._stored.items() if p in seen}
            paths = {r.path for r in listed}
            self._too_large = {t for t in self._too_large if t[0] in paths}
        return ready

    def _take_all(self, conn: _Connection, files: list[Remote], stop: threading.Event) -> int:
        queue = deque(files)
        lock = threading.Lock()
        taken = [0]

        def worker(i: int) -> None:
            while not stop.is_set() and conn.active:
                with lock:
                    if not queue:
                        return
                    remote = queue.popleft()
                try:
                    sftp = conn.client(i)
                except Exception as exc:  # e.g. the server's MaxSessions: the other workers go on
                    with lock:
                        queue.appendleft(remote)
                        if i:
                            conn.limit = min(conn.limit, i)  # not tried again on this connection
                    if i:
                        log.warning(
                            "sftp channel not opened; fewer downloads at once",
                            channel=self.name,
                            worker=i,
                            error=f"{type(exc).__name__}: {exc}",
                        )
                        return
                    raise
                try:
                    if self.take(sftp, remote):
                        with lock:
                            taken[0] += 1
                except Exception as exc:  # one bad file must not hold up the others
                    conn.drop(i)
                    log.error(
                        "sftp file not taken",
                        channel=self.name,
                        path=remote.path,
                        error=f"{type(exc).__name__}: {exc}",
                    )

        workers = min(conn.limit, len(files))
        threads = [
            threading.Thread(target=worker, args=(i,), name=f"sftp:{self.name}:{i}", daemon=True)
            for i in range(1, workers)
        ]
        for t in threads:
            t.start()
        try:
            worker(0)
        finally:
            for t in threads:
                t.join()
        return taken[0]

    def take(self, sftp: paramiko.SFTPClient, remote: Remote) -> bool:
        """Download, store (committed), then delete or move ``remote``; False when it was left for later."""
        before = self._stored.get(remote.path)
        if before is not None and before[:2] == (remote.size, remote.mtime):
            message_id = before[2]  # stored earlier in this run, only the delete or move failed
        else:
            if remote.size > MAX_FILE_BYTES:
                self._refuse(remote)
                return False
            raw = self.download(sftp, remote)
            if raw is None:
                return False
            receipt = self.gateway.receive(
                raw,
                channel=self.name,
                partner=self.config.partner,
                filename=remote.name,
                headers={
                    "host": self.config.host,
                    "port": self.config.port,
                    "path": remote.path,
                    "size": remote.size,
                    "mtime": datetime.fromtimestamp(remote.mtime, UTC).isoformat(),
                },
            )
            message_id = receipt.message_id
            with self._lock:
                self._stored[remote.path] = (remote.size, remote.mtime, message_id)
        now = sftp.stat(remote.path)
        if (now.st_size, now.st_mtime) != (remote.size, remote.mtime):
            log.warning(
                "sftp file changed after it was stored; left for the next poll", channel=self.name, path=remote.path
            )
            with self._lock:
                self._stored.pop(remote.path, None)
                self._seen.pop(remote.path, None)
            return False
        moved_to = self.remove(sftp, remote, message_id)
        with self._lock:
            self._stored.pop(remote.path, None)
            self._seen.pop(remote.path, None)
        log.info("sftp file taken", channel=self.name, path=remote.path, message_id=message_id, moved_to=moved_to)
        return True

    def download(self, sftp: paramiko.SFTPClient, remote: Remote) -> bytes | None:
        """The file's bytes, or None when it changed since it was listed (it settles again first)."""
        with sftp.open(remote.path, "rb") as fh:
            if remote.size:
                fh.prefetch(remote.size)  # pipelined reads instead of one round trip per 32 KB
            raw = fh.read(MAX_FILE_BYTES + 1)
            attrs = fh.stat()
        if len(raw) != remote.size or (attrs.st_size, attrs.st_mtime) != (remote.size, remote.mtime):
            log.info("sftp file still changing; waiting for it to settle", channel=self.name, path=remote.path)
            with self._lock:
                self._seen.pop(remote.path, None)
            return None
        return raw

    def remove(self, sftp: paramiko.SFTPClient, remote: Remote, message_id: int) -> str | None:
        """Delete the remote file, or rename it into ``move_to`` as ``<message id>_<name>``; the new path."""
        if self.config.after == "move" and self.config.move_to:
            target = posixpath.join(self.config.move_to, prefixed(f"{message_id}_", remote.name))
            sftp.rename(remote.path, target)
            return target
        with contextlib.suppress(FileNotFoundError):  # gone already (someone else removed it): nothing to do
            sftp.remove(remote.path)
        return None

    def _refuse(self, remote: Remote) -> None:
        with self._lock:
            self._too_large.add((remote.path, remote.size, remote.mtime))
            self._seen.pop(remote.path, None)
        self.gateway.metrics.refused.labels(self.name, "size").inc()
        log.error(
            "sftp file refused: too large",
            channel=self.name,
            path=remote.path,
            size=remote.size,
            limit=MAX_FILE_BYTES,
        )


def plain_name(name: str) -> bool:
    """A name a server may list in a folder: no separator (``a/../../x`` would reach outside ``path`` and, moved
    into ``move_to``, outside it too; ``\\`` is one on Windows servers), no NUL, at most 255 bytes. Other
    characters, a line break included, are the partner's choice: the name is stored as listed."""
    return bool(name) and not any(c in name for c in "/\\\x00") and len(name.encode("utf-8", "surrogateescape")) <= 255


# connecting (shared with the SFTP sink, gateway/outbound/sinks/sftp.py) --------------------------------------
class SftpPeer(Protocol):
    """What connecting needs: the keys SftpChannel and SftpSink have in common."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def username(self) -> str: ...
    @property
    def password_env(self) -> str | None: ...
    @property
    def key_file(self) -> Path | None: ...
    @property
    def key_passphrase_env(self) -> str | None: ...
    @property
    def known_hosts(self) -> Path | None: ...
    @property
    def host_key_sha256(self) -> list[str]: ...
    @property
    def timeout(self) -> float: ...


def open_transport(cfg: SftpPeer, who: str) -> paramiko.Transport:
    """A transport to ``cfg``'s server whose key is pinned (checked before any credential is sent), logged in.

    ``who`` names the user of the connection in a refusal ("channel carrier-sftp", "route naccs-out")."""
    sock = socket.create_connection((cfg.host, cfg.port), timeout=cfg.timeout)
    try:
        transport = paramiko.Transport(sock)
    except Exception:
        sock.close()
        raise
    try:
        transport.banner_timeout = cfg.timeout
        transport.handshake_timeout = cfg.timeout
        transport.auth_timeout = cfg.timeout
        known = known_keys(cfg)
        if known:
            _prefer(transport, [k.get_name() for k in known])
        transport.start_client(timeout=cfg.timeout)
        check_host_key(cfg, who, transport.get_remote_server_key(), known)
        login(cfg, transport)
    except BaseException:
        transport.close()
        raise
    return transport


def _known_name(cfg: SftpPeer) -> str:
    """The host as known_hosts names it: ``host`` on port 22, else ``[host]:port``."""
    return cfg.host if cfg.port == 22 else f"[{cfg.host}]:{cfg.port}"


def known_keys(cfg: SftpPeer) -> list[paramiko.PKey]:
    """The keys the known_hosts file pins for this host and port (read at each connect)."""
    if cfg.known_hosts is None:
        return []
    entry = paramiko.HostKeys(str(cfg.known_hosts)).lookup(_known_name(cfg))
    return list(entry.values()) if entry is not None else []


def _prefer(transport: paramiko.Transport, types: list[str]) -> None:
    """Negotiate a host key of a pinned type first (as OpenSSH does), the others after."""
    options = transport.get_security_options()
    wanted = {alg for t in types for alg in _ALGORITHMS.get(t, (t,))}
    current = list(options.key_types)
    options.key_types = [a for a in current if a in wanted] + [a for a in current if a not in wanted]


def check_host_key(cfg: SftpPeer, who: str, key: paramiko.PKey, known: list[paramiko.PKey]) -> None:
    """Pass when ``key`` is pinned (known_hosts or fingerprint); else raise :class:`HostKeyRefused`."""
    offered = key.fingerprint  # "SHA256:<base64 without padding>", as ssh-keygen -lf prints it
    pinned = {fp.rstrip("=") for fp in cfg.host_key_sha256}
    if offered in pinned or any(k.asbytes() == key.asbytes() for k in known):
        return
    why: list[str] = []
    if cfg.known_hosts is not None:
        same_type = [k for k in known if k.get_name() == key.get_name()]
        if same_type:
            why.append(
                f"{cfg.known_hosts} holds a different {key.get_name()} key for {_known_name(cfg)} "
                f"({same_type[0].fingerprint}): the server's key changed, or this is not the server"
            )
        elif known:
            types = ", ".join(sorted({k.get_name() for k in known}))
            why.append(f"{cfg.known_hosts} pins only {types} keys for {_known_name(cfg)}")
        else:
            why.append(f"{cfg.known_hosts} has no entry for {_known_name(cfg)}")
    if pinned:
        why.append(f"host_key_sha256 pins {', '.join(sorted(pinned))}")
    raise HostKeyRefused(
        f"{cfg.host}:{cfg.port} offered the {key.get_name()} key {offered}, which is not pinned "
        f"for {who}: {'; '.join(why)}. No login was tried and nothing transferred; if the key "
        "changed legitimately, confirm it with the partner and pin the new one"
    )


def login(cfg: SftpPeer, transport: paramiko.Transport) -> None:
    """Key and/or password authentication; with both, the key first and the password when the key is
    refused or the server asks for a second factor."""
    password = None
    if cfg.password_env:
        password = os.environ.get(cfg.password_env)
        if password is None:
            raise LoginFailed(f"the environment variable {cfg.password_env} (password_env) is not set")
    if cfg.key_file is not None:
        passphrase = os.environ.get(cfg.key_passphrase_env) if cfg.key_passphrase_env else None
        if cfg.key_passphrase_env and passphrase is None:
            raise LoginFailed(f"the environment variable {cfg.key_passphrase_env} (key_passphrase_env) is not set")
        secret = passphrase.encode() if passphrase is not None else None  # paramiko wants bytes here
        pkey = paramiko.PKey.from_path(cfg.key_file, password=secret)  # type: ignore[arg-type]  # stubs: str
        try:
            transport.auth_publickey(cfg.username, pkey)
        except paramiko.AuthenticationException:
            if password is None:
                raise
    if password is not None and not transport.is_authenticated():
        transport.auth_password(cfg.username, password)
    if not transport.is_authenticated():
        raise LoginFailed(f"{cfg.host}:{cfg.port} did not accept the login of {cfg.username}")
