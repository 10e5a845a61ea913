"""Google's quota: 429 storms ridden out with bounded, jittered backoff, Retry-After
honoured, a persistent 429 given up with a clear error, and the pacer keeping each
table under 55 requests a minute.

The harness is described in ``tests.support.gsheets``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import formatdate

import pytest

from sheetcrm.errors import BackendError
from sheetcrm.http import HttpOptions, RetryPolicy
from sheetcrm.table.gsheets import GoogleSheetsTable, SheetPlace
from tests.support.clock import VirtualClock
from tests.support.emulators.sheets import SheetsEmulator
from tests.support.gsheets import HEADER, KEY, SHEET, TAGS, Account, make_pacer

# Tests here must not reach past 127.0.0.1; tables built from a config retry on the
# virtual clock (both fixtures are in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("loopback_only", "fast_retries")


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
