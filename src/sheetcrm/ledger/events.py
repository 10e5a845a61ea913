"""What came back: the ``events`` table, as part of ``Ledger``.

An event is stored before whoever sent it gets its 2xx, and stored once: the
``(source, event_id)`` pair is unique, so a provider's retry, a second click on the
same one-click button or a mailbox read twice adds nothing. The HTTP endpoint and the
mailbox reader write here from their own processes or threads while a run may be
going on; SQLite serialises the writes (each is one short transaction), and a run
applies what was stored before it read the ledger.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sheetcrm.ledger.recent import HistoryScope
from sheetcrm.ledger.schema import from_iso, iso
from sheetcrm.model import DELIVERED, Event, EventKind, LedgerState

#: An idempotency key as the planner makes them: sc-FLOW-eENTRY-sSTEP-DIGEST.
_IDEM_KEY = re.compile(r"sc-(?P<flow>.+)-e\d+-s\d+-(?P<digest>[0-9a-f]{20})")

_COLUMNS = "id, source, event_id, kind, name, key, idem_key, at, machine, data, applied_at"


def _event(row: tuple[Any, ...]) -> Event:
    at = from_iso(row[7])
    assert at is not None  # NOT NULL in the schema
    return Event(id=row[0], source=row[1], event_id=row[2], kind=EventKind(row[3]),
                 name=row[4], key=row[5], idem_key=row[6], at=at, machine=bool(row[8]),
                 data=json.loads(row[9]), applied_at=from_iso(row[10]))


class EventLog:
    """The ``events`` table, as part of ``Ledger``."""

    _conn: sqlite3.Connection

    def record_event(self, event: Event) -> bool:
        """Store ``event`` durably; False when the same (source, event_id) is already in.

        One statement in its own transaction: committed when this returns, so the
        sender may be answered 2xx right after.
        """
        cur = self._conn.execute(
            "INSERT OR IGNORE INTO events (source, event_id, kind, name, key, idem_key, at,"
            " machine, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (event.source, event.event_id, str(event.kind), event.name, event.key,
             event.idem_key, iso(event.at), int(event.machine),
             json.dumps(event.data, ensure_ascii=False, default=str)),
        )
        if cur.rowcount:
            event.id = cur.lastrowid
        return bool(cur.rowcount)

    def load_events(self, state: LedgerState, scope: HistoryScope | None = None) -> None:
        """The events with a row key into ``state.events_by_key``, oldest first: every
        one, but with ``scope`` only the kinds it reads, each since its moment, and the
        ``[events.NAME]`` events not applied to the sheet yet (``recent``). Each part
        reads an index."""
        if scope is None:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE key != '' ORDER BY at, id")
        else:
            parts = ["SELECT rowid FROM events WHERE kind = ? AND applied_at IS NULL"]
            args: list[str] = [str(EventKind.EXTERNAL)]
            for kind, since in scope.heard:
                if since is None:
                    parts.append("SELECT rowid FROM events WHERE kind = ?")
                    args.append(kind)
                else:
                    parts.append("SELECT rowid FROM events WHERE kind = ? AND at >= ?")
                    args += [kind, iso(since)]
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE rowid IN ({' UNION '.join(parts)})"
                " AND key != '' ORDER BY at, id", args)
        for row in rows:
            event = _event(row)
            state.events_by_key[event.key].append(event)

    def unapplied_events(self, kinds: Iterable[EventKind]) -> list[Event]:
        """Events of these kinds no run has written into the sheet yet, oldest first."""
        wanted = [str(k) for k in kinds]
        marks = ",".join("?" * len(wanted))
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM events WHERE applied_at IS NULL AND kind IN ({marks})"
            " ORDER BY at, id", wanted)
        return [_event(row) for row in rows]

    def mark_applied(self, ids: Iterable[int], now: datetime) -> None:
        """These events are in the sheet now: never applied again."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany("UPDATE events SET applied_at = ? WHERE id = ?",
                                   [(iso(now), i) for i in ids])
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def record_refusal(self, name: str, reason: str, status: int, at: datetime) -> None:
        """Count one request turned away (``reason`` is a fixed text, never the request's)."""
        self._conn.execute(
            "INSERT INTO refused_events (name, reason, status, count, first_at, last_at)"
            " VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (name, reason) DO UPDATE SET"
            " count = count + 1, status = excluded.status, last_at = excluded.last_at",
            (name, reason, status, iso(at), iso(at)))

    def refusals(self) -> list[dict[str, Any]]:
        """What the endpoint turned away, by event name and reason, latest first."""
        rows = self._conn.execute(
            "SELECT name, reason, status, count, first_at, last_at FROM refused_events"
            " ORDER BY last_at DESC, name, reason")
        return [dict(zip(("name", "reason", "status", "count", "first_at", "last_at"), row,
                         strict=True)) for row in rows]

    def event_counts(self, kind: EventKind) -> dict[str, tuple[int, int]]:
        """Per event name: (events stored, of which not yet applied to the sheet)."""
        rows = self._conn.execute(
            "SELECT name, COUNT(*), SUM(applied_at IS NULL) FROM events WHERE kind = ?"
            " GROUP BY name ORDER BY name", (str(kind),))
        return {str(name): (int(total), int(waiting or 0)) for name, total, waiting in rows}

    def send_of(self, idem_key: str) -> tuple[str, str, str] | None:
        """(row key, flow, kind) of a recorded send: whom a token's message went to.

        A send ``retention`` forgot is found by the digest its idempotency key ends
        with (its kind is not kept: ``""``), so an old message's unsubscribe link
        still names its customer."""
        row = self._conn.execute("SELECT key, flow, kind FROM sends WHERE idem_key = ?",
                                 (idem_key,)).fetchone()
        if row is not None:
            return str(row[0]), str(row[1]), str(row[2])
        m = _IDEM_KEY.fullmatch(idem_key)
        found = m and self._conn.execute("SELECT key FROM forgotten_keys WHERE digest = ?",
                                         (m["digest"],)).fetchone()
        return (str(found[0]), m["flow"], "") if m and found else None

    def delivered_at(self, idem_key: str) -> datetime | None:
        """When a send was recorded as delivered (sent, or maybe: ``uncertain``), else None.

        A link followed or an image fetched seconds after this is a machine's doing
        (a link scanner, an image proxy), not the customer's.
        """
        marks = ",".join("?" * len(DELIVERED))
        row = self._conn.execute(
            f"SELECT finished_at FROM sends WHERE idem_key = ? AND status IN ({marks})",
            (idem_key, *DELIVERED)).fetchone()
        return from_iso(row[0]) if row else None

    def forgotten_customer(self, address: str) -> str | None:
        """The row key that is ``address`` (in any case), if the ledger forgot sends to
        it (``[ledger] keep``): whom mail about a message no longer held is about."""
        row = self._conn.execute(
            "SELECT key FROM forgotten_keys WHERE key = ? COLLATE NOCASE LIMIT 1",
            (address.strip(),)).fetchone()
        return str(row[0]) if row else None

    def send_by_message_id(self, message_id: str) -> tuple[str, str] | None:
        """(idempotency key, row key) of the send with this Message-ID (replies, DSNs)."""
        row = self._conn.execute("SELECT idem_key, key FROM sends WHERE message_id = ?",
                                 (message_id,)).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def events_of(self, key: str, kinds: Iterable[EventKind]) -> list[Event]:
        """This customer's events of these kinds, oldest first (an opt-out's history)."""
        wanted = [str(k) for k in kinds]
        marks = ",".join("?" * len(wanted))
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM events WHERE key = ? AND kind IN ({marks})"
            " ORDER BY at, id", [key, *wanted])
        return [_event(row) for row in rows]
