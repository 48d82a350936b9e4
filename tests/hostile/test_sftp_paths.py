"""Hostile file names and paths: the gateway's SFTP server, the SFTP poller, and the folder channel's archive names.

Already proven in ``tests/integration/channels/test_sftp_server.py::test_each_partner_is_confined_to_its_own_folder``
(not repeated): ``..`` above ``/`` (list, stat, open, put, remove), a symlink leading out of the partner's
folder (to another partner's folder and to /etc/passwd), a symlink a client tries to make, rename out of the folder,
rmdir of ``/``. Added here: NUL bytes, the host's absolute paths, backslashes, very long names and line breaks
against the server; a listing whose names hold ``/``, ``\\`` or NUL against the poller; and the folder channel's
``<message id>_<name>`` archive names.
"""

from __future__ import annotations

import io
import stat
from pathlib import Path
from typing import Any

import paramiko
import pytest

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.channels.folder import FolderPoller
from gateway.channels.sftp import SftpPoller, plain_name
from tests.acceptance.crashkit import wait_for
from tests.conftest import write_config
from tests.integration.channels.test_sftp_poll import channel, make_gateway, stored
from tests.integration.channels.test_sftp_server import ClientKey, Start, keys, start  # noqa: F401 (fixtures)
from tests.services.sshd import Sshd


def test_the_server_refuses_nul_and_keeps_absolute_paths_inside_the_folder(
    start: Start,  # noqa: F811
    keys: dict[str, ClientKey],  # noqa: F811
    coparn: bytes,
) -> None:
    """Breaks if a NUL cuts a path (``/x\\0/../../ONE`` read as ``/x``), an absolute host path (/etc/passwd) is
    served from the host instead of the partner's folder, or ``/./../../..`` climbs out."""
    running = start()
    (running.root / "ONE" / "secret.txt").write_text("ONE only")
    trk = running.connect("TRK", keys["TRK"])
    refused_before = running.refused("path")
    for attempt in (
        lambda: trk.putfo(io.BytesIO(coparn), "/a\x00b.edi"),
        lambda: trk.stat("/x\x00/../../ONE/secret.txt"),
        lambda: trk.open("/\x00").read(),
        lambda: trk.listdir("/./../../.."),
        lambda: trk.open("/./../../../etc/passwd").read(),
        lambda: trk.open("..//../ONE/secret.txt").read(),
    ):
        with pytest.raises(PermissionError):
            attempt()
    assert running.refused("path") - refused_before == 6
    for absolute in ("/etc/passwd", "//etc/passwd", "/proc/self/environ"):
        with pytest.raises(FileNotFoundError):  # the partner's /etc/passwd: there is none
            trk.open(absolute).read()
    assert running.stored() == []


def test_the_server_stores_odd_names_inside_the_folder_and_refuses_too_long_ones(
    start: Start,  # noqa: F811
    keys: dict[str, ClientKey],  # noqa: F811
    coparn: bytes,
) -> None:
    """A backslash is an ordinary character on the server (``..\\..\\x`` is one file in the partner's folder),
    a line break in a name is stored as written, a 255-byte name is taken, and a 300-byte one fails with an error
    while the session goes on. Breaks if an odd name escapes the folder, crashes the session, or is lost."""
    running = start()
    trk = running.connect("TRK", keys["TRK"])
    variants = [coparn.replace(b"M1", m) for m in (b"M7", b"M8", b"M9")]  # different bytes: no duplicates
    trk.putfo(io.BytesIO(variants[0]), "..\\..\\ONE\\planted.edi")
    trk.putfo(io.BytesIO(variants[1]), "/line\nbreak.edi")
    long_ok = "L" * 251 + ".edi"
    trk.putfo(io.BytesIO(variants[2]), "/" + long_ok)
    with pytest.raises(OSError):
        trk.putfo(io.BytesIO(coparn), "/" + "L" * 296 + ".edi")
    assert isinstance(trk.listdir("/"), list)  # the session still answers
    assert list((running.root / "ONE").iterdir()) == []
    wait_for(lambda: len(running.stored()) == 3, 20)
    names = sorted(m.filename or "" for m in running.stored())
    assert names == sorted(["..\\..\\ONE\\planted.edi", "line\nbreak.edi", long_ok])
    assert {m.headers["path"] for m in running.stored()} == {"/" + n for n in names}


@pytest.mark.parametrize(
    ("name", "plain"),
    [
        ("coparn.edi", True),
        ("line\nbreak.edi", True),
        ("東京.edi", True),
        ("../x.edi", False),
        ("a/../../etc/passwd", False),
        ("sub/x.edi", False),
        ("..\\x.edi", False),
        ("x\x00y.edi", False),
        ("", False),
        ("é" * 128, False),  # 256 bytes
        ("é" * 127, True),
    ],
)
def test_plain_name(name: str, plain: bool) -> None:
    assert plain_name(name) is plain


class FakeListing:
    """An SFTP server that lists whatever names it is told (a real server cannot list ``a/b``)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.touched: list[str] = []

    def listdir_attr(self, path: str) -> list[paramiko.SFTPAttributes]:
        out = []
        for name in self.names:
            attrs = paramiko.SFTPAttributes()
            attrs.filename = name
            attrs.st_mode = stat.S_IFREG | 0o644
            attrs.st_size = 10
            attrs.st_mtime = 1
            out.append(attrs)
        return out

    def __getattr__(self, name: str) -> Any:  # stat, open, remove, rename: record and refuse
        def touched(path: str, *args: Any) -> Any:
            self.touched.append(f"{name} {path}")
            raise OSError("not in this test")

        return touched


def test_the_poller_skips_listed_names_that_are_not_plain(tmp_path: Path, database_url: str) -> None:
    """A listed name with ``/``, ``\\`` or NUL is never downloaded, deleted or moved (``a/../../x`` joined to the
    folder reached outside it, and ``move_to`` joined with it outside that), logged and counted once across
    polls. Breaks if such a name is taken, or refused again at every poll."""
    cfg = {
        "type": "sftp",
        "host": "127.0.0.1",
        "username": "u",
        "password_env": "NONE",
        "host_key_sha256": ["SHA256:" + "A" * 43],
        "path": "out",
        "after": "move",
        "move_to": "done",
    }
    gw = Gateway(config_mod.load(write_config(tmp_path, database_url, channels={"poll": cfg}, routes={})))
    try:
        [poller] = gw.channels
        assert isinstance(poller, SftpPoller)
        names = ["ok.edi", "a/../../etc/passwd", "sub/x.edi", "a\\..\\x.edi", "x\x00y.edi", "../up.edi"]
        server = FakeListing(names)
        for _ in range(2):
            listed = poller.listing(server)  # type: ignore[arg-type]
            assert [r.path for r in listed] == ["out/ok.edi"]
        assert server.touched == []
        assert gw.metrics.refused.labels("poll", "name")._value.get() == 4  # ../up.edi is a dot file: skipped
    finally:
        gw.close()


def test_the_poller_takes_odd_names_from_a_real_server_and_moves_them(
    sshd: Sshd, tmp_path: Path, database_url: str, coparn: bytes
) -> None:
    """OpenSSH lists a name with a line break as it is; the poller stores it under that name. A 255-byte name is
    moved into ``move_to`` under a ``<message id>_`` name cut to 255 bytes (it was 257: the rename failed at every
    poll and the file was downloaded again after each restart). Breaks if an odd or long name is not taken and
    moved."""
    remote = tmp_path / "remote" / "out"
    remote.mkdir(parents=True)
    done = tmp_path / "remote" / "done"
    long_name = "L" * 251 + ".edi"
    (remote / "line\nbreak.edi").write_bytes(coparn)
    (remote / long_name).write_bytes(coparn.replace(b"M1", b"M9"))
    gw = make_gateway(tmp_path, database_url, channel(sshd, remote, after="move", move_to=str(done)))
    try:
        [poller] = gw.channels
        assert isinstance(poller, SftpPoller)
        conn = poller.connect()
        try:
            assert poller.poll_once(conn) == 2
        finally:
            conn.close()
        ids = {m.filename or "": m.id for m in stored(gw)}
        assert sorted(ids) == sorted(["line\nbreak.edi", long_name])
        assert list(remote.iterdir()) == []
        moved = sorted(p.name for p in done.iterdir())
        odd = "line\nbreak.edi"
        assert f"{ids[odd]}_{odd}" in moved
        cut = next(n for n in moved if n.startswith(f"{ids[long_name]}_L"))
        assert len(cut.encode()) == 255 and cut.endswith(".edi")
    finally:
        gw.close()


def test_folder_archive_names_stay_in_the_archive(tmp_path: Path, database_url: str, coparn: bytes) -> None:
    """The folder channel names archived and failed files ``<message id>_<name>`` from the local file's own name
    (``Path.name``: no separator can be in it), so odd names (a line break, a leading dash, spaces) land inside
    ``archive`` or ``failed``; a 255-byte name is cut to fit (``<id>_`` made it 257 bytes: the move failed at every
    poll and the file never left the inbox). Breaks if a name leaves the folder, is lost, or cannot be moved."""
    path = write_config(tmp_path, database_url, channels={"drops": {**DROPS, "settle": 0}})
    gw = Gateway(config_mod.load(path))
    try:
        poller = next(c for c in gw.channels if isinstance(c, FolderPoller))
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        names = ["line\nbreak.edi", "-rf .edi", "a..edi", "x" * 251 + ".edi"]
        for i, name in enumerate(names):
            (inbox / name).write_bytes(coparn.replace(b"M1", b"N%d" % i))
        assert poller.poll_once() == len(names)
        moved = [
            p for folder in ("archive", "failed") if (tmp_path / folder).is_dir() for p in (tmp_path / folder).iterdir()
        ]
        assert sorted(p.name.split("_", 1)[1] for p in moved if len(p.name) < 255) == sorted(names[:3])
        [cut] = [p.name for p in moved if len(p.name) >= 255]  # <id>_ + 255 bytes: cut in the middle to 255
        assert len(cut.encode()) == 255 and cut.endswith("x.edi")
        assert all(p.parent.parent == tmp_path for p in moved)
        assert list(inbox.iterdir()) == []
    finally:
        gw.close()


DROPS = {"type": "folder", "path": "inbox", "archive": "archive", "failed": "failed", "pattern": "*"}
