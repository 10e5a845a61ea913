"""What operators read from the ledger: sends to look at, conversion and engagement counts.

``sheetcrm status`` and ``sheetcrm report`` ask these questions; the planner never
does. They are answered here, in SQL next to the schema, so no other module holds
the connection: the callers get counts and typed rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from typing import NamedTuple

from sheetcrm.model import DELIVERED, EnrollmentStatus, EventKind, SendStatus


class SendDetail(NamedTuple):
    """One send as an operator sees it (``step`` counts from 0, as stored)."""

    key: str
    flow: str
    step: int
    channel: str
    template: str
    status: str
    attempts: int
    created_at: str
    finished_at: str | None
    detail: str | None


class GroupConversion(NamedTuple):
    """A flow's customers, messaged or held out, and how many of them converted."""

    flow: str
    holdout: bool
    entered: int
    converted: int


class VariantConversion(NamedTuple):
    """The customers a step's A/B variant reached, and how many of them converted."""

    flow: str
    step: int  # counts from 0, as stored
    variant: str
    reached: int
    converted: int


class StepDelivered(NamedTuple):
    """How many messages of a step (and A/B variant) reached customers."""

    flow: str
    step: int  # counts from 0, as stored
    variant: str | None
    delivered: int


class StepHeard(NamedTuple):
    """How many messages of a step (and variant) heard back ``kind``.

    ``sends`` counts the messages with at least one such event from a person;
    ``automatic`` the hits a machine made on them (kept, never counted as people's).
    """

    flow: str
    step: int  # counts from 0, as stored
    variant: str | None
    kind: EventKind
    sends: int
    automatic: int


def _marks(values: Collection[object]) -> str:
    return ",".join("?" * len(values))


class OperatorQueries:
    """The reports' reads, as part of ``Ledger``."""

    _conn: sqlite3.Connection

    def count_sends(self, statuses: Collection[SendStatus]) -> dict[SendStatus, int]:
        """How many sends are in each of ``statuses`` (0 for those none is in)."""
        counts = dict(self._conn.execute(
            f"SELECT status, COUNT(*) FROM sends WHERE status IN ({_marks(statuses)})"
            " GROUP BY status", tuple(statuses),
        ).fetchall())
        return {status: counts.get(status, 0) for status in statuses}

    def latest_sends(self, statuses: Collection[SendStatus], limit: int) -> list[SendDetail]:
        """The ``limit`` sends in ``statuses`` that changed last, the latest first."""
        rows = self._conn.execute(
            "SELECT key, flow, step, channel, template, status, attempts, created_at,"
            f" finished_at, detail FROM sends WHERE status IN ({_marks(statuses)})"
            " ORDER BY COALESCE(finished_at, created_at) DESC LIMIT ?", (*statuses, limit),
        )
        return [SendDetail(*row) for row in rows]

    def conversion_by_group(self) -> list[GroupConversion]:
        """Per flow, ordered by flow: the messaged and the holdout customers."""
        rows = self._conn.execute(
            "SELECT flow, holdout, COUNT(*), SUM(status = ?) FROM enrollments"
            " GROUP BY flow, holdout ORDER BY flow", (EnrollmentStatus.CONVERTED,))
        return [GroupConversion(flow, bool(holdout), entered, converted or 0)
                for flow, holdout, entered, converted in rows]

    def conversion_by_variant(self) -> list[VariantConversion]:
        """Per flow, step and variant (in that order): the customers a variant reached.

        A variant reached a customer when its send was delivered (or may have been:
        ``uncertain``); conversion is that of the customer's enrollment.
        """
        rows = self._conn.execute(
            "SELECT s.flow, s.step, s.variant, COUNT(*), SUM(e.status = ?)"
            " FROM sends s JOIN enrollments e"
            " ON e.key = s.key AND e.flow = s.flow AND e.entry = s.entry"
            f" WHERE s.variant IS NOT NULL AND s.status IN ({_marks(DELIVERED)})"
            " GROUP BY s.flow, s.step, s.variant ORDER BY s.flow, s.step, s.variant",
            (EnrollmentStatus.CONVERTED, *DELIVERED))
        return [VariantConversion(flow, step, variant, reached, converted or 0)
                for flow, step, variant, reached, converted in rows]

    def delivered_by_step(self) -> list[StepDelivered]:
        """Per flow, step and variant (in that order): the messages that reached customers."""
        rows = self._conn.execute(
            f"SELECT flow, step, variant, COUNT(*) FROM sends WHERE status IN"
            f" ({_marks(DELIVERED)}) GROUP BY flow, step, variant"
            " ORDER BY flow, step, variant", tuple(DELIVERED))
        return [StepDelivered(*row) for row in rows]

    def heard_by_step(self, kinds: Collection[EventKind]) -> list[StepHeard]:
        """Per flow, step, variant and kind: the messages that heard back (clicks, ...).

        An event belongs to the message it answers (its ``idem_key``: the link's
        token, the bounced or answered Message-ID); one without is not counted here.
        """
        rows = self._conn.execute(
            "SELECT s.flow, s.step, s.variant, e.kind,"
            " COUNT(DISTINCT CASE WHEN e.machine = 0 THEN s.idem_key END),"
            " SUM(e.machine != 0)"
            " FROM events e JOIN sends s ON s.idem_key = e.idem_key"
            f" WHERE e.kind IN ({_marks(kinds)})"
            " GROUP BY s.flow, s.step, s.variant, e.kind", tuple(str(k) for k in kinds))
        return [StepHeard(flow, step, variant, EventKind(kind), sends, automatic or 0)
                for flow, step, variant, kind, sends, automatic in rows]
