"""CSV writes of a large sheet: made and written piece by piece, byte for byte the same.

A run writes a cell or two of every row; at 200k rows the file is tens of megabytes.
These pin that such a write does not hold the file many times over (old and new text
and a string per field), and that writing it in pieces changes none of its bytes:
the BOM once, line endings, quoting, CP949, long stretches without an edit.
"""

from __future__ import annotations

import codecs
import random
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from sheetcrm.app.runner import prepare
from sheetcrm.config import load_config
from sheetcrm.model import CellUpdate, LedgerState, Snapshot
from sheetcrm.table.csv import CsvTable
from sheetcrm.table.csv_text import Edits, pieces, splice

BOM = codecs.BOM_UTF8
HEADER = ["이메일", "이름", "강의", "지역", "메모", "상태 태그"]


def sheet(rows: int, eol: str = "\r\n") -> str:
    """A customer sheet of ``rows`` rows, some cells quoted, Hangul in most."""
    lines = [",".join(HEADER)]
    for i in range(rows):
        memo = '"전화, 문자 모두 ""부재"""' if i % 7 == 0 else ""
        lines.append(f"user{i}@example.com,고객{i},파이썬 입문,서울,{memo},")
    return eol.join(lines) + eol


def tag_every_row(rows: int) -> list[CellUpdate]:
    return [CellUpdate(f"user{i}@example.com", "상태 태그", f"결제 대기, 태그{i % 3}")
            for i in range(rows)]


def expected_after(text: str, rows: int, eol: str = "\r\n") -> str:
    """The sheet with every row's tag cell filled as the write must fill it."""
    out = []
    for n, line in enumerate(text.split(eol)[:-1]):
        out.append(line if n == 0 else f'{line}"결제 대기, 태그{(n - 1) % 3}"')
    return eol.join(out) + eol


def test_a_write_of_every_row_holds_less_than_eight_times_the_file(tmp_path: Path) -> None:
    rows = 20_000
    path = tmp_path / "customers.csv"
    path.write_bytes(sheet(rows).encode("utf-8"))
    size = path.stat().st_size
    updates = tag_every_row(rows)
    table = CsvTable(path)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        report = table.write("이메일", updates)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert report.cells_written == rows
    # The text (two bytes a character with Hangul in it), the keys and a few numbers
    # per row: about 5×. The old bytes, a string per field and the whole new text and
    # its bytes held at once took 24×.
    assert peak < 8 * size, f"{peak / size:.1f}× the file's {size} bytes"


def test_a_large_write_in_pieces_is_the_file_with_only_the_tag_cells_changed(
        tmp_path: Path) -> None:
    rows = 40_000  # well over the pieces' million characters
    text = sheet(rows)
    path = tmp_path / "customers.csv"
    path.write_bytes(BOM + text.encode("utf-8"))
    CsvTable(path).write("이메일", tag_every_row(rows))
    data = path.read_bytes()
    assert data.count(BOM) == 1 and data.startswith(BOM)
    assert data == BOM + expected_after(text, rows).encode("utf-8")


def test_a_large_cp949_file_with_lf_endings_keeps_them_through_a_write_in_pieces(
        tmp_path: Path) -> None:
    rows = 40_000
    text = sheet(rows, eol="\n")
    path = tmp_path / "customers.csv"
    path.write_bytes(text.encode("cp949"))
    table = CsvTable(path)
    table.write("이메일", tag_every_row(rows))
    assert table.encoding == "cp949"
    assert path.read_bytes() == expected_after(text, rows, eol="\n").encode("cp949")


def test_an_edit_near_the_start_of_a_long_file_leaves_the_rest_byte_for_byte(
        tmp_path: Path) -> None:
    rows = 60_000
    text = sheet(rows)
    path = tmp_path / "customers.csv"
    path.write_bytes(text.encode("utf-8"))
    CsvTable(path).write("이메일", [CellUpdate("user1@example.com", "상태 태그", "VIP")])
    lines = text.split("\r\n")
    lines[2] += "VIP"
    assert path.read_bytes() == "\r\n".join(lines).encode("utf-8")


def test_pieces_of_any_size_join_to_the_text_one_splice_makes() -> None:
    rnd = random.Random(16)
    text = "".join(rnd.choice("ab,\"\r\n가나") for _ in range(5_000))
    for _ in range(50):
        cuts = sorted(rnd.sample(range(len(text) + 1), rnd.randrange(0, 40)))
        spans = [(a, b) for a, b in zip(cuts[::2], cuts[1::2], strict=False)]
        edits = Edits((a, b, rnd.choice(["", "x", "새 값", "y" * 300])) for a, b in spans)
        whole = splice(text, list(edits))
        for size in (1, 7, 64, 1000, 1 << 20):
            assert "".join(pieces(text, edits, size)) == whole


def test_planning_lets_the_rows_of_its_snapshot_go_and_keeps_header_and_tabs(
        tmp_path: Path) -> None:
    (tmp_path / "customers.csv").write_text("이메일,이름\na@example.com,가\n", "utf-8")
    (tmp_path / "config.toml").write_text(
        '[table]\nbackend = "csv"\npath = "customers.csv"\nkey = "email"\n'
        '[fields]\nemail = { column = "이메일", type = "email" }\nname = { column = "이름" }\n'
        '[writeback]\ntags = "상태 태그"\n', "utf-8")
    (tmp_path / "templates").mkdir()
    config = load_config(tmp_path / "config.toml", {})
    table = CsvTable(tmp_path / "customers.csv")
    snapshot = table.read()
    tabs = {"태그": [["이름", "조건"]]}
    snapshot = Snapshot(snapshot.header, snapshot.rows, snapshot.source, snapshot.lines, tabs)
    plan = prepare(config, LedgerState(), datetime(2026, 11, 23, tzinfo=UTC), table,
                   snapshot=snapshot)
    assert [r.key for r in plan.records] == ["a@example.com"]
    assert snapshot.rows == [] and snapshot.lines is None
    assert snapshot.header == ["이메일", "이름"] and snapshot.tabs == tabs
