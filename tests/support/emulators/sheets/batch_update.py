"""spreadsheets.batchUpdate in the Sheets emulator: rows, columns and sheets.

Each request kind the backend (or gspread) sends is a function of the spreadsheet
and its spec, listed in ``HANDLERS`` under the API's name; any other kind is refused
with a 400 that says it is not emulated, never answered wrongly. ``apply`` runs a
batch whole or not at all, as Google does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from tests.support.emulators.sheets.cells import Cell, Typed
from tests.support.emulators.sheets.faults import ApiError
from tests.support.emulators.sheets.grid import Sheet, Spreadsheet
from tests.support.emulators.sheets.routing import as_object


def apply(book: Spreadsheet, body: dict[str, Any]) -> dict[str, Any]:
    """spreadsheets.batchUpdate: all requests apply, or (on an error) none."""
    requests = as_object(body).get("requests") or []
    saved = copy.deepcopy(book) if len(requests) > 1 else None
    replies: list[dict[str, Any]] = []
    try:
        for i, request in enumerate(requests):
            if not isinstance(request, dict) or len(request) != 1:
                raise ApiError(400, f"Invalid requests[{i}]: exactly one kind of request "
                                    "must be set")
            (name, spec), = request.items()
            handler = HANDLERS.get(name)
            if handler is None:
                raise ApiError(400, f"Invalid requests[{i}]: {name} is not emulated")
            try:
                replies.append(handler(book, as_object(spec)))
            except _Refused as exc:
                raise ApiError(400, f"Invalid requests[{i}].{name}: {exc}") from None
    except ApiError:
        if saved is not None:
            book.__dict__.update(saved.__dict__)
        raise
    return {"spreadsheetId": book.spreadsheet_id, "replies": replies}


def append_dimension(book: Spreadsheet, spec: dict[str, Any]) -> dict[str, Any]:
    sheet = _sheet_by_id(book, spec.get("sheetId"))
    dimension = _dimension(spec.get("dimension"))
    sheet.insert(dimension, sheet.row_count if dimension == "ROWS" else sheet.col_count,
                 _count(spec.get("length")))
    return {}


def insert_dimension(book: Spreadsheet, spec: dict[str, Any]) -> dict[str, Any]:
    sheet, dimension, start, end = _dimension_range(book, spec.get("range"))
    size = sheet.row_count if dimension == "ROWS" else sheet.col_count
    if start > size:
        raise _Refused(f"range.startIndex ({start}) is after the last "
                       f"{dimension.lower()[:-1]} ({size})")
    sheet.insert(dimension, start, end - start)
    return {}


def delete_dimension(book: Spreadsheet, spec: dict[str, Any]) -> dict[str, Any]:
    sheet, dimension, start, end = _dimension_range(book, spec.get("range"))
    size = sheet.row_count if dimension == "ROWS" else sheet.col_count
    end = min(end, size)
    if start == 0 and end >= size:
        raise _Refused(f"You can't delete all the {dimension.lower()} on the sheet.")
    sheet.delete(dimension, start, end)
    return {}


def sort_range(book: Spreadsheet, spec: dict[str, Any]) -> dict[str, Any]:
    grid = as_object(spec.get("range"))
    sheet = _sheet_by_id(book, grid.get("sheetId", 0))
    r0, r1 = int(grid.get("startRowIndex", 0)), int(grid.get("endRowIndex", sheet.row_count))
    c0 = int(grid.get("startColumnIndex", 0))
    c1 = int(grid.get("endColumnIndex", sheet.col_count))
    specs = []
    for sort in spec.get("sortSpecs") or []:
        column = int(sort.get("dimensionIndex", 0))
        if not c0 <= column < c1:
            raise _Refused(f"sortSpecs dimensionIndex {column} is outside the range")
        specs.append((column, sort.get("sortOrder", "ASCENDING") == "DESCENDING"))
    sheet.sort(r0, min(r1, sheet.row_count), c0, min(c1, sheet.col_count), specs)
    return {}


def update_sheet_properties(book: Spreadsheet, spec: dict[str, Any]) -> dict[str, Any]:
    props = as_object(spec.get("properties"))
    sheet = _sheet_by_id(book, props.get("sheetId"))
    mask = _FieldMask(spec.get("fields"), props)
    unknown = mask.unknown({"title", "hidden", "index", "gridProperties.rowCount",
                            "gridProperties.columnCount"}, skip={"sheetId"})
    if unknown:
        raise _Refused(f"{unknown} is not emulated")
    grid = as_object(props.get("gridProperties"))
    if mask.wants("title"):
        title = str(props.get("title") or "")
        if any(s.title == title for s in book.sheets if s is not sheet):
            raise _Refused(f'A sheet with the name "{title}" already exists. Please '
                           "enter another name.")
        sheet.title = title
    if mask.wants("hidden"):
        hidden = bool(props.get("hidden", False))
        if hidden and all(s.hidden for s in book.sheets if s is not sheet):
            raise _Refused("You can't hide all the sheets in a document.")
        sheet.hidden = hidden
    if mask.wants("gridProperties.rowCount"):
        sheet.row_count = _count(grid.get("rowCount"))
        del sheet.rows[sheet.row_count:]
    if mask.wants("gridProperties.columnCount"):
        sheet.col_count = _count(grid.get("columnCount"))
        for row in sheet.rows:
            del row[sheet.col_count:]
    if mask.wants("index"):  # the index counts positions before the move
        index = min(max(int(props.get("index", 0)), 0), len(book.sheets))
        old = book.sheets.index(sheet)
        book.sheets.insert(index, sheet)
        del book.sheets[old + (1 if index <= old else 0)]
    return {}


def update_spreadsheet_properties(book: Spreadsheet, spec: dict[str, Any]) -> dict[str, Any]:
    props = as_object(spec.get("properties"))
    mask = _FieldMask(spec.get("fields"), props)
    unknown = mask.unknown({"title", "locale", "timeZone"})
    if unknown:
        raise _Refused(f"{unknown} is not emulated")
    if mask.wants("title"):
        book.title = str(props.get("title") or "")
    if mask.wants("locale"):
        book.locale = str(props.get("locale") or "")
    if mask.wants("timeZone"):
        book.time_zone = str(props.get("timeZone") or "")
    return {}


def add_sheet(book: Spreadsheet, spec: dict[str, Any]) -> dict[str, Any]:
    props = as_object(spec.get("properties"))
    grid = as_object(props.get("gridProperties"))
    title = str(props.get("title") or f"Sheet{len(book.sheets) + 1}")
    if any(s.title == title for s in book.sheets):
        raise _Refused(f'A sheet with the name "{title}" already exists. Please enter '
                       "another name.")
    sheet_id = props.get("sheetId")
    if sheet_id is not None:
        if not isinstance(sheet_id, int) or isinstance(sheet_id, bool) or sheet_id < 0:
            raise _Refused(f"properties.sheetId must be a non-negative integer, not {sheet_id!r}")
        if any(s.sheet_id == sheet_id for s in book.sheets):
            raise _Refused(f"A sheet with the id {sheet_id} already exists.")
    sheet = book.add_sheet(title, rows=grid.get("rowCount", 1000),
                           cols=grid.get("columnCount", 26), sheet_id=sheet_id)
    if "index" in props:
        book.sheets.remove(sheet)
        book.sheets.insert(min(max(int(props["index"]), 0), len(book.sheets)), sheet)
    sheet.hidden = bool(props.get("hidden", False))
    return {"addSheet": {"properties": sheet.properties(book.sheets.index(sheet))}}


def delete_sheet(book: Spreadsheet, spec: dict[str, Any]) -> dict[str, Any]:
    sheet = _sheet_by_id(book, spec.get("sheetId"))
    if len(book.sheets) == 1:
        raise _Refused("You can't remove all the sheets in a document.")
    book.sheets.remove(sheet)
    return {}


def update_cells(book: Spreadsheet, spec: dict[str, Any]) -> dict[str, Any]:
    """UpdateCellsRequest, for ``userEnteredValue`` only: ``rows`` from ``start`` (a
    GridCoordinate) or from the corner of ``range`` (a GridRange, unbounded sides
    reaching the grid's edge), where the rows do not reach inside ``range`` the values
    are cleared. Writing past the grid is refused, as Google refuses it."""
    if str(spec.get("fields", "")).strip() not in ("userEnteredValue", "*"):
        raise _Refused(f"fields {spec.get('fields')!r} is not emulated (only userEnteredValue)")
    if ("start" in spec) == ("range" in spec):
        raise _Refused("exactly one of start and range must be set")
    area = as_object(spec.get("start") or spec.get("range"))
    sheet = _sheet_by_id(book, area.get("sheetId", 0))
    if "start" in spec:
        r0, c0 = int(area.get("rowIndex", 0)), int(area.get("columnIndex", 0))
        r1, c1 = r0, c0  # nothing beyond the rows is cleared
    else:
        r0, c0 = int(area.get("startRowIndex", 0)), int(area.get("startColumnIndex", 0))
        r1 = int(area.get("endRowIndex", sheet.row_count))
        c1 = int(area.get("endColumnIndex", sheet.col_count))
    rows = [as_object(row).get("values") or [] for row in spec.get("rows") or []]
    if rows and (r0 + len(rows) > sheet.row_count
                 or c0 + max(map(len, rows)) > sheet.col_count):
        raise _Refused(f"the rows reach past the grid of sheet {sheet.sheet_id} "
                       f"({sheet.row_count} rows, {sheet.col_count} columns)")
    for r in range(r0, min(r1, sheet.row_count)):
        for c in range(c0, min(c1, sheet.col_count)):
            if sheet.get(r, c) is not None:
                sheet.set(r, c, None)
    for i, row in enumerate(rows):
        for j, data in enumerate(row):
            sheet.set(r0 + i, c0 + j, _entered(as_object(data).get("userEnteredValue")))
    for row in sheet.rows:  # kept ragged, as the API shows them
        while row and row[-1] in (None, ""):
            row.pop()
    while sheet.rows and not sheet.rows[-1]:
        sheet.rows.pop()
    return {}


def _entered(value: Any) -> Cell:
    """An ExtendedValue as stored: text stays text (never a formula), numbers and
    booleans are typed; formulas and errors are not emulated."""
    if value is None:
        return None
    spec = as_object(value)
    if len(spec) != 1:
        raise _Refused(f"userEnteredValue must hold exactly one value, not {spec!r}")
    (kind, v), = spec.items()
    if kind == "stringValue":
        return str(v) or None
    if kind == "numberValue" and isinstance(v, int | float) and not isinstance(v, bool):
        return Typed(float(v))
    if kind == "boolValue" and isinstance(v, bool):
        return Typed(v)
    raise _Refused(f"userEnteredValue.{kind} = {v!r} is not emulated")


HANDLERS: dict[str, Callable[[Spreadsheet, dict[str, Any]], dict[str, Any]]] = {
    "updateCells": update_cells,
    "appendDimension": append_dimension,
    "insertDimension": insert_dimension,
    "deleteDimension": delete_dimension,
    "sortRange": sort_range,
    "updateSheetProperties": update_sheet_properties,
    "updateSpreadsheetProperties": update_spreadsheet_properties,
    "addSheet": add_sheet,
    "deleteSheet": delete_sheet,
}


class _Refused(Exception):
    """A spreadsheets.batchUpdate request the API refuses (400, with its index)."""


def _sheet_by_id(book: Spreadsheet, sheet_id: Any) -> Sheet:
    for sheet in book.sheets:
        if sheet.sheet_id == sheet_id:
            return sheet
    raise _Refused(f"No grid with id: {sheet_id}")


def _dimension(value: Any) -> str:
    if value not in ("ROWS", "COLUMNS"):
        raise _Refused(f"dimension must be ROWS or COLUMNS, not {value!r}")
    return str(value)


def _count(value: Any) -> int:
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise _Refused(f"{value!r} is not a count") from None
    if count < 0:
        raise _Refused(f"{count} is not a count")
    return count


def _dimension_range(book: Spreadsheet, value: Any) -> tuple[Sheet, str, int, int]:
    spec = as_object(value)
    sheet = _sheet_by_id(book, spec.get("sheetId", 0))
    start, end = _count(spec.get("startIndex", 0)), _count(spec.get("endIndex", 0))
    if end <= start:
        raise _Refused(f"range.endIndex ({end}) must be after range.startIndex ({start})")
    return sheet, _dimension(spec.get("dimension")), start, end


class _FieldMask:
    """A request's ``fields``: comma-separated paths (``a.b`` or ``a/b``); ``*`` is all."""

    def __init__(self, text: Any, props: dict[str, Any]) -> None:
        paths = {p.strip().replace("/", ".") for p in str(text or "").split(",") if p.strip()}
        if "*" in paths:
            paths = set(_paths(props))
        self.paths = paths

    def wants(self, path: str) -> bool:
        return any(path == p or path.startswith(p + ".") for p in self.paths)

    def unknown(self, known: set[str], skip: frozenset[str] | set[str] = frozenset()
                ) -> str | None:
        for path in sorted(self.paths - set(skip)):
            if not any(k == path or k.startswith(path + ".") for k in known):
                return path
        return None


def _paths(props: dict[str, Any], prefix: str = "") -> list[str]:
    found = []
    for key, value in props.items():
        path = prefix + key
        found.extend(_paths(value, path + ".") if isinstance(value, dict) else [path])
    return found
