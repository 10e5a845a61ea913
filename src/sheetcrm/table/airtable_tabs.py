"""The rule tables of an Airtable base (``[rules]``): read with the customers, their
``상태`` field written back, as part of ``AirtableTable``.

Airtable has no header row and leaves empty fields out of records, so a rule table
arrives as rows under a header made of the field names its records hold, with
``상태`` always among them, numbered from 2 as a sheet with a header row would be.
Every request goes through the customer table's session, so the pace and the
penalty after a 429 are shared (these are the extra requests a run on Airtable
pays for rules in the base: one listing per table, and the updates of ``상태``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from pyairtable.utils import chunked

from sheetcrm.i18n import _
from sheetcrm.table.airtable_cells import cell_text
from sheetcrm.table.airtable_errors import AirtableError, unknown_field

if TYPE_CHECKING:
    from pyairtable.api.table import Table as ApiTable
    from pyairtable.api.types import UpdateRecordDict, WritableFields

T = TypeVar("T")

STATUS_FIELD = "상태"  # the rule tables' field sheetcrm writes (config.rules.STATUS_COLUMN)
PAGE_SIZE = 100  # Airtable's maximum page
BATCH_SIZE = 10  # Airtable's maximum records per write request


class RuleTables:
    """Reading and writing the rule tables, for ``AirtableTable``."""

    base: str
    tabs: tuple[str, ...]
    _api_table: ApiTable
    _tab_records: dict[str, tuple[list[str], list[str]]]  # table -> header, record ids
    _staged: dict[str, dict[tuple[int, int], str]]

    @property
    def requests(self) -> int:
        raise NotImplementedError

    def _call(self, action: str, call: Callable[[], T]) -> T:
        raise NotImplementedError

    def _read_tabs(self) -> dict[str, list[list[str]]]:
        """Each rule table as rows under a header of its field names (``상태`` always
        among them: Airtable leaves empty fields out of records). One listing per table
        (more past 100 records), paced with the customers' requests; a table that is
        not in the base is left out (the rules then say so)."""
        found: dict[str, list[list[str]]] = {}
        for tab in self.tabs:
            table = self._api_table.api.table(self.base, tab)
            try:
                records = self._call(_("list records"),
                                     partial(table.all, page_size=PAGE_SIZE))
            except AirtableError as exc:
                if exc.status in (403, 404):  # no such table (or no access to it)
                    continue
                raise
            header = list(dict.fromkeys(
                name for record in records for name in record.get("fields", {})))
            if STATUS_FIELD not in header:
                header.append(STATUS_FIELD)
            self._tab_records[tab] = (header, [record["id"] for record in records])
            found[tab] = [header] + [[cell_text(record.get("fields", {}).get(name))
                                      for name in header] for record in records]
        return found

    def stage_tab_cells(self, tab: str, cells: dict[tuple[int, int], str]) -> None:
        """Cells of a rule table (row as the snapshot's tab numbers it, column) to
        write by ``flush_tab_cells``."""
        self._staged.setdefault(tab, {}).update(cells)

    def flush_tab_cells(self) -> int:
        """Write the staged rule-table cells, 10 records a request; the requests spent."""
        started = self.requests
        staged, self._staged = self._staged, {}
        for tab, cells in staged.items():
            header, ids = self._tab_records.get(tab, ([], []))
            patches: dict[str, WritableFields] = {}
            for (row, column), value in cells.items():
                if 2 <= row <= len(ids) + 1 and column < len(header):
                    patches.setdefault(ids[row - 2], {})[header[column]] = value or None
            table = self._api_table.api.table(self.base, tab)
            changes: list[UpdateRecordDict] = [{"id": i, "fields": f}
                                                for i, f in patches.items()]
            for chunk in chunked(changes, BATCH_SIZE):
                try:
                    self._call(_("update records"),
                               partial(table.batch_update, chunk, typecast=True))
                except AirtableError as exc:
                    if unknown_field(exc) == STATUS_FIELD:
                        raise AirtableError(_(
                            "Airtable table {tab!r} has no field {field!r}, where sheetcrm "
                            "says whether each rule is in force: add it (long text) and run "
                            "again", tab=tab, field=STATUS_FIELD)) from None
                    raise
        return self.requests - started

