"""Writing the rule tabs where the rules reader looks for them, one writer per backend.

- CSV: one file per tab beside the customer file (``<tab>.csv``,
  ``table.csv.tab_file``), UTF-8 with a BOM so Excel opens the Korean right, written
  atomically.
- Google Sheets: real tabs of the same spreadsheet, each written whole in one
  ``batchUpdate`` (``GoogleSheetsTable.write_tab``).
- Airtable: tables of the same base, created through the meta API with the tab's
  header as fields (the first, the name, is the primary field), then filled 10 rows
  a request (``table.airtable_schema``). The API cannot delete a table, so an
  existing one is never replaced: ``--force`` stops with what to do instead. The
  columns sheetcrm writes are added to the customer table as fields when missing
  (records cannot create fields).

Whether a tab exists is asked before anything is written, so ``init`` can refuse to
overwrite one and leave everything as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol, cast

from sheetcrm.app.setup.source import Source
from sheetcrm.app.setup.starter import RuleTabs
from sheetcrm.errors import ConfigError
from sheetcrm.i18n import _
from sheetcrm.table.csv import CsvTable, tab_file, write_tab_file

if TYPE_CHECKING:  # the Google and Airtable clients are slow to import: only when used
    from sheetcrm.table.airtable_schema import AirtableSchema
    from sheetcrm.table.gsheets import GoogleSheetsTable

Rows = list[list[str]]
LINE, LONG_TEXT = "singleLineText", "multilineText"  # Airtable's field types
#: Airtable field type of each column sheetcrm writes (as ``airtable.SUGGESTED_TYPES``).
_WRITEBACK_TYPES = {"tags": LINE, "flow": LONG_TEXT, "last_sent": LINE, "error": LONG_TEXT}


def rule_rows(tabs: RuleTabs) -> dict[str, Rows]:
    """``[rules]`` key -> the rows of its tab, header first."""
    return {"tags": tabs.tags, "flows": tabs.flows, "templates": tabs.templates}


class TabWriter(Protocol):
    def existing(self, titles: list[str]) -> list[str]:
        """Of ``titles``, those the table already has, as messages name them."""
        ...

    def refuse_replacing(self, existing: list[str]) -> None:
        """Raise ConfigError when ``--force`` cannot replace what exists."""
        ...

    def write(self, title: str, rows: Rows) -> str:
        """Make tab ``title`` hold ``rows``; returns where it went, for messages."""
        ...

    def add_columns(self, writeback: Mapping[str, str]) -> list[str]:
        """Create the writeback columns the backend cannot add by itself."""
        ...


class CsvTabs:
    def __init__(self, table: CsvTable) -> None:
        self.table = table

    def existing(self, titles: list[str]) -> list[str]:
        return [str(tab_file(self.table.path, t)) for t in titles
                if tab_file(self.table.path, t).exists()]

    def refuse_replacing(self, existing: list[str]) -> None:
        return None

    def write(self, title: str, rows: Rows) -> str:
        path = tab_file(self.table.path, title)
        write_tab_file(path, rows)
        return str(path)

    def add_columns(self, writeback: Mapping[str, str]) -> list[str]:
        return []  # sync appends them


class SheetsTabs:
    def __init__(self, table: GoogleSheetsTable) -> None:
        self.table = table

    def existing(self, titles: list[str]) -> list[str]:
        have = set(self.table.tab_titles())
        return [_("tab {title!r}", title=t) for t in titles if t in have]

    def refuse_replacing(self, existing: list[str]) -> None:
        return None

    def write(self, title: str, rows: Rows) -> str:
        self.table.write_tab(title, [list(row) for row in rows])
        return _("tab {title!r}", title=title)

    def add_columns(self, writeback: Mapping[str, str]) -> list[str]:
        return []  # sync appends them


class AirtableTabs:
    def __init__(self, schema: AirtableSchema, customers: str) -> None:
        self.schema = schema
        self.customers = customers  # the customer table's name or id

    def existing(self, titles: list[str]) -> list[str]:
        have = {t.get("name") for t in self.schema.tables()}
        return [_("Airtable table {title!r}", title=t) for t in titles if t in have]

    def refuse_replacing(self, existing: list[str]) -> None:
        tables = [t for t in existing if not t.endswith(".toml")]
        if tables:
            raise ConfigError(_(
                "Airtable's API cannot delete or replace a table, so --force cannot replace "
                "{names}: delete or rename it in Airtable, then run sheetcrm init again",
                names=", ".join(tables)))

    def write(self, title: str, rows: Rows) -> str:
        header = rows[0]
        self.schema.create_table(title, [(name, LINE if n == 0 else LONG_TEXT)
                                         for n, name in enumerate(header)])
        self.schema.add_rows(title, header, rows[1:])
        return _("Airtable table {title!r}", title=title)

    def add_columns(self, writeback: Mapping[str, str]) -> list[str]:
        found = self.schema.table(self.customers) or {}
        have = {f.get("name") for f in found.get("fields", [])}
        added = []
        for role, column in writeback.items():
            if column not in have:
                self.schema.add_field(self.customers, column, _WRITEBACK_TYPES[role])
                added.append(_("field {column!r} of {table!r}", column=column,
                               table=self.customers))
        return added


def tab_writer(source: Source) -> TabWriter:
    """The writer for the backend ``source`` was opened with."""
    if isinstance(source.table, CsvTable):
        return CsvTabs(source.table)
    if source.place.table["backend"] == "gsheets":
        return SheetsTabs(cast("GoogleSheetsTable", source.table))
    if source.schema is not None:
        return AirtableTabs(source.schema, str(source.place.table["table"]))
    raise ConfigError(_("sheetcrm init writes rule tabs into CSV files, Google spreadsheets "
                        "and Airtable bases only"))
