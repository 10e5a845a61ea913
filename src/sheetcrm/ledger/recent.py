"""Which sends a run loads: what the planner can read, not the whole history.

A daemon sends for months, and loading every send ever made cost each run more than
the last (about a second per 121k messages). The planner reads sends for a few things,
and each has a bound:

- the guards and conditions that count recent messages (``frequency_cap``,
  ``min_gap``, ``sent_count(days=N)``) look back a known time: the sends finished
  since then (``HistoryScope.since``, an index on the time);
- the idempotency check asks about the next step of an active enrollment: the sends
  of each active enrollment's current entry;
- the last message to each customer (the ``last_sent`` column,
  ``days_since_last_sent``, ``min_gap``) and the last one a provider reported on (the
  error column): one send each, pointed at by ``latest_sends``, kept as they happen;
- the flow-change guard reads the sends of a flow gone from the config: all of them,
  only while one is gone.

A condition that calls ``sent_count`` without a fixed number of days counts every
message ever sent: under such a config everything is loaded, as before. So is it for
every caller that passes no scope (``explain``, ``check``, recovery).

Of the events, a run loads opt-outs, their undo, bounces and replies whole (the
guards and ``exit_on_reply`` read them), the ``[events.NAME]`` events not yet written
into the sheet, and the rest only as the config reads them (``HistoryScope.heard``):
clicks for the engagement column or ``clicked(days=N)``, opens for ``opened``, the
events already applied for ``event_count`` and ``last_event``, each within its
window. Opens, which no rule reads unless it says so, are most of them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sheetcrm.ledger.lookback import (
    APPLIED_HELPERS,
    SENDS_HELPERS,
    check_keep,
    conditions,
    helper_days,
)
from sheetcrm.ledger.schema import DELIVERED_SQL, REPORTED_SQL, iso
from sheetcrm.model import EventKind

if TYPE_CHECKING:
    from sheetcrm.config import Config

#: Added to every window: the sends of the day before it load too, so a clock a little
#: off, or a window computed in another time zone, never cuts one the planner reads.
MARGIN = timedelta(days=1)

#: What came back that every run loads whole, whatever the config: opt-outs and their
#: undo, bounces (the guards), replies (``exit_on_reply`` reads them from an entry on).
ALWAYS_HEARD: tuple[tuple[str, datetime | None], ...] = tuple(
    (str(kind), None) for kind in (EventKind.BOUNCE, EventKind.OPT_IN, EventKind.OPT_OUT,
                                   EventKind.REPLY))


@dataclass(frozen=True)
class HistoryScope:
    """What a run's planner reads of the ledger's history: the sends finished since
    ``since`` (None: all of them) and, for the flow-change guard, the config's flows;
    of what came back, the kinds in ``heard``, each since its moment (None: all of
    them). An ``[events.NAME]`` event not yet applied to the sheet always loads."""

    since: datetime | None
    flows: frozenset[str]
    heard: tuple[tuple[str, datetime | None], ...] = ALWAYS_HEARD


#: The helpers that read each kind of event, and how far back.
_HEARD_BY = ((EventKind.CLICK, frozenset({"clicked"})), (EventKind.OPEN, frozenset({"opened"})),
             (EventKind.REPLY, frozenset({"replied"})), (EventKind.EXTERNAL, APPLIED_HELPERS))


def history_scope(config: Config, now: datetime) -> HistoryScope:
    """The sends, and the events, the planner can read under ``config`` at ``now``. A
    config whose ``[ledger] keep`` is shorter than what it reads is refused here
    (ConfigError, ``lookback``), before a run plans anything."""
    check_keep(config)
    flows = frozenset(config.flows)
    sources = [source for _path, source in conditions(config)]
    return HistoryScope(_sends_since(config, sources, now), flows,
                        _heard(config, sources, now))


def _sends_since(config: Config, sources: list[str], now: datetime) -> datetime | None:
    windows = [timedelta(0)]
    for source in sources:
        for days in helper_days(source, SENDS_HELPERS):
            if days is None:  # counts every message ever sent
                return None
            windows.append(timedelta(days=days))
    sending = config.sending
    if sending.frequency_cap is not None:
        windows.append(sending.frequency_cap[1])
    if sending.min_gap is not None:
        windows.append(sending.min_gap)
    return now - max(windows) - MARGIN


def _heard(config: Config, sources: list[str], now: datetime
           ) -> tuple[tuple[str, datetime | None], ...]:
    """(kind, since) of the events the config reads, beyond those every run loads: the
    clicks the engagement column counts, and each helper's kind within its window."""
    heard: dict[str, datetime | None] = dict(ALWAYS_HEARD)
    if config.writeback.engagement:
        heard[str(EventKind.CLICK)] = None
    for kind, helpers in _HEARD_BY:
        days = [d for source in sources for d in helper_days(source, helpers)]
        if not days or (str(kind) in heard and heard[str(kind)] is None):
            continue
        since = None if None in days else now - timedelta(
            days=max(d for d in days if d is not None)) - MARGIN
        before = heard.get(str(kind), since)
        heard[str(kind)] = None if since is None or before is None else min(since, before)
    return tuple(sorted(heard.items()))


class RecentSends:
    """The queries behind a scoped ``Ledger.load_state``, as part of ``Ledger``."""

    _conn: sqlite3.Connection

    def scoped_send_rows(self, columns: str, scope: HistoryScope,
                         config_flows: Iterable[str] | None,
                         renamed: Iterable[str]) -> Iterable[tuple[Any, ...]]:
        """Rows of ``SELECT {columns} FROM sends`` the planner can read, in the order
        they were recorded (as an unscoped load gives them)."""
        parts = [
            # the recent ones
            "SELECT rowid FROM sends WHERE COALESCE(finished_at, created_at) >= :since",
            # older ones of every active enrollment's current entry (the index holds
            # the time: no row is read to leave out the recent ones). CROSS JOIN keeps
            # SQLite from walking every older send instead: that is the whole history.
            "SELECT s.rowid FROM enrollments e CROSS JOIN sends s"
            " ON s.key = e.key AND s.flow = e.flow AND s.entry = e.entry"
            " WHERE e.status = 'active' AND COALESCE(s.finished_at, s.created_at) < :since",
            # each customer's latest delivered, if older, and latest reported
            "SELECT s.rowid FROM latest_sends l JOIN sends s ON s.idem_key = l.delivered"
            " WHERE l.delivered_at < :since",
            "SELECT s.rowid FROM latest_sends l JOIN sends s ON s.idem_key = l.reported",
        ]
        args: dict[str, Any] = {"since": iso(scope.since) if scope.since else ""}
        gone = sorted(set(config_flows or ()) - scope.flows - set(renamed))
        for i, flow in enumerate(gone):  # the flow-change guard reads all of theirs
            parts.append(f"SELECT rowid FROM sends WHERE flow = :gone{i}")
            args[f"gone{i}"] = flow
        # A union of row numbers only (every part reads an index alone), then the rows
        # in the order they were recorded, as a full load reads them.
        return self._conn.execute(
            f"SELECT {columns} FROM sends WHERE rowid IN ({' UNION '.join(parts)})"
            " ORDER BY rowid", args)


def note_delivered(db: sqlite3.Connection, idem_key: str) -> None:
    """A send that may have reached its customer: the latest, unless one finished
    later was noted already (the first of equal times stays, as a full load reads)."""
    db.execute(
        "INSERT INTO latest_sends (key, delivered, delivered_at)"
        " SELECT key, idem_key, COALESCE(finished_at, created_at) FROM sends"
        f" WHERE idem_key = ? AND status IN {DELIVERED_SQL}"
        " ON CONFLICT (key) DO UPDATE SET delivered = excluded.delivered,"
        " delivered_at = excluded.delivered_at"
        " WHERE latest_sends.delivered_at IS NULL"
        " OR excluded.delivered_at > latest_sends.delivered_at", (idem_key,))


def note_reported(db: sqlite3.Connection, message_id: str) -> None:
    """A provider's final word on a send: the latest reported, as ``note_delivered``."""
    db.execute(
        "INSERT INTO latest_sends (key, reported, reported_at)"
        " SELECT key, idem_key, COALESCE(delivered_at, finished_at, created_at)"
        f" FROM sends WHERE message_id = ? AND delivery IN {REPORTED_SQL}"
        " ON CONFLICT (key) DO UPDATE SET reported = excluded.reported,"
        " reported_at = excluded.reported_at"
        " WHERE latest_sends.reported_at IS NULL"
        " OR excluded.reported_at > latest_sends.reported_at", (message_id,))
