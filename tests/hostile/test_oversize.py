"""Oversize payloads through every channel that takes them.

Already proven elsewhere (not repeated):

- HTTP: ``tests/integration/channels/test_http.py::test_an_oversize_body_is_refused_declared_or_streamed`` (413
  for a declared Content-Length and for a chunked body growing past ``max_body``; nothing stored) and
  ``::test_metrics_count_refusals`` (the ``size`` refusal is counted);
- AMQP: ``tests/integration/channels/test_amqp.py::test_refused_deliveries_are_dead_lettered_and_counted`` (a body
  over ``max_bytes`` is rejected into the dead-letter queue, intact, never stored or requeued);
- SFTP poller: ``tests/integration/channels/test_sftp_poll.py::test_an_oversize_file_is_refused_and_left``
  (``MAX_FILE_BYTES`` lowered: not downloaded, counted, left on the server);
- SFTP server: ``tests/integration/channels/test_sftp_server.py::test_an_oversize_upload_is_refused_and_nothing_stored``
  (``max_file_bytes``: the write past the limit fails, nothing stored, one at the limit goes through).

Added here: the folder channel, which read any file whole into memory (a 2 GB drop took 2 GB of the gateway's
memory) until ``max_bytes``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.channels.folder import FolderPoller
from gateway.model import Message
from tests.conftest import write_config


def _poller(tmp_path: Path, database_url: str, max_bytes: int) -> tuple[Gateway, FolderPoller]:
    channels = {
        "drops": {
            "type": "folder",
            "path": "inbox",
            "archive": "archive",
            "failed": "failed",
            "settle": 0,
            "max_bytes": max_bytes,
        }
    }
    gw = Gateway(config_mod.load(write_config(tmp_path, database_url, channels=channels)))
    poller = next(c for c in gw.channels if isinstance(c, FolderPoller))
    return gw, poller


def test_a_folder_file_over_max_bytes_is_moved_to_failed_unread(
    tmp_path: Path, database_url: str, coparn: bytes
) -> None:
    """A file one byte over ``max_bytes`` is not read or stored: it moves to ``failed`` as ``oversize_<name>``,
    intact; one at the limit is taken. Breaks if the folder channel reads any size (no limit), loses the file,
    or leaves it in the inbox (``--until-idle`` would never end)."""
    gw, poller = _poller(tmp_path, database_url, max_bytes=len(coparn))
    try:
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        (inbox / "a-at-limit.edi").write_bytes(coparn)
        (inbox / "b-over.edi").write_bytes(coparn + b"\n")
        (inbox / "c-over.edi").write_bytes(coparn + b"\n\n")
        read: list[Path] = []
        real = Path.read_bytes

        def spy(self: Path) -> bytes:
            read.append(self)
            return real(self)

        Path.read_bytes = spy  # type: ignore[method-assign]
        try:
            assert poller.poll_once() == 1
        finally:
            Path.read_bytes = real  # type: ignore[method-assign]
        assert [p.name for p in read] == ["a-at-limit.edi"]  # the oversize files were never read
        assert sorted(p.name for p in (tmp_path / "failed").iterdir()) == ["oversize_b-over.edi", "oversize_c-over.edi"]
        assert (tmp_path / "failed" / "oversize_b-over.edi").read_bytes() == coparn + b"\n"
        assert list(inbox.iterdir()) == [] and poller.pending() == 0
        with gw.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Message).where(Message.channel == "drops")) == 1
        (inbox / "b-over.edi").write_bytes(coparn + b"\n")  # the same name refused again: both kept
        poller.poll_once()
        assert (tmp_path / "failed" / "oversize_2_b-over.edi").is_file()
    finally:
        gw.close()


def test_max_bytes_defaults_to_the_sftp_limit(tmp_path: Path, database_url: str) -> None:
    """The folder channel's default is the SFTP channels' 100 MB; breaks if a config without the key gets none."""
    from gateway.channels import sftp
    from gateway.config import SftpServerChannel

    gw = Gateway(config_mod.load(write_config(tmp_path, database_url)))
    try:
        poller = next(c for c in gw.channels if isinstance(c, FolderPoller))
        server_default = SftpServerChannel.model_fields["max_file_bytes"].default
        assert poller.config.max_bytes == sftp.MAX_FILE_BYTES == server_default == 100_000_000
    finally:
        gw.close()
