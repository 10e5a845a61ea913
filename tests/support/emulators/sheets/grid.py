"""The spreadsheet model of the Sheets emulator: spreadsheets, their sheets, the grid.

A ``Sheet`` keeps its rows ragged (trailing empty cells and rows are simply absent)
and its grid size apart from them, as Google does. Rows and columns move here, in
one place (``insert``, ``delete``, ``sort``), so the API's batchUpdate requests and
the operator helpers of ``SheetsEmulator`` move cells alike.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from tests.support.emulators.sheets.cells import Cell


@dataclass
class Sheet:
    sheet_id: int
    title: str
    row_count: int = 1000
    col_count: int = 26
    rows: list[list[Cell]] = field(default_factory=list)
    hidden: bool = False

    def get(self, r: int, c: int) -> Cell:
        row = self.rows[r] if r < len(self.rows) else None
        return row[c] if row is not None and c < len(row) else None

    def set(self, r: int, c: int, cell: Cell) -> None:
        while len(self.rows) <= r:
            self.rows.append([])
        row = self.rows[r]
        if len(row) <= c:
            row.extend([None] * (c + 1 - len(row)))
        row[c] = cell

    def properties(self, index: int) -> dict[str, Any]:
        props: dict[str, Any] = {
            "sheetId": self.sheet_id, "title": self.title, "index": index, "sheetType": "GRID",
            "gridProperties": {"rowCount": self.row_count, "columnCount": self.col_count}}
        if self.hidden:  # the API leaves false fields out
            props["hidden"] = True
        return props

    # Rows and columns as insertDimension / deleteDimension / sortRange move them: the
    # operator helpers of SheetsEmulator use these too, so both move cells alike.

    def insert(self, dimension: str, start: int, count: int) -> None:
        if dimension == "ROWS":
            if start < len(self.rows):
                self.rows[start:start] = [[] for _ in range(count)]
            self.row_count += count
        else:
            for row in self.rows:
                if len(row) > start:
                    row[start:start] = [None] * count
            self.col_count += count

    def delete(self, dimension: str, start: int, end: int) -> None:
        if dimension == "ROWS":
            del self.rows[start:end]
            self.row_count -= end - start
        else:
            for row in self.rows:
                del row[start:end]
            self.col_count -= end - start

    def sort(self, r0: int, r1: int, c0: int, c1: int, specs: list[tuple[int, bool]]) -> None:
        """Sort rows ``r0:r1`` of columns ``c0:c1`` (0-based, end-exclusive) by ``specs``
        (column, descending): numbers and dates before text, text without regard to
        case, blanks last either way; ties keep their order. Cells outside the columns
        stay where they are."""
        block = [[self.get(r, c) for c in range(c0, c1)] for r in range(r0, r1)]

        def compare(a: list[Cell], b: list[Cell]) -> int:
            for column, descending in specs:
                ka, kb = _sort_key(a[column - c0]), _sort_key(b[column - c0])
                if ka == kb:
                    continue
                if ka is None or kb is None:
                    return 1 if ka is None else -1
                order = -1 if ka < kb else 1
                return -order if descending else order
            return 0

        block.sort(key=functools.cmp_to_key(compare))
        for r, cells in enumerate(block, start=r0):
            for c, cell in enumerate(cells, start=c0):
                if cell is not None or self.get(r, c) is not None:
                    self.set(r, c, cell)


def _sort_key(cell: Cell) -> tuple[int, Any] | None:
    if cell is None or cell == "":
        return None
    if isinstance(cell, str):
        return (1, cell.casefold())
    if isinstance(cell.value, bool):
        return (2, cell.value)
    if isinstance(cell.value, str):
        return (1, cell.value.casefold())
    return (0, cell.value)


@dataclass
class Spreadsheet:
    spreadsheet_id: str
    title: str
    locale: str = "ko_KR"
    time_zone: str = "Asia/Seoul"
    sheets: list[Sheet] = field(default_factory=list)
    shared_with: set[str] | None = None  # None: every account may use it

    def sheet(self, title: str) -> Sheet:
        for sheet in self.sheets:
            if sheet.title == title:
                return sheet
        raise KeyError(title)

    def metadata(self) -> dict[str, Any]:
        return {
            "spreadsheetId": self.spreadsheet_id,
            "properties": {"title": self.title, "locale": self.locale,
                           "timeZone": self.time_zone, "autoRecalc": "ON_CHANGE"},
            "sheets": [{"properties": s.properties(i)} for i, s in enumerate(self.sheets)],
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{self.spreadsheet_id}/edit",
        }

    def add_sheet(self, title: str, rows: int = 1000, cols: int = 26,
                  sheet_id: int | None = None) -> Sheet:
        """A new sheet at the end (the first is gid=0, the next ones 1001, 1002, ...,
        unless the caller picks its id)."""
        if sheet_id is None:
            sheet_id = 1000 + len(self.sheets) if self.sheets else 0
        sheet = Sheet(sheet_id, title, rows, cols)
        self.sheets.append(sheet)
        return sheet
