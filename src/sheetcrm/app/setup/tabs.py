"""Writing the rule tabs where the rules reader looks for them.

A Google spreadsheet gets real tabs, each written whole in one ``batchUpdate``
(``GoogleSheetsTable.write_tab``); a CSV table gets one file per tab beside it
(``<tab>.csv``, ``table.csv.tab_file``), UTF-8 with a BOM so Excel opens the Korean
right. Whether a tab exists is asked first, so ``init`` can refuse to overwrite it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sheetcrm.app.setup.starter import RuleTabs
from sheetcrm.errors import ConfigError
from sheetcrm.i18n import _
from sheetcrm.table import Table
from sheetcrm.table.csv import CsvTable, tab_file, write_tab_file

if TYPE_CHECKING:
    from sheetcrm.table.gsheets import GoogleSheetsTable


def rule_rows(tabs: RuleTabs) -> dict[str, list[list[str]]]:
    """``[rules]`` key -> the rows of its tab, header first."""
    return {"tags": tabs.tags, "flows": tabs.flows, "templates": tabs.templates}


class RuleTabsWriter:
    """The tabs of one table: which exist, and writing one whole."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def existing(self, titles: list[str]) -> list[str]:
        """Of ``titles``, the tabs (or files) the table already has, as messages name them."""
        if isinstance(self.table, CsvTable):
            return [str(tab_file(self.table.path, t)) for t in titles
                    if tab_file(self.table.path, t).exists()]
        have = set(self._sheets().tab_titles())
        return [_("tab {title!r}", title=t) for t in titles if t in have]

    def write(self, title: str, rows: list[list[str]]) -> str:
        """Make tab ``title`` hold ``rows``; returns where it went, for messages."""
        if isinstance(self.table, CsvTable):
            path = tab_file(self.table.path, title)
            write_tab_file(path, rows)
            return str(path)
        sheets = self._sheets()
        sheets.write_tab(title, [list(row) for row in rows])
        return _("tab {title!r}", title=title)

    def _sheets(self) -> GoogleSheetsTable:
        from sheetcrm.table.gsheets import GoogleSheetsTable

        if not isinstance(self.table, GoogleSheetsTable):
            raise ConfigError(_("sheetcrm init writes rule tabs into CSV files and Google "
                                "spreadsheets only"))
        return self.table
