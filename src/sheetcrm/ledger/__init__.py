"""The state ledger: a SQLite file next to the config.

It is the source of truth for flow state, sends and run history; the sheet only
shows a projection of it. A send is recorded as ``pending`` (and committed) before
the message leaves and marked after, under a unique idempotency key, so no crash
point can make the same step reach the same customer twice.

The journal, and why no crash can send twice:

- A connection that writes (``open``) puts the file in WAL mode, and the last one to
  close puts it back in rollback-journal mode: a read-only open (``plan``) of a file
  in WAL mode would create its ``-wal`` and ``-shm`` files, and ``plan`` never creates
  or changes a file. While a writer is open (or after one was killed) those files
  exist already, and a read-only open reads the latest commits from them without
  writing to them either (``readonly_shm``). When
  another connection is still open at close (the endpoint's, a ``status``), the
  switch back is not waited for: that connection's own close makes it.
- Every commit is ``synchronous=FULL`` (in WAL: the log is fsynced before the commit
  returns), except the result of a message that left (``finish_send(durable=False)``).
  That one is written to the log at once, so a killed process loses nothing, but it
  is fsynced with the next commit that is: the next send's claim, or ``flush`` at the
  end of sending. A power cut can lose only that tail, and what it loses is a result,
  never a claim: the claim of a message that left was fsynced before it left, so the
  next run finds it ``pending`` and does what it does after any crash (the outbox
  writes the same file again; elsewhere the send is ``uncertain`` and never re-sent).
  A lost tail can therefore never cause a second send; it can only turn ``sent``
  into ``uncertain``. One fsync per message instead of two, and no rollback journal
  to write, sync and delete around each of them.
- On a channel where delivering twice makes no second copy (the outbox: one file
  per idempotency key, replaced whole), the claim rides too
  (``claim_send(durable=False)``). A power cut that loses it loses the result after
  it as well (the log is replayed in order, up to the first frame not on disk), so
  the step is simply planned again and writes the same file again: no second copy.
  Every .eml is on disk before its result is committed (``fsutil.atomic_write``), so
  a result that survives never points at a file that did not.
- There the result is not even written at once (``finish_send(deferred=True)``): it
  goes into the next transaction, the next claim's (or ``flush``'s, or any other
  this connection makes), so a message costs one commit, not two. A process killed
  before that transaction loses the result, not the claim before it: the next run
  finds the claim ``pending`` and writes the same file again, as after a kill between
  the file and its result. Every result is written before the next claim commits,
  so a kill leaves at most one such claim.

``Ledger`` owns the connection and all the SQL: no other module runs a query. Its
methods live by concern: opening and the flow state here, the tables and their
migration in ``schema``, the run history in ``runs``, what operators read
(``status``, ``report``) in ``queries``, what came back in ``events``, where the
mailbox reader stopped in ``cursors``, the incidents alerted about in ``incidents``,
the tags each sync found and one customer's history in ``history``, the operator's
test sends in ``trials``, which sends a run loads (not the whole history) in
``recent``, what is forgotten after ``[ledger] keep`` in ``retention``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

from sheetcrm.errors import ExitStatus, SheetcrmError
from sheetcrm.fsutil import open_private
from sheetcrm.i18n import _
from sheetcrm.ledger.cursors import MailboxCursor
from sheetcrm.ledger.deliveries import Applied, DeliveryDetail, DeliveryLog
from sheetcrm.ledger.events import EventLog
from sheetcrm.ledger.history import CustomerHistory, EnrollmentRow, SendRow, TagChange, TagSnapshot
from sheetcrm.ledger.incidents import IncidentBook
from sheetcrm.ledger.queries import (
    GroupConversion,
    OperatorQueries,
    SendDetail,
    VariantConversion,
)
from sheetcrm.ledger.recent import HistoryScope, RecentSends, history_scope, note_delivered
from sheetcrm.ledger.retention import Pruned, Retention
from sheetcrm.ledger.rulesets import AcceptedRules, PendingRules, RulesetLog
from sheetcrm.ledger.runs import RUN_INTERRUPTED, RUN_OK, RUN_RUNNING, RUNS_KEPT, RunHistory
from sheetcrm.ledger.schema import (
    SCHEMA,
    SCHEMA_VERSION,
    from_iso,
    iso,
    migrate,
    schema_version,
    upgraded_copy,
)
from sheetcrm.ledger.trials import TrialLog, TrialSend
from sheetcrm.model import (
    DELIVERED,
    SETTLED,
    DeliveryState,
    Enrollment,
    EnrollmentStatus,
    LedgerState,
    SendRecord,
    SendStatus,
)

__all__ = [
    "RUNS_KEPT",
    "RUN_INTERRUPTED",
    "RUN_OK",
    "RUN_RUNNING",
    "SCHEMA_VERSION",
    "AcceptedRules",
    "Applied",
    "DeliveryDetail",
    "EnrollmentRow",
    "GroupConversion",
    "HistoryScope",
    "Ledger",
    "LedgerError",
    "PendingRules",
    "Pruned",
    "SendDetail",
    "SendRow",
    "TagChange",
    "TagSnapshot",
    "TrialSend",
    "VariantConversion",
    "history_scope",
]


class LedgerError(SheetcrmError):
    exit_code = ExitStatus.BACKEND


# A status word as read -> its member: an enum's call is a slow way to look it up, made
# for each of a ledger's 100k enrollments and sends.
_ENROLLMENT_STATUS = {status.value: status for status in EnrollmentStatus}
_SEND_STATUS = {status.value: status for status in SendStatus}

#: The columns ``_send_record`` reads, in its order.
_SEND_COLUMNS = ("idem_key, key, flow, entry, step, channel, template, kind, status,"
                 " created_at, finished_at, variant, delivery, delivered_at, delivery_detail")


def _send_record(r: tuple[Any, ...], parse: Any) -> SendRecord:
    """A row of ``SELECT {_SEND_COLUMNS} FROM sends``."""
    return SendRecord(idem_key=r[0], key=r[1], flow=r[2], entry=r[3], step=r[4], channel=r[5],
                      template=r[6], kind=r[7], status=_SEND_STATUS[r[8]], created_at=parse(r[9]),
                      finished_at=parse(r[10]), variant=r[11],
                      delivery=DeliveryState(r[12]) if r[12] else None,
                      delivered_at=parse(r[13]), delivery_detail=r[14])


def _readonly_uri(path: Path) -> str:
    """Read-only; with a write-ahead log about (a run writing, or one killed), its index
    is read without being written either (``readonly_shm``)."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    return f"{uri}&readonly_shm=1" if path.with_name(f"{path.name}-shm").exists() else uri


class Ledger(RunHistory, OperatorQueries, EventLog, MailboxCursor, IncidentBook, DeliveryLog,
             CustomerHistory, TrialLog, RulesetLog, RecentSends, Retention):
    """Read and write the state file. One instance per process and run."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None, readonly: bool) -> None:
        self._db = conn
        self._relaxed = False  # synchronous=NORMAL, left on for the next relaxed commit
        self.path = path
        self.readonly = readonly
        self._unsynced = False  # a commit waits to be fsynced with the next durable one
        self._deferred: list[Any] = []  # writes that go into the next transaction

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
            raise LedgerError(_("state file {path}: {problem}", path=path,
                                problem=exc.strerror or exc)) from None
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            migrate(conn)
        except sqlite3.DatabaseError as exc:
            raise LedgerError(_("state file {path}: {problem}", path=path,
                                problem=exc)) from None
        return cls(conn, path, readonly=False)

    @classmethod
    def open_readonly(cls, path: Path) -> Ledger:
        """Open without changing anything; a missing file reads as an empty ledger."""
        if path.exists():
            try:
                conn = sqlite3.connect(_readonly_uri(path), uri=True,
                                       isolation_level=None, timeout=30)
                conn.execute("SELECT 1 FROM sends LIMIT 1")
                if schema_version(conn) < SCHEMA_VERSION:
                    conn = upgraded_copy(conn)
            except sqlite3.DatabaseError as exc:
                raise LedgerError(_("state file {path}: {problem}", path=path,
                                    problem=exc)) from None
            return cls(conn, path, readonly=True)
        conn = sqlite3.connect(":memory:", isolation_level=None)
        conn.executescript(SCHEMA)
        return cls(conn, None, readonly=True)

    def close(self) -> None:
        """Close; the last writer to close puts the file back in rollback-journal mode."""
        if not self.readonly:
            with suppress(sqlite3.Error):
                self.flush()
                # Another connection still open keeps WAL mode (and its files) until
                # it closes in turn: do not wait for it.
                self._conn.execute("PRAGMA busy_timeout = 0")
                self._conn.execute("PRAGMA journal_mode=DELETE")
        self._conn.close()

    @property
    def _conn(self) -> sqlite3.Connection:
        """The connection, back to ``synchronous=FULL`` for whatever uses it: only
        ``transaction(durable=False)`` commits without an fsync."""
        if self._relaxed:
            self._db.execute("PRAGMA synchronous=FULL")
            self._relaxed = False
        return self._db

    @_conn.setter
    def _conn(self, conn: sqlite3.Connection) -> None:
        self._db = conn

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One commit, holding the writes deferred to it first (``finish_send``);
        ``durable=False`` leaves its fsync to the next durable commit (see the module's
        docstring for the only commits that may). A relaxed commit leaves
        ``synchronous=NORMAL`` on for the next one, until the connection is used
        otherwise (``_conn``): a run's sends on the outbox switch it once."""
        db = self._db if not durable else self._conn
        if not durable and not self._relaxed:
            db.execute("PRAGMA synchronous=NORMAL")
            self._relaxed = True
        before = db.total_changes
        db.execute("BEGIN IMMEDIATE")
        deferred = len(self._deferred)
        try:
            for write in self._deferred[:deferred]:
                write(db)
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        del self._deferred[:deferred]
        if not durable:
            self._unsynced = True
        elif db.total_changes != before:  # a commit that wrote was fsynced
            self._unsynced = False

    def flush(self) -> None:
        """Make the commits left to ride with the next durable one, and the writes
        deferred to the next transaction, durable now."""
        if not self._unsynced and not self._deferred:
            return
        with self.transaction() as db:
            db.execute("UPDATE meta SET value = value WHERE name = 'schema_version'")

    # -- reading ---------------------------------------------------------------

    def load_state(self, renames: dict[str, str] | None = None, *,
                   scope: HistoryScope | None = None) -> LedgerState:
        """Everything the planner needs. ``renames`` maps an old flow name to its new one
        (``renamed_from``), so a read-only plan sees a rename not yet saved. With
        ``scope`` (``history_scope``), only the sends the planner can read under that
        config (``recent``); without, every send."""
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

        rows = self._conn.execute(
            "SELECT id, key, flow, entry, entered_at, anchor_at, next_step, status,"
            " exited_at, exit_reason, holdout, via FROM enrollments ORDER BY key, flow, entry"
        )
        # SQLite hands back a new string per row: share the few distinct flow names,
        # statuses and reasons instead of keeping 100k copies of each.
        word = sys.intern
        native: set[tuple[str, str]] = set()  # (key, flow) recorded under its own name
        for r in rows:  # ordered by entry, so the latest one wins
            flow = word(renamed.get(r[2], r[2]))
            if renamed:  # (no rename: every flow is under its own name)
                if flow == r[2]:
                    native.add((r[1], flow))
                elif (r[1], flow) in native:
                    continue  # the new flow already has this customer: it wins
            state.enrollments[(r[1], flow)] = Enrollment(  # in the order of its fields
                r[1], flow, r[3], from_iso(r[4]), from_iso(r[5]), r[6],  # type: ignore[arg-type]
                _ENROLLMENT_STATUS[r[7]], from_iso(r[8]), r[9] and word(r[9]), r[0],
                bool(r[10]), word(r[11]))
        row = self._conn.execute("SELECT value FROM meta WHERE name = 'config_flows'").fetchone()
        state.config_flows = json.loads(row[0]) if row else None
        if scope is None or scope.since is None:
            sends: Iterable[tuple[Any, ...]] = self._conn.execute(
                f"SELECT {_SEND_COLUMNS} FROM sends")
        else:
            sends = self.scoped_send_rows(_SEND_COLUMNS, scope, state.config_flows, renamed)
        for r in sends:
            rec = _send_record(r, from_iso)
            if rec.flow in renamed:
                rec.flow = renamed[rec.flow]
            state.sends_by_key[rec.key].append(rec)
            if rec.status in SETTLED:
                state.sent_keys.add(rec.idem_key)
        state.owned_columns = dict(
            self._conn.execute("SELECT name, origin FROM owned_columns").fetchall())
        self.load_events(state, scope)
        return state

    def pending_sends(self) -> list[SendRecord]:
        rows = self._conn.execute(f"SELECT {_SEND_COLUMNS} FROM sends WHERE status = ?",
                                  (SendStatus.PENDING,))
        return [_send_record(r, from_iso) for r in rows]

    # -- writing ---------------------------------------------------------------

    def save_enrollments(self, enrollments: Iterable[Enrollment], *,
                         tags: TagSnapshot | None = None) -> None:
        """Insert new enrollments and update changed ones, in one transaction; with
        ``tags``, record the run's tags in the same one (``history``)."""
        stamps: dict[datetime, str] = {}  # a run's entries share a few times: each written once

        def stamp(at: datetime) -> str:
            text = stamps.get(at)
            if text is None:
                text = stamps[at] = iso(at)
            return text

        with self.transaction() as db:
            if tags is not None:
                self.write_tags(db, tags)
            for e in enrollments:
                values = (stamp(e.entered_at), e.anchor_at and stamp(e.anchor_at), e.next_step,
                          e.status, e.exited_at and stamp(e.exited_at), e.exit_reason)
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

    def claim_send(self, rec: SendRecord, run_id: int, *, durable: bool = True) -> bool:
        """Record the intent to send, durably, before the message leaves.

        Returns False when this idempotency key was already claimed (sent, in
        flight in a crashed run, or failed for good): the caller must not send.
        A send that failed with a retryable error may be claimed again.
        ``durable=False`` only on a channel where delivering twice makes no second
        copy (the outbox): a claim lost to a power cut there only means the same
        file is written again (the module's docstring).
        """
        with self.transaction(durable=durable) as db:
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
        accepted: bool = False,
        durable: bool = True,
        deferred: bool = False,
    ) -> None:
        """Mark a claimed send and move its enrollment on, atomically.

        ``accepted``: the provider took it and reports delivery later (``deliveries``).
        ``durable=False``: fsynced with the next durable commit (the next claim, or
        ``flush``); only for a result whose loss leaves a claim the next run settles
        without sending again (the module's docstring). ``deferred``: written with the
        next transaction, not now (the enrollment as it is now); only on a channel
        where delivering twice makes no second copy.
        """
        moved = None
        if enrollment is not None and enrollment.id is not None:
            moved = (enrollment.next_step, enrollment.status,
                     enrollment.exited_at and iso(enrollment.exited_at),
                     enrollment.exit_reason, enrollment.id)
        sent = (status, iso(now), message_id, detail[:500],
                DeliveryState.ACCEPTED if accepted else None, idem_key)

        def write(db: sqlite3.Connection) -> None:
            db.execute("UPDATE sends SET status = ?, finished_at = ?, message_id = ?,"
                       " detail = ?, delivery = ? WHERE idem_key = ?", sent)
            if status in DELIVERED:
                note_delivered(db, idem_key)
            if moved is not None:
                db.execute("UPDATE enrollments SET next_step = ?, status = ?, exited_at = ?,"
                           " exit_reason = ? WHERE id = ?", moved)

        if deferred:
            self._deferred.append(write)
            return
        with self.transaction(durable=durable) as db:
            write(db)

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
        self._conn.execute("DELETE FROM sends WHERE idem_key = ? AND status = ?",
                          (idem_key, SendStatus.PENDING))
