"""What operators read from the ledger: sends to look at, conversion and engagement counts.

``sheetcrm status`` and ``sheetcrm report`` ask these questions; the planner never
does. They are answered here, in SQL next to the schema, so no other module holds
the connection: the callers get counts and typed rows.

The report's questions take a ``Scope``: one flow, and the customers who entered
since a moment (a cohort: their sends and what those heard back count, whenever they
happened), or, for activity over time, what happened since that moment.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from datetime import datetime
from typing import NamedTuple

from sheetcrm.ledger.schema import iso
from sheetcrm.model import DELIVERED, EnrollmentStatus, EventKind, SendStatus


class Scope(NamedTuple):
    """Which part of the ledger a report question is about: everything by default."""

    since: datetime | None = None  # entered (or happened) at or after this moment
    flow: str | None = None  # only this flow

    def enrollments(self, alias: str = "") -> tuple[str, tuple[str, ...]]:
        """A condition on the enrollments table (as ``alias``) and its parameters."""
        return self._where(alias, "entered_at")

    def sends(self) -> tuple[str, str, tuple[str, ...]]:
        """A join and a condition on the sends table (as ``s``) and its parameters: the
        sends of the customers in scope. Without ``since`` no join is needed."""
        join = "" if self.since is None else (
            " JOIN enrollments n ON n.key = s.key AND n.flow = s.flow AND n.entry = s.entry")
        parts, params = ["1"], []
        if self.since is not None:
            parts.append("n.entered_at >= ?")
            params.append(iso(self.since))
        if self.flow is not None:
            parts.append("s.flow = ?")
            params.append(self.flow)
        return join, " AND ".join(parts), tuple(params)

    def activity(self, column: str) -> tuple[str, tuple[str, ...]]:
        """A condition on the sends table by the time in ``column``."""
        return self._where("", column)

    def _where(self, alias: str, column: str) -> tuple[str, tuple[str, ...]]:
        prefix = f"{alias}." if alias else ""
        parts, params = ["1"], []
        if self.since is not None:
            parts.append(f"{prefix}{column} >= ?")
            params.append(iso(self.since))
        if self.flow is not None:
            parts.append(f"{prefix}flow = ?")
            params.append(self.flow)
        return " AND ".join(parts), tuple(params)


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


class Outcome(NamedTuple):
    """How many of a flow's customers (messaged or held out) stand in ``status``."""

    flow: str
    holdout: bool
    status: EnrollmentStatus
    customers: int


class Conversion(NamedTuple):
    """One customer who converted: when they entered a flow and when they met its goal."""

    flow: str
    holdout: bool
    entered_at: str  # UTC ISO, as stored
    exited_at: str


class Member(NamedTuple):
    """One enrollment: who, in which group, and how it stands (for revenue per flow)."""

    flow: str
    key: str
    holdout: bool
    status: EnrollmentStatus


class Activity(NamedTuple):
    """Sends of one channel and kind in one minute (UTC ISO, to the minute), with their
    status and, for a step skipped for good, why."""

    minute: str
    channel: str
    kind: str
    status: SendStatus
    detail: str
    sends: int


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


#: Each send with the enrollment it belongs to (as ``e``).
_ENROLLMENT = "enrollments e ON e.key = s.key AND e.flow = s.flow AND e.entry = s.entry"


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

    def conversion_by_group(self, scope: Scope = Scope()) -> list[GroupConversion]:
        """Per flow, ordered by flow: the messaged and the holdout customers."""
        where, params = scope.enrollments()
        rows = self._conn.execute(
            f"SELECT flow, holdout, COUNT(*), SUM(status = ?) FROM enrollments WHERE {where}"
            " GROUP BY flow, holdout ORDER BY flow", (EnrollmentStatus.CONVERTED, *params))
        return [GroupConversion(flow, bool(holdout), entered, converted or 0)
                for flow, holdout, entered, converted in rows]

    def conversion_by_variant(self, scope: Scope = Scope()) -> list[VariantConversion]:
        """Per flow, step and variant (in that order): the customers a variant reached.

        A variant reached a customer when its send was delivered (or may have been:
        ``uncertain``); conversion is that of the customer's enrollment.
        """
        where, params = scope.enrollments("e")
        rows = self._conn.execute(
            "SELECT s.flow, s.step, s.variant, COUNT(*), SUM(e.status = ?)"
            f" FROM sends s JOIN {_ENROLLMENT}"
            f" WHERE s.variant IS NOT NULL AND s.status IN ({_marks(DELIVERED)}) AND {where}"
            " GROUP BY s.flow, s.step, s.variant ORDER BY s.flow, s.step, s.variant",
            (EnrollmentStatus.CONVERTED, *DELIVERED, *params))
        return [VariantConversion(flow, step, variant, reached, converted or 0)
                for flow, step, variant, reached, converted in rows]

    def delivered_by_step(self, scope: Scope = Scope()) -> list[StepDelivered]:
        """Per flow, step and variant (in that order): the messages that reached customers."""
        join, where, params = scope.sends()
        rows = self._conn.execute(
            f"SELECT s.flow, s.step, s.variant, COUNT(*) FROM sends s{join}"
            f" WHERE s.status IN ({_marks(DELIVERED)}) AND {where}"
            " GROUP BY s.flow, s.step, s.variant ORDER BY s.flow, s.step, s.variant",
            (*DELIVERED, *params))
        return [StepDelivered(*row) for row in rows]

    def heard_by_step(self, kinds: Collection[EventKind], scope: Scope = Scope()
                      ) -> list[StepHeard]:
        """Per flow, step, variant and kind: the messages that heard back (clicks, ...).

        An event belongs to the message it answers (its ``idem_key``: the link's
        token, the bounced or answered Message-ID); one without is not counted here.
        """
        join, where, params = scope.sends()
        rows = self._conn.execute(
            "SELECT s.flow, s.step, s.variant, e.kind,"
            " COUNT(DISTINCT CASE WHEN e.machine = 0 THEN s.idem_key END),"
            " SUM(e.machine != 0)"
            f" FROM events e JOIN sends s ON s.idem_key = e.idem_key{join}"
            f" WHERE e.kind IN ({_marks(kinds)}) AND {where}"
            " GROUP BY s.flow, s.step, s.variant, e.kind",
            (*(str(k) for k in kinds), *params))
        return [StepHeard(flow, step, variant, EventKind(kind), sends, automatic or 0)
                for flow, step, variant, kind, sends, automatic in rows]

    def outcomes(self, scope: Scope = Scope()) -> list[Outcome]:
        """Per flow and group: how many customers stand in each status (the funnel's end)."""
        where, params = scope.enrollments()
        rows = self._conn.execute(
            f"SELECT flow, holdout, status, COUNT(*) FROM enrollments WHERE {where}"
            " GROUP BY flow, holdout, status ORDER BY flow, holdout, status", params)
        return [Outcome(flow, bool(holdout), EnrollmentStatus(status), n)
                for flow, holdout, status, n in rows]

    def conversions(self, scope: Scope = Scope()) -> list[Conversion]:
        """Every converted enrollment's entry and exit times (time to conversion)."""
        where, params = scope.enrollments()
        rows = self._conn.execute(
            "SELECT flow, holdout, entered_at, exited_at FROM enrollments"
            f" WHERE status = ? AND exited_at IS NOT NULL AND {where} ORDER BY flow, id",
            (EnrollmentStatus.CONVERTED, *params))
        return [Conversion(flow, bool(holdout), entered, exited)
                for flow, holdout, entered, exited in rows]

    def members(self, scope: Scope = Scope()) -> list[Member]:
        """Every enrollment's key, group and status (revenue per flow reads the sheet)."""
        where, params = scope.enrollments()
        rows = self._conn.execute(
            f"SELECT flow, key, holdout, status FROM enrollments WHERE {where}"
            " ORDER BY flow, id", params)
        return [Member(flow, key, bool(holdout), EnrollmentStatus(status))
                for flow, key, holdout, status in rows]

    def activity(self, scope: Scope = Scope()) -> list[Activity]:
        """Sends delivered and steps skipped for good, per minute, channel and kind.

        A delivered send counts when it finished, a skipped one when it was recorded;
        minutes (not days) because the day depends on the report's time zone.
        """
        statuses = (*DELIVERED, SendStatus.SKIPPED)
        where, params = scope.activity("COALESCE(finished_at, created_at)")
        rows = self._conn.execute(
            "SELECT substr(COALESCE(finished_at, created_at), 1, 16), channel, kind, status,"
            " CASE WHEN status = ? THEN COALESCE(detail, '') ELSE '' END, COUNT(*)"
            f" FROM sends WHERE status IN ({_marks(statuses)}) AND {where}"
            " GROUP BY 1, 2, 3, 4, 5 ORDER BY 1",
            (SendStatus.SKIPPED, *statuses, *params))
        return [Activity(minute, channel, kind, SendStatus(status), detail, n)
                for minute, channel, kind, status, detail, n in rows]
