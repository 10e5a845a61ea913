"""Airtable's rate limit (5 requests a second per base, then 30 s of 429s): kept to,
survived, shared by the tables of a base; Retry-After, server errors and timeouts.

The harness (the emulator on a virtual clock, the sample as an Airtable table) is
described in ``tests.support.airtable``.
"""

from __future__ import annotations

import time

import pytest

from sheetcrm.errors import BackendError
from sheetcrm.model import CellUpdate
from sheetcrm.table import airtable
from sheetcrm.table.airtable import MAX_RETRIES, Clock
from tests.support.airtable import (
    BASE,
    SIMPLE,
    TABLE,
    customers,
    gaps_after_429,
    max_per_second,
    open_table,
)
from tests.support.clock import VirtualClock
from tests.support.emulators.airtable import AirtableEmulator

# Every AirtableTable here paces on the virtual clock (the fixture is in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("virtual_time")


def test_429_storm_is_survived_without_exceeding_the_pace(
        emu: AirtableEmulator, vclock: VirtualClock) -> None:
    emu.add_table(BASE, TABLE, SIMPLE, customers(260))
    table = open_table(emu, ["이메일", "결제 여부", "상태 태그"], owned=["상태 태그"])
    started = time.monotonic()
    emu.rate_limit_storm(75)  # every request refused for 75 s
    snapshot = table.read()
    updates = [CellUpdate(f"user{i:03d}@example.com", "상태 태그", "t") for i in range(40)]
    emu.rate_limit_storm(40)
    report = table.write("이메일", updates)

    assert len(snapshot.rows) == 260 and report.rows_written == 40
    refused = emu.requests_where(status=429)
    assert len(refused) == 3 + 2  # t0, +30, +60 refused, +90 served; then +0, +30
    assert all(gap >= 30.0 for gap in gaps_after_429(emu.requests))
    assert max_per_second(emu.requests) <= 5  # the emulator's own limiter never fired
    assert emu._blocked_until == {}
    assert table.requests == len(emu.requests) == 3 + 3 + 2 + 3 + 4
    assert sum(vclock.sleeps) >= 5 * 30
    assert time.monotonic() - started < 10  # the penalties were virtual


def test_tables_of_a_base_given_one_pacer_share_the_pace_and_the_penalty(
        emu: AirtableEmulator, virtual_time: Clock, vclock: VirtualClock) -> None:
    emu.add_table(BASE, TABLE, SIMPLE, customers(520))
    pacer = airtable.base_pacer(virtual_time)
    reader = open_table(emu, ["이메일"], pacer=pacer)
    writer = open_table(emu, ["이메일", "상태 태그"], pacer=pacer)
    reader.read()
    emu.fail(429, method="PATCH")  # the writer gets a 429 ...
    writer.write("이메일", [CellUpdate("user000@example.com", "상태 태그", "x")])
    at_429 = emu.requests_where(status=429)[0].at
    reader.read()  # ... and the reader waits the penalty out too
    assert emu.requests_where("GET")[-6].at - at_429 >= 30.0
    assert max_per_second(emu.requests) <= 5


def test_retry_after_is_honoured_when_longer_than_30_s(emu: AirtableEmulator) -> None:
    emu.add_table(BASE, TABLE, SIMPLE, customers(5))
    emu.fail(429, headers={"Retry-After": "45"})
    open_table(emu, ["이메일"]).read()
    assert [c.status for c in emu.requests] == [429, 200]
    assert emu.requests[1].at - emu.requests[0].at >= 45.0


def test_endless_429s_give_up_after_bounded_retries_and_keep_the_penalty(
        emu: AirtableEmulator) -> None:
    emu.add_table(BASE, TABLE, SIMPLE, customers(5))
    emu.rate_limit_storm(10_000)
    table = open_table(emu, ["이메일"])
    with pytest.raises(BackendError, match=r"kept answering 429 \(rate limit\) after 6 retries"):
        table.read()
    assert len(emu.requests) == MAX_RETRIES + 1
    emu.rate_limit_storm(0)
    table.read()  # the table's next request (a daemon's next run) still waits the penalty
    assert emu.requests[-1].at - emu.requests[-2].at >= 30.0


def test_server_errors_are_retried_with_backoff(emu: AirtableEmulator) -> None:
    emu.add_table(BASE, TABLE, SIMPLE, customers(5))
    emu.fail(503, times=2)
    snapshot = open_table(emu, ["이메일"]).read()
    assert len(snapshot.rows) == 5
    assert [c.status for c in emu.requests] == [503, 503, 200]
    assert emu.requests[2].at - emu.requests[1].at >= 1.0  # backoff, not just the pace


def test_every_request_has_a_timeout(emu: AirtableEmulator) -> None:
    emu.add_table(BASE, TABLE, SIMPLE, customers(5))
    emu.fail(200, delay=2.0, times=2)
    table = open_table(emu, ["이메일"], timeout=(1.0, 0.3))
    started = time.monotonic()
    with pytest.raises(BackendError, match=r"did not answer within 0.3 s"):
        table.read()
    assert time.monotonic() - started < 2.0
    assert table.requests == 2  # tried, then retried once
