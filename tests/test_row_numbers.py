"""Row numbers are the ones the operator sees: Excel and Google Sheets count the header
as row 1 and keep counting over blank rows, and every message, cell and JSON field
that names a row uses that number (an Airtable grid numbers its records from 1)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from sheetcrm.table.gsheets import GoogleSheetsTable
from tests.support.emulators.sheets import SheetsEmulator
from tests.support.gsheets import KEY, SHEET
from tests.support.sample import CSV, DAY0


def insert_blank_row(sample: Path, after: int) -> None:
    """A blank row (commas only) after the sheet's row ``after``, as Excel saves one."""
    path = sample / CSV
    lines = path.read_bytes().split(b"\r\n")
    lines.insert(after, b",,,,")
    path.write_bytes(b"\r\n".join(lines))


def sheet_row(sample: Path, key: str) -> int:
    """The row Excel shows ``key`` on: the csv record's position, the header being 1."""
    text = (sample / CSV).read_bytes().decode("utf-8-sig")
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if len(row) > 1 and row[1] == key:
            return number
    raise AssertionError(key)


def test_every_command_names_the_row_the_sheet_shows(sample: Path, run_cli) -> None:
    insert_blank_row(sample, after=3)
    bad = "yuna.shin@example.com"  # an impossible date, below the blank row
    row = sheet_row(sample, bad)
    assert row == 16  # 14th customer: header, 13 customers and a blank row above it

    plan = json.loads(run_cli(sample, "--now", DAY0, "--json", "plan").out)
    assert {e["key"]: e["line"] for e in plan["errors"]}[bad] == row
    human = run_cli(sample, "--now", DAY0, "plan").out
    assert re.search(rf"^\W*{row}\W+{re.escape(bad)}", human, re.M)  # the row errors table

    check = json.loads(run_cli(sample, "--now", DAY0, "--json", "check").out)
    assert f"row {row} ({bad})" in {f["where"] for f in check["findings"]}
    preview = run_cli(sample, "--now", DAY0, "preview", bad).out
    assert preview.startswith(f"{bad} (row {row})")

    run_cli(sample, "--now", DAY0, "sync")
    status = json.loads(run_cli(sample, "--now", DAY0, "--json", "status").out)
    assert {e["key"]: e["line"] for e in status["row_errors"]["items"]}[bad] == row


@pytest.mark.usefixtures("loopback_only", "fast_retries")
def test_google_sheets_rows_are_numbered_as_the_grid_shows_them(
        emulator: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    emulator.add_spreadsheet(KEY)
    emulator.add_sheet(KEY, SHEET)
    emulator.put(KEY, SHEET, [
        ["11월 고객 명단"], [],
        ["고객명", "이메일"],  # the header on row 3
        ["김수현", "a@example.com"],  # row 4
        [],  # row 5, blank
        ["", "  "],  # row 6, blank cells only
        ["이지훈", "b@example.com"],  # row 7
    ])
    snapshot = make_table(header_row=3).read()
    assert [row[1] for row in snapshot.rows] == ["a@example.com", "b@example.com"]
    assert snapshot.lines == [4, 7]


def test_a_csv_file_counts_its_blank_rows_and_its_header(tmp_path: Path) -> None:
    from sheetcrm.table.csv import CsvTable

    path = tmp_path / "c.csv"
    path.write_text("이메일,이름\na@x.com,가\n\n,\nb@x.com,나\n", encoding="utf-8")
    snapshot = CsvTable(path).read()
    assert [row[0] for row in snapshot.rows] == ["a@x.com", "b@x.com"]
    assert snapshot.lines == [2, 5]
