"""Business layouts: the shipped files load, and a broken file is refused naming file, line and item."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.naccs.layout import ROOT, Group, Item, load_layout, load_layouts, walk

REQUIRED = {"ECR", "EDA", "IDA", "CYH", "ACL01", "BKR", "MFR"}


def test_shipped_layouts_load_and_cover_the_required_businesses() -> None:
    """Every file under naccs/layouts validates; would break on a typo in a layout or a missing business."""
    layouts = load_layouts()
    assert set(layouts) >= REQUIRED
    for code, layout in layouts.items():
        assert layout.business == code
        assert layout.status in ("provisional", "partial", "transcribed")


def test_each_layout_says_how_sure_it_is_in_its_header_comment() -> None:
    """A provisional or partial layout says so in its first comment line; would break if that marking were lost."""
    for path in ROOT.glob("*.yaml"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        status = load_layout(path).status
        if status != "transcribed":
            assert status.upper() in first, path.name


def test_every_layout_has_a_kanji_item() -> None:
    """The golden tests rely on a j item per layout to check byte lengths; would break if one were dropped."""
    for layout in load_layouts().values():
        assert any(isinstance(e, Item) and e.type == "j" for e in walk(layout.items)), layout.business


def test_eda_line_is_184_bytes_as_the_source_states() -> None:
    """The one length the EDA source states for a declaration line (184 bytes with CRLFs) still holds."""
    eda = load_layouts()["EDA"]
    lines = next(e for e in eda.items if isinstance(e, Group) and e.id == "lines")
    assert lines.size // lines.repeat == 184


def test_by_abbr_finds_the_item_a_result_code_names() -> None:
    """Result codes name items by abbreviation; would break if ``abbr`` were no longer read."""
    cyh = load_layouts()["CYH"]
    item = cyh.by_abbr("CNO ")
    assert item is not None and item.id == "container_number"
    assert cyh.by_abbr("ZZZ") is None


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD_ITEM = "  - {id: process_kind, name: 処理区分コード, length: 1, type: an, mandatory: M}\n"


def test_broken_layout_file_names_file_line_and_item(tmp_path: Path) -> None:
    """An unknown key on an item is refused with ``file:line: items[1] (item id): unknown key``.

    Would break if unknown keys were ignored (a misspelt ``lenght`` would silently default) or if the message
    stopped naming where the problem is.
    """
    path = _write(
        tmp_path,
        "CYH.yaml",
        "business: CYH\nname: test\nstatus: provisional\nitems:\n"
        + GOOD_ITEM
        + "  - id: container_number\n    name: コンテナ番号\n    length: 12\n    type: an\n    lenght: 11\n",
    )
    with pytest.raises(ConfigError) as err:
        load_layout(path)
    (problem,) = err.value.problems
    assert problem.startswith(f"{path}:10: items[1].lenght (container_number): unknown key")


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("{id: remarks, name: 記事, length: 7, type: j}", "items[1] (remarks): Value error, a j (double-byte) item"),
        ("{id: qty, name: 数量, length: 5, type: x}", "items[1].type (qty): Input should be 'an', 'n' or 'j'"),
        ("{id: qty, name: 数量, length: 0, type: n}", "items[1].length (qty): Input should be greater than 0"),
        ("{id: qty, name: 数量, type: n}", "items[1].length (qty): required key is missing"),
        ("{id: code, name: コード, length: 3, type: an, pad: zero}", "pad: zero is for n items only"),
        ("{id: qty, name: 数量, length: 5, type: n, mandatory: X}", "items[1].mandatory (qty): Input should be"),
        (
            "{group: g, name: G, repeat: 2, items: [{id: a, name: A, length: 1, type: an, bad: 1}]}",
            "items[1].items[0].bad (a)",
        ),
    ],
)
def test_invalid_items_are_refused(tmp_path: Path, item: str, expected: str) -> None:
    """Each rule of naccs/README.md is enforced on load; would break if a rule were dropped."""
    path = _write(tmp_path, "CYH.yaml", f"business: CYH\nname: t\nstatus: provisional\nitems:\n{GOOD_ITEM}  - {item}\n")
    with pytest.raises(ConfigError) as err:
        load_layout(path)
    assert any(expected in p and p.startswith(f"{path}:") for p in err.value.problems), err.value.problems


def test_duplicate_ids_and_file_name_mismatch_are_refused(tmp_path: Path) -> None:
    """Item ids are value keys, so one id twice would make a value go to two items; the file name is the code."""
    path = _write(tmp_path, "CYH.yaml", f"business: CYH\nname: t\nstatus: provisional\nitems:\n{GOOD_ITEM}{GOOD_ITEM}")
    with pytest.raises(ConfigError, match="item id 'process_kind' is used twice"):
        load_layout(path)
    other = _write(tmp_path, "BKR.yaml", f"business: CYH\nname: t\nstatus: provisional\nitems:\n{GOOD_ITEM}")
    with pytest.raises(ConfigError, match="does not match the file name"):
        load_layout(other)


def test_load_layouts_reports_every_broken_file(tmp_path: Path) -> None:
    """All problems of a folder come out together, each with its file; would break if loading stopped at the first."""
    _write(tmp_path, "CYH.yaml", "business: CYH\nname: t\nstatus: unsure\nitems:\n" + GOOD_ITEM)
    _write(tmp_path, "BKR.yaml", "business: BKR\nname: t\nstatus: provisional\nitems: []\n")
    with pytest.raises(ConfigError) as err:
        load_layouts(tmp_path)
    assert len(err.value.problems) == 2
    assert any("CYH.yaml:3: status" in p for p in err.value.problems)
    assert any("BKR.yaml:4: items" in p for p in err.value.problems)
