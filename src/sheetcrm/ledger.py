"""The state ledger: a SQLite file next to the config.

It is the source of truth for flow state, sends and run history; the sheet only
shows a projection of it. A send is recorded as ``pending`` (and committed) before
the message leaves and marked after, under a unique idempotency key, so no crash
point can make the same step reach the same customer twice.

Rollback-journal mode (not WAL) so that a read-only open, as ``plan`` does, never
creates or changes a file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sheetcrm.errors import ExitStatus, SheetcrmError
from sheetcrm.fsutil import open_private
from sheetcrm.model import (
    SETTLED,
    Enrollment,
    EnrollmentStatus,
    LedgerState,
    SendRecord,
    SendStatus,
)

SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS enrollments (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL,
    flow        TEXT NOT NULL,
    entry       INTEGER NOT NULL,          -- 1 for the first entry, 2 after a re-entry ...
    entered_at  TEXT NOT NULL,
    anchor_at   TEXT,                      -- step offsets count from here
    next_step   INTEGER NOT NULL DEFAULT 0,
    status      TEXT NOT NULL,             -- active | converted | left | finished | failed
    exited_at   TEXT,
    exit_reason TEXT,
    holdout     INTEGER NOT NULL DEFAULT 0, -- control group: tracked, never messaged
    via         TEXT NOT NULL DEFAULT 'trigger', -- trigger | handoff | sheet
    UNIQUE (key, flow, entry)
);
CREATE TABLE IF NOT EXISTS sends (
    idem_key    TEXT PRIMARY KEY,          -- key + flow + entry + step
    key         TEXT NOT NULL,
    flow        TEXT NOT NULL,
    entry       INTEGER NOT NULL,
    step        INTEGER NOT NULL,
    channel     TEXT NOT NULL,
    template    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,             -- pending | sent | retry | failed | uncertain | skipped
    variant     TEXT,                      -- A/B variant, when the step has variants
    attempts    INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    finished_at TEXT,
    message_id  TEXT,
    detail      TEXT,
    run_id      INTEGER
);
CREATE INDEX IF NOT EXISTS sends_by_key ON sends (key);
CREATE INDEX IF NOT EXISTS enrollments_by_key ON enrollments (key, flow);
-- The sheet columns sheetcrm writes and how each became its own: created (appended
-- by sheetcrm), empty (blank when first written), adopted (the operator's say-so in
-- [writeback] adopt) or recognised (every cell already in sheetcrm's own format).
CREATE TABLE IF NOT EXISTS owned_columns (
    name        TEXT PRIMARY KEY,
    origin      TEXT NOT NULL,
    since       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY,
    command     TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL,             -- running | ok | channel_down | sending_stopped |
                                           -- failed | interrupted (killed while running)
    summary     TEXT
);
"""

RUNS_KEPT = 2000  # run history: about a week of 5-minute daemon ticks
RUN_OK, RUN_RUNNING, RUN_INTERRUPTED = "ok", "running", "interrupted"

# Columns added after version 1: (table, column, definition).
_MIGRATIONS = [
    ("enrollments", "holdout", "INTEGER NOT NULL DEFAULT 0"),
    ("enrollments", "via", "TEXT NOT NULL DEFAULT 'trigger'"),
    ("sends", "variant", "TEXT"),
]


def iso(dt: datetime) -> str:
    """Timestamps are stored as UTC ISO strings."""
    return dt.astimezone(UTC).isoformat(timespec="seconds")


def from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class LedgerError(SheetcrmError):
    exit_code = ExitStatus.BACKEND


def _send_record(r: tuple[Any, ...], parse: Any) -> SendRecord:
    """A row of ``SELECT idem_key, key, flow, entry, step, channel, template, kind,
    status, created_at, finished_at, variant FROM sends``."""
    return SendRecord(idem_key=r[0], key=r[1], flow=r[2], entry=r[3], step=r[4], channel=r[5],
                      template=r[6], kind=r[7], status=SendStatus(r[8]), created_at=parse(r[9]),
                      finished_at=parse(r[10]), variant=r[11])


def _schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
    return int(row[0]) if row else 1


def _upgraded_copy(conn: sqlite3.Connection) -> sqlite3.Connection:
    """A ledger from an older version, read-only: upgrade a copy in memory, not the file.

    ``plan`` after an upgrade must work before the first ``sync`` migrates the file.
    """
    memory = sqlite3.connect(":memory:", isolation_level=None)
    conn.backup(memory)
    conn.close()
    _migrate(memory)
    return memory


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a ledger written by an older version up to this schema, in place."""
    conn.executescript(_SCHEMA)  # tables added since (CREATE ... IF NOT EXISTS)
    for table, column, definition in _MIGRATIONS:
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                 (str(SCHEMA_VERSION),))


class Ledger:
    """Read and write the state file. One instance per process and run."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None, readonly: bool) -> None:
        self.conn = conn
        self.path = path
        self.readonly = readonly

    # -- opening ---------------------------------------------------------------

    @classmethod
    def open(cls, path: Path) -> Ledger:
        """Open (creating if needed) for a run that changes state.

        The file is created 0600 whatever the umask, and SQLite gives its journal the
        same mode; a symbolic link at ``path`` is refused (StateFileError).
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(open_private(path, os.O_RDWR))
        except OSError as exc:
            raise LedgerError(f"state file {path}: {exc.strerror or exc}") from None
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=30)
            conn.execute("PRAGMA journal_mode=DELETE")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            _migrate(conn)
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"state file {path}: {exc}") from None
        return cls(conn, path, readonly=False)

    @classmethod
    def open_readonly(cls, path: Path) -> Ledger:
        """Open without changing anything; a missing file reads as an empty ledger."""
        if path.exists():
            try:
                conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                       isolation_level=None, timeout=30)
                conn.execute("SELECT 1 FROM sends LIMIT 1")
                if _schema_version(conn) < SCHEMA_VERSION:
                    conn = _upgraded_copy(conn)
            except sqlite3.DatabaseError as exc:
                raise LedgerError(f"state file {path}: {exc}") from None
            return cls(conn, path, readonly=True)
        conn = sqlite3.connect(":memory:", isolation_level=None)
        conn.executescript(_SCHEMA)
        return cls(conn, None, readonly=True)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- reading ---------------------------------------------------------------

    def load_state(self, renames: dict[str, str] | None = None) -> LedgerState:
        """Everything the planner needs. ``renames`` maps an old flow name to its new one
        (``renamed_from``), so a read-only plan sees a rename not yet saved."""
        state = LedgerState()
        renamed = renames or {}
        # Timestamps repeat (everyone who entered in one run shares one): parse once.
        parsed: dict[str, datetime] = {}

        def from_iso(text: str | None) -> datetime | None:
            if not text:
                return None
            value = parsed.get(text)
            if value is None:
                value = parsed[text] = datetime.fromisoformat(text)
            return value

        rows = self.conn.execute(
            "SELECT id, key, flow, entry, entered_at, anchor_at, next_step, status,"
            " exited_at, exit_reason, holdout, via FROM enrollments ORDER BY key, flow, entry"
        )
        # SQLite hands back a new string per row: share the few distinct flow names,
        # statuses and reasons instead of keeping 100k copies of each.
        word = sys.intern
        native: set[tuple[str, str]] = set()  # (key, flow) recorded under its own name
        for r in rows:  # ordered by entry, so the latest one wins
            flow = word(renamed.get(r[2], r[2]))
            if flow == r[2]:
                native.add((r[1], flow))
            elif (r[1], flow) in native:
                continue  # the new flow already has this customer: it wins
            state.enrollments[(r[1], flow)] = Enrollment(
                id=r[0], key=r[1], flow=flow, entry=r[3], entered_at=from_iso(r[4]),  # type: ignore[arg-type]
                anchor_at=from_iso(r[5]), next_step=r[6], status=EnrollmentStatus(r[7]),
                exited_at=from_iso(r[8]), exit_reason=r[9] and word(r[9]),
                holdout=bool(r[10]), via=word(r[11]),
            )
        rows = self.conn.execute(
            "SELECT idem_key, key, flow, entry, step, channel, template, kind, status,"
            " created_at, finished_at, variant FROM sends"
        )
        for r in rows:
            rec = _send_record(r, from_iso)
            if rec.flow in renamed:
                rec.flow = renamed[rec.flow]
            state.sends_by_key[rec.key].append(rec)
            if rec.status in SETTLED:
                state.sent_keys.add(rec.idem_key)
        state.owned_columns = dict(
            self.conn.execute("SELECT name, origin FROM owned_columns").fetchall())
        row = self.conn.execute("SELECT value FROM meta WHERE name = 'config_flows'").fetchone()
        state.config_flows = json.loads(row[0]) if row else None
        return state

    def pending_sends(self) -> list[SendRecord]:
        rows = self.conn.execute(
            "SELECT idem_key, key, flow, entry, step, channel, template, kind, status,"
            " created_at, finished_at, variant FROM sends WHERE status = ?", (SendStatus.PENDING,)
        )
        return [_send_record(r, from_iso) for r in rows]

    def last_runs(self, limit: int = 10) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, command, started_at, finished_at, status, summary FROM runs"
            " ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [
            {"id": r[0], "command": r[1], "started_at": r[2], "finished_at": r[3],
             "status": r[4], "summary": json.loads(r[5]) if r[5] else None}
            for r in rows
        ]

    def stalled_runs(self) -> dict[str, Any] | None:
        """The finished runs since the last ``ok`` one, if any: sending has stalled.

        ``since`` is when the first of them started, ``runs`` how many there are,
        ``status`` and ``summary`` the latest one's. Runs still marked running or
        interrupted say nothing about sending and are passed over.
        """
        since_ok = ("id > COALESCE((SELECT MAX(id) FROM runs WHERE status = ?), 0)"
                    " AND status NOT IN (?, ?, ?)")
        marks = (RUN_OK, RUN_OK, RUN_RUNNING, RUN_INTERRUPTED)
        first, last, count = self.conn.execute(
            f"SELECT MIN(id), MAX(id), COUNT(*) FROM runs WHERE {since_ok}", marks,
        ).fetchone()
        if not count:
            return None
        (since,) = self.conn.execute("SELECT started_at FROM runs WHERE id = ?",
                                     (first,)).fetchone()
        status, summary = self.conn.execute("SELECT status, summary FROM runs WHERE id = ?",
                                            (last,)).fetchone()
        return {"since": since, "runs": count, "status": status,
                "summary": json.loads(summary) if summary else {}}

    # -- writing ---------------------------------------------------------------

    def start_run(self, command: str, now: datetime) -> int:
        """Record that a run begins. Called under the run lock.

        Holding the lock, no other run can be in progress: a run still marked
        ``running`` was killed mid-way (SIGKILL, a power cut) and is marked
        ``interrupted``.
        """
        self.conn.execute("UPDATE runs SET status = ? WHERE status = ?",
                          (RUN_INTERRUPTED, RUN_RUNNING))
        cur = self.conn.execute(
            "INSERT INTO runs (command, started_at, status) VALUES (?, ?, ?)",
            (command, iso(now), RUN_RUNNING),
        )
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, now: datetime, status: str, summary: dict[str, Any]) -> None:
        """Record how a run ended; keep the last ``RUNS_KEPT`` runs (a daemon runs often)."""
        self.conn.execute(
            "UPDATE runs SET finished_at = ?, status = ?, summary = ? WHERE id = ?",
            (iso(now), status, json.dumps(summary, ensure_ascii=False), run_id),
        )
        self.conn.execute("DELETE FROM runs WHERE id <= ?", (run_id - RUNS_KEPT,))

    def save_enrollments(self, enrollments: Iterable[Enrollment]) -> None:
        """Insert new enrollments and update changed ones, in one transaction."""
        with self.transaction() as db:
            for e in enrollments:
                values = (iso(e.entered_at), e.anchor_at and iso(e.anchor_at), e.next_step,
                          e.status, e.exited_at and iso(e.exited_at), e.exit_reason)
                if e.id is None:
                    cur = db.execute(
                        "INSERT INTO enrollments (key, flow, entry, entered_at, anchor_at,"
                        " next_step, status, exited_at, exit_reason, holdout, via)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (e.key, e.flow, e.entry, *values, int(e.holdout), e.via),
                    )
                    e.id = cur.lastrowid
                else:
                    db.execute(
                        "UPDATE enrollments SET entered_at = ?, anchor_at = ?, next_step = ?,"
                        " status = ?, exited_at = ?, exit_reason = ? WHERE id = ?",
                        (*values, e.id),
                    )

    def claim_send(self, rec: SendRecord, run_id: int) -> bool:
        """Record the intent to send, durably, before the message leaves.

        Returns False when this idempotency key was already claimed (sent, in
        flight in a crashed run, or failed for good): the caller must not send.
        A send that failed with a retryable error may be claimed again.
        """
        with self.transaction() as db:
            row = db.execute("SELECT status FROM sends WHERE idem_key = ?",
                             (rec.idem_key,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO sends (idem_key, key, flow, entry, step, channel, template,"
                    " kind, status, created_at, run_id, variant)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (rec.idem_key, rec.key, rec.flow, rec.entry, rec.step, rec.channel,
                     rec.template, rec.kind, SendStatus.PENDING, iso(rec.created_at), run_id,
                     rec.variant),
                )
                return True
            if row[0] == SendStatus.RETRY:
                db.execute(
                    "UPDATE sends SET status = ?, attempts = attempts + 1, run_id = ?"
                    " WHERE idem_key = ?", (SendStatus.PENDING, run_id, rec.idem_key),
                )
                return True
            return False

    def finish_send(
        self,
        idem_key: str,
        status: str,
        now: datetime,
        *,
        enrollment: Enrollment | None = None,
        message_id: str | None = None,
        detail: str = "",
    ) -> None:
        """Mark a claimed send and move its enrollment on, atomically."""
        with self.transaction() as db:
            db.execute(
                "UPDATE sends SET status = ?, finished_at = ?, message_id = ?, detail = ?"
                " WHERE idem_key = ?",
                (status, iso(now), message_id, detail[:500], idem_key),
            )
            if enrollment is not None and enrollment.id is not None:
                db.execute(
                    "UPDATE enrollments SET next_step = ?, status = ?, exited_at = ?,"
                    " exit_reason = ? WHERE id = ?",
                    (enrollment.next_step, enrollment.status,
                     enrollment.exited_at and iso(enrollment.exited_at),
                     enrollment.exit_reason, enrollment.id),
                )

    def record_skip(self, rec: SendRecord, run_id: int, reason: str,
                    enrollment: Enrollment) -> None:
        """A step passed over for good (no consent, opted out): never sent later."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO sends (idem_key, key, flow, entry, step, channel,"
                " template, kind, status, created_at, finished_at, run_id, variant, detail)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (rec.idem_key, rec.key, rec.flow, rec.entry, rec.step, rec.channel,
                 rec.template, rec.kind, SendStatus.SKIPPED, iso(rec.created_at),
                 iso(rec.created_at),
                 run_id, rec.variant, reason[:500]),
            )
            db.execute(
                "UPDATE enrollments SET next_step = ?, status = ?, exited_at = ?,"
                " exit_reason = ? WHERE id = ?",
                (enrollment.next_step, enrollment.status,
                 enrollment.exited_at and iso(enrollment.exited_at), enrollment.exit_reason,
                 enrollment.id),
            )

    def remember_columns(self, origins: dict[str, str], now: datetime) -> None:
        """Record the writeback columns sheetcrm has made its own (kept once recorded)."""
        with self.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO owned_columns VALUES (?, ?, ?)",
                           [(name, origin, iso(now)) for name, origin in origins.items()])

    def record_flows(self, flows: list[str], retired: list[str], now: datetime) -> None:
        """Remember the config's flows; customers still in a retired flow leave it."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('config_flows', ?)",
                       (json.dumps(flows, ensure_ascii=False),))
            db.executemany(
                "UPDATE enrollments SET status = 'left', exited_at = ?, exit_reason ="
                " 'flow removed from the config' WHERE flow = ? AND status = ?",
                [(iso(now), flow, EnrollmentStatus.ACTIVE) for flow in retired])

    def rename_flows(self, renames: dict[str, str]) -> None:
        """Carry the customers of each old flow name over to its new name, for good.

        A customer the new flow already has keeps that enrollment; sends keep their
        idempotency keys (so nothing already sent can be sent again) and take the new
        name for reports.
        """
        with self.transaction() as db:
            for old, new in renames.items():
                db.execute(
                    "UPDATE enrollments SET flow = ? WHERE flow = ? AND key NOT IN"
                    " (SELECT key FROM enrollments WHERE flow = ?)", (new, old, new))
                db.execute("UPDATE sends SET flow = ? WHERE flow = ?", (new, old))

    def forget_pending(self, idem_key: str) -> None:
        """Drop an interrupted claim so the step is planned again (safe channels only)."""
        self.conn.execute("DELETE FROM sends WHERE idem_key = ? AND status = ?",
                          (idem_key, SendStatus.PENDING))
