"""Fixtures of the hostile-input tests: seed files, a mutation strategy and a gateway holding every mapping.

The property tests here run a fixed number of derandomized examples (``BOUNDED``), so CI runs the same inputs
every time and in bounded time; the long random run is ``tests/fuzz/fuzz_edifact.py``. The whole-pipeline
gateway is on SQLite only (a fresh file per module): the pipeline's outcome does not depend on the database,
and PostgreSQL would double the time of these runs.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.errors import CODES
from tests.conftest import REPO, write_config
from tests.unit.naccs.test_reply import output as naccs_output

EXAMPLES = REPO / "mappings"
EDIFACT_SEEDS = [p.read_bytes() for p in sorted((EXAMPLES / "edifact" / "examples").glob("*.edi"))] + [
    p.read_bytes() for p in sorted((REPO / "samples").glob("*.edi"))
]
XML_SEEDS = [p.read_bytes() for p in sorted((EXAMPLES / "xml" / "examples").glob("*.xml"))]
CSV_SEEDS = [p.read_bytes() for p in sorted((EXAMPLES / "csv" / "examples").glob("*.csv"))]
JSON_SEEDS = [
    b'{"type": "conpas.prematching_answer", "container_number": "CSQU3054383", "prematching_result": 2, '
    b'"terminal_check": 1}',
    b'[{"type": "conpas.prematching_answer", "container_number": "MSCU1234566", "prematching_result": 1, '
    b'"terminal_check": null}]',
]
NACCS_SEEDS = [
    naccs_output("00000-0000-0000\r\nCNTR MSCU1234565\r\n"),
    naccs_output("S0010-0000-0000 W0001-0000-0000\r\n", seq="001", last="E"),
    naccs_output("CNTR TGHU8765436\r\n", kind="P"),
]

MAX_EXAMPLES = 400


def bounded(max_examples: int = MAX_EXAMPLES) -> settings:
    """The settings of every property test here: fixed examples, no deadline (SQLite on a busy CI machine),
    derandomized so a failure is reproduced by the next run; health checks about slow data are off."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


SERVICE = b"'+:?*\n\r <>&;\"\\,\t[]{}UNAUNBUNHUNTUNZ0123456789\x00\xff\xef\xbb\xbf"


# Values a mutation puts after a delimiter; the numbers at the end once made weight_kg/length_cm raise
# decimal.InvalidOperation (INT-1) and passed NaN or Infinity into the canonical record through `number`.
VALUES = [
    b"",
    b"0",
    b"-1",
    b"12345678901234",
    b"-0.000",
    b"ABCD1234567",
    b"CSQU3054383",
    b"20261324",
    b"203501011260",
    b"X" * 600,
    "\u9ad9\u2460".encode(),
    b"\xff\xfe",
    b"?",
    b"??",
    b"&amp;",
    b"&x;",
    b"]]>",
    b'"X"',
    b"null",
    b"[]",
    b"{}",
    b"true",
    b"3",
    b"99999999999999999999999999",
    b"1e308",
    b"Infinity",
    b"-inf",
    b"NaN",
    b"sNaN",
]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with 1 to 4 mutations: a value swapped after a delimiter (keeps the structure, so the payload
    reaches validation and mapping), a service byte inserted, a byte replaced, a byte deleted, a slice repeated,
    the tail cut, or a slice of another seed spliced in. The choices come from a Random that hypothesis seeds, so
    they spread over the whole file (hypothesis' own integers favour small ones) and still replay exactly."""
    rng = random.Random(draw(st.integers(0, 2**63)))
    buf = bytearray(rng.choice(seeds))
    for _ in range(rng.randint(1, 4)):
        op = rng.randint(0, 9)
        at = rng.randint(0, len(buf))
        if op <= 3 and buf:  # a value after a delimiter: EDIFACT + : , CSV , ; XML > and quotes, JSON : and ,
            marks = [i for i, b in enumerate(buf) if b in b'+:,;>"\t']
            if marks:
                i = rng.choice(marks) + 1
                end = i
                while end < len(buf) and buf[end] not in b"+:',;<\"\r\n\t":
                    end += 1
                buf[i:end] = rng.choice(VALUES)
                continue
        if op == 4 or not buf:
            buf[at:at] = bytes([rng.choice(SERVICE)])
        elif op == 5:
            buf[min(at, len(buf) - 1)] = rng.randrange(256)
        elif op == 6:
            del buf[min(at, len(buf) - 1)]
        elif op == 7:
            buf[at:at] = buf[at : at + rng.randint(1, 60)] * rng.randint(1, 5)
        elif op == 8:
            del buf[at:]
        else:
            other = rng.choice(seeds)
            start = rng.randint(0, len(other))
            buf[at:at] = other[start : start + rng.randint(1, 200)]
    return bytes(buf)


def hostile(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """Mutated seeds mostly, and any bytes."""
    return st.one_of(mutated(seeds), mutated(seeds), mutated(seeds), mutated(seeds), st.binary(max_size=600))


def assert_coded(code: str, *families: str) -> None:
    assert code in CODES and code != "INT-1", code
    assert code.split("-")[0] in families, code


CHANNELS = {
    "drops": {"type": "folder", "path": "inbox", "archive": "archive", "failed": "failed", "pattern": "*"},
    "nyk-lists": {"type": "folder", "path": "l", "archive": "la", "failed": "lf", "partner": "NYK", "pattern": "*"},
    "nmot-lists": {"type": "folder", "path": "n", "archive": "na", "failed": "nf", "pattern": "*"},
}


def all_mappings() -> list[dict[str, object]]:
    """Every mapping routes.yaml names, with absolute paths."""
    import yaml

    doc = yaml.safe_load((REPO / "routes.yaml").read_text(encoding="utf-8"))
    return [{**rule, "use": str(REPO / rule["use"])} for rule in doc["mappings"]]


@pytest.fixture(scope="module")
def pipeline_gateway(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Gateway]:
    """A gateway with every mapping of routes.yaml, partners ONE (EDIFACT ONEY) and NYK (its CSV lists), on a
    fresh SQLite file; module-scoped so that a property test's examples share it."""
    tmp = tmp_path_factory.mktemp("hostile")
    target = tmp / "gateway.db"
    target.write_bytes(sqlite_template.read_bytes())
    partners = {
        "ONE": {"name": "ONE", "business_type": "ocean_carrier", "edifact_ids": ["ONEY"]},
        "NYK": {"name": "NYK Line", "business_type": "ocean_carrier", "edifact_ids": ["NYKS"]},
    }
    path = write_config(tmp, f"sqlite:///{target}", partners=partners, channels=CHANNELS, mappings=all_mappings())
    gw = Gateway(config_mod.load(path))
    yield gw
    gw.close()
