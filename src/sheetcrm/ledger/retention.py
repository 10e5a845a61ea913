"""History retention, as part of ``Ledger``: forget what is older than ``[ledger] keep``.

A daemon records sends, events, runs and tag changes for months; with ``keep`` set,
each sync ends by deleting those older than the window (``prune``), so the file and
what a run reads stay bounded however long it runs. SQLite reuses the pages freed,
so the file stops growing once the window is full.

What is never forgotten, whatever its age, because a run still reads it or a
guarantee rests on it:

- the flow state (``enrollments``), the tags each customer has now, the columns
  sheetcrm owns, the mailbox cursor, the refused-webhook counts;
- a send not finished for good: ``pending`` (a crash's claim, which the next run
  recovers), ``uncertain`` (never sent again: its row says so), ``retry``; one still
  awaiting its provider's delivery report; every send of an active enrollment's
  current entry (the idempotency check of its next step); each customer's latest
  delivered and latest reported send (``latest_sends`` points at them: the
  ``last_sent`` column, ``days_since_last_sent``, ``min_gap``, the error column);
  the sends of a flow gone from the config, while the flow-change guard reads them;
- opt-outs and their undo, and bounces (they hold an address back for good); a reply
  after which an enrollment is still active (``exit_on_reply`` reads it); an
  ``[events.NAME]`` event not applied to the sheet yet;
- the rule set in force, and every accepted one a kept send is stamped with;
- whom a forgotten send went to, once per customer (``forgotten_keys``): the
  unsubscribe link in any message, however old, still works (its token names the
  send by idempotency key, which ends with a digest of the customer's key). A reply
  or bounce to a forgotten message names it by a Message-ID that cannot be traced
  back, and is no longer matched to its customer;
- the latest ``ok`` run and those after it (``stalled_runs`` counts from it).

The window is never shorter than what the rules in force read: the config is refused
when ``keep`` is shorter (``lookback``), and the cut is also taken no later
than the ledger's own load window (``recent.history_scope``, with its day of margin),
so a rule set from the sheet's tabs never loses a send it counts either.

Deleting goes in batches of ``BATCH`` rows, each its own short transaction, walking
each table's time index from where the last batch stopped: the endpoint, writing
events from its own process, waits at most one batch. A call deletes at most
``MOST`` rows per table; what is left goes at the next run. Once a walk has gone
through everything, the next one waits ``EVERY`` (a daemon ticks every few minutes,
and a day's window moves little in an hour).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sheetcrm.ledger.lookback import ENGAGEMENT_HELPERS, conditions, helper_days
from sheetcrm.ledger.recent import history_scope
from sheetcrm.ledger.schema import iso
from sheetcrm.model import EventKind

if TYPE_CHECKING:
    from sheetcrm.config import Config

BATCH = 1000  # about 0.1 s a transaction on a busy 2-core machine
MOST = 200_000
#: How often the history is walked: a daemon's every tick need not walk it again.
EVERY = timedelta(hours=1)

_SEND_TIME = "COALESCE(finished_at, created_at)"
#: A send that may go: finished for good, no report awaited, not one a run reads.
_SEND_FORGETTABLE = (
    "status IN ('sent', 'failed', 'skipped') AND COALESCE(delivery, '') != 'accepted'"
    " AND NOT EXISTS (SELECT 1 FROM latest_sends l WHERE l.key = sends.key"
    "   AND (l.delivered = sends.idem_key OR l.reported = sends.idem_key))"
    " AND NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.key = sends.key"
    "   AND e.flow = sends.flow AND e.entry = sends.entry AND e.status = 'active')")
#: A forgotten send's customer, by the digest its idempotency key ends with (``events``
#: reads it back for a link in an old message).
_REMEMBER_KEY = (
    "INSERT OR IGNORE INTO forgotten_keys (digest, key) SELECT substr(idem_key, -20), key"
    " FROM sends WHERE rowid = ? AND idem_key GLOB 'sc-*-e*-s*-' || replace(hex(zeroblob(20)),"
    " '00', '[0-9a-f]')")
#: A reply may go unless an enrollment entered before it is still active.
_REPLY_FORGETTABLE = (
    "NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.key = events.key"
    " AND e.status = 'active' AND e.entered_at <= events.at)")


@dataclass
class Pruned:
    """How many rows of each kind a ``prune`` deleted."""

    sends: int = 0
    events: int = 0
    tag_changes: int = 0
    test_sends: int = 0
    runs: int = 0
    rulesets: int = 0

    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))


@dataclass(frozen=True)
class Cuts:
    """The moment before which each kind of history goes (None: none of it goes)."""

    sends: datetime | None
    engagement: datetime | None  # clicks, opens, replies
    applied: datetime | None  # [events.NAME] events already in the sheet
    rest: datetime  # tag changes, test sends, runs, rule sets


def cuts(config: Config, now: datetime) -> Cuts | None:
    """Where ``prune`` cuts under the rules of ``config`` (None: ``keep`` is unset).

    Each cut is the window's start, or earlier when the rules read further back (the
    load window ``history_scope``, margin included), or None when they read it all.
    """
    keep = config.model.ledger.keep
    if keep is None:
        return None
    cut = now - keep
    scope = history_scope(config, now)
    heard = [d for _path, source in conditions(config)
             for d in helper_days(source, ENGAGEMENT_HELPERS)]
    engagement: datetime | None = cut
    if None in heard:
        engagement = None
    elif heard:
        engagement = min(cut, now - timedelta(days=max(d for d in heard if d is not None))
                         - timedelta(days=1))
    read = dict(scope.heard).get(str(EventKind.EXTERNAL), cut)  # event_count, last_event
    applied = None if read is None else min(cut, read)
    sends = None if scope.since is None else min(cut, scope.since)
    return Cuts(sends, engagement, applied, cut)


class Retention:
    """``prune``, as part of ``Ledger``."""

    _conn: sqlite3.Connection
    _short: bool  # a walk stopped at ``MOST``
    transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]

    def prune(self, config: Config, now: datetime) -> Pruned:
        """Delete the history older than ``[ledger] keep`` that nothing reads any more
        (the module's docstring); nothing without ``keep``, nor within ``EVERY`` of the
        last walk that went through everything."""
        pruned = Pruned()
        at = cuts(config, now)
        if at is None:
            return pruned
        last = self._conn.execute("SELECT value FROM meta WHERE name = 'pruned_at'").fetchone()
        if last is not None and now - datetime.fromisoformat(last[0]) < EVERY:
            return pruned
        self._short = False
        if at.sends is not None:
            known = self._conn.execute(
                "SELECT value FROM meta WHERE name = 'config_flows'").fetchone()
            gone = sorted(set(_json_list(known[0]) if known else ()) - set(config.flows))
            where = _SEND_FORGETTABLE
            if gone:  # the flow-change guard reads every send of a flow gone
                where += f" AND flow NOT IN ({','.join('?' * len(gone))})"
            pruned.sends = self._walk("sends", _SEND_TIME, "", where, at.sends, gone,
                                      before=_REMEMBER_KEY)
        if at.engagement is not None:
            for kind in (EventKind.CLICK, EventKind.OPEN, EventKind.REPLY):
                where = _REPLY_FORGETTABLE if kind is EventKind.REPLY else "1"
                pruned.events += self._walk("events", "at", "kind = ? AND", where,
                                            at.engagement, [], [str(kind)])
        if at.applied is not None:
            pruned.events += self._walk("events", "at", "kind = ? AND",
                                        "applied_at IS NOT NULL", at.applied, [],
                                        [str(EventKind.EXTERNAL)])
        pruned.tag_changes = self._walk("tag_changes", "at", "", "1", at.rest, [])
        pruned.test_sends = self._walk("test_sends", "created_at", "",
                                       "status NOT IN ('pending', 'uncertain')", at.rest, [])
        with self.transaction() as db:
            pruned.runs = db.execute(
                "DELETE FROM runs WHERE started_at < ? AND id < COALESCE("
                "(SELECT MAX(id) FROM runs WHERE status = 'ok'), 0)",
                (iso(at.rest),)).rowcount
            older = db.execute("SELECT COUNT(*) FROM rulesets WHERE accepted_at < ? AND"
                               " id < (SELECT MAX(id) FROM rulesets)", (iso(at.rest),))
            if pruned.sends and older.fetchone()[0]:
                # a rule set no kept send names, and not the one in force (this reads
                # every send's stamp: only when there is one to forget)
                pruned.rulesets = db.execute(
                    "DELETE FROM rulesets WHERE accepted_at < ?"
                    " AND id < (SELECT MAX(id) FROM rulesets)"
                    " AND hash NOT IN (SELECT ruleset FROM sends WHERE ruleset IS NOT NULL)",
                    (iso(at.rest),)).rowcount
            if not self._short:  # everything walked: the next walk can wait
                db.execute("INSERT OR REPLACE INTO meta VALUES ('pruned_at', ?)", (iso(now),))
        return pruned

    def _walk(self, table: str, when: str, within: str, where: str, cut: datetime,
              args: list[Any], within_args: list[Any] | None = None, *,
              before: str = "") -> int:
        """Delete the rows of ``table`` older than ``cut`` (by ``when``, which an index
        orders, ``within`` its leading columns) for which ``where`` holds, a batch at
        a time from where the last batch stopped; returns how many. ``before`` runs
        for each row (its ``rowid`` the one parameter) just before it goes."""
        first = list(within_args or [])
        select = (
            f"SELECT rowid, {when}, {where} FROM {table} WHERE {within} {when} >= ?"
            f" AND ({when} > ? OR rowid > ?) AND {when} < ? ORDER BY {when}, rowid LIMIT ?")
        deleted, seen, mark, rowid = 0, 0, "", 0
        while seen < MOST:
            with self.transaction() as db:
                rows = db.execute(select, [*args, *first, mark, mark, rowid, iso(cut),
                                           BATCH]).fetchall()
                if not rows:
                    break
                gone = [(r[0],) for r in rows if r[2]]
                if before:
                    db.executemany(before, gone)
                db.executemany(f"DELETE FROM {table} WHERE rowid = ?", gone)
            deleted += len(gone)
            seen += len(rows)
            mark, rowid = rows[-1][1], rows[-1][0]
            if len(rows) < BATCH:
                break
        else:
            self._short = True  # the rest goes at the next run
        return deleted


def _json_list(text: str) -> list[str]:
    value = json.loads(text)
    return [str(v) for v in value] if isinstance(value, list) else []
