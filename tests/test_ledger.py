"""The ledger file: migration from older versions, read-only opens that change nothing,
and the questions operators ask it (sends to look at, conversion)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sheetcrm.fsutil import StateFileError
from sheetcrm.ledger import SCHEMA_VERSION, GroupConversion, Ledger, VariantConversion
from sheetcrm.model import Enrollment, EnrollmentStatus, SendRecord, SendStatus

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
    import sheetcrm.ledger.runs as ledger_module

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
    with ledger.transaction() as db:  # the write-ahead log exists while a run writes
        db.execute("INSERT INTO meta VALUES ('probe', '1')")
        for journal in ("state.db-wal", "state.db-shm"):
            assert stat.S_IMODE(path.with_name(journal).stat().st_mode) == 0o600
    ledger.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_symlink_at_the_ledger_path_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.db"
    path = tmp_path / "state.db"
    path.symlink_to(elsewhere)
    with pytest.raises(StateFileError, match="state.db is a symbolic link"):
        Ledger.open(path)
    assert not elsewhere.exists()


def test_a_status_probe_that_found_no_run_in_progress_reads_running_as_interrupted(
        tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    now = datetime(2026, 3, 3, tzinfo=UTC)
    killed = Ledger.open(path)
    killed.finish_run(killed.start_run("sync", now), now, "ok", {})
    killed.start_run("sync", now)  # then the process is killed: never finished
    killed.close()
    ledger = Ledger.open_readonly(path)
    assert [r["status"] for r in ledger.last_runs()] == ["running", "ok"]
    assert [r["status"] for r in ledger.last_runs(none_in_progress=True)] == ["interrupted",
                                                                             "ok"]
    ledger.close()


T0 = datetime(2026, 3, 3, tzinfo=UTC)


def enroll(ledger: Ledger, key: str, flow: str = "payment", *, holdout: bool = False,
           status: EnrollmentStatus = EnrollmentStatus.ACTIVE) -> Enrollment:
    e = Enrollment(key=key, flow=flow, entry=1, entered_at=T0, anchor_at=None, status=status,
                   holdout=holdout)
    ledger.save_enrollments([e])
    return e


def send(ledger: Ledger, e: Enrollment, status: SendStatus, *, step: int = 0,
         variant: str | None = None, minutes: int = 0, detail: str = "") -> None:
    rec = SendRecord(idem_key=f"{e.key}-{e.flow}-{step}", key=e.key, flow=e.flow, entry=1,
                     step=step, channel="email", template=f"t{step}", kind="transactional",
                     status=SendStatus.PENDING, created_at=T0, variant=variant)
    assert ledger.claim_send(rec, run_id=1)
    if status is not SendStatus.PENDING:
        ledger.finish_send(rec.idem_key, status, T0 + timedelta(minutes=minutes), detail=detail)


def test_sends_needing_attention_are_counted_per_status_and_listed_latest_first(
        tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "state.db")
    for i, status in enumerate([SendStatus.SENT, SendStatus.FAILED, SendStatus.RETRY,
                                SendStatus.FAILED, SendStatus.PENDING]):
        send(ledger, enroll(ledger, f"c{i}@x.com"), status, minutes=i, detail=f"d{i}")
    attention = (SendStatus.PENDING, SendStatus.UNCERTAIN, SendStatus.RETRY, SendStatus.FAILED)
    assert ledger.count_sends(attention) == {SendStatus.PENDING: 1, SendStatus.UNCERTAIN: 0,
                                             SendStatus.RETRY: 1, SendStatus.FAILED: 2}
    latest = ledger.latest_sends(attention, limit=2)
    ledger.close()
    assert [(s.key, s.status, s.detail) for s in latest] == [("c3@x.com", "failed", "d3"),
                                                             ("c2@x.com", "retry", "d2")]
    assert (latest[0].flow, latest[0].step, latest[0].template) == ("payment", 0, "t0")


def test_conversion_is_counted_per_flow_group_and_per_variant_that_reached_a_customer(
        tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "state.db")
    converted = EnrollmentStatus.CONVERTED
    a = enroll(ledger, "a@x.com", status=converted)
    b = enroll(ledger, "b@x.com")
    c = enroll(ledger, "c@x.com", status=converted)
    enroll(ledger, "h1@x.com", holdout=True, status=converted)
    enroll(ledger, "h2@x.com", holdout=True)
    enroll(ledger, "r@x.com", flow="reviews")
    send(ledger, a, SendStatus.SENT, step=1, variant="short")
    send(ledger, b, SendStatus.UNCERTAIN, step=1, variant="short")  # may have reached b
    send(ledger, c, SendStatus.SENT, step=1, variant="long")
    send(ledger, enroll(ledger, "f@x.com", status=converted), SendStatus.FAILED, step=1,
         variant="long")  # never reached f: not counted
    assert ledger.conversion_by_group() == [
        GroupConversion("payment", False, 4, 3), GroupConversion("payment", True, 2, 1),
        GroupConversion("reviews", False, 1, 0)]
    assert ledger.conversion_by_variant() == [VariantConversion("payment", 1, "long", 1, 1),
                                              VariantConversion("payment", 1, "short", 2, 1)]
    ledger.close()


def test_an_enrollment_saved_with_every_field_set_loads_back_the_same(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "state.db")
    e = Enrollment(key="a@x.com", flow="payment", entry=2, entered_at=T0,
                   anchor_at=T0 - timedelta(days=3), next_step=1,
                   status=EnrollmentStatus.CONVERTED, exited_at=T0 + timedelta(hours=5),
                   exit_reason="goal met", holdout=True, via="handoff")
    ledger.save_enrollments([e])
    loaded = ledger.load_state().enrollments[("a@x.com", "payment")]
    ledger.close()
    assert loaded == e and loaded.id is not None
