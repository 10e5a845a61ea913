"""One tab rewritten whole in one ``spreadsheets.batchUpdate``: the report's summary.

The values API cannot create a tab, and ``addSheet`` fails when the tab exists, so the
request is built from the spreadsheet's metadata (read just before): a missing tab is
added with an id chosen here (so the same batch can fill it), a tab too small for the
rows is grown, and one ``updateCells`` over the whole tab writes the rows and clears
every other value in it (the API clears the fields named in ``fields`` wherever the
rows do not reach). Text goes in as ``stringValue``, stored as text like a RAW write:
a value starting with ``=`` never becomes a formula. Formatting the operator gave the
tab is left alone.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

TabCell = str | int | float
MIN_ROWS, MIN_COLUMNS = 100, 10  # a new tab's grid, so the operator has room beside it


def _cell(value: TabCell | None) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, bool) or not isinstance(value, int | float):
        return {"userEnteredValue": {"stringValue": str(value)}}
    return {"userEnteredValue": {"numberValue": value}}


def _free_id(used: set[int], title: str) -> int:
    """A sheet id no tab has: from the title (stable), moved on past any taken one."""
    candidate = zlib.crc32(title.encode("utf-8")) % 2_000_000_000 + 1
    while candidate in used:
        candidate += 1
    return candidate


def tab_requests(metadata: Mapping[str, Any], title: str,
                 rows: Sequence[Sequence[TabCell | None]]) -> dict[str, Any]:
    """The batchUpdate body that makes tab ``title`` hold exactly ``rows``."""
    sheets = [s.get("properties", {}) for s in metadata.get("sheets", [])]
    height, width = len(rows), max((len(r) for r in rows), default=0)
    existing = next((p for p in sheets if p.get("title") == title), None)
    requests: list[dict[str, Any]] = []
    if existing is None:
        sheet_id = _free_id({int(p.get("sheetId", 0)) for p in sheets}, title)
        requests.append({"addSheet": {"properties": {
            "sheetId": sheet_id, "title": title,
            "gridProperties": {"rowCount": max(height, MIN_ROWS),
                               "columnCount": max(width, MIN_COLUMNS)}}}})
    else:
        sheet_id = int(existing.get("sheetId", 0))
        grid = existing.get("gridProperties", {})
        have_rows, have_columns = int(grid.get("rowCount", 0)), int(grid.get("columnCount", 0))
        if height > have_rows or width > have_columns:
            requests.append({"updateSheetProperties": {
                "properties": {"sheetId": sheet_id, "gridProperties": {
                    "rowCount": max(height, have_rows), "columnCount": max(width, have_columns)}},
                "fields": "gridProperties.rowCount,gridProperties.columnCount"}})
    requests.append({"updateCells": {
        "range": {"sheetId": sheet_id},
        "rows": [{"values": [_cell(v) for v in row]} for row in rows],
        "fields": "userEnteredValue"}})
    return {"requests": requests}


def tab_titles(metadata: Mapping[str, Any]) -> list[str]:
    """The titles of the tabs the spreadsheet's metadata lists, in their order."""
    return [str(s.get("properties", {}).get("title", "")) for s in metadata.get("sheets", [])]
