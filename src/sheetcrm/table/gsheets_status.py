"""The ``상태`` cells of the rule tabs on Google Sheets, placed by row content.

The statuses were judged on the rows a run read; an operator may insert, delete or
sort rows of a rule tab before they are written. So, like the CSV backend's sibling
files, a status is not written at the position seen at read time: the tab is read
again right before the write (in the values.batchGet that re-reads the customers'
key column, so it costs no request when customer cells are written; one
values.batchGet when only ``상태`` cells change), and each status goes to the row
that still holds the content it was judged on. A row edited meanwhile gets nothing
(the next run judges it); rows with the same content take their statuses in order.
"""

from __future__ import annotations

from sheetcrm.config.rule_tabs import row_identity
from sheetcrm.config.rules import STATUS_COLUMN

#: A row's content as ``row_identity`` gives it.
Identity = tuple[tuple[str, str], ...]


def status_cells(rows: list[list[str]], statuses: dict[Identity, list[str]]
                 ) -> dict[tuple[int, int], str]:
    """(sheet row number, 0-based column) -> the status to write, for the rows of a tab
    as read now (header first) that still hold a judged row's content and whose
    ``상태`` differs. Nothing when the header has no ``상태`` column any more."""
    header = [cell.strip() for cell in rows[0]] if rows else []
    if STATUS_COLUMN not in header:
        return {}
    column = header.index(STATUS_COLUMN)
    columns = {title: i for i, title in reversed(list(enumerate(header))) if title}
    waiting = {identity: list(said) for identity, said in statuses.items()}
    cells: dict[tuple[int, int], str] = {}
    for number, row in enumerate(rows[1:], start=2):
        queue = waiting.get(row_identity({name: row[i] if i < len(row) else ""
                                          for name, i in columns.items()}))
        if not queue:
            continue
        status = queue.pop(0)
        if (row[column] if column < len(row) else "") != status:
            cells[(number, column)] = status
    return cells
