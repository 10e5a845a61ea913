"""Run history: one row per ``sync``, how it ended and its counts.

The history outlives the process, so ``sheetcrm status`` and a restarted daemon know
whether sending has stalled, and since when. It is bounded (``RUNS_KEPT``): a daemon
runs every few minutes for months. A run is recorded ``running`` when it starts
under the run lock; one still marked so while nobody holds the lock was killed
mid-way and reads as ``interrupted``.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from sheetcrm.ledger.schema import iso

RUNS_KEPT = 2000  # run history: about a week of 5-minute daemon ticks
RUN_OK, RUN_RUNNING, RUN_INTERRUPTED = "ok", "running", "interrupted"


class RunHistory:
    """The ``runs`` table, as part of ``Ledger``."""

    _conn: sqlite3.Connection

    def start_run(self, command: str, now: datetime) -> int:
        """Record that a run begins. Called under the run lock.

        Holding the lock, no other run can be in progress: a run still marked
        ``running`` was killed mid-way (SIGKILL, a power cut) and is marked
        ``interrupted``.
        """
        self._conn.execute("UPDATE runs SET status = ? WHERE status = ?",
                           (RUN_INTERRUPTED, RUN_RUNNING))
        cur = self._conn.execute(
            "INSERT INTO runs (command, started_at, status) VALUES (?, ?, ?)",
            (command, iso(now), RUN_RUNNING),
        )
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, now: datetime, status: str, summary: dict[str, Any]) -> None:
        """Record how a run ended; keep the last ``RUNS_KEPT`` runs (a daemon runs often)."""
        self._conn.execute(
            "UPDATE runs SET finished_at = ?, status = ?, summary = ? WHERE id = ?",
            (iso(now), status, json.dumps(summary, ensure_ascii=False), run_id),
        )
        self._conn.execute("DELETE FROM runs WHERE id <= ?", (run_id - RUNS_KEPT,))

    def last_runs(self, limit: int = 10, *, none_in_progress: bool = False) -> list[dict[str, Any]]:
        """The latest runs, newest first: id, command, times, status and summary.

        ``none_in_progress``: the caller knows no run holds the run lock (it probed
        it), so a run still marked ``running`` was killed mid-way and is shown
        ``interrupted``, as the next run will record it.
        """
        rows = self._conn.execute(
            "SELECT id, command, started_at, finished_at, status, summary FROM runs"
            " ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [
            {"id": r[0], "command": r[1], "started_at": r[2], "finished_at": r[3],
             "status": RUN_INTERRUPTED if none_in_progress and r[4] == RUN_RUNNING else r[4],
             "summary": json.loads(r[5]) if r[5] else None}
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
        first, last, count = self._conn.execute(
            f"SELECT MIN(id), MAX(id), COUNT(*) FROM runs WHERE {since_ok}", marks,
        ).fetchone()
        if not count:
            return None
        (since,) = self._conn.execute("SELECT started_at FROM runs WHERE id = ?",
                                      (first,)).fetchone()
        status, summary = self._conn.execute("SELECT status, summary FROM runs WHERE id = ?",
                                             (last,)).fetchone()
        return {"since": since, "runs": count, "status": status,
                "summary": json.loads(summary) if summary else {}}
