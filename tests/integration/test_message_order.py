"""Messages arriving out of order, through the whole pipeline with the repository's mappings.

A terminal's CODECO for a gate-out can reach us before the CODECO for the earlier gate-in (two SFTP drops, a
retry on the sender's side). The container must end up gated out, with both moves on the deal's timeline.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.model import Container, Event
from tests.conftest import REPO, write_config

HEAD = "UNA:+.? '\nUNB+UNOA:2+JPTYOOHI:ZZZ+ONEY:ZZZ+{date}:{time}+{ref}'\n"
MESSAGE = (
    "UNH+1+CODECO:D:95B:UN:ITG14'\nBGM+{bgm}+{doc}+9'\nNAD+CA+ONEY:160:20'\n"
    "EQD+CN+ONEU0123450+45G1:102:5++2+5'\nRFF+BN:ONEYTYOA23456'\nDTM+7:{when}:203'\n"
    "LOC+165+JPTYO:139:6+OHI4:TER:ZZZ'\nCNT+16:1'\nUNT+9+1'\nUNZ+1+{ref}'\n"
)


def codeco(kind: str, when: str) -> bytes:
    bgm, doc = {"gate_in": ("34", "GI1"), "gate_out": ("36", "GO1")}[kind]
    ref = f"R{bgm}{when[-4:]}"
    return (HEAD + MESSAGE).format(date=when[2:8], time=when[8:12], ref=ref, bgm=bgm, doc=doc, when=when).encode()


def test_a_late_older_codeco_does_not_undo_a_newer_gate_out(tmp_path: Path, database_url: str) -> None:
    """Breaks if the pipeline lets arrival order decide a container's status (the issue's 'done when')."""
    mappings = [
        {"match": {"format": "edifact", "message": "CODECO"}, "use": str(REPO / "mappings/edifact/codeco.yaml")}
    ]
    gw = Gateway(config_mod.load(write_config(tmp_path, database_url, mappings=mappings)))
    try:
        out = gw.accept(codeco("gate_out", "202612021415"), channel="drops")
        late = gw.accept(codeco("gate_in", "202612010932"), channel="drops")
        assert (out.status, late.status) == ("accepted", "accepted"), (out.errors, late.errors)
        with gw.sessions() as s:
            container = s.scalars(select(Container).where(Container.number == "ONEU0123450")).one()
            assert container.status == "gate_out" and container.location == "JPTYO"
            moves = {e.kind: e for e in s.scalars(select(Event).where(Event.kind.startswith("container.gate")))}
            assert moves["container.gate_out"].message_id == out.message_ids[0]
            assert moves["container.gate_in"].message_id == late.message_ids[0]
            assert moves["container.gate_in"].detail["superseded"] is True
            assert moves["container.gate_in"].occurred_at < moves["container.gate_out"].occurred_at
            assert moves["container.gate_in"].deal_id == container.deal_id is not None
    finally:
        gw.close()
