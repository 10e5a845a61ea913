"""Reading a Google sheet through the real gspread + google-auth code: the text the
sheet displays (leading zeros, Korean dates), the header row, blank rows, and which
worksheet (the first, a title, or the gid of a URL).

The harness (the emulator, the service account, the loopback-only guard, the virtual
clock) is described in ``tests.support.gsheets``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sheetcrm.model import CellUpdate
from sheetcrm.table import gsheets
from sheetcrm.table.gsheets import GoogleSheetsTable
from tests.support.emulators.sheets import SheetsEmulator, Typed
from tests.support.gsheets import HEADER, KEY, SHEET, URL

# Tests here must not reach past 127.0.0.1; tables built from a config retry on the
# virtual clock (both fixtures are in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("loopback_only", "fast_retries")


def test_read_gives_displayed_text_with_leading_zeros_and_korean_dates(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    sheet = book.sheet(KEY, SHEET)
    sheet.set(1, 5, Typed(7.0, "000"))  # a number shown as 007
    sheet.set(2, 5, Typed(45809.0, "DATE"))  # 2025-06-01
    sheet.set(3, 5, Typed(45809.5 + 64 / 86400 * 60, "DATE_TIME"))
    sheet.set(1, 6, Typed(True))
    sheet.set(2, 6, Typed(149000.0, "#,##0"))
    book.put(KEY, SHEET, [["쿠폰", "확인"]], start="F1")
    snap = make_table().read()
    assert snap.header == HEADER + ["쿠폰", "확인"]
    assert snap.rows[0] == ["김수현", "soohyun@example.com", "010-1111-2222", "VIP", "", "007",
                            "TRUE"]
    assert snap.rows[1][2] == "01098765432"
    assert snap.rows[1][5:] == ["2025. 6. 1", "149,000"]
    assert snap.rows[2][5] == "2025. 6. 1 오후 1:04:00"
    assert "고객 목록" in snap.source and KEY in snap.source


def test_read_honours_header_row_and_skips_blank_rows(
        emulator: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    emulator.add_spreadsheet(KEY)
    emulator.add_sheet(KEY, SHEET)
    emulator.put(KEY, SHEET, [
        ["11월 고객 명단"], [],
        [" 고객명 ", "이메일", "상태 태그"],
        ["김수현", "a@example.com"],  # ragged: shorter than the header
        [],  # a blank middle row
        ["", "  "],  # blank cells only
        ["이지훈", "b@example.com", "결제 대기"],
    ])
    table = make_table(header_row=3)
    snap = table.read()
    assert snap.header == ["고객명", "이메일", "상태 태그"]
    assert snap.rows == [["김수현", "a@example.com"], ["이지훈", "b@example.com", "결제 대기"]]
    report = table.write("이메일", [CellUpdate("b@example.com", "상태 태그", "VIP"),
                                   CellUpdate("a@example.com", "오류", "x")])
    assert report.columns_added == ["오류"]
    shown = emulator.display(KEY, SHEET)
    assert shown[2][:4] == [" 고객명 ", "이메일", "상태 태그", "오류"]
    assert shown[3][3] == "x" and shown[6][2] == "VIP"
    assert shown[0][0] == "11월 고객 명단"


def test_first_worksheet_by_default_and_gid_from_url(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    assert make_table(worksheet=None).read().header == ["이 스프레드시트는 sheetcrm이 관리합니다"]
    key, gid = gsheets.parse_spreadsheet(URL)
    assert (key, gid) == (KEY, 1001)
    assert make_table(worksheet=None, gid=gid).read().header == HEADER
