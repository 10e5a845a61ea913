"""The plan's monthly call cap: refused at once (neither retried nor waited out), said
plainly mid-write and in a sync; and the warning when a schedule would spend more
calls a month than the plan allows, as the docs show it.

The harness (the emulator on a virtual clock, the sample as an Airtable table) is
described in ``tests.support.airtable``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from sheetcrm.config import config_from_dict
from sheetcrm.errors import ConfigError
from sheetcrm.http import HttpOptions
from sheetcrm.model import CellUpdate
from sheetcrm.table import airtable
from sheetcrm.table.airtable import AirtableError, AirtableTable, AirtableWriteError
from tests.support.airtable import (
    BASE,
    SEOUL,
    SIMPLE,
    TABLE,
    TOKEN,
    airtable_sample,
    customers,
    open_table,
)
from tests.support.clock import VirtualClock
from tests.support.emulators.airtable import AirtableEmulator
from tests.support.sample import DAY0, ROOT

# Every AirtableTable here paces on the virtual clock (the fixture is in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("virtual_time")


def test_the_monthly_call_cap_is_neither_retried_nor_waited_out(
        vclock: VirtualClock) -> None:
    with AirtableEmulator(tokens=[TOKEN], clock=vclock.now, monthly_calls=3) as emu:
        emu.add_table(BASE, TABLE, SIMPLE, customers(260))
        table = open_table(emu, ["이메일"])
        assert len(table.read().rows) == 260  # 3 pages: the month's last 3 calls
        slept = sum(vclock.sleeps)
        with pytest.raises(AirtableError) as caught:
            table.read()
        message = str(caught.value)
        assert "429 PUBLIC_API_BILLING_LIMIT_EXCEEDED" in message
        assert "used all of its API calls for this month (the Free plan allows 1,000)" in message
        assert "Wait for the next month, upgrade the workspace's plan, or run less often" in message
        assert "\n" not in message and TOKEN not in message
        assert caught.value.status == 429
        assert caught.value.kind == "PUBLIC_API_BILLING_LIMIT_EXCEEDED"
        assert [c.status for c in emu.requests[3:]] == [429]  # asked once, not retried
        assert sum(vclock.sleeps) - slept < 1.0  # no 30 s penalty waited

        emu.new_month()
        refused_at = emu.requests[-1].at
        assert len(table.read().rows) == 260  # and nothing held the base back
        assert emu.requests[4].at - refused_at < 1.0


def test_the_monthly_cap_in_the_middle_of_a_write_says_what_was_written(
        vclock: VirtualClock) -> None:
    with AirtableEmulator(tokens=[TOKEN], clock=vclock.now, monthly_calls=3) as emu:
        emu.add_table(BASE, TABLE, SIMPLE, customers(30))
        table = open_table(emu, ["이메일", "상태 태그"], owned=["상태 태그"])
        updates = [CellUpdate(f"user{i:03d}@example.com", "상태 태그", "x") for i in range(30)]
        with pytest.raises(AirtableWriteError) as caught:
            table.write("이메일", updates)  # keys, 2 PATCHes, then the cap
        assert "PUBLIC_API_BILLING_LIMIT_EXCEEDED" in str(caught.value)
        assert "20 of 30 records were written before this" in str(caught.value)
        assert [c.status for c in emu.requests] == [200, 200, 200, 429]


def test_sync_over_the_monthly_cap_ends_with_a_backend_error_and_no_traceback(
        run_cli, vclock: VirtualClock, tmp_path: Path) -> None:
    with AirtableEmulator(tokens=[TOKEN], clock=vclock.now, monthly_calls=0) as emu:
        folder = airtable_sample(tmp_path / "airtable", emu)
        result = run_cli(folder, "--now", DAY0, "sync")
        assert result.code == 3
        assert "used all of its API calls for this month" in result.err
        assert "Traceback" not in result.err + result.out
        assert len(emu.requests) == 1
        assert not (folder / "outbox").exists()


def schedule_config(tmp_path: Path, *, backend: str = "airtable", **schedule: Any):
    monthly = schedule.pop("monthly_calls", None)
    rules = schedule.pop("rules", None)
    table = {"backend": backend, "key": "email",
             **({"path": "customers.csv"} if backend == "csv" else {"base": BASE, "table": TABLE})}
    if monthly is not None:
        table["monthly_calls"] = monthly
    raw = {"table": table, "fields": {"email": {"column": "이메일"}}, "schedule": schedule,
           **({"rules": rules} if rules else {})}
    return config_from_dict(raw, {}, path=tmp_path / "config.toml")


def test_requests_per_run_count_pages_of_100_and_patches_of_10() -> None:
    assert airtable.requests_per_run(0) == airtable.requests_per_run(26) == 1
    assert airtable.requests_per_run(26, changed=5) == 3  # read, keys again, one PATCH
    assert airtable.requests_per_run(1_000, changed=95) == 10 + 10 + 10
    assert airtable.requests_per_run(10_000) == 100


def test_every_5_minutes_on_a_small_base_is_over_the_free_plan(tmp_path: Path) -> None:
    config = schedule_config(tmp_path, every="5m")
    assert airtable.runs_per_month(config) == 8_640
    warning = airtable.monthly_budget_warning(config, rows=26)
    assert warning is not None and "\n" not in warning
    assert '[schedule] every = "5m" runs about 8,640 syncs a month' in warning
    assert "each costs at least 1 Airtable API call (more when cells change)" in warning
    assert "about 8,640 a month, over the 1,000 calls a month of Airtable's Free plan" in warning
    assert 'e.g. every = "1h" (about 720 calls a month)' in warning
    assert airtable.monthly_budget_warning(schedule_config(tmp_path, every="1h"), rows=26) is None


def test_the_budget_is_monthly_calls_when_set(tmp_path: Path) -> None:
    hourly = schedule_config(tmp_path, every="1h", monthly_calls=500)
    warning = airtable.monthly_budget_warning(hourly, rows=26)
    assert warning is not None and "about 720 a month, over [table] monthly_calls = 500" in warning
    assert 'e.g. every = "2h" (about 360 calls a month)' in warning
    team = schedule_config(tmp_path, every="5m", monthly_calls=100_000)
    assert airtable.monthly_budget_warning(team, rows=26) is None
    big = schedule_config(tmp_path, every="5m", monthly_calls=100_000)
    warning = airtable.monthly_budget_warning(big, rows=2_000)  # 20 pages a run
    assert warning is not None and "about 172,800 a month" in warning
    assert 'e.g. every = "10m" (about 86,400 calls a month)' in warning
    huge = airtable.monthly_budget_warning(schedule_config(tmp_path, every="1d"), rows=5_000)
    assert huge is not None and "even one sync a day costs more than that" in huge


def test_the_rule_tables_listed_every_run_count_in_the_estimate(tmp_path: Path) -> None:
    hourly = schedule_config(tmp_path, every="1h")
    assert airtable.monthly_budget_warning(hourly, rows=26) is None  # 720 calls a month
    rules = schedule_config(tmp_path, every="1h",
                            rules={"tags": "태그", "flows": "흐름", "templates": "템플릿"})
    least = airtable.monthly_budget_warning(rules, rows=26)  # a page each, at least
    assert least is not None and "each costs at least 4 Airtable API calls" in least
    warning = airtable.monthly_budget_warning(rules, rows=26, tab_rows={"흐름": 150})
    assert warning is not None  # the customers, 태그, 흐름 in two pages, 템플릿
    assert "each costs at least 5 Airtable API calls" in warning
    assert "about 3,600 a month" in warning and 'e.g. every = "4h"' in warning


def test_cron_schedules_are_counted_over_30_days(tmp_path: Path) -> None:
    start = dt.datetime(2026, 11, 23, tzinfo=SEOUL)
    for cron, runs in [("*/5 * * * *", 8_640), ("0 9,18 * * *", 60),
                       ("*/10 8-21 * * *", 2_520), ("0 9 1 * *", 1)]:
        config = schedule_config(tmp_path, cron=cron, every="1m")  # cron wins over every
        assert airtable.runs_per_month(config, now=start) == runs, cron
    ok = schedule_config(tmp_path, cron="0 9,18 * * *")
    assert airtable.monthly_budget_warning(ok, rows=26, now=start) is None
    busy = schedule_config(tmp_path, cron="*/10 8-21 * * *")
    warning = airtable.monthly_budget_warning(busy, rows=26, now=start)
    assert warning is not None and '[schedule] cron = "*/10 8-21 * * *" runs about 2,520' in warning


def test_no_warning_for_other_backends_or_without_a_schedule(tmp_path: Path) -> None:
    assert airtable.monthly_budget_warning(
        schedule_config(tmp_path, backend="csv", every="1m"), rows=26) is None
    assert airtable.monthly_budget_warning(schedule_config(tmp_path, every=None), rows=26) is None


def test_monthly_calls_must_be_a_positive_number(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        schedule_config(tmp_path, every="5m", monthly_calls=0)
    assert str(caught.value).startswith("table.monthly_calls: 0 is invalid")


def docs_example(after: str) -> str:
    """The ```text block that follows ``after`` in docs/airtable.md, as one line."""
    text = (ROOT / "docs" / "airtable.md").read_text(encoding="utf-8")
    block = text.split(after, 1)[1].split("```text\n", 1)[1].split("\n```", 1)[0]
    return " ".join(block.split("\n"))


def test_the_docs_show_the_warning_and_the_error_as_they_are(
        tmp_path: Path, vclock: VirtualClock) -> None:
    warning = airtable.monthly_budget_warning(schedule_config(tmp_path, every="5m"), rows=26)
    assert docs_example("naming an `every` that fits:") == warning
    with AirtableEmulator(tokens=[TOKEN], clock=vclock.now, monthly_calls=0) as emu:
        emu.add_table("appXXXXXXXXXXXXXX", "고객", SIMPLE)
        table = AirtableTable(token=TOKEN, base="appXXXXXXXXXXXXXX", table="고객",
                              columns=["이메일"], http=HttpOptions(endpoint=emu.url))
        with pytest.raises(AirtableError) as caught:
            table.read()
    assert docs_example("before anything is sent:") == str(caught.value)


def test_check_warns_when_the_schedule_would_spend_the_monthly_calls(
        run_cli, vclock: VirtualClock, tmp_path: Path) -> None:
    with AirtableEmulator(tokens=[TOKEN], clock=vclock.now) as emu:
        folder = airtable_sample(tmp_path / "airtable", emu)
        result = run_cli(folder, "--now", DAY0, "--json", "check")
        found = [f for f in json.loads(result.out)["findings"] if f["where"] == "schedule"]
        assert len(found) == 1 and found[0]["level"] == "warning"
        assert "over the 1,000 calls a month of Airtable's Free plan" in found[0]["message"]
        config = folder / "config.toml"
        config.write_text(config.read_text(encoding="utf-8").replace(
            "[table]", "[table]\nmonthly_calls = 100000", 1), encoding="utf-8")
        result = run_cli(folder, "--now", DAY0, "--json", "check")
        assert not [f for f in json.loads(result.out)["findings"] if f["where"] == "schedule"]
