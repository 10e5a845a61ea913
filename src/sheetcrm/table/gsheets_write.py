"""Placing a Google Sheets write by key, and checking it landed.

Rows are never addressed by the position seen at read time: the key column is
re-read right before writing and every update goes to the row that holds its key
*then*. The API has no conditional write, so a sort, insert or delete between that
re-read and the ``batchUpdate`` would still put cells in another customer's row. So
the key and written columns are read again right after writing. If the keys (and
columns) are where they were, every cell landed and nothing more happens. Otherwise
a customer whose cells are not in its row now gets them written there, and a row
that holds a value this write sent to someone else gets back what it held before
(known from the re-read; a row that appeared meanwhile is cleared). The table
repeats that a bounded number of times; rows that keep moving end in a BackendError.
Developer metadata would move with inserted and deleted rows, but not with a sort
(which moves cell values, not rows), so it cannot replace the check. Keys that
vanished or now appear twice are reported and not written.

Nothing here talks to the API (``gsheets.py`` does): a ``Layout`` is what one read
found, ``place`` makes the ``Plan``, ``check_rows`` compares a later read with it,
and ``vertical_runs``/``bodies`` turn cells into ``values.batchUpdate`` bodies (runs
of one column, short gaps bridged with JSON nulls that the API skips, UTF-8 rather
than ``\\u`` escapes). A1 notation comes from ``gspread.utils``: ``'title'!A1:B2``
with quotes doubled inside titles (Korean titles work once quoted).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field

from gspread.utils import absolute_range_name, rowcol_to_a1

from sheetcrm.model import CellUpdate, WriteReport
from sheetcrm.table.base import match_rows

MAX_CELL_CHARS = 50_000  # the API refuses the whole batch if one cell is longer
#: Skipped rows (JSON null) that a write range may bridge rather than start a new
#: range: a null costs 7 bytes, a new range about 50.
GAP_FILL = 8
_BODY_HEAD = b'{"valueInputOption":"RAW","data":['
_BODY_TAIL = b"]}"


# --------------------------------------------------------------------------- A1


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    return rowcol_to_a1(1, index + 1)[:-1]


def a1(title: str, ref: str = "") -> str:
    """``'title'!ref`` (or the whole sheet), quotes in the title doubled."""
    return absolute_range_name(title, ref or None)


# --------------------------------------------------------------------------- plans


@dataclass
class Layout:
    """The header, key column and written columns as read at one moment."""

    header: list[str]
    keys: list[str]  # key cell of each row after the header row, in sheet order
    cells: dict[str, list[str]]  # written column name -> its cells below the header
    positions: dict[str, int]  # 0-based column of the key and written columns found
    columns: int  # grid width now

    @property
    def height(self) -> int:
        """Rows below the header that hold a key or a written cell."""
        return max([len(self.keys), *map(len, self.cells.values())])

    def cell(self, name: str, index: int) -> str:
        column = self.cells.get(name, [])
        return column[index] if index < len(column) else ""


@dataclass
class Plan:
    """One write as planned from the read right before it, and what checking it needs."""

    names: list[str]  # the written columns, in order of first appearance
    positions: dict[str, int]  # their columns (and the key's) when planned
    before: Layout  # the rows as read right before the write
    row_of: dict[str, int] = field(default_factory=dict)  # key on one row then -> its index
    shared: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # blank or repeated
    # key -> column -> every cell its rows held then
    cells: dict[tuple[int, int], str] = field(default_factory=dict)  # (row, column) -> value
    intended: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> column -> value
    sent: dict[str, set[str]] = field(default_factory=dict)  # column -> values sent to rows

    def held(self, key: str, name: str) -> Collection[str]:
        """What the rows of ``key`` held in column ``name`` right before the write."""
        index = self.row_of.get(key)
        if index is not None:
            return (self.before.cell(name, index),)
        return self.shared.get(key, {}).get(name, ())

    def restore(self, key: str, name: str) -> str:
        """What a row of ``key`` gets back: its cell before the write, if it had one row."""
        index = self.row_of.get(key)
        return self.before.cell(name, index) if index is not None else ""


@dataclass
class Run:
    """Consecutive rows of one column to write; None cells are skipped by the API."""

    column: int
    first: int  # 1-based sheet row
    values: list[str | None] = field(default_factory=list)



def written_columns(updates: list[CellUpdate]) -> list[str]:
    """The columns the updates name, in order of first appearance."""
    return list(dict.fromkeys(name for u in updates if (name := u.column.strip())))


def place(layout: Layout, key_column: str, updates: list[CellUpdate], columns: dict[str, int],
          header_row: int, report: WriteReport) -> Plan:
    """Put every update on the one row that holds its key in ``layout``.

    ``columns`` gives each written column's position (appended ones included). What
    each row held is kept for the check after the write; missing and repeated keys go
    to ``report``, with the cells and rows to write.
    """
    names = written_columns(updates)
    plan = Plan(names, {name: columns[name] for name in names}
                | {key_column: layout.positions[key_column]}, layout)
    by_key = rows_by_key(layout)
    for key, rows in by_key.items():
        if key and len(rows) == 1:
            plan.row_of[key] = rows[0]
        else:
            plan.shared[key] = {name: {layout.cell(name, i) for i in rows} for name in names}
    for index, update in match_rows(updates, by_key, report):
        name, value = update.column.strip(), fit(update.value)
        plan.cells[(header_row + 1 + index, columns[name])] = value
        plan.intended.setdefault(update.key.strip(), {})[name] = value
        plan.sent.setdefault(name, set()).add(value)
    report.cells_written = len(plan.cells)
    report.rows_written = len({row for row, _ in plan.cells})
    return plan


def positions(header: list[str], names: list[str]) -> dict[str, int]:
    """The first column of each name that is in the header."""
    found: dict[str, int] = {}
    for column, cell in enumerate(header):
        if cell in names:
            found.setdefault(cell, column)
    return found


@dataclass
class Check:
    """What the read right after a write found."""

    fixes: dict[tuple[int, int], str]  # (row, column) -> value that belongs there
    moved: list[str]  # keys of the rows those fixes are for
    missing: list[str]  # written keys on no row now
    ambiguous: list[str]  # written keys on several rows now


def rows_by_key(layout: Layout) -> dict[str, list[int]]:
    """Row indexes of each key (blank too) among the rows read."""
    rows: dict[str, list[int]] = defaultdict(list)
    for index, key in enumerate(layout.keys):
        rows[key].append(index)
    rows[""].extend(range(len(layout.keys), layout.height))  # written cells, no key
    return dict(rows)


def check_rows(now: Layout, plan: Plan, header_row: int) -> Check:
    """Compare every row's written columns with what belongs there.

    A row whose key was written and is on that row alone must hold exactly its
    update. Any other row must not hold a value this write sent into that column
    unless that row held it before or it is its own update: else it received another
    row's cells, and gets back what it held before the write ("" for a row that was
    not there then). Edits to other values are left alone.
    """
    height = now.height
    keys = now.keys + [""] * (height - len(now.keys))
    by_key = rows_by_key(now)
    columns = [(name, now.positions[name], now.cells.get(name, []), plan.sent.get(name, set()))
               for name in plan.names]
    fixes: dict[tuple[int, int], str] = {}
    moved: dict[str, None] = {}
    nothing: dict[str, str] = {}
    for index, key in enumerate(keys):
        own = plan.intended.get(key, nothing) if key else nothing
        alone = own is not nothing and len(by_key[key]) == 1
        for name, column, cells, sent in columns:
            value = cells[index] if index < len(cells) else ""
            want = own.get(name) if alone else None
            if want is None:
                if (value not in sent or value == own.get(name)
                        or value in plan.held(key, name)):
                    continue
                want = plan.restore(key, name)
            if value != want:
                fixes[(header_row + 1 + index, column)] = want
                if key:
                    moved[key] = None
    return Check(fixes, list(moved), [key for key in plan.intended if key not in by_key],
                 [key for key in plan.intended if len(by_key.get(key, ())) > 1])


def fit(value: str) -> str:
    """A value the API accepts: one over 50,000 characters would fail the whole batch."""
    return value if len(value) <= MAX_CELL_CHARS else value[: MAX_CELL_CHARS - 1] + "…"


def vertical_runs(cells: dict[tuple[int, int], str]) -> list[Run]:
    """Cells grouped into vertical runs, bridging short gaps with skipped (None) cells."""
    by_column: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for (row, column), value in cells.items():
        by_column[column].append((row, value))
    runs: list[Run] = []
    for column in sorted(by_column):
        run: Run | None = None
        for row, value in sorted(by_column[column]):
            if run is None or row - (run.first + len(run.values)) > GAP_FILL:
                run = Run(column, row)
                runs.append(run)
            run.values.extend([None] * (row - run.first - len(run.values)))
            run.values.append(value)
    return runs


def bodies(runs: list[Run], title: str, limit: int,
           others: Mapping[str, list[Run]] | None = None) -> Iterator[bytes]:
    """values.batchUpdate bodies of at most about ``limit`` bytes (one, unless huge).

    ``others`` adds runs in other tabs (the rule tabs' ``상태`` cells) to the same
    bodies. Each run is serialised once; a run that does not fit in the current body
    is cut at a row boundary, and the rest starts the next body.
    """
    parts: list[bytes] = []
    size = len(_BODY_HEAD) + len(_BODY_TAIL)
    placed = [(title, run) for run in runs]
    placed += [(tab, run) for tab, tab_runs in (others or {}).items() for run in tab_runs]
    for where, run in placed:
        overhead = 80 + 2 * len(where.encode())  # the range, its key and majorDimension
        start, pending = 0, overhead
        for index, value in enumerate(run.values):
            cost = 7 if value is None else 6 + (len(value) if value.isascii()
                                                else len(value.encode()))
            if size + pending + cost > limit and (index > start or parts):
                if index > start:
                    parts.append(_piece(where, run, start, index))
                yield _BODY_HEAD + b",".join(parts) + _BODY_TAIL
                parts, size = [], len(_BODY_HEAD) + len(_BODY_TAIL)
                start, pending = index, overhead
            pending += cost
        part = _piece(where, run, start, len(run.values))
        parts.append(part)
        size += len(part) + 1
    if parts:
        yield _BODY_HEAD + b",".join(parts) + _BODY_TAIL


def _piece(title: str, run: Run, start: int, end: int) -> bytes:
    """One ValueRange (rows ``start:end`` of a run) as UTF-8 JSON; null cells are skipped."""
    first, last = run.first + start, run.first + end - 1
    cells = f"{rowcol_to_a1(first, run.column + 1)}:{rowcol_to_a1(last, run.column + 1)}"
    value_range = {"range": a1(title, cells),
                   "majorDimension": "ROWS",
                   "values": [[value] for value in run.values[start:end]]}
    return json.dumps(value_range, ensure_ascii=False, separators=(",", ":")).encode()
