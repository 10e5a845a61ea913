"""The ledger file: migration from older versions, and read-only opens that change nothing."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sheetcrm.fsutil import StateFileError
from sheetcrm.ledger import SCHEMA_VERSION, Ledger

# The version-1 schema, as the first release wrote it.
V1 = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE enrollments (id INTEGER PRIMARY KEY, key TEXT NOT NULL, flow TEXT NOT NULL,
    entry INTEGER NOT NULL, entered_at TEXT NOT NULL, anchor_at TEXT,
    next_step INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL, exited_at TEXT,
    exit_reason TEXT, UNIQUE (key, flow, entry));
CREATE TABLE sends (idem_key TEXT PRIMARY KEY, key TEXT NOT NULL, flow TEXT NOT NULL,
    entry INTEGER NOT NULL, step INTEGER NOT NULL, channel TEXT NOT NULL,
    template TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1, created_at TEXT NOT NULL, finished_at TEXT,
    message_id TEXT, detail TEXT, run_id INTEGER);
CREATE TABLE runs (id INTEGER PRIMARY KEY, command TEXT NOT NULL, started_at TEXT NOT NULL,
    finished_at TEXT, status TEXT NOT NULL, summary TEXT);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO enrollments VALUES (1, 'a@x.com', 'payment', 1, '2026-03-02T01:00:00+00:00',
    NULL, 1, 'active', NULL, NULL);
INSERT INTO sends VALUES ('sc-payment-e1-s1-x', 'a@x.com', 'payment', 1, 0, 'email', 'p1',
    'transactional', 'sent', 1, '2026-03-02T01:00:00+00:00', '2026-03-02T01:00:00+00:00',
    '<m@x>', '', 1);
"""


def old_ledger(tmp_path: Path) -> Path:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:
        db.executescript(V1)
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_read_only_open_of_an_old_ledger_upgrades_a_copy_not_the_file(tmp_path: Path) -> None:
    path = old_ledger(tmp_path)
    before = digest(path)
    ledger = Ledger.open_readonly(path)
    state = ledger.load_state()
    ledger.close()
    e = state.enrollments[("a@x.com", "payment")]
    assert (e.next_step, e.holdout, e.via) == (1, False, "trigger")
    assert "sc-payment-e1-s1-x" in state.sent_keys
    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.db"]


def test_opening_for_a_run_migrates_the_file_in_place(tmp_path: Path) -> None:
    path = old_ledger(tmp_path)
    ledger = Ledger.open(path)
    state = ledger.load_state()
    ledger.start_run("sync", datetime(2026, 3, 3, tzinfo=UTC))
    ledger.close()
    assert state.sends_by_key["a@x.com"][0].variant is None
    with sqlite3.connect(path) as db:
        version = db.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
        columns = {r[1] for r in db.execute("PRAGMA table_info(enrollments)")}
    assert version == (str(SCHEMA_VERSION),)
    assert {"holdout", "via"} <= columns


def test_read_only_open_of_a_missing_ledger_creates_nothing(tmp_path: Path) -> None:
    ledger = Ledger.open_readonly(tmp_path / ".sheetcrm" / "state.db")
    assert ledger.load_state().enrollments == {}
    ledger.close()
    assert list(tmp_path.iterdir()) == []


def test_run_history_is_bounded(tmp_path: Path, monkeypatch) -> None:
    import sheetcrm.ledger as ledger_module

    monkeypatch.setattr(ledger_module, "RUNS_KEPT", 5)
    ledger = Ledger.open(tmp_path / "state.db")
    now = datetime(2026, 3, 3, tzinfo=UTC)
    for _ in range(12):
        ledger.finish_run(ledger.start_run("sync", now), now, "ok", {})
    runs = ledger.last_runs(limit=100)
    ledger.close()
    assert [r["id"] for r in runs] == [12, 11, 10, 9, 8]


def test_starting_a_run_marks_runs_left_running_as_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    now = datetime(2026, 3, 3, tzinfo=UTC)
    killed = Ledger.open(path)
    killed.finish_run(killed.start_run("sync", now), now, "ok", {})
    killed.start_run("sync", now)  # then the process is killed: never finished
    killed.close()
    assert [r["status"] for r in Ledger.open_readonly(path).last_runs()] == ["running", "ok"]

    ledger = Ledger.open(path)
    ledger.start_run("sync", now)  # the next run, under the run lock
    assert [r["status"] for r in ledger.last_runs()] == ["running", "interrupted", "ok"]
    ledger.close()


def test_stalled_runs_count_from_the_first_run_after_the_last_ok_one(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "state.db")
    start = datetime(2026, 3, 3, tzinfo=UTC)

    def run(minutes: int, status: str, summary: dict | None = None) -> None:
        at = start + timedelta(minutes=minutes)
        ledger.finish_run(ledger.start_run("sync", at), at, status, summary or {})

    assert ledger.stalled_runs() is None  # no runs yet
    run(0, "ok")
    assert ledger.stalled_runs() is None
    run(5, "failed", {"error": "sheet unreachable"})
    run(10, "channel_down", {"channels_down": {"email": "login refused"}})
    ledger.start_run("sync", start + timedelta(minutes=15))  # killed: passed over
    run(20, "sending_stopped", {"sending_stopped": "blast-radius stop: 300 sends due"})
    assert ledger.stalled_runs() == {
        "since": "2026-03-03T00:05:00+00:00", "runs": 3, "status": "sending_stopped",
        "summary": {"sending_stopped": "blast-radius stop: 300 sends due"}}
    run(25, "ok")
    assert ledger.stalled_runs() is None
    ledger.close()


@pytest.fixture
def no_umask():
    old = os.umask(0)
    yield
    os.umask(old)


def test_a_new_ledger_and_its_journal_are_0600_whatever_the_umask(tmp_path: Path,
                                                                  no_umask) -> None:
    path = tmp_path / ".sheetcrm" / "state.db"
    ledger = Ledger.open(path)
    with ledger.transaction() as db:  # the rollback journal exists while writing
        db.execute("INSERT INTO meta VALUES ('probe', '1')")
        journal = path.with_name("state.db-journal")
        assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    ledger.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_symlink_at_the_ledger_path_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.db"
    path = tmp_path / "state.db"
    path.symlink_to(elsewhere)
    with pytest.raises(StateFileError, match="state.db is a symbolic link"):
        Ledger.open(path)
    assert not elsewhere.exists()
