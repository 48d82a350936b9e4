"""`gateway deliveries list|show|replay` as an operator uses them, run as a real process."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.test_cli import gateway
from tests.conftest import COPARN_EXAMPLE, write_config


def test_list_show_and_replay_dead_deliveries(tmp_path: Path, database_url: str) -> None:
    route = {
        "on": "container.announced",
        "render": "conpas",
        "to": {"type": "folder", "path": "outbox/conpas"},
        "retry": {"max_attempts": 1},
    }
    config = write_config(tmp_path, database_url, routes={"conpas-prenotice": route})
    target = tmp_path / "outbox" / "conpas"
    target.parent.mkdir()
    target.write_text("a file where the folder should be")  # every send fails with an OSError
    assert gateway(config, "ingest", str(COPARN_EXAMPLE)).returncode == 0

    listed = gateway(config, "deliveries", "list", "--status", "dead", "--json")
    assert listed.returncode == 0, listed.stderr
    dead = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(dead) == 3 and {d["route"] for d in dead} == {"conpas-prenotice"}
    assert [d["id"] for d in dead] == sorted((d["id"] for d in dead), reverse=True)  # newest first
    assert gateway(config, "deliveries", "list", "--route", "other", "--json").stdout == ""
    assert gateway(config, "deliveries", "list", "--status", "done", "--json").stdout == ""

    one = dead[-1]["id"]
    shown = gateway(config, "deliveries", "show", str(one))
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["status"] == "dead" and detail["message_id"] is not None and detail["replays"] == []
    [attempt] = detail["attempt_log"]
    assert (attempt["number"], attempt["outcome"], attempt["error"]["code"]) == (1, "dead", "OUT-2")
    assert attempt["started_at"] and attempt["finished_at"]
    rendered = gateway(config, "messages", "show", "--raw", str(detail["message_id"]))
    assert rendered.stdout.startswith("{")

    target.unlink()  # the operator fixes the target, then replays two of the three
    replayed = gateway(config, "deliveries", "replay", "--json", str(one), str(dead[0]["id"]))
    assert replayed.returncode == 0, replayed.stderr
    answers = [json.loads(line) for line in replayed.stdout.splitlines()]
    assert [a["replayed"] for a in answers] == [one, dead[0]["id"]]
    files = sorted(target.glob("*.json"))
    assert len(files) == 2 and files[0].read_text() != ""
    assert rendered.stdout in {f.read_text() for f in files}  # the bytes rendered for the dead delivery

    again = json.loads(gateway(config, "deliveries", "show", str(one)).stdout)
    assert again["status"] == "dead" and again["replays"] == [answers[0]["delivery_id"]]
    replay = json.loads(gateway(config, "deliveries", "show", str(answers[0]["delivery_id"])).stdout)
    assert (replay["status"], replay["replay_of"], replay["message_id"]) == ("done", one, detail["message_id"])
    text = gateway(config, "deliveries", "list").stdout
    assert f"replay of {one}" in text

    twice = gateway(config, "deliveries", "replay", str(one))
    assert twice.returncode == 1 and "already replayed" in twice.stderr
    assert gateway(config, "deliveries", "replay", "999999").returncode == 1
    missing = gateway(config, "deliveries", "show", "999999")
    assert missing.returncode == 1 and "no delivery" in missing.stderr
