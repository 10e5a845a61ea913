"""Accepted rule sets, as part of ``Ledger``: the ``rulesets`` and ``ruleset_pending``
tables, and which rule set each send came from.

A rule set is recorded whole (its canonical JSON) so the last accepted one can be put
back in force while an edit in the sheet does not check out, on any later run. The
short hash names it in ``history`` and in the rule tabs' ``상태`` cells. A send is
stamped with the hash of the run that sent it once the run's sends are done
(``stamp_sends``), so the send path itself is not touched; the sends of a run that
died or failed first are stamped when the next run starts (``stamp_unnamed``).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import NamedTuple

from sheetcrm.ledger.schema import iso


class AcceptedRules(NamedTuple):
    hash: str
    accepted_at: str  # UTC ISO
    body: str  # the canonical JSON


class PendingRules(NamedTuple):
    hash: str
    since: str
    newly: int


class RulesetLog:
    """The accepted rule sets, as part of ``Ledger``."""

    _conn: sqlite3.Connection

    def rules_in_force(self) -> AcceptedRules | None:
        """The rule set accepted last, or None before the first."""
        row = self._conn.execute(
            "SELECT hash, accepted_at, body FROM rulesets ORDER BY id DESC LIMIT 1").fetchone()
        return AcceptedRules(*row) if row else None

    def accept_rules(self, hash_: str, body: str, now: datetime) -> None:
        """Put a rule set in force (unless it already is); any waiting edit is dropped."""
        current = self.rules_in_force()
        self._conn.execute("DELETE FROM ruleset_pending")
        if current is None or current.hash != hash_:
            self._conn.execute("INSERT INTO rulesets (hash, accepted_at, body) VALUES (?,?,?)",
                               (hash_, iso(now), body))

    def pending_rules(self) -> PendingRules | None:
        row = self._conn.execute("SELECT hash, since, newly FROM ruleset_pending").fetchone()
        return PendingRules(*row) if row else None

    def hold_rules(self, hash_: str, newly: int, now: datetime) -> None:
        """Record the edit that waits for a confirmation (only the latest one waits)."""
        pending = self.pending_rules()
        if pending is not None and pending.hash == hash_:
            self._conn.execute("UPDATE ruleset_pending SET newly = ?", (newly,))
            return
        self._conn.execute("DELETE FROM ruleset_pending")
        self._conn.execute("INSERT INTO ruleset_pending VALUES (?,?,?)",
                           (hash_, iso(now), newly))

    def drop_pending_rules(self) -> None:
        self._conn.execute("DELETE FROM ruleset_pending")

    def stamp_sends(self, run_id: int, hash_: str) -> None:
        """Name the rule set of every send this run claimed."""
        self._conn.execute("UPDATE sends SET ruleset = ? WHERE run_id = ?", (hash_, run_id))

    def stamp_unnamed(self, hash_: str, since: str) -> int:
        """Name the rule set of the sends claimed since ``since`` (UTC ISO) that have none:
        those of a run that died or failed before ``stamp_sends``. Returns how many."""
        return self._conn.execute(
            "UPDATE sends SET ruleset = ? WHERE ruleset IS NULL AND created_at >= ?",
            (hash_, since)).rowcount

    def send_rulesets(self, key: str) -> dict[tuple[str, int, int], str]:
        """(flow, entry, step) -> the rule set's hash, for the sends to one customer."""
        return {(row[0], row[1], row[2]): row[3] for row in self._conn.execute(
            "SELECT flow, entry, step, ruleset FROM sends WHERE key = ?"
            " AND ruleset IS NOT NULL", (key,))}
