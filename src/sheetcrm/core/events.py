"""Outside events into the sheet: each ``[events.NAME]`` event's ``set`` fields, once.

The endpoint stored each event with the text its ``set`` fields take (``data["set"]``,
field name -> cell text, already checked against the field's type). Here, pure: the
events no run has applied yet (``applied_at`` unset in the ledger state) become cell
updates of the rows holding their keys, and their values are laid over the rows as
read, so this very run plans with them (a customer whose payment just came in gets no
payment reminder). The runner writes the updates with the rest of the run's batch and
marks the events applied only once that write has landed: an event is applied once,
and the operator's later edit of the cell wins.

An event whose key is on no row adds a row when its source says ``append = true`` (a
form's intake), and otherwise waits for a run that finds the row; so does one whose
stored values no longer fit the config (a field removed or retyped). Nothing is
half-applied: an event is written whole or not at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from sheetcrm.config import Config
from sheetcrm.errors import CellError
from sheetcrm.i18n import _
from sheetcrm.model import (
    CellUpdate,
    Event,
    EventKind,
    EventWrites,
    LedgerState,
    Record,
    TypedRows,
)


def pending_events(state: LedgerState) -> list[Event]:
    """The outside events no run has written into the sheet, oldest first."""
    pending = [e for events in state.events_by_key.values() for e in events
               if e.kind is EventKind.EXTERNAL and e.applied_at is None and e.id is not None]
    pending.sort(key=lambda e: (e.at, e.id or 0))
    return pending


def event_writes(table: TypedRows, state: LedgerState, config: Config, *,
                 adds_rows: bool = True) -> EventWrites:
    """The cells the pending events set, laid over the rows read (their ``values`` change).

    Later events win over earlier ones for the same cell. A cell whose typed value is
    already the event's is not written, but its event counts as applied with the rest.
    A key on several rows is no row to write: its events wait. So do the events that
    would add a row to a table that cannot (``adds_rows`` False: only CSV can yet).
    """
    writes = EventWrites()
    pending = pending_events(state)
    if not pending:  # most runs: no row index to build (75 ms at 100k rows)
        return writes
    rows = _Rows(table, config)
    parsers: dict[str, Callable[[str], Any]] = {}
    cells: dict[tuple[str, str], str] = {}  # (row key, column) -> text, latest event last
    new_rows: dict[str, str] = {}  # normalised key -> the key of the row to add
    waiting: Counter[str] = Counter()
    why: dict[str, str] = {}
    for event in pending:
        assert event.id is not None
        values, problem = _typed(event, config, parsers)
        rec = rows.find(event.key)
        settings = config.events.get(event.name)
        if problem is None and rec is None:
            if rows.unusable(event.key):
                problem = _("their keys are on several rows (make each key unique)")
            elif settings is None or not settings.append:
                problem = _("their keys are on no row (append = true adds one)")
            elif not adds_rows:
                problem = _("adding rows is done for CSV tables only, for now")
        if problem is not None:
            waiting[event.name] += 1
            why.setdefault(event.name, problem)
            continue
        # A new row: one per key, spelled as first heard (an email whatever its case).
        key = rec.key if rec is not None else new_rows.setdefault(rows.norm(event.key),
                                                                   event.key)
        for field, (text, value) in values.items():
            column = config.fields[field].column
            if rec is not None:
                if rec.values.get(field) == value and (key, column) not in cells:
                    continue
                rec.settle(field, value)
            cells[(key, column)] = text
        writes.applied.setdefault(key, []).append(event.id)
    writes.updates = [CellUpdate(key, column, text) for (key, column), text in cells.items()]
    writes.new_rows = list(new_rows.values())
    writes.waiting = dict(waiting)
    writes.reasons = {name: why[name] for name in sorted(waiting)}
    writes.notes = [_("events.{name}: {n} event(s) wait: {why}", name=name, n=n, why=why[name])
                    for name, n in sorted(waiting.items())]
    return writes


class _Rows:
    """Rows by key; an email key also matches whatever its case (``Kim@x.com``)."""

    def __init__(self, table: TypedRows, config: Config) -> None:
        self.by_key = {rec.key: rec for rec in table.records}
        self.fold = config.fields[config.table.key].type == "email"
        self.folded: dict[str, Record | None] = {}
        keys = [*self.by_key, *(p.key for p in table.problems)]
        self.taken = {self.norm(k) for k in keys if k} - {self.norm(k) for k in self.by_key}
        if self.fold:
            for rec in table.records:
                folded = rec.key.casefold()
                self.folded[folded] = None if folded in self.folded else rec  # None: ambiguous

    def norm(self, key: str) -> str:
        return key.casefold() if self.fold else key

    def find(self, key: str) -> Record | None:
        return self.by_key.get(key) or self.folded.get(key.casefold())

    def unusable(self, key: str) -> bool:
        """The key is on rows sheetcrm does not write (duplicates), or matches several."""
        norm = self.norm(key)
        return norm in self.taken or (self.fold and norm in self.folded)


def _typed(event: Event, config: Config, parsers: dict[str, Callable[[str], Any]]
           ) -> tuple[dict[str, tuple[str, Any]], str | None]:
    """Field -> (cell text, typed value) of the event, or why it cannot be applied now."""
    stored = event.data.get("set")
    if not isinstance(stored, dict):
        return {}, _("they carry no values (stored by another version)")
    typed: dict[str, tuple[str, Any]] = {}
    for field, text in stored.items():
        spec = config.fields.get(field)
        if spec is None or field == config.table.key or not isinstance(text, str):
            return {}, _("field {field} is not in [fields] any more", field=repr(field))
        parse = parsers.get(field)
        if parse is None:
            parse = parsers[field] = spec.parser(field, config.tz)
        try:
            typed[field] = (text, parse(text))
        except CellError as exc:
            return {}, _("field {field} expects {expected} now", field=repr(field),
                         expected=exc.expected)
    return typed, None


def applied_ids(writes: EventWrites, landed: Callable[[str], bool]) -> list[int]:
    """The events of the rows whose write landed (``landed(key)``), to mark applied."""
    return [i for key, events in writes.applied.items() if landed(key) for i in events]
