"""What stops a Google Sheets run, said plainly: permission (naming the account to
share with), an unknown spreadsheet, worksheet or key column, a refused token (never
showing the key); and that no request leaves the machine when Google's hosts are
rerouted, and the emulator keeps the API's rules for plain gspread calls.

The harness is described in ``tests.support.gsheets``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from sheetcrm.errors import BackendError
from sheetcrm.http import HttpOptions
from sheetcrm.table.gsheets import GoogleSheetsTable, SheetPlace
from tests.support.emulators.sheets import SheetsEmulator
from tests.support.gsheets import HEADER, KEY, SHEET, TAGS, Account, settle_background

# Tests here must not reach past 127.0.0.1; tables built from a config retry on the
# virtual clock (both fixtures are in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("loopback_only", "fast_retries")


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
