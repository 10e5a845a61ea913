"""The run's write with the outside events in it, and marking those events applied.

``core.events`` decides which cells the events not yet applied set (and which rows
they add); this is the side-effect half, in the order that makes "once" hold: the
events' cells go in the run's one batched write, with the projection, and the events
are marked applied only after that write returned, and only for the rows it reached.
A crash in between applies them again on the next run (the same cells, so only an
edit made in that instant would be overwritten); an event is never marked applied
that did not reach the sheet.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sheetcrm.core.events import applied_ids
from sheetcrm.ledger import Ledger
from sheetcrm.model import CellUpdate, EventWrites, WriteReport
from sheetcrm.table import Table
from sheetcrm.table.base import GrowingTable


def write_batch(table: Table, key_column: str, updates: list[CellUpdate],
                events: EventWrites) -> WriteReport | None:
    """Write ``updates`` (the events' cells among them) and add the events' new rows.

    New rows are only planned for a table that can add them (``can_add_rows``).
    """
    if events.new_rows:
        growing = cast(GrowingTable, table)
        return growing.write(key_column, updates, append=events.new_rows)
    return table.write(key_column, updates) if updates else None


def mark_applied(ledger: Ledger, events: EventWrites, report: WriteReport | None,
                 now: datetime) -> int:
    """Mark the events whose rows the write reached: never applied again. Returns how many.

    A row gone or doubled by the time of the write (the operator deleted or copied
    it) did not get its cells: its events stay for a later run.
    """
    missed = set(report.missing_keys) | set(report.ambiguous_keys) if report else set()
    ids = applied_ids(events, lambda key: key not in missed)
    if ids:
        ledger.mark_applied(ids, now)
    return len(ids)
