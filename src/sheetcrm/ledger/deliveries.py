"""Delivery reports: what providers that answer "accepted" say later about each message.

A send through Solapi or NHN Cloud is recorded ``sent`` when the provider takes it
(its ``status`` is about sheetcrm's part: it left), and its ``delivery`` column says
what became of it after: ``accepted`` until the report comes, then ``delivered`` or
``failed`` with the provider's reason. Sends through other channels leave it empty.

``apply_delivery`` is the one way a report changes a send. It finds the send by the
provider's message id (what the channel returned), changes an ``accepted`` send
once, and tells what it did: a report repeated by the provider, or one that arrives
after a later one already settled the send, changes nothing; a report for a message
sheetcrm never sent (or sent by a channel that reports nothing) is ``unknown``; one
that is not final yet (an SMS substitute still on its way) is ``pending``. Nothing
else in the ledger moves: the step was done when the message left, and a failed
delivery is shown (``status``), never re-sent.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from sheetcrm.ledger.schema import iso
from sheetcrm.model import DeliveryReport, DeliveryState


class Applied(StrEnum):
    """What ``apply_delivery`` did with one report."""

    APPLIED = "applied"  # accepted -> delivered or failed
    REPEATED = "repeated"  # the send already has this outcome, or another final one
    PENDING = "pending"  # the report is not final: the send stays accepted
    UNKNOWN = "unknown"  # no send awaiting a report has this message id


class DeliveryDetail(NamedTuple):
    """One send's delivery as ``status`` shows it (``step`` counts from 0, as stored)."""

    key: str
    flow: str
    step: int
    channel: str
    template: str
    delivery: str
    delivered_at: str | None
    reason: str | None


class DeliveryLog:
    """Delivery state, as part of ``Ledger``."""

    _conn: sqlite3.Connection
    transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]

    def apply_delivery(self, report: DeliveryReport, now: datetime) -> Applied:
        """Turn the ``accepted`` send named by ``report.message_id`` into its outcome."""
        if report.state not in (DeliveryState.DELIVERED, DeliveryState.FAILED):
            known = self._conn.execute("SELECT 1 FROM sends WHERE message_id = ?",
                                       (report.message_id,)).fetchone()
            return Applied.PENDING if known else Applied.UNKNOWN
        at = iso(report.at or now)
        with self.transaction() as db:
            row = db.execute("SELECT delivery FROM sends WHERE message_id = ?",
                             (report.message_id,)).fetchone()
            if row is None or row[0] is None:  # no such send, or none awaiting a report
                return Applied.UNKNOWN
            if row[0] != DeliveryState.ACCEPTED:
                return Applied.REPEATED
            db.execute("UPDATE sends SET delivery = ?, delivered_at = ?, delivery_detail = ?"
                       " WHERE message_id = ? AND delivery = ?",
                       (report.state, at, report.reason[:500], report.message_id,
                        DeliveryState.ACCEPTED))
        return Applied.APPLIED

    def count_deliveries(self) -> dict[DeliveryState, int]:
        """How many reported sends are in each delivery state."""
        counts = dict(self._conn.execute(
            "SELECT delivery, COUNT(*) FROM sends WHERE delivery IS NOT NULL GROUP BY delivery"
        ).fetchall())
        return {state: counts.get(state, 0) for state in DeliveryState}

    def latest_deliveries(self, state: DeliveryState, limit: int) -> list[DeliveryDetail]:
        """The ``limit`` sends in ``state`` reported last, the latest first."""
        rows = self._conn.execute(
            "SELECT key, flow, step, channel, template, delivery, delivered_at,"
            " delivery_detail FROM sends WHERE delivery = ?"
            " ORDER BY COALESCE(delivered_at, finished_at) DESC LIMIT ?", (state, limit))
        return [DeliveryDetail(*row) for row in rows]

    def awaiting_report(self, channel: str, limit: int = 100) -> Iterator[str]:
        """Message ids of the channel's sends still ``accepted``, the oldest first."""
        rows = self._conn.execute(
            "SELECT message_id FROM sends WHERE channel = ? AND delivery = ?"
            " AND message_id IS NOT NULL ORDER BY finished_at LIMIT ?",
            (channel, DeliveryState.ACCEPTED, limit))
        return (row[0] for row in rows)
