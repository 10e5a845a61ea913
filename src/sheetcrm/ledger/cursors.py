"""Where the mailbox reader stopped, as part of ``Ledger``.

Kept in the ``meta`` table under one name, with the mailbox it belongs to: pointing
``[mailbox]`` at another server, account or folder starts that one afresh. Losing it
costs only a re-read, which adds nothing (events are stored once per mail).
"""

from __future__ import annotations

import json
import sqlite3

_NAME = "mailbox_cursor"


class MailboxCursor:
    """The mailbox reader's cursor in the ``meta`` table, as part of ``Ledger``."""

    _conn: sqlite3.Connection

    def mailbox_cursor(self, mailbox: str) -> tuple[int, int] | None:
        """(UIDVALIDITY, last UID read) of ``mailbox``, if it was read before."""
        row = self._conn.execute("SELECT value FROM meta WHERE name = ?", (_NAME,)).fetchone()
        if row is None:
            return None
        try:
            saved = json.loads(row[0])
            if saved["mailbox"] != mailbox:
                return None
            return int(saved["uidvalidity"]), int(saved["uid"])
        except (ValueError, KeyError, TypeError):
            return None  # unreadable: read afresh, which is harmless

    def save_mailbox_cursor(self, mailbox: str, uidvalidity: int, uid: int) -> None:
        value = json.dumps({"mailbox": mailbox, "uidvalidity": uidvalidity, "uid": uid})
        self._conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                           (_NAME, value))
