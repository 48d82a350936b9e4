"""Error codes: one registry, documented for operators, and no unregistered code can be raised."""

from __future__ import annotations

import re

import pytest

from gateway.errors import CODES, GatewayError, Position
from tests.conftest import REPO


def test_docs_list_exactly_the_registered_codes() -> None:
    documented = set(re.findall(r"`([A-Z]{3}-\d+)`", (REPO / "docs" / "errors.md").read_text(encoding="utf-8")))
    assert documented == set(CODES)


def test_unregistered_code_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        GatewayError("XYZ-1", "nope")


def test_json_shape_of_an_error() -> None:
    err = GatewayError("EDI-29", "count", Position(segment_number=9, segment_tag="UNT", element=1), step="validate")
    assert err.as_dict() == {
        "code": "EDI-29",
        "text": "count",
        "step": "validate",
        "segment": {"tag": "UNT", "number": 9},
        "position": {"element": 1},
    }
