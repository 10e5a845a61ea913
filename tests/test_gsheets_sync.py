"""``sheetcrm sync``, ``check`` and ``plan`` on a Google sheet, end to end.

The sample scenario runs twice: on the CSV backend (the reference) and on a Google
sheet holding the same rows. Every send, count and owned cell must agree, so these
tests hold whatever the shipped rules say.

The harness is described in ``tests.support.gsheets``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.emulators.sheets import SheetsEmulator
from tests.support.gsheets import KEY, SHEET, Account, column, config
from tests.support.sample import DAY0, copy_sample, shipped_sample_csv

# Tests here must not reach past 127.0.0.1; tables built from a config retry on the
# virtual clock (both fixtures are in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("loopback_only", "fast_retries")


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
