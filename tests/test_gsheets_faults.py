"""Faults on the way to Google: 5xx answers (JSON or HTML pages), timeouts, dropped
connections and expired tokens are retried; client errors are not.

The harness is described in ``tests.support.gsheets``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sheetcrm.errors import BackendError
from sheetcrm.http import RetryPolicy
from sheetcrm.table.gsheets import GoogleSheetsTable
from tests.support.emulators.sheets import SheetsEmulator
from tests.support.gsheets import HEADER, TAGS, column

# Tests here must not reach past 127.0.0.1; tables built from a config retry on the
# virtual clock (both fixtures are in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("loopback_only", "fast_retries")


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
