"""A1 ranges as the Sheets API reads and writes them.

Parsing (``parse_range``) and writing (``Bounds.a1``) sit together because the
API's answers echo ranges in its own form (``Sheet1!A1`` for one cell, ``D4:A1``
read as ``A1:D4``, titles quoted unless plain), and the two must agree. A range past
the sheet's grid is refused here, so every endpoint refuses it alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.support.emulators.sheets.faults import ApiError
from tests.support.emulators.sheets.grid import Sheet, Spreadsheet


def column_letters(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def column_index(letters: str) -> int:
    """A -> 0, AA -> 26."""
    index = 0
    for ch in letters.upper():
        index = index * 26 + ord(ch) - 64
    return index - 1


def quote_title(title: str) -> str:
    """A title as the API writes it in ranges: quoted unless a plain name that cannot be
    read as a cell (``Sheet1`` bare, ``'D3'`` and ``'고객 목록'`` quoted)."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", title) and not _CELL_LIKE.fullmatch(title):
        return title
    return "'" + title.replace("'", "''") + "'"


_CELL_LIKE = re.compile(r"[A-Za-z]{1,3}[0-9]+|[Rr][0-9]*[Cc][0-9]*")


REF = re.compile(r"([A-Za-z]*)(\d*)")


def unquote_title(title: str) -> str:
    if len(title) >= 2 and title[0] == title[-1] == "'":
        return title[1:-1].replace("''", "'")
    return title


@dataclass
class Bounds:
    """A parsed range: 0-based, end-exclusive; an open end stops at the grid."""

    sheet: Sheet
    r0: int
    c0: int
    r1: int
    c1: int

    def a1(self) -> str:
        """``Sheet1!A1:B2``; a single cell is ``Sheet1!A1``, as the API writes it."""
        start = f"{column_letters(self.c0)}{self.r0 + 1}"
        end = f"{column_letters(self.c1 - 1)}{self.r1}"
        ref = start if start == end else f"{start}:{end}"
        return f"{quote_title(self.sheet.title)}!{ref}"

    @property
    def single(self) -> bool:
        return self.r1 - self.r0 == 1 and self.c1 - self.c0 == 1


def parse_range(book: Spreadsheet, text: str) -> Bounds:
    """Parse an A1 range (``'title'!A1:B2``, ``title``, ``A:A``, ``2:2``, ``A2:C``)."""
    title, sep, ref = text.rpartition("!")
    if not sep:
        try:
            sheet = book.sheet(unquote_title(text))
            return Bounds(sheet, 0, 0, sheet.row_count, sheet.col_count)
        except KeyError:
            title, ref = "", text
    try:
        sheet = book.sheet(unquote_title(title)) if title else book.sheets[0]
    except (KeyError, IndexError):
        raise ApiError(400, f"Unable to parse range: {text}") from None
    first, _, last = ref.partition(":")
    start, end = REF.fullmatch(first), REF.fullmatch(last or first)
    if not first or start is None or end is None or not (start[0] and end[0]):
        raise ApiError(400, f"Unable to parse range: {text}")
    c0 = column_index(start[1]) if start[1] else 0
    r0 = int(start[2]) - 1 if start[2] else 0
    c1 = column_index(end[1]) + 1 if end[1] else sheet.col_count
    r1 = int(end[2]) if end[2] else sheet.row_count
    if end[1] and start[1] and c1 < c0 + 1:  # D4:A1 reads as A1:D4
        c0, c1 = c1 - 1, c0 + 1
    if end[2] and start[2] and r1 < r0 + 1:
        r0, r1 = r1 - 1, r0 + 1
    if r0 < 0 or r1 < r0 + 1 or c1 < c0 + 1:
        raise ApiError(400, f"Unable to parse range: {text}")
    if r1 > sheet.row_count or c1 > sheet.col_count:
        raise ApiError(400, f"Range ({text}) exceeds grid limits. Max rows: "
                            f"{sheet.row_count}, max columns: {sheet.col_count}")
    return Bounds(sheet, r0, c0, r1, c1)


def grid_range(sheet: Sheet, r0: int, c0: int, height: int, width: int) -> Bounds:
    """The ``height`` x ``width`` cells from row ``r0``, column ``c0``; past the grid, a 400."""
    bounds = Bounds(sheet, r0, c0, r0 + height, c0 + width)
    if bounds.r1 > sheet.row_count or bounds.c1 > sheet.col_count:
        raise ApiError(400, f"Range ({bounds.a1()}) exceeds grid limits. Max rows: "
                            f"{sheet.row_count}, max columns: {sheet.col_count}")
    return bounds
