"""CSV container lists through the whole pipeline on SQLite and PostgreSQL: Shift_JIS, per-row errors."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.model import Container, Deal, Message
from gateway.store import messages
from tests.conftest import REPO, write_config

EXAMPLE = REPO / "mappings" / "csv" / "examples" / "container-list-cp932.csv"


def _gateway(tmp_path: Path, database_url: str, bad_rows: str = "reject") -> Gateway:
    partners = {"NYK": {"name": "NYK Line", "business_type": "ocean_carrier"}}
    channel = {"type": "folder", "path": "lists", "archive": "done", "failed": "failed", "pattern": "*.csv"}
    channels = {"lists": {**channel, "partner": "NYK"}}
    mappings = [
        {
            "match": {"format": "csv", "partner": "NYK"},
            "use": str(REPO / "mappings/csv/container-list.yaml"),
            "bad_rows": bad_rows,
        }
    ]
    path = write_config(tmp_path, database_url, partners=partners, channels=channels, mappings=mappings)
    return Gateway(config_mod.load(path))


def test_a_shift_jis_container_list_maps_with_its_japanese_names(tmp_path: Path, database_url: str) -> None:
    """Breaks if CP932 is not detected, Japanese headers are not matched, or rows do not become records."""
    gw = _gateway(tmp_path, database_url)
    try:
        result = gw.accept(EXAMPLE.read_bytes(), channel="lists", filename=EXAMPLE.name)
        assert result.status == "accepted", result.errors
        assert (result.format, result.message_type, result.messages) == ("csv", "CONTAINER_LIST", 3)
        with gw.sessions() as s:
            containers = {c.number: c for c in s.scalars(select(Container))}
            assert sorted(containers) == ["MOLU1234565", "NYKU5123455", "TCLU7788994"]
            assert containers["MOLU1234565"].reefer_temp_c == -18.0
            assert containers["TCLU7788994"].gross_kg == 18200.5
            deals = {d.booking_number: d for d in s.scalars(select(Deal))}
            assert deals["NYKTYO2611001"].details["shipper"] == {"name": "港南通商株式会社"}
            assert deals["NYKTYO2611002"].details["shipper"] == {"name": "株式会社　東京水産"}
            assert containers["NYKU5123455"].deal_id == containers["TCLU7788994"].deal_id
    finally:
        gw.close()


def _with_bad_second_row() -> bytes:
    text = EXAMPLE.read_bytes().decode("cp932").replace("TCLU7788994", "TCLU7788995")  # wrong check digit
    return text.encode("cp932")


def test_a_bad_row_rejects_the_file_by_default_naming_row_and_column(tmp_path: Path, database_url: str) -> None:
    """Breaks if a bad row is silently dropped where the route did not allow it, or the error hides the row."""
    gw = _gateway(tmp_path, database_url)
    try:
        result = gw.accept(_with_bad_second_row(), channel="lists")
        assert result.status == "rejected"
        [error] = result.errors
        assert error["code"] == "MAP-3" and "check digit" in error["text"]
        assert error["position"]["path"] == "row 3, column 'コンテナ番号'"
        with gw.sessions() as s:
            assert s.scalars(select(Container)).all() == []  # all or nothing
    finally:
        gw.close()


def test_with_bad_rows_skip_only_the_bad_row_is_left_out_and_noted(tmp_path: Path, database_url: str) -> None:
    """Breaks if `bad_rows: skip` rejects the file, loses the good rows, or forgets which row was skipped."""
    gw = _gateway(tmp_path, database_url, bad_rows="skip")
    try:
        result = gw.accept(_with_bad_second_row(), channel="lists")
        assert result.status == "accepted"
        with gw.sessions() as s:
            assert sorted(c.number for c in s.scalars(select(Container))) == ["MOLU1234565", "NYKU5123455"]
            msg = s.get_one(Message, result.message_ids[0])
            [problem] = msg.problems
            assert (problem["row"], problem["code"]) == (3, "MAP-3")
            assert messages.summary(msg)["problems"] == [problem]  # what `messages show` and the API print
    finally:
        gw.close()
