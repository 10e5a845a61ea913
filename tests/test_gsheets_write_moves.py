"""Rows the operator moves while a write is under way: sorted, inserted, deleted or
copied between the read and the write, or during the write itself. No cell ever
lands on another customer's row; what cannot be placed is reported.

The harness is described in ``tests.support.gsheets``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sheetcrm.errors import BackendError
from sheetcrm.model import CellUpdate
from sheetcrm.table import gsheets
from sheetcrm.table.gsheets import GoogleSheetsTable
from tests.support.emulators.sheets import SheetsEmulator
from tests.support.gsheets import HEADER, KEY, SHEET, TAGS, column

# Tests here must not reach past 127.0.0.1; tables built from a config retry on the
# virtual clock (both fixtures are in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("loopback_only", "fast_retries")


def read_then(book: SheetsEmulator, table: GoogleSheetsTable,
              change: Callable[[], None], updates: list[CellUpdate]) -> Any:
    table.read()
    change()
    return table.write("이메일", updates)


def test_sorting_between_read_and_write_never_misdirects(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    report = read_then(book, make_table(),
                       lambda: book.sort_rows(KEY, SHEET, 1), TAGS)
    assert [row[1] for row in book.display(KEY, SHEET)[1:]] == [
        "chaerin@example.com", "jihoon@example.com", "soohyun@example.com"]
    assert column(book, "상태 태그") == {"soohyun@example.com": "S", "jihoon@example.com": "J",
                                       "chaerin@example.com": "C"}
    assert report.requests == 3 and not report.missing_keys and not report.repaired_keys


def test_inserted_rows_are_left_alone(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    report = read_then(book, make_table(), lambda: book.insert_rows(
        KEY, SHEET, 2, [["새 고객", "new@example.com", "", "", "그대로"]]), TAGS)
    tags = column(book, "상태 태그")
    assert tags["new@example.com"] == "그대로"
    assert (tags["soohyun@example.com"], tags["chaerin@example.com"]) == ("S", "C")
    assert report.cells_written == 3


def test_deleted_rows_are_reported_and_written_nowhere(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    report = read_then(book, make_table(), lambda: book.delete_rows(KEY, SHEET, 3), TAGS)
    assert report.missing_keys == ["jihoon@example.com"]
    assert column(book, "상태 태그") == {"soohyun@example.com": "S", "chaerin@example.com": "C"}
    assert "J" not in [cell for row in book.display(KEY, SHEET) for cell in row]


def test_a_key_now_on_two_rows_is_not_written(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    report = read_then(book, make_table(), lambda: book.insert_rows(
        KEY, SHEET, 5, [["박채린(복사)", "chaerin@example.com", "", "", "사본"]]), TAGS)
    assert report.ambiguous_keys == ["chaerin@example.com"]
    shown = book.display(KEY, SHEET)
    assert [row[4] for row in shown[1:]] == ["S", "J", "", "사본"]


def test_edits_to_other_cells_during_the_run_are_kept(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    def edit() -> None:
        book.put(KEY, SHEET, [["전화 요망"]], start="D3")
        book.put(KEY, SHEET, [["'010-9999-0000"]], start="C4")

    read_then(book, make_table(), edit, TAGS)
    assert column(book, "메모")["jihoon@example.com"] == "전화 요망"
    assert column(book, "연락처")["chaerin@example.com"] == "010-9999-0000"
    assert column(book, "상태 태그")["jihoon@example.com"] == "J"


def test_a_column_inserted_before_the_key_costs_one_more_read(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    def insert() -> None:
        book.insert_columns(KEY, SHEET, 0)
        book.put(KEY, SHEET, [["번호"], ["1"], ["2"], ["3"]], start="A1")

    report = read_then(book, make_table(), insert, TAGS)
    assert report.requests == 4
    assert column(book, "상태 태그") == {"soohyun@example.com": "S", "jihoon@example.com": "J",
                                       "chaerin@example.com": "C"}
    assert book.display(KEY, SHEET)[1][0] == "1"


def test_a_worksheet_renamed_under_a_daemon_is_found_again_or_reported(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    first = make_table(worksheet=None)  # the first sheet, whatever its title
    first.read()
    book.sheet(KEY, "안내").title = "읽어 주세요"
    assert first.read().header == ["이 스프레드시트는 sheetcrm이 관리합니다"]
    named = make_table()
    named.read()
    book.sheet(KEY, SHEET).title = "고객"
    with pytest.raises(BackendError) as err:
        named.read()
    assert "'고객 목록'" in str(err.value) and "'읽어 주세요', '고객'" in str(err.value)


# --------------------------------------------------------------------------- rows moving in flight
#
# The worst moment: after the key re-read, before the batchUpdate lands (hook "before"
# on values.batchUpdate), or after it, before the check read (hook "after").


CROWD = [f"c{i}@example.com" for i in range(8)]
FLOW = "자동화 흐름"  # not in the header yet: appended by the write


def crowd(emu: SheetsEmulator, *, rows: int = 1000) -> None:
    """Eight customers; every other one already has a tag; a grid of ``rows`` rows."""
    emu.add_spreadsheet(KEY)
    emu.add_sheet(KEY, SHEET, rows=rows, cols=8)  # room for the appended column
    emu.put(KEY, SHEET, [HEADER] + [
        [f"고객{i}", email, "", f"메모{i}", f"old{i}" if i % 2 else ""]
        for i, email in enumerate(CROWD)], grow=False)


def crowd_updates(keys: list[str] = CROWD) -> list[CellUpdate]:
    return [update for i, key in enumerate(keys)
            for update in (CellUpdate(key, "상태 태그", f"tag{i}"),
                           CellUpdate(key, FLOW, f"flow{i}"))]


def owned_by_row(emu: SheetsEmulator) -> list[tuple[str, str, str, str]]:
    """(key, 메모, 상태 태그, 자동화 흐름) of every non-blank row below the header."""
    rows = emu.display(KEY, SHEET)
    header = rows[0]
    at = {name: header.index(name) for name in ("이메일", "메모", "상태 태그", FLOW)
          if name in header}

    def cell(row: list[str], name: str) -> str:
        return row[at[name]] if name in at and at[name] < len(row) else ""

    return [(cell(r, "이메일"), cell(r, "메모"), cell(r, "상태 태그"), cell(r, FLOW))
            for r in rows[1:] if any(r)]


def assert_every_row_holds_its_own(emu: SheetsEmulator, written: list[str],
                                   others: dict[str, tuple[str, str]] | None = None) -> None:
    """Written customers hold exactly their own updates; every other row holds what it
    held before (``others``: key -> (tag, flow); blank for rows not listed)."""
    others = others or {}
    for key, memo, tag, flow in owned_by_row(emu):
        if key in written:
            i = CROWD.index(key)
            assert (memo, tag, flow) == (f"메모{i}", f"tag{i}", f"flow{i}"), key
        else:
            assert (tag, flow) == others.get(key, ("", "")), (key, tag, flow)


def reverse_sort(emu: SheetsEmulator) -> None:
    emu.sort_rows(KEY, SHEET, 1, descending=True)


def test_rows_sorted_between_the_key_reread_and_the_write_are_repaired(
        emulator: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    crowd(emulator)
    table = make_table()
    table.read()
    emulator.clear_log()
    emulator.on("values.batchUpdate", reverse_sort)
    report = table.write("이메일", crowd_updates())
    assert_every_row_holds_its_own(emulator, CROWD)
    assert [row[0] for row in owned_by_row(emulator)] == sorted(CROWD, reverse=True)
    assert sorted(report.repaired_keys) == sorted(CROWD)
    assert report.missing_keys == report.ambiguous_keys == []
    assert report.columns_added == [FLOW] and report.cells_written == 16
    # re-read, write, check, repair, check: a constant count, whatever the rows
    assert emulator.kinds() == ["values.batchGet", "values.batchUpdate", "values.batchGet",
                                "values.batchUpdate", "values.batchGet"]
    assert report.requests == 5


def test_a_row_inserted_above_during_the_write_gets_back_to_blank(
        emulator: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    crowd(emulator)
    table = make_table()
    table.read()
    emulator.on("values.batchUpdate", lambda emu: emu.insert_rows(
        KEY, SHEET, 2, [["새 고객", "new@example.com", "", "새 메모"]]))
    report = table.write("이메일", crowd_updates())
    assert_every_row_holds_its_own(emulator, CROWD)
    assert owned_by_row(emulator)[0] == ("new@example.com", "새 메모", "", "")
    assert "new@example.com" in report.repaired_keys and not report.missing_keys
    assert set(CROWD) <= set(report.repaired_keys)  # every row below shifted by one


def test_a_row_deleted_during_the_write_is_reported_missing_and_its_cells_land_nowhere(
        emulator: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    crowd(emulator)
    table = make_table()
    table.read()
    emulator.on("values.batchUpdate", lambda emu: emu.delete_rows(KEY, SHEET, 4))  # c2
    report = table.write("이메일", crowd_updates())
    survivors = [key for key in CROWD if key != CROWD[2]]
    assert_every_row_holds_its_own(emulator, survivors)
    assert [row[0] for row in owned_by_row(emulator)] == survivors
    assert report.missing_keys == [CROWD[2]]
    assert CROWD[2] not in report.repaired_keys
    shown = [cell for row in emulator.display(KEY, SHEET) for cell in row]
    assert "tag2" not in shown and "flow2" not in shown


def test_a_row_copied_during_the_write_is_reported_ambiguous_and_keeps_its_own_values(
        emulator: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    crowd(emulator)
    table = make_table()
    table.read()
    emulator.on("values.batchUpdate", lambda emu: emu.insert_rows(
        KEY, SHEET, 2, [["고객5 사본", CROWD[5], "", "사본", "old5"]]))
    report = table.write("이메일", crowd_updates())
    assert report.ambiguous_keys == [CROWD[5]] and report.missing_keys == []
    rows = owned_by_row(emulator)
    assert rows[0] == (CROWD[5], "사본", "old5", "")  # the copy got tag0: given back
    assert rows[6] == (CROWD[5], "메모5", "old5", "")  # got tag6, given back; c5 not written
    assert_every_row_holds_its_own(emulator, [k for k in CROWD if k != CROWD[5]],
                                   {CROWD[5]: ("old5", "")})


@pytest.mark.parametrize("change", ["sort", "insert", "delete"])
def test_rows_moving_after_the_write_and_before_the_check_need_no_repair(
        emulator: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable],
        change: str) -> None:
    crowd(emulator)
    table = make_table()
    table.read()
    emulator.on("values.batchUpdate", {
        "sort": reverse_sort,
        "insert": lambda emu: emu.insert_rows(KEY, SHEET, 3, [["새 고객", "new@example.com"]]),
        "delete": lambda emu: emu.delete_rows(KEY, SHEET, 4),
    }[change], when="after")
    report = table.write("이메일", crowd_updates())
    gone = [CROWD[2]] if change == "delete" else []
    assert_every_row_holds_its_own(emulator, [k for k in CROWD if k not in gone])
    assert report.requests == 3 and report.repaired_keys == []
    assert report.missing_keys == gone  # written, then deleted: not in the sheet


def test_rows_moving_both_before_and_after_the_write_are_still_repaired(
        emulator: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    crowd(emulator)
    table = make_table()
    table.read()
    emulator.on("values.batchUpdate", lambda emu: emu.delete_rows(KEY, SHEET, 2))  # c0
    emulator.on("values.batchUpdate", lambda emu: (
        emu.insert_rows(KEY, SHEET, 5, [["새 고객", "new@example.com", "", "", "수기 태그"]]),
        reverse_sort(emu)), when="after")
    report = table.write("이메일", crowd_updates())
    assert_every_row_holds_its_own(emulator, CROWD[1:], {"new@example.com": ("수기 태그", "")})
    assert report.missing_keys == [CROWD[0]]
    assert sorted(report.repaired_keys) == sorted(CROWD[1:])


def test_the_operators_own_edits_to_other_cells_during_the_write_are_kept(
        emulator: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    crowd(emulator)
    table = make_table()
    table.read()

    def edit_and_sort(emu: SheetsEmulator) -> None:
        emu.put(KEY, SHEET, [["전화 요망"]], start="D3")  # c1's memo
        reverse_sort(emu)

    emulator.on("values.batchUpdate", edit_and_sort)
    table.write("이메일", crowd_updates()[:8])  # c0..c3 only
    rows = {row[0]: row for row in owned_by_row(emulator)}
    assert rows[CROWD[1]][1:] == ("전화 요망", "tag1", "flow1")
    for i in range(4, 8):  # not written: as they were, wherever they went
        assert rows[CROWD[i]][1:] == (f"메모{i}", f"old{i}" if i % 2 else "", "")


def test_with_no_row_moved_the_check_repairs_nothing(
        emulator: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    """Nothing moved, so every cell landed: a cell that reads back otherwise (here the
    operator typed over it right after the write) is not a misdirected one."""
    crowd(emulator)
    table = make_table()
    table.read()
    emulator.on("values.batchUpdate", lambda emu: emu.put(KEY, SHEET, [["수기"]], start="E3"),
                when="after")
    report = table.write("이메일", crowd_updates())
    assert report.requests == 3 and report.repaired_keys == []
    assert owned_by_row(emulator)[1] == (CROWD[1], "메모1", "수기", "flow1")


def test_rows_that_keep_moving_end_in_a_plain_error_after_bounded_repairs(
        emulator: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    crowd(emulator)
    table = make_table()
    table.read()

    def rotate(emu: SheetsEmulator) -> None:  # the last row moves to the top, every time
        rows = emu.sheet(KEY, SHEET).rows
        rows[1:] = rows[-1:] + rows[1:-1]

    emulator.on("values.batchUpdate", rotate, times=None)
    emulator.clear_log()
    with pytest.raises(BackendError) as err:
        table.write("이메일", crowd_updates())
    message = str(err.value)
    assert "rows kept moving" in message and f"after {gsheets.MAX_REPAIRS} repairs" in message
    assert "run sync again" in message and "Traceback" not in message
    assert emulator.count("values.batchUpdate") == 1 + gsheets.MAX_REPAIRS
    assert emulator.count("values.batchGet") == 2 + gsheets.MAX_REPAIRS


def test_a_write_past_a_grid_that_shrank_meanwhile_is_planned_again(
        emulator: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    crowd(emulator, rows=len(CROWD) + 1)  # an imported sheet: the grid ends at the data
    table = make_table()
    table.read()
    emulator.on("values.batchUpdate", lambda emu: emu.delete_rows(KEY, SHEET, 3))  # c1
    report = table.write("이메일", crowd_updates())
    statuses = [e.status for e in emulator.requests if e.kind == "values.batchUpdate"]
    assert statuses == [400, 200]  # refused whole: row 9 is past the grid now
    assert_every_row_holds_its_own(emulator, [k for k in CROWD if k != CROWD[1]])
    assert report.missing_keys == [CROWD[1]] and report.repaired_keys == []


def test_keys_missing_before_the_write_stay_reported_when_nothing_lands(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    table = make_table()
    table.read()
    book.clear_log()
    report = table.write("이메일", [CellUpdate("gone@example.com", "상태 태그", "x"),
                                   CellUpdate("  ", "상태 태그", "y")])
    assert report.missing_keys == ["gone@example.com", "  "]
    assert book.kinds() == ["values.batchGet"] and report.cells_written == 0
