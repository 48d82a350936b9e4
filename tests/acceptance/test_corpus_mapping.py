"""Every port-message file of ../shared/corpus that the engine accepts maps with the repository's mappings.

"Maps" means: the routes.yaml rule for its type picks a mapping and the mapping produces canonical records, or
refuses with a coded mapping error (MAP-2, MAP-3, MAP-4) that names the field and the input position. Files the
engine itself refuses (syntax, counts, no definition) are test_corpus.py's business, not this file's.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gateway import config as config_mod
from gateway.errors import GatewayError
from gateway.mapping import MappingTable
from gateway.pipeline import Work, map_records, parse, validate
from tests.conftest import CORPUS, REPO

PORT_TYPES = {
    "COPARN", "COPRAR", "COARRI", "CODECO", "COREOR", "COPINO", "BAPLIE", "MOVINS", "VERMAS", "IFTMBF", "IFTMBC",
    "IFTMIN", "IFTMCS", "IFTMAN", "IFTSTA", "IFTDGN", "CUSCAR", "CUSRES", "APERAK",
}  # fmt: skip
CONFIG = config_mod.load(REPO / "routes.yaml")


def _rows() -> list[dict[str, str]]:
    with open(CORPUS / "MANIFEST.tsv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [r for r in rows if set(r["message_type"].split("+")) & PORT_TYPES]


ROWS = _rows()


def _work(raw: bytes) -> Work:
    message = SimpleNamespace(raw=raw, channel="corpus", partner=None)
    channels = {"corpus": SimpleNamespace(allow_bare_edifact=True)}
    return Work(None, message, MappingTable(CONFIG.mappings), CONFIG.routes, channels=channels)  # type: ignore[arg-type]


def _outcome(path: Path) -> tuple[str, Any]:
    work = _work(path.read_bytes())
    try:
        parse(work)
        validate(work)
    except GatewayError as err:
        return "refused by the engine", err
    try:
        map_records(work)
    except GatewayError as err:
        return "mapping error", err
    return "mapped", work.mapped


def test_the_corpus_has_port_messages() -> None:
    assert len(ROWS) >= 30, "../shared/corpus should hold the port message files the MANIFEST lists"


@pytest.mark.parametrize("row", ROWS, ids=[r["local_file"].rsplit("__", 1)[-1][-50:] for r in ROWS])
def test_a_file_the_engine_accepts_maps_or_names_the_field(row: dict[str, str]) -> None:
    """Breaks if a mapping crashes, has no rule, or refuses real data without saying which field and where."""
    kind, result = _outcome(CORPUS / row["local_file"])
    if kind == "refused by the engine":
        assert result.step in ("parse", "validate") and not result.code.startswith("MAP")
        return
    if kind == "mapping error":
        assert result.code in ("MAP-2", "MAP-3", "MAP-4"), result.as_dict()
        assert re.search(r"'[a-z_]+'|[a-z_]+\.[a-z_]+", result.text), f"the error names no field: {result.text}"
        assert result.position.mapping_line and (result.position.segment_number or result.position.message_number)
        return
    assert result, "the engine accepted the file but no message was mapped"


# Real files the mappings turn into records today (records per file); the rest of the accepted files carry
# data the mappings refuse on purpose, with a coded error: lower-level codes outside the mapping's tables
# (CODECO BGM MIY, Australian CUSRES statuses in FTX), a wrong check digit, a consignment without B/L.
MAPS_TO = {
    "d95b__COARRI.edi": 22,
    "d95b__DEHIRE-CODECO.edi": 1,
    "d95b__PIL_D95B.EDI": 872,
    "d02a__BOOKING-COPARN.edi": 2,
    "d03a__BOOKING-COPARN.edi": 2,
    "xeredi-edifact2__samples__aperak__aperak1.itc": 1,
}


@pytest.mark.parametrize(("suffix", "records"), MAPS_TO.items())
def test_real_files_map_to_their_records(suffix: str, records: int) -> None:
    """Breaks if a mapping regresses on real data it maps today (a renamed field, a stricter table)."""
    [row] = [r for r in ROWS if r["local_file"].endswith(suffix)]
    kind, result = _outcome(CORPUS / row["local_file"])
    assert kind == "mapped", result
    assert sum(len(m.records) for m in result) == records
