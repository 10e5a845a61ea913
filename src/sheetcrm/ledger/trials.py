"""Test sends (``sheetcrm test-send``), as part of ``Ledger``: the ``test_sends`` table.

A test renders a customer's step and sends it to the operator only. It is kept in a
table of its own, never in ``sends``: the planner, the frequency cap, ``report`` and
``status``'s counts read ``sends`` alone, and a link, an opt-out or a reply that
answers a test finds no send under its key, so it is nobody's click or opt-out. The
test is recorded ``pending`` before it leaves and marked after, like a real send, so
a crash in between still leaves a trace of it.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import NamedTuple

from sheetcrm.ledger.schema import iso
from sheetcrm.model import SendStatus

_COLUMNS = ("idem_key, key, flow, step, channel, template, variant, kind, recipient, subject,"
            " status, created_at, finished_at, message_id, detail")


class TrialSend(NamedTuple):
    """One test send (``step`` counts from 0, as stored; times are UTC ISO)."""

    idem_key: str
    key: str  # the customer it was rendered for
    flow: str
    step: int
    channel: str
    template: str
    variant: str | None
    kind: str
    recipient: str  # the operator's address or number
    subject: str
    status: str
    created_at: str
    finished_at: str | None = None
    message_id: str | None = None
    detail: str | None = None


class TrialLog:
    """The ``test_sends`` table, as part of ``Ledger``."""

    _conn: sqlite3.Connection

    def claim_test_send(self, trial: TrialSend) -> None:
        """Record a test before it leaves (status ``pending``), committed at once."""
        self._conn.execute(
            f"INSERT INTO test_sends ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (*trial[:10], SendStatus.PENDING, trial.created_at, None, None, None))

    def finish_test_send(self, idem_key: str, status: SendStatus, now: datetime, *,
                         message_id: str | None = None, detail: str = "") -> None:
        """How the test went: sent, failed, or uncertain (it may have arrived)."""
        self._conn.execute(
            "UPDATE test_sends SET status = ?, finished_at = ?, message_id = ?, detail = ?"
            " WHERE idem_key = ?", (status, iso(now), message_id, detail[:500], idem_key))

    def test_sends_for(self, key: str) -> list[TrialSend]:
        """The tests rendered for this customer, oldest first."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM test_sends WHERE key = ? ORDER BY created_at, id", (key,))
        return [TrialSend(*row) for row in rows]

    def latest_test_sends(self, limit: int) -> list[TrialSend]:
        """The ``limit`` latest tests, the latest first."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM test_sends ORDER BY created_at DESC, id DESC LIMIT ?",
            (limit,))
        return [TrialSend(*row) for row in rows]

    def count_test_sends(self) -> dict[str, int]:
        """How many tests are in each status."""
        return dict(self._conn.execute(
            "SELECT status, COUNT(*) FROM test_sends GROUP BY status ORDER BY status"
        ).fetchall())
