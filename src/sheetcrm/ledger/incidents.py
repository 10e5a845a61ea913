"""The incidents the operator is alerted about, as part of ``Ledger``.

Kept in the ``meta`` table, one row per incident (``incident:KEY``, a JSON object),
so a daemon restarted in the middle of an incident remembers it was told, and a
manual ``sync`` and the daemon share one memory. What the object holds is the
alerts' business (``sheetcrm.app.alerts``); here it is only stored and read.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

_PREFIX = "incident:"


class IncidentBook:
    """The alerts' incidents in the ``meta`` table, as part of ``Ledger``."""

    _conn: sqlite3.Connection

    def incidents(self) -> dict[str, dict[str, Any]]:
        """Every incident kept, by key; one that cannot be read is left out."""
        rows = self._conn.execute("SELECT name, value FROM meta WHERE substr(name, 1, ?) = ?",
                                  (len(_PREFIX), _PREFIX))
        found = {}
        for name, value in rows:
            try:
                data = json.loads(value)
            except ValueError:
                continue
            if isinstance(data, dict):
                found[name[len(_PREFIX):]] = data
        return found

    def save_incidents(self, changed: Mapping[str, dict[str, Any] | None]) -> None:
        """Store each changed incident; None forgets it."""
        for key, data in changed.items():
            if data is None:
                self._conn.execute("DELETE FROM meta WHERE name = ?", (_PREFIX + key,))
            else:
                self._conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                                   (_PREFIX + key, json.dumps(data, ensure_ascii=False)))
