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

Events are loaded whole but for the ``[events.NAME]`` events already written into the
sheet: those only ``event_count`` and ``last_event`` read, within their windows
(``HistoryScope.applied_since``); a run under a config that calls neither loads none.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sheetcrm.ledger.lookback import APPLIED_HELPERS, SENDS_HELPERS, check_keep, helper_days
from sheetcrm.ledger.schema import DELIVERED_SQL, REPORTED_SQL, iso

if TYPE_CHECKING:
    from sheetcrm.config import Config

#: Added to every window: the sends of the day before it load too, so a clock a little
#: off, or a window computed in another time zone, never cuts one the planner reads.
MARGIN = timedelta(days=1)

@dataclass(frozen=True)
class HistoryScope:
    """What a run's planner reads of the sends: those finished since ``since`` (None:
    all of them) and, for the flow-change guard, the config's flows. Of the
    ``[events.NAME]`` events already applied to the sheet, only ``event_count`` and
    ``last_event`` read any: those that arrived since ``applied_since`` (None: all of
    them), and none when ``applied`` is False."""

    since: datetime | None
    flows: frozenset[str]
    applied: bool = False
    applied_since: datetime | None = None


def history_scope(config: Config, now: datetime) -> HistoryScope:
    """The sends, and the applied events, the planner can read under ``config`` at
    ``now``. A config whose ``[ledger] keep`` is shorter than what it reads is
    refused here (ConfigError, ``lookback``), before a run plans anything."""
    check_keep(config)
    flows = frozenset(config.flows)
    sources = [*config.tags.values()]
    for flow in config.flows.values():
        sources += [flow.trigger, flow.goal or ""]
    heard = [days for source in sources for days in helper_days(source, APPLIED_HELPERS)]
    applied_since = (None if None in heard or not heard
                     else now - timedelta(days=max(d for d in heard if d is not None)) - MARGIN)
    applied = bool(heard)
    windows = [timedelta(0)]
    for source in sources:
        for days in helper_days(source, SENDS_HELPERS):
            if days is None:  # counts every message ever sent
                return HistoryScope(None, flows, applied, applied_since)
            windows.append(timedelta(days=days))
    sending = config.sending
    if sending.frequency_cap is not None:
        windows.append(sending.frequency_cap[1])
    if sending.min_gap is not None:
        windows.append(sending.min_gap)
    return HistoryScope(now - max(windows) - MARGIN, flows, applied, applied_since)


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
