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

from sheetcrm.ledger.queries import Scope
from sheetcrm.ledger.recent import note_reported
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


class StepDeliveries(NamedTuple):
    """How many sends of a step (and A/B variant) stand in one delivery state."""

    flow: str
    step: int  # counts from 0, as stored
    variant: str | None
    delivery: DeliveryState
    sends: int


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
            note_reported(db, report.message_id)
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

    def awaiting_report(self, channel: str, limit: int = 100, *,
                        sent_after: datetime | None = None,
                        sent_before: datetime | None = None) -> Iterator[str]:
        """Message ids of the channel's sends still ``accepted``, the oldest first;
        only those sent within (``sent_after``, ``sent_before``] when given."""
        after = iso(sent_after) if sent_after is not None else ""
        before = iso(sent_before) if sent_before is not None else "9999"
        rows = self._conn.execute(
            "SELECT message_id FROM sends WHERE channel = ? AND delivery = ?"
            " AND message_id IS NOT NULL AND finished_at > ? AND finished_at <= ?"
            " ORDER BY finished_at LIMIT ?",
            (channel, DeliveryState.ACCEPTED, after, before, limit))
        return (row[0] for row in rows)

    def delivery_of(self, message_id: str) -> tuple[str, str | None] | None:
        """The channel of the send with this provider message id, and its delivery state
        (None: the channel reports nothing); None when no send has this id."""
        row = self._conn.execute("SELECT channel, delivery FROM sends WHERE message_id = ?",
                                 (message_id,)).fetchone()
        return (row[0], row[1]) if row is not None else None

    def deliveries_by_step(self, scope: Scope = Scope()) -> list[StepDeliveries]:
        """Per flow, step and variant: the reported sends in each delivery state."""
        join, where, params = scope.sends()
        rows = self._conn.execute(
            f"SELECT s.flow, s.step, s.variant, s.delivery, COUNT(*) FROM sends s{join}"
            f" WHERE s.delivery IS NOT NULL AND {where}"
            " GROUP BY s.flow, s.step, s.variant, s.delivery"
            " ORDER BY s.flow, s.step, s.variant", params)
        return [StepDeliveries(flow, step, variant, DeliveryState(state), n)
                for flow, step, variant, state, n in rows]
