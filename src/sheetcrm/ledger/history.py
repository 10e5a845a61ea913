"""One customer's history, as part of ``Ledger``: the tags each sync found, and what the
other tables hold about that customer, for ``sheetcrm history``.

Tags are not state of the ledger's own: every run recomputes them from the sheet. So
``sync`` records them: the tags each customer has now (``customer_tags``) and, when a
run finds them different from the last run, the change (``tag_changes``). They are
written in the transaction that saves the run's enrollments (``write_tags`` is handed
that transaction), one batch per run: a run reads one small table and writes only the
rows whose tags changed. Rows that could not be evaluated keep what was recorded.

The reads answer "everything about this key" from the indexes on ``key``; the caller
(``app.history``) puts them in order and words them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import NamedTuple

from sheetcrm.ledger.schema import iso


class TagSnapshot(NamedTuple):
    """The tags a run found: row key -> the tags on (rows that evaluated cleanly)."""

    tags: Mapping[str, list[str]]
    at: datetime
    run_id: int | None = None


class TagChange(NamedTuple):
    """Tags a customer gained and lost at one run (``at`` is UTC ISO, as stored)."""

    at: str
    added: list[str]
    removed: list[str]


class EnrollmentRow(NamedTuple):
    """One pass of a customer through a flow, as stored."""

    flow: str
    entry: int
    entered_at: str
    via: str  # trigger | handoff | sheet
    holdout: bool
    status: str
    exited_at: str | None
    exit_reason: str | None


class SendRow(NamedTuple):
    """One step's message to a customer (``step`` counts from 0, as stored)."""

    flow: str
    entry: int
    step: int
    channel: str
    template: str
    kind: str
    variant: str | None
    status: str
    attempts: int
    created_at: str
    finished_at: str | None
    detail: str | None
    delivery: str | None
    delivered_at: str | None
    delivery_detail: str | None


def _diff(old: str | None, tags: list[str]) -> tuple[str, str] | None:
    """The tags added and removed (JSON) from the stored ``old`` to ``tags``; None when
    the set is the same."""
    before = json.loads(old) if old is not None else []
    added = [t for t in tags if t not in before]
    removed = [t for t in before if t not in tags]
    if not added and not removed:
        return None
    return json.dumps(added, ensure_ascii=False), json.dumps(removed, ensure_ascii=False)


class CustomerHistory:
    """The ``customer_tags`` and ``tag_changes`` tables, and reads by row key."""

    _conn: sqlite3.Connection

    def write_tags(self, db: sqlite3.Connection, snapshot: TagSnapshot) -> int:
        """Record the run's tags inside the caller's transaction ``db``; returns how
        many customers' tags changed."""
        stored = dict(db.execute("SELECT key, tags FROM customer_tags").fetchall())
        at = iso(snapshot.at)
        # Customers share a few tag sets: each set, and each change between two, is
        # encoded once, not once per row.
        texts: dict[tuple[str, ...], str] = {}
        diffs: dict[tuple[str | None, str], tuple[str, str] | None] = {}
        current, changes = [], []
        for key, tags in snapshot.tags.items():
            names = tuple(tags)
            text = texts.get(names)
            if text is None:
                text = texts[names] = json.dumps(tags, ensure_ascii=False)
            old = stored.get(key)
            if old == text:
                continue
            pair = (old, text)
            if pair not in diffs:
                diffs[pair] = _diff(old, tags)
            diff = diffs[pair]
            if diff is None:
                continue  # no tag yet, or the same tags in another order (config reordered)
            current.append((key, text, at))
            changes.append((key, at, snapshot.run_id, *diff))
        db.executemany("INSERT OR REPLACE INTO customer_tags (key, tags, since)"
                       " VALUES (?, ?, ?)", current)
        db.executemany("INSERT INTO tag_changes (key, at, run_id, added, removed)"
                       " VALUES (?, ?, ?, ?, ?)", changes)
        return len(changes)

    def tag_changes_of(self, key: str) -> list[TagChange]:
        """The customer's tag changes, oldest first."""
        rows = self._conn.execute(
            "SELECT at, added, removed FROM tag_changes WHERE key = ? ORDER BY at, id", (key,))
        return [TagChange(at, json.loads(added), json.loads(removed))
                for at, added, removed in rows]

    def enrollments_of(self, key: str) -> list[EnrollmentRow]:
        """The customer's passes through flows, oldest first."""
        rows = self._conn.execute(
            "SELECT flow, entry, entered_at, via, holdout, status, exited_at, exit_reason"
            " FROM enrollments WHERE key = ? ORDER BY entered_at, id", (key,))
        return [EnrollmentRow(flow, entry, entered, via, bool(holdout), status, exited, why)
                for flow, entry, entered, via, holdout, status, exited, why in rows]

    def sends_to(self, key: str) -> list[SendRow]:
        """Every step's message to the customer (sent, failed, skipped...), oldest first."""
        rows = self._conn.execute(
            "SELECT flow, entry, step, channel, template, kind, variant, status, attempts,"
            " created_at, finished_at, detail, delivery, delivered_at, delivery_detail"
            " FROM sends WHERE key = ? ORDER BY created_at, rowid", (key,))
        return [SendRow(*row) for row in rows]

    def known_keys(self) -> set[str]:
        """Every row key the ledger holds anything about."""
        rows = self._conn.execute(
            "SELECT key FROM enrollments UNION SELECT key FROM sends"
            " UNION SELECT key FROM events WHERE key != '' UNION SELECT key FROM customer_tags"
            " UNION SELECT key FROM test_sends")
        return {row[0] for row in rows}
