"""The `gateway` command as a new user meets it, run as a real process on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import COPARN_EXAMPLE, write_config


def gateway(config: Path, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GATEWAY_CONFIG": str(config)}
    env.pop("GATEWAY_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        **kwargs,  # type: ignore[call-overload]
    )


def new_reference(raw: bytes) -> bytes:
    """The example interchange under another interchange control reference (otherwise it is a resend)."""
    return raw.replace(b"+20261124001'", b"+20261124999'")


def input_facts(raw: bytes) -> set[tuple[str, str, str, str]]:
    """(container, booking, vessel, voyage) read straight from the interchange text, without the gateway's code."""
    facts = set()
    for message in raw.decode().split("UNH+")[1:]:
        booking = re.search(r"^RFF\+BN:([^']+)'", message, re.M).group(1)  # type: ignore[union-attr]
        tdt = re.search(r"^TDT\+20\+([^+]+)\+.*::([^':]+)'", message, re.M)
        assert tdt is not None
        for number in re.findall(r"^EQD\+CN\+([A-Z0-9]+)\+", message, re.M):
            facts.add((number, booking, tdt.group(2), tdt.group(1)))
    return facts


def test_ingest_accept_duplicate_and_reject(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url)
    first = gateway(config, "ingest", "--json", str(COPARN_EXAMPLE))
    assert first.returncode == 0, first.stderr
    [line] = first.stdout.splitlines()
    result = json.loads(line)
    assert set(result) == {"file", "status", "format", "message_type", "messages", "message_ids", "errors"}
    assert (result["status"], result["messages"], result["format"], result["message_type"]) == (
        "accepted",
        2,
        "edifact",
        "COPARN",
    )
    assert result["file"] == str(COPARN_EXAMPLE) and result["errors"] == [] and len(result["message_ids"]) == 1

    conpas = tmp_path / "outbox" / "conpas"
    docs = [json.loads(p.read_text()) for p in sorted(conpas.glob("*.json"))]
    assert len(docs) == 3
    got = {(d["container_number"], d["booking_number"], d["vessel_name"], d["voyage"]) for d in docs}
    assert got == input_facts(COPARN_EXAMPLE.read_bytes())

    again = gateway(config, "ingest", "--json", str(COPARN_EXAMPLE))
    assert again.returncode == 0
    assert json.loads(again.stdout)["status"] == "duplicate"
    assert len(list(conpas.iterdir())) == 3  # nothing written

    bad = tmp_path / "bad-count.edi"
    # a new interchange (its own reference) with a wrong UNT count
    bad.write_bytes(new_reference(COPARN_EXAMPLE.read_bytes()).replace(b"UNT+16+2'", b"UNT+17+2'"))
    rejected = gateway(config, "ingest", "--json", str(bad))
    assert rejected.returncode == 1
    out = json.loads(rejected.stdout)
    assert out["status"] == "rejected" and out["errors"][0]["code"] == "EDI-29"
    assert out["errors"][0]["segment"] == {"tag": "UNT", "number": 40}
    raw = subprocess.run(
        [sys.executable, "-m", "gateway", "messages", "show", str(out["message_ids"][0]), "--raw"],
        capture_output=True,
        env={**os.environ, "GATEWAY_CONFIG": str(config)},
        timeout=60,
        check=True,
    )
    assert raw.stdout == bad.read_bytes()  # kept byte for byte
    shown = json.loads(gateway(config, "messages", "show", str(out["message_ids"][0])).stdout)
    assert shown["status"] == "failed" and shown["error"]["code"] == "EDI-29"
    listed = gateway(config, "messages", "list", "--status", "failed", "--json")
    assert [json.loads(x)["id"] for x in listed.stdout.splitlines()] == out["message_ids"]


def test_mixed_batch_exits_1_and_logs_carry_message_ids(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url)
    empty = tmp_path / "empty.edi"
    empty.write_bytes(b"")
    proc = gateway(config, "--log-json", "ingest", "--json", str(COPARN_EXAMPLE), str(empty))
    assert proc.returncode == 1
    assert [json.loads(x)["status"] for x in proc.stdout.splitlines()] == ["accepted", "rejected"]
    logs = [json.loads(x) for x in proc.stderr.splitlines() if x.startswith("{")]
    about_messages = [entry for entry in logs if entry["event"] in ("processed", "failed", "delivered")]
    assert about_messages and all("message_id" in entry for entry in about_messages)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_usage_and_configuration_errors_exit_2(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url)
    assert gateway(config, "ingest", str(tmp_path / "missing.edi")).returncode == 2
    assert gateway(config, "ingest", "--partner", "NOBODY", str(COPARN_EXAMPLE)).returncode == 2
    config.write_text(config.read_text().replace("poll: 100ms", "poll_every: 100ms"))
    broken = gateway(config, "check")
    assert broken.returncode == 2 and re.search(
        r"routes\.yaml:\d+: channels\.drops\.poll_every: unknown key; did you mean 'poll'", broken.stderr
    )
    assert gateway(config, "ingest", str(COPARN_EXAMPLE)).returncode == 2


def test_check_and_db_upgrade(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url)
    ok = gateway(config, "check")
    assert ok.returncode == 0 and "OK" in ok.stdout
    up = gateway(config, "db", "upgrade")
    from alembic.script import ScriptDirectory

    from gateway.store import db

    head = ScriptDirectory.from_config(db.alembic_config()).get_current_head()  # the newest numbered migration
    assert up.returncode == 0 and f"database at revision {head}" in up.stdout and head is not None


def test_run_takes_dropped_files_and_stops_cleanly_on_sigterm(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url, http={"enabled": True, "host": "127.0.0.1", "port": 0})
    env = {**os.environ, "GATEWAY_CONFIG": str(config)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--log-json", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        inbox = tmp_path / "inbox"
        inbox.mkdir(exist_ok=True)
        (inbox / ".part").write_bytes(COPARN_EXAMPLE.read_bytes())
        (inbox / ".part").rename(inbox / "drop.edi")  # as carriers' SFTP clients do: write, then rename
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(list((tmp_path / "outbox" / "conpas").glob("*.json"))) < 3:
            time.sleep(0.1)
        assert len(list((tmp_path / "outbox" / "conpas").glob("*.json"))) == 3
        assert [p.name.split("_", 1)[1] for p in (tmp_path / "archive").iterdir()] == ["drop.edi"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert '"event": "gateway stopped"' in stderr


def test_edifact_parse_and_validate_commands(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    parsed = gateway(config, "edifact", "parse", "--json", str(COPARN_EXAMPLE))
    assert parsed.returncode == 0
    doc = json.loads(parsed.stdout)
    [interchange] = doc["interchanges"]
    assert interchange["header"]["reference"] == "20261124001" and interchange["header"]["sender"] == "ONEY"
    assert interchange["segments"][0][:2] == ["UNB", ["UNOA", "2"]]
    assert ["RFF", ["BN", "ONEYTYOA12345"]] in interchange["segments"]
    assert gateway(config, "edifact", "validate", str(COPARN_EXAMPLE)).returncode == 0
    bad = tmp_path / "bad.edi"
    bad.write_bytes(COPARN_EXAMPLE.read_bytes().replace(b"MEA+AAE+G+KGM:24500'", b"MEA+AAE+G+KGM:24.5T'"))
    checked = gateway(config, "edifact", "validate", str(bad))
    assert checked.returncode == 1 and json.loads(checked.stdout.splitlines()[0])["code"] == "EDI-37"
    ack = gateway(config, "edifact", "validate", "--contrl", "--reference", "ACK1", str(bad))
    assert "UCI+20261124001+ONEY:ZZZ+JPTYOCY1:ZZZ+7'" in ack.stdout  # one of two messages accepted
    assert "UCM+1+COPARN:D:95B:UN:SMDG16+4'" in ack.stdout and "UCD+37+4:2'" in ack.stdout
    assert gateway(config, "edifact", "validate", "--version", "D00B", str(COPARN_EXAMPLE)).returncode == 1


def test_messages_reprocess_command(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    bad = tmp_path / "bad.edi"
    bad.write_bytes(COPARN_EXAMPLE.read_bytes().replace(b"UNT+16+2'", b"UNT+17+2'"))
    [message_id] = json.loads(gateway(config, "ingest", "--json", str(bad)).stdout)["message_ids"]
    again = gateway(config, "messages", "reprocess", "--json", str(message_id))
    assert again.returncode == 1 and json.loads(again.stdout)["errors"][0]["code"] == "EDI-29"  # still broken
    missing = gateway(config, "messages", "reprocess", "999")
    assert missing.returncode == 1 and "no inbound message 999" in missing.stderr
