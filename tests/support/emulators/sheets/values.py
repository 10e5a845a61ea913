"""The values endpoints of the Sheets emulator: get, batchGet, update, batchUpdate,
append, clear and batchClear.

They read and write cells the way the API does (RAW or USER_ENTERED, ranges that
hold the values or spread from one cell, ragged answers, counts of 0 left out), and
check a whole request before they change a cell: a refused batch changes nothing.
values.update and values.append are values.batchUpdate of one range, as in Google.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.emulators.sheets.a1 import Bounds, grid_range, parse_range
from tests.support.emulators.sheets.cells import Typed, raw_cell, render, user_entered
from tests.support.emulators.sheets.faults import ApiError
from tests.support.emulators.sheets.grid import Sheet, Spreadsheet
from tests.support.emulators.sheets.routing import one

MAX_CELL_CHARS = 50_000


def read(book: Spreadsheet, text: str, query: dict[str, list[str]]) -> dict[str, Any]:
    """values.get of one range (values.batchGet: of each), rendered as the query asks."""
    bounds = parse_range(book, text)
    option = one(query, "valueRenderOption", "FORMATTED_VALUE")
    dates = one(query, "dateTimeRenderOption", "SERIAL_NUMBER")
    major = one(query, "majorDimension", "ROWS")
    sheet, locale = bounds.sheet, book.locale
    grid: list[list[Any]] = []
    for row in sheet.rows[bounds.r0:bounds.r1]:
        cells = row[bounds.c0:bounds.c1]
        if any(c.__class__ is Typed for c in cells):
            cells = [render(c, option, dates, locale) for c in cells]
        else:
            cells = ["" if c is None else c for c in cells]
        while cells and cells[-1] == "":
            cells.pop()
        grid.append(cells)
    if major == "COLUMNS":
        width = max(map(len, grid), default=0)
        grid = [[row[c] if c < len(row) else "" for row in grid] for c in range(width)]
        for col in grid:
            while col and col[-1] == "":
                col.pop()
    while grid and not grid[-1]:
        grid.pop()
    result: dict[str, Any] = {"range": bounds.a1(), "majorDimension": major}
    if grid:
        result["values"] = grid
    return result


def clear(book: Spreadsheet, where: str | Bounds) -> str:
    """values.clear: empty the range's cells (the grid stays); the range cleared."""
    bounds = where if isinstance(where, Bounds) else parse_range(book, where)
    for r in range(bounds.r0, min(bounds.r1, len(bounds.sheet.rows))):
        for c in range(bounds.c0, bounds.c1):
            if bounds.sheet.get(r, c) is not None:
                bounds.sheet.set(r, c, None)
    return bounds.a1()


def batch_update(book: Spreadsheet, body: dict[str, Any], *,
                 single: bool = False) -> dict[str, Any]:
    """values.batchUpdate (and, with ``single``, values.update): every range is
    checked before any is written, so a refused batch changes nothing.

    A range of one cell is where the values start (they may spread past it); a
    larger range must hold them. JSON ``null`` skips a cell; ``""`` clears it and
    counts as updated.
    """
    option = body.get("valueInputOption")
    if option not in ("RAW", "USER_ENTERED"):
        raise ApiError(400, "Invalid valueInputOption: must be RAW or USER_ENTERED")
    convert = raw_cell if option == "RAW" else (
        lambda v: user_entered(v) if isinstance(v, str) else raw_cell(v))
    planned: list[tuple[Bounds, list[list[Any]]]] = []
    for i, item in enumerate(body.get("data") or []):
        values = _values(item.get("values"), "data.values" if single else
                         f"data[{i}].values")
        bounds = parse_range(book, item.get("range", ""))
        if item.get("majorDimension") == "COLUMNS":
            values = _transpose(values)
        height, width = len(values), max(map(len, values), default=0)
        if bounds.single:
            bounds = grid_range(bounds.sheet, bounds.r0, bounds.c0,
                                max(height, 1), max(width, 1))
        elif height > bounds.r1 - bounds.r0 or width > bounds.c1 - bounds.c0:
            raise ApiError(400, f"Requested writing within range [{item['range']}], but "
                                "tried writing beyond it.")
        for row in values:
            for value in row:
                if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
                    raise ApiError(400, "Your input contains more than the maximum of "
                                        f"{MAX_CELL_CHARS} characters in a single cell.")
        planned.append((bounds, values))
    responses = []
    touched: dict[int, tuple[set[int], set[int], list[int]]] = {}
    for bounds, values in planned:
        rows, columns, cells = set(), set(), 0
        for i, row in enumerate(values):
            for j, value in enumerate(row):
                if value is not None:
                    bounds.sheet.set(bounds.r0 + i, bounds.c0 + j, convert(value))
                    rows.add(bounds.r0 + i)
                    columns.add(bounds.c0 + j)
                    cells += 1
        height, width = len(values), max(map(len, values), default=0)
        written = Bounds(bounds.sheet, bounds.r0, bounds.c0, bounds.r0 + max(height, 1),
                         bounds.c0 + max(width, 1))
        responses.append(_nonzero({
            "spreadsheetId": book.spreadsheet_id, "updatedRange": written.a1(),
            "updatedRows": len(rows), "updatedColumns": len(columns),
            "updatedCells": cells}))
        all_rows, all_columns, count = touched.setdefault(id(bounds.sheet), (set(), set(), [0]))
        all_rows |= rows
        all_columns |= columns
        count[0] += cells
    return _nonzero({
        "spreadsheetId": book.spreadsheet_id,
        "totalUpdatedRows": sum(len(r) for r, _, _ in touched.values()),
        "totalUpdatedColumns": sum(len(c) for _, c, _ in touched.values()),
        "totalUpdatedCells": sum(n[0] for _, _, n in touched.values()),
        "totalUpdatedSheets": sum(1 for _, _, n in touched.values() if n[0]),
        "responses": responses})


def append(book: Spreadsheet, text: str, option: str, body: dict[str, Any]
           ) -> dict[str, Any]:
    """values.append: after the table found in the range, growing the grid to fit.

    The table, as the recorded answers show it: the block of filled cells (joined
    side by side or one above the other) around the last filled cell of the
    range's last filled row. Values go below it, from its first column; with no
    table, at the range's first cell.
    """
    values = _values(body.get("values"), "data.values")
    if body.get("majorDimension") == "COLUMNS":
        values = _transpose(values)
    bounds = parse_range(book, text)
    sheet = bounds.sheet
    table = _table(sheet, bounds)
    r0, c0 = (table.r1, table.c0) if table else (bounds.r0, bounds.c0)
    height, width = max(len(values), 1), max(max(map(len, values), default=0), 1)
    sheet.row_count = max(sheet.row_count, r0 + height)
    sheet.col_count = max(sheet.col_count, c0 + width)
    target = Bounds(sheet, r0, c0, r0 + height, c0 + width)
    result = batch_update(
        book, {"valueInputOption": option, "data": [{"range": target.a1(), "values": values}]},
        single=True)
    answer = {"spreadsheetId": book.spreadsheet_id}
    if table:
        answer["tableRange"] = table.a1()
    return {**answer, "updates": result["responses"][0]}


def _values(values: Any, where: str) -> list[list[Any]]:
    """The ``values`` of a ValueRange: a list of lists of scalars, else 400 as the API."""
    if values is None:
        return []
    if not isinstance(values, list):
        raise ApiError(400, f"Invalid value at '{where}' "
                            f"(type.googleapis.com/google.protobuf.ListValue), "
                            f"{json.dumps(values, ensure_ascii=False)}")
    for i, row in enumerate(values):
        if not isinstance(row, list):
            raise ApiError(400, f"Invalid value at '{where}[{i}]' "
                                f"(type.googleapis.com/google.protobuf.ListValue), "
                                f"{json.dumps(row, ensure_ascii=False)}")
        for value in row:
            if isinstance(value, (dict, list)):
                raise ApiError(400, f"Invalid value at '{where}[{i}]': a cell must be a "
                                    "string, number, boolean or null")
    return values


def _transpose(columns: list[list[Any]]) -> list[list[Any]]:
    height = max(map(len, columns), default=0)
    return [[col[r] if r < len(col) else None for col in columns] for r in range(height)]


def _nonzero(answer: dict[str, Any]) -> dict[str, Any]:
    """The API leaves out fields that are 0."""
    return {k: v for k, v in answer.items() if v != 0}


def _table(sheet: Sheet, bounds: Bounds) -> Bounds | None:
    """The table values.append finds in ``bounds`` (see ``append``), or None."""
    def filled(r: int, c: int) -> bool:
        return sheet.get(r, c) not in (None, "")

    last = next((r for r in range(min(bounds.r1, len(sheet.rows)) - 1, bounds.r0 - 1, -1)
                 if any(filled(r, c) for c in range(bounds.c0, bounds.c1))), None)
    if last is None:
        return None
    start = (last, max(c for c in range(bounds.c0, bounds.c1) if filled(last, c)))
    seen, todo = {start}, [start]
    while todo:
        r, c = todo.pop()
        for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if (bounds.r0 <= nr < bounds.r1 and bounds.c0 <= nc < bounds.c1
                    and (nr, nc) not in seen and filled(nr, nc)):
                seen.add((nr, nc))
                todo.append((nr, nc))
    rows, cols = [r for r, _ in seen], [c for _, c in seen]
    return Bounds(sheet, min(rows), min(cols), max(rows) + 1, max(cols) + 1)
