"""``sheetcrm sync`` and ``check`` on the shipped sample held in Airtable: the same
sends, writes and holds as on the CSV backend, a second run that sends nothing, a
failed batch write finished by the next run, and what check reports.

The harness (the emulator on a virtual clock, the sample as an Airtable table) is
described in ``tests.support.airtable``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sheetcrm.table.airtable import MAX_RETRIES
from tests.support.airtable import (
    BASE,
    OWNED,
    TABLE,
    TOKEN,
    airtable_sample,
    max_per_second,
    sample_records,
)
from tests.support.clock import VirtualClock
from tests.support.emulators.airtable import AirtableEmulator
from tests.support.sample import DAY0, DAY0_SENDS, DAY2

# Every AirtableTable here paces on the virtual clock (the fixture is in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("virtual_time")


def sync_json(run_cli, folder: Path, now: str, expect: int = 0) -> dict:
    result = run_cli(folder, "--now", now, "--json", "sync")
    assert result.code == expect, result.out + result.err
    return json.loads(result.out) if expect == 0 else {"err": result.err}


def owned_cells(emu: AirtableEmulator) -> dict[str, dict[str, str]]:
    """What the owned fields show, per key (rows with a unique key only)."""
    records = emu.records(BASE, TABLE)
    keys = [r["fields"].get("이메일", "") for r in records]
    return {key: {c: r["fields"].get(c, "") for c in OWNED}
            for key, r in zip(keys, records, strict=True) if key and keys.count(key) == 1}


def csv_owned_cells(folder: Path) -> dict[str, dict[str, str]]:
    import csv
    import io

    text = (folder / "sample_sheets" / "customers.csv").read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    keys = [row[1] for row in rows[1:]]
    out = {}
    for key, row in zip(keys, rows[1:], strict=True):
        if key and keys.count(key) == 1:
            cells = dict(zip(header, row + [""] * (len(header) - len(row)), strict=True))
            out[key] = {c: cells.get(c, "") for c in OWNED}
    return out


def outcome(data: dict) -> tuple[set, set, set]:
    return ({(s["key"], s["flow"], s["step"], s["result"]) for s in data["sends"]},
            {(w["key"], w["column"], w["value"]) for w in data["writes"]},
            {(h["key"], h["flow"], h["reason"]) for h in data["held"]})


def test_sample_types_are_airtable_like() -> None:
    types, records = sample_records()
    assert types["링크 클릭"] == types["후기 작성"] == types["수신 동의"] == "checkbox"
    assert types["결제 금액"] == "currency" and types["최근 접속"] == "dateTime"
    assert types["결제 여부"] == "singleLineText"  # a '몰라' keeps it text, as on import
    kim = records[0]
    assert kim["링크 클릭"] is True and kim["후기 작성"] is False and kim["결제 금액"] is None


def test_sample_sync_on_airtable_does_what_the_csv_sync_does(
        sample: Path, run_cli, emu: AirtableEmulator, tmp_path: Path) -> None:
    folder = airtable_sample(tmp_path / "airtable", emu)
    expected = sync_json(run_cli, sample, DAY0)
    data = sync_json(run_cli, folder, DAY0)

    assert outcome(data) == outcome(expected)
    assert data["summary"]["rows_read"] == 26
    assert data["summary"]["sent"] == len(DAY0_SENDS)
    assert data["summary"]["row_errors"] == 6
    assert len(list((folder / "outbox").glob("*.eml"))) == len(DAY0_SENDS)
    assert owned_cells(emu) == csv_owned_cells(sample)
    by_key = emu.by(BASE, TABLE, "이메일")
    assert by_key["soohyun.kim@example.com"]["상태 태그"] == "결제 대기, 결제 유도"
    assert by_key["soohyun.kim@example.com"]["자동화 흐름"].startswith("payment 1/3")
    assert by_key["yuna.shin@example.com"]["오류"].startswith(
        "신청일: '2026-02-30' is not a date")
    # Input fields are untouched: the unchecked boxes are still absent, numbers numbers.
    assert "후기 작성" not in by_key["soohyun.kim@example.com"]
    assert by_key["jihoon.lee@example.com"]["결제 금액"] == 149000

    # Requests: one page to read; one page of keys and a PATCH per 10 records to write.
    cells = data["summary"]["cells_written"]
    patches = emu.requests_where("PATCH")
    assert [c.method for c in emu.requests[:2]] == ["GET", "GET"]
    assert len(emu.requests) == 2 + len(patches)
    assert sum(c.records_sent for c in patches) == len({w[0] for w in outcome(data)[1]})
    assert all(c.records_sent <= 10 and c.json()["typecast"] is True for c in patches)
    assert sum(len(r["fields"]) for c in patches for r in c.json()["records"]) == cells
    assert max_per_second(emu.requests) <= 5


def test_second_sync_sends_and_writes_nothing_then_steps_follow(
        sample: Path, run_cli, emu: AirtableEmulator, tmp_path: Path,
        vclock: VirtualClock) -> None:
    folder = airtable_sample(tmp_path / "airtable", emu)
    sync_json(run_cli, folder, DAY0)
    outbox = sorted(p.name for p in (folder / "outbox").glob("*.eml"))
    before = len(emu.requests)
    vclock.sleep(300)  # the runs are five minutes apart, each with a table of its own

    again = sync_json(run_cli, folder, "2026-11-23T10:05")
    assert again["sends"] == [] and again["summary"]["cells_written"] == 0
    assert [c.method for c in emu.requests[before:]] == ["GET"]  # read; nothing to write
    assert sorted(p.name for p in (folder / "outbox").glob("*.eml")) == outbox

    sync_json(run_cli, sample, DAY0)
    expected = sync_json(run_cli, sample, DAY2)
    later = sync_json(run_cli, folder, DAY2)
    assert outcome(later) == outcome(expected)
    assert any(h[2].startswith("no consent") for h in outcome(later)[2])
    assert owned_cells(emu) == csv_owned_cells(sample)


def test_failure_in_the_middle_of_a_batch_write_is_finished_by_the_next_run(
        sample: Path, run_cli, emu: AirtableEmulator, tmp_path: Path) -> None:
    folder = airtable_sample(tmp_path / "airtable", emu)
    # The second PATCH fails for good: 503 on every retry.
    emu.fail(503, method="PATCH", skip=1, times=MAX_RETRIES + 1)
    failed = sync_json(run_cli, folder, DAY0, expect=3)["err"]
    assert "kept answering 503" in failed
    assert "10 of " in failed and "records were written before this" in failed
    assert TOKEN not in failed
    # The sends happened.
    assert len(list((folder / "outbox").glob("*.eml"))) == len(DAY0_SENDS)
    patched = [c for c in emu.requests_where("PATCH")]
    assert [c.status for c in patched] == [200] + [503] * (MAX_RETRIES + 1)
    assert sum(1 for cells in owned_cells(emu).values() if cells["상태 태그"]) >= 1

    done = sync_json(run_cli, folder, "2026-11-23T10:01")
    assert done["sends"] == []  # the ledger knows what was sent
    assert len(list((folder / "outbox").glob("*.eml"))) == len(DAY0_SENDS)
    sync_json(run_cli, sample, DAY0)
    assert owned_cells(emu) == csv_owned_cells(sample)


def test_missing_owned_field_stops_before_anything_is_sent(
        run_cli, emu: AirtableEmulator, tmp_path: Path) -> None:
    folder = airtable_sample(tmp_path / "airtable", emu, drop=("최근 발송", "오류"))
    result = run_cli(folder, "--now", DAY0, "sync")
    assert result.code == 3
    assert "'최근 발송' (single line text), '오류' (long text)" in result.err
    assert "cannot create fields" in result.err
    assert not (folder / "outbox").exists()

    check = run_cli(folder, "--now", DAY0, "--json", "check")
    assert check.code == 1
    findings = json.loads(check.out)["findings"]
    assert any(f["where"] == "table" and "'오류' (long text)" in f["message"] for f in findings)


def test_check_reports_bad_token_without_printing_it(
        run_cli, emu: AirtableEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = airtable_sample(tmp_path / "airtable", emu)
    monkeypatch.setenv("AIRTABLE_TOKEN", "patWrongToken.secretvalue")
    result = run_cli(folder, "--now", DAY0, "--json", "check")
    assert result.code == 1
    findings = json.loads(result.out)["findings"]
    table = [f["message"] for f in findings if f["where"] == "table"]
    assert table and "401 AUTHENTICATION_REQUIRED" in table[0] and "AIRTABLE_TOKEN" in table[0]
    assert "secretvalue" not in result.out + result.err
    assert emu.requests_where(status=401)


def test_check_reports_missing_fields_and_duplicate_keys(
        run_cli, emu: AirtableEmulator, tmp_path: Path) -> None:
    folder = airtable_sample(tmp_path / "airtable", emu, drop=("연락처",))
    result = run_cli(folder, "--now", DAY0, "--json", "check")
    findings = json.loads(result.out)["findings"]
    assert any(f["where"] == "header" and "'연락처' (field 'phone')" in f["message"]
               for f in findings)

    emu.table(BASE, TABLE).fields["연락처"] = "phoneNumber"
    result = run_cli(folder, "--now", DAY0, "--json", "check")
    messages = [f["message"] for f in json.loads(result.out)["findings"]]
    assert sum("gayoung.moon@example.com' appears on 2 rows" in m for m in messages) == 2
