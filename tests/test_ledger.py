"""The ledger file: migration from older versions, and read-only opens that change nothing."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

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
