"""``report --to-sheet``: the summary written into a ``sheetcrm 리포트`` tab of the
operator's Google spreadsheet in one request, against the Sheets emulator (the real
gspread and google-auth on loopback); and a clear refusal on other backends."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sheetcrm.table.gsheets import GoogleSheetsTable
from tests.support.emulators.sheets import SheetsEmulator, Typed
from tests.support.gsheets import KEY, SHEET, Account, config
from tests.support.sample import DAY0, DAY2, korean_report, shipped_sample_csv

pytestmark = pytest.mark.usefixtures("loopback_only", "fast_retries")
TAB = "sheetcrm 리포트"


def test_a_missing_tab_is_added_and_filled_in_one_request(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    customers = book.display(KEY, SHEET)
    table = make_table()
    rows: list[list[Any]] = [["흐름", "고객 수", "전환율"], ["payment", 12, "25%"],
                             ["=HYPERLINK(\"http://x\", \"y\")", 3.5, ""]]
    spent = table.write_tab(TAB, rows)

    assert book.kinds() == ["spreadsheets.get", "spreadsheets.batchUpdate"] and spent == 2
    (body,) = [r.json() for r in book.writes()]
    assert [next(iter(r)) for r in body["requests"]] == ["addSheet", "updateCells"]
    assert book.display(KEY, TAB) == [["흐름", "고객 수", "전환율"], ["payment", "12", "25%"],
                                      ["=HYPERLINK(\"http://x\", \"y\")", "3.5", ""]]
    assert book.cell(KEY, TAB, "A3") == "=HYPERLINK(\"http://x\", \"y\")"  # text, no formula
    assert book.cell(KEY, TAB, "B2") == Typed(12.0)  # a number the operator can sum
    assert book.display(KEY, SHEET) == customers  # the customer sheet is not touched


def test_the_next_report_replaces_the_tab_whole_in_one_request_and_grows_it(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    table = make_table()
    table.write_tab(TAB, [["a", "b", "c"], ["d", "e", "f"], ["g"]])
    book.put(KEY, TAB, [["", "", "", "typed in"]])  # the tab is the report's: cleared too
    before = len(book.kinds())

    table.write_tab(TAB, [["new"]])
    assert book.kinds()[before:] == ["spreadsheets.get", "spreadsheets.batchUpdate"]
    assert book.display(KEY, TAB) == [["new"]]  # every old value cleared, in the same request

    tall = [[f"row {i}"] for i in range(150)]  # taller than the tab's 100 rows
    table.write_tab(TAB, tall)
    assert book.kinds()[-1] == "spreadsheets.batchUpdate"
    assert [r[0] for r in book.display(KEY, TAB)] == [f"row {i}" for i in range(150)]
    assert [next(iter(r)) for r in book.writes()[-1].json()["requests"]] == [
        "updateSheetProperties", "updateCells"]


def _load_sample(emu: SheetsEmulator) -> None:
    rows = list(csv.reader(io.StringIO(shipped_sample_csv().decode("utf-8-sig"))))
    emu.add_spreadsheet(KEY, title="소담 클래스 고객 관리")
    emu.add_sheet(KEY, "안내")
    emu.add_sheet(KEY, SHEET)
    emu.put(KEY, SHEET, [rows[0]] + [r[:2] + ["'" + r[2] if r[2] else ""] + r[3:]
                                     for r in rows[1:]])


def test_report_to_sheet_writes_the_summary_beside_the_customers(
        sample: Path, emulator: SheetsEmulator, account: Account, run_cli: Any) -> None:
    _load_sample(emulator)
    path = config(sample, emulator, account.path)
    korean_report(path)  # the sample's report is Korean (the tests speak English)
    for now in (DAY0, DAY2):
        assert run_cli(sample, "--now", now, "sync").code == 0
    customers = emulator.display(KEY, SHEET)
    before = len(emulator.kinds())

    result = run_cli(sample, "--now", DAY2, "report", "--to-sheet")
    assert result.code == 0, result.err
    assert "summary written to the 'sheetcrm 리포트' tab" in result.out
    kinds = emulator.kinds()[before:]
    assert kinds.count("spreadsheets.batchUpdate") == 1
    assert not [k for k in kinds if k.startswith("values.") and k != "values.get"]
    shown = emulator.display(KEY, TAB)
    assert shown[0][:2] == ["sheetcrm 리포트", "2026-11-25 10:00 기준"]
    assert ["흐름", "그룹", "고객 수", "전환 수", "전환율", "95% 구간", "판정"] in shown
    payment = [r for r in shown if r[0] == "payment"]
    assert payment[0][1] == "메시지 받은 고객" and payment[1][1] == "대조군"
    lift = next(r for r in payment if r[1] == "차이")
    assert "표본이 부족합니다" in lift[6] and "~" in lift[5]
    assert any(r[1].startswith("A/B 테스트: 2단계") for r in payment)
    assert emulator.display(KEY, SHEET) == customers


def test_to_sheet_on_a_csv_table_is_a_one_line_error(sample: Path, run_cli: Any) -> None:
    result = run_cli(sample, "report", "--to-sheet")
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.err
    assert "table.backend: report --to-sheet writes a tab of a Google spreadsheet" in lines[0]
    assert "'csv'" in lines[0] and "--html" in lines[0]
