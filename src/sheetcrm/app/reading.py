"""Reading whole tables in a run: with the garbage collector paused (``collector``),
and again right before sending (``FreshCheck``) when the first read has grown old.

Kept apart from ``runner`` so that the run's steps read in one place; ``runner``
uses both.
"""

from __future__ import annotations

import time
from datetime import datetime

from sheetcrm.app.collector import gc_paused
from sheetcrm.config import Config
from sheetcrm.core.evaluate import RowConditions
from sheetcrm.core.events import event_writes
from sheetcrm.core.rules import RowContext, Rules
from sheetcrm.core.schema import read_records
from sheetcrm.i18n import N_
from sheetcrm.model import LedgerState, PlannedSend, Record
from sheetcrm.table import Table

__all__ = ["FreshCheck", "gc_paused"]


class FreshCheck:
    """Goal and trigger, re-checked on freshly read rows right before sending.

    The rows planned on were read at the start of the run; when sending takes
    longer than ``sending.recheck_after`` (slow SMTP, thousands of messages) the
    table is read again, so a customer who paid a minute ago gets no reminder.
    """

    def __init__(self, config: Config, rules: Rules, table: Table, state: LedgerState,
                 now: datetime, read_at: float) -> None:
        self.config, self.table, self.state, self.now = config, table, state, now
        self.read_at = read_at
        self.rules = rules
        self.records: dict[str, Record] | None = None

    def _refresh(self) -> None:
        limit = self.config.sending.recheck_after.total_seconds()
        if time.monotonic() - self.read_at < limit:
            return
        with gc_paused():
            table = read_records(self.table.read(), self.config)
            # The outside events this run writes are not in the table yet: they count
            # on these rows as on the rows planned on (a payment stays a payment).
            event_writes(table, self.state, self.config)
        self.records = {r.key: r for r in table.records}
        self.read_at = time.monotonic()

    def record(self, key: str) -> Record | None:
        return self.records.get(key) if self.records is not None else None

    def exit_reason(self, send: PlannedSend) -> str:
        """'goal met', 'trigger no longer true', 'row gone' or '' to go ahead (English,
        marked for the catalogs: the caller translates it where it is shown or kept)."""
        self._refresh()
        if self.records is None:
            return ""
        rec = self.records.get(send.key)
        if rec is None or not rec.usable:
            return N_("row gone or unreadable")
        row = RowConditions(self.rules, rec, RowContext(self.now, self.config.tz, self.state))
        goal = row.goal_met(send.flow)
        if goal:
            return N_("goal met")
        triggered = send.enrollment.via == "handoff" or row.triggered(send.flow)
        if goal is None or triggered is None:
            return N_("row unreadable: a cell the flow reads could not be read")
        if not triggered:
            return N_("trigger no longer true")
        return ""
