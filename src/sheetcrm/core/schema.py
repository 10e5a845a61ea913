"""Turn a table snapshot (text cells) into typed customer records.

Parsing cells is where most real-world failures are, so every problem is caught
here and attached to its row: a bad cell marks that row (column, value, expected
form) and the other rows go on. The bad cell's field is *unknown* on that row
(``Record.unknown``): the rules and templates that read it wait, the rest of the row
is worked on as usual. Blank and duplicate keys make rows errors that are never
acted on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any

from sheetcrm.config import Config
from sheetcrm.errors import CellError, ConfigError
from sheetcrm.fields import parse_column
from sheetcrm.i18n import _
from sheetcrm.model import Record, RowProblem, Snapshot, TypedRows


def header_problems(header: list[str], config: Config) -> list[str]:
    """What makes a header unusable: missing field columns, blank or duplicate names."""
    problems = []
    counts = Counter(h for h in header if h)
    for name, n in counts.items():
        if n > 1:
            problems.append(_("column {column} appears {n} times in the header",
                              column=repr(name), n=n))
    for name, spec in config.fields.items():
        if spec.column not in counts:
            problems.append(_("column {column} (field {field}) is not in the header",
                              column=repr(spec.column), field=repr(name)))
    return problems


def read_records(snapshot: Snapshot, config: Config) -> TypedRows:
    """Type every row. Raises ConfigError when the header does not fit the config."""
    header = snapshot.header
    problems = header_problems(header, config)
    if problems:
        raise ConfigError(_("{source}: {problems}. Header is: {header}",
                            source=snapshot.source or _("table"), problems="; ".join(problems),
                            header=", ".join(repr(h) for h in header)))
    index = {name: i for i, name in enumerate(header) if name}
    key_i = index[config.key_column]
    owned = config.writeback.columns()
    owned_idx = [(col, index.get(col)) for col in owned]

    rows = snapshot.rows
    shortest = min(map(len, rows), default=0)
    keys = [cell.strip() for cell in _column(rows, key_i, shortest)]
    key_counts = Counter(keys)
    # Type column by column: one call per field and distinct cell, not per cell
    # (``fields.parse_column``); a column that fails is re-done cell by cell to collect
    # its errors.
    names = list(config.fields)
    columns = []
    cell_errors: dict[int, dict[str, str]] = {}  # row -> field -> why it could not be read
    for name, spec in config.fields.items():
        parse = spec.parser(name, config.tz)
        cells = _column(rows, index[spec.column], shortest)
        try:
            columns.append(parse_column(parse, cells, spec.type))
        except CellError:
            columns.append(_parse_cells(cells, parse, cell_errors, name))
    owned_columns = [_column(rows, i, shortest) if i is not None else None
                     for _col, i in owned_idx]

    # The row numbers the operator sees: the header is row 1 in Excel and Sheets.
    lines = snapshot.lines or range(2, len(rows) + 2)
    values_of, cells_of = _dicts_sharing_keys(names), _dicts_sharing_keys(owned)
    records: list[Record] = []
    bad: list[RowProblem] = []
    blank = [""] * len(rows)
    owned_rows: Iterable[tuple[str, ...]] = (
        zip(*[cells if cells is not None else blank for cells in owned_columns], strict=True)
        if owned_columns else repeat((), len(rows)))
    for n, (key, typed, owned_cells) in enumerate(zip(keys, zip(*columns, strict=True),
                                                      owned_rows, strict=True)):
        line = lines[n]
        if not key:
            bad.append(RowProblem(line, "", _("the key column {column} is blank",
                                                     column=repr(config.key_column))))
            continue
        if key_counts[key] > 1:
            bad.append(RowProblem(
                line, key, _("key {key} appears on {n} rows; none of them is acted on "
                             "until the key is unique", key=repr(key), n=key_counts[key])))
            continue
        unknown = cell_errors.get(n)
        if unknown is None:  # most rows: every cell read
            records.append(Record(line, key, values_of(typed), cells_of(owned_cells), [], (),
                                  {}))
        else:
            records.append(Record(line, key, values_of(typed), cells_of(owned_cells),
                                  list(unknown.values()), (), unknown))
    missing = [col for col, i in owned_idx if i is None]
    return TypedRows(records, bad, missing)


def _dicts_sharing_keys(names: list[str]) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """``make(values)``: the dict ``names`` -> ``values``, sharing its key table with
    every other dict ``make`` returns.

    Every record has a dict of the same field names (and one of the same writeback
    columns): 200k rows of 13 fields took 93 MB as plain dicts. CPython stores the
    attribute dicts of one class's instances as one shared key table plus each
    instance's values (PEP 412), which is less than half the size. The dicts are
    plain dicts in every other way; one that gets a key of its own stops sharing.
    """
    holder = type("RowValues", (), {})

    def make(values: Sequence[Any]) -> dict[str, Any]:
        made: dict[str, Any] = holder().__dict__
        for name, value in zip(names, values, strict=True):
            made[name] = value
        return made

    return make


def _column(rows: list[list[str]], i: int, shortest: int) -> list[str]:
    """The cells of column ``i`` (a row that ends before it reads as blank there)."""
    if i < shortest:  # every row reaches it: picked at C speed
        return list(map(itemgetter(i), rows))
    return [row[i] if i < len(row) else "" for row in rows]


def _parse_cells(cells: list[str], parse: Callable[[str], Any],
                 cell_errors: dict[int, dict[str, str]], field: str) -> list[Any]:
    """Typed values of a column with a bad cell: that cell becomes None, its field
    unknown on its row."""
    values: list[Any] = []
    for n, cell in enumerate(cells):
        try:
            values.append(parse(cell))
        except CellError as exc:
            values.append(None)
            cell_errors.setdefault(n, {})[field] = str(exc)
    return values
