"""The operator's data is never taken over (invariant 8): a writeback column that holds
values sheetcrm did not write is refused until the operator says so, and the columns
sheetcrm made its own are remembered in the ledger."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.support.sample import CSV, DAY0, DAY0_SENDS, DAY0_SPACED, rows_by_key, tree_digest


def point_error_column_at(folder: Path, column: str, adopt: str = "") -> None:
    config = folder / "config.toml"
    text = config.read_text(encoding="utf-8").replace('error = "오류"', f'error = "{column}"')
    if adopt:
        text = text.replace('[writeback]', f'[writeback]\nadopt = {adopt}', 1)
    config.write_text(text, encoding="utf-8")


def owned_columns(folder: Path) -> dict[str, str]:
    with sqlite3.connect(folder / ".sheetcrm" / "state.db") as db:
        return dict(db.execute("SELECT name, origin FROM owned_columns").fetchall())


def test_a_column_holding_the_operators_notes_is_refused_by_check_plan_and_sync(
        sample: Path, run_cli) -> None:
    # The sample's 메모 column holds the operator's notes ("카톡 문의 있었음", ...).
    point_error_column_at(sample, "메모")
    before = tree_digest(sample)

    check = run_cli(sample, "--now", DAY0, "check")
    assert check.code == 1
    assert "'메모' already holds values sheetcrm did not write" in check.out
    assert 'adopt = ["메모"]' in check.out

    for command in ("plan", "sync"):
        result = run_cli(sample, "--now", DAY0, command)
        assert result.code == 2, result.out
        assert "writeback.error: column '메모' already holds values" in result.err
        assert 'adopt = ["메모"]' in result.err and "Traceback" not in result.err
    after = tree_digest(sample)
    assert {k: v for k, v in after.items() if not k.startswith(".sheetcrm")} == before
    assert not (sample / "outbox").exists()


def test_adopt_lets_sheetcrm_take_the_column_over(sample: Path, run_cli) -> None:
    point_error_column_at(sample, "메모", adopt='["메모"]')
    result = run_cli(sample, "--now", DAY0, "--json", "sync")
    assert result.code == 0, result.err
    _, rows = rows_by_key(sample)
    assert rows["soohyun.kim@example.com"]["메모"] == ""  # the note is gone: adopted
    assert rows["yuna.shin@example.com"]["메모"].startswith("신청일: '2026-02-30'")
    assert owned_columns(sample)["메모"] == "adopted"


def test_columns_sheetcrm_created_or_found_empty_are_remembered(sample: Path, run_cli) -> None:
    assert run_cli(sample, "--now", DAY0, "sync").code == 0
    assert owned_columns(sample) == {"상태 태그": "empty", "자동화 흐름": "empty",
                                     "최근 발송": "created", "오류": "created"}
    # From then on the columns are sheetcrm's: an edit there is overwritten as usual.
    path = sample / CSV
    text = path.read_bytes().decode("utf-8-sig")
    path.write_bytes(b"\xef\xbb\xbf" + text.replace(
        "카톡 문의 있었음,결제 대기, 결제 유도", "카톡 문의 있었음,손으로 쓴 태그", 1).encode())
    assert run_cli(sample, "--now", "2026-11-23T11:00", "sync").code == 0
    assert rows_by_key(sample)[1]["soohyun.kim@example.com"]["상태 태그"] == "결제 대기, 결제 유도"


def test_a_lost_ledger_recognises_sheetcrms_own_cells(sample: Path, run_cli) -> None:
    assert run_cli(sample, "--now", DAY0, "sync").code == 0
    (sample / ".sheetcrm" / "state.db").unlink()
    result = run_cli(sample, "--now", "2026-11-23T10:30", "--json", "sync")
    assert result.code == 0, result.err
    # Restored from the sheet, nothing re-sent: what goes now is only what min_gap held
    # back on DAY0 and was never sent (the lost ledger no longer knows the hour is not up).
    sends = {(s["key"], s["flow"]) for s in json.loads(result.out)["sends"]}
    assert sends and sends <= DAY0_SPACED and not sends & DAY0_SENDS
    assert set(owned_columns(sample).values()) == {"recognised"}


def test_a_row_deleted_while_the_run_sends_is_reported_not_dropped_silently(
        sample: Path, run_cli, monkeypatch) -> None:
    from sheetcrm.table.csv import CsvTable

    real_write = CsvTable.write

    def operator_deletes_a_row_first(self, key_column, updates):  # type: ignore[no-untyped-def]
        path = sample / CSV
        lines = path.read_bytes().split(b"\r\n")
        path.write_bytes(b"\r\n".join(line for line in lines
                                      if b"soohyun.kim@example.com" not in line))
        return real_write(self, key_column, updates)

    monkeypatch.setattr(CsvTable, "write", operator_deletes_a_row_first)
    result = run_cli(sample, "--now", DAY0, "sync")
    assert result.code == 0
    assert "not written: 1 row(s) whose key vanished from the sheet during the run" in result.out
    with sqlite3.connect(sample / ".sheetcrm" / "state.db") as db:
        (details,) = db.execute("SELECT summary FROM runs ORDER BY id LIMIT 1").fetchone()
    assert json.loads(details)["keys_missing_sample"] == ["soohyun.kim@example.com"]
