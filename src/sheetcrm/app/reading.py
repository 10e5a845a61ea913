"""Reading whole tables in a run: with the garbage collector paused, and again right
before sending (``FreshCheck``) when the first read has grown old.

Kept apart from ``runner`` so that the run's steps read in one place; ``runner``
uses both.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sheetcrm.config import Config
from sheetcrm.core.evaluate import RowConditions
from sheetcrm.core.events import event_writes
from sheetcrm.core.rules import RowContext, Rules
from sheetcrm.core.schema import read_records
from sheetcrm.i18n import N_
from sheetcrm.model import LedgerState, PlannedSend, Record
from sheetcrm.table import Table


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while whole tables are built.

    Reading and typing 100k rows allocates millions of small containers; CPython's
    collector would re-scan them many times over (a third of the run time) although
    none of them is part of a cycle. Reference counting still frees everything.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()



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
