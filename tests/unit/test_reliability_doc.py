"""RELIABILITY.md stays true: every test a row names exists, and no row reports anything lost."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import REPO

DOC = REPO / "RELIABILITY.md"
REFERENCE = re.compile(r"`((?:tests/[\w/]+\.py)|(?:[\w]+\.py)|)(?:::(\w+))?`")


def rows() -> list[tuple[str, list[str]]]:
    """(section, cells) of every table row below a heading."""
    found, section = [], ""
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line[3:]
        elif (
            line.startswith("|")
            and not line.startswith("|---")
            and not line.startswith("| fault")
            and not line.startswith("| input")
        ):
            found.append((section, [c.strip() for c in line.strip("|").split(" | ")]))
    return found


def references(cell: str) -> list[tuple[Path, str | None]]:
    """``path::name`` references; ``::name`` and a bare ``file.py`` lean on the last full path of the cell."""
    out: list[tuple[Path, str | None]] = []
    last: Path | None = None
    for path, name in REFERENCE.findall(cell):
        if path.startswith("tests/"):
            last = REPO / path
        elif path and last is not None:
            last = last.parent / path
        if last is not None and (path or name):
            out.append((last, name or None))
    return out


def test_every_named_test_exists() -> None:
    """Breaks if a row names a test that was renamed or removed: the row would claim a proof that is gone."""
    missing = []
    for _, cells in rows():
        refs = references(cells[-1])
        assert refs, f"a row names no test: {cells[0][:60]}"
        for path, name in refs:
            if not path.is_file():
                missing.append(str(path.relative_to(REPO)))
            elif name and not re.search(rf"^def {name}\(", path.read_text(encoding="utf-8"), re.MULTILINE):
                missing.append(f"{path.relative_to(REPO)}::{name}")
    assert not missing, missing


def test_nothing_is_lost() -> None:
    """Breaks if a row's "lost" column says anything but 0."""
    for section, cells in rows():
        lost = cells[2] if section.startswith("Processes") else cells[3]
        assert re.match(r"^0\b", lost), f"{section}: {cells[0][:60]}: lost = {lost!r}"
