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
from sheetcrm.fields import parse_column, share_repeats
from sheetcrm.i18n import _
from sheetcrm.model import ALL_READ, BLOCK_ROWS, NO_ERRORS, Record, RowProblem, Snapshot, TypedRows


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


def read_records(snapshot: Snapshot, config: Config, *, let_go: bool = False) -> TypedRows:
    """Type every row. Raises ConfigError when the header does not fit the config.

    With ``let_go`` the snapshot's rows are taken as they are typed, a block at a time
    (the caller is done with them; rows still to be parsed are parsed a block at a
    time too): the rows as read and the records made of them are then never both
    whole in memory, which at 200k rows is the difference of the rows' ~170 MB.
    """
    header = snapshot.header
    problems = header_problems(header, config)
    if problems:
        raise ConfigError(_("{source}: {problems}. Header is: {header}",
                            source=snapshot.source or _("table"), problems="; ".join(problems),
                            header=", ".join(repr(h) for h in header)))
    index = {name: i for i, name in enumerate(header) if name}
    owned_idx = [(col, index.get(col)) for col in config.writeback.columns()]
    made = _Making(config, index, owned_idx)
    for rows, lines in snapshot.blocks(BLOCK_ROWS, let_go=let_go):
        made.block(rows, lines)
    missing = [col for col, i in owned_idx if i is None]
    return made.finish(missing)


class _Making:
    """Records made block by block of rows: each block typed column by column (one call
    per field and distinct cell, ``fields.parse_column``; a column that fails is re-done
    cell by cell to collect its errors). A key on several rows is known only once every
    block is typed: ``finish`` takes those rows out."""

    def __init__(self, config: Config, index: dict[str, int],
                 owned_idx: list[tuple[str, int | None]]) -> None:
        self.config, self.owned_idx = config, owned_idx
        self.key_i = index[config.key_column]
        self.parsers = [(name, spec.parser(name, config.tz), index[spec.column], spec.type)
                        for name, spec in config.fields.items()]
        self.values_of = _dicts_sharing_keys(list(config.fields))
        self.cells_of = _dicts_sharing_keys([col for col, _i in owned_idx])
        self.records: list[Record] = []
        self.bad: list[RowProblem] = []
        self.key_counts: Counter[str] = Counter()

    def block(self, rows: list[list[str]], lines: Sequence[int]) -> None:
        shortest = min(map(len, rows), default=0)
        keys = [cell.strip() for cell in _column(rows, self.key_i, shortest)]
        self.key_counts.update(keys)
        columns = []
        cell_errors: dict[int, dict[str, str]] = {}  # row -> field -> why it could not be read
        for name, parse, i, type_ in self.parsers:
            cells = _column(rows, i, shortest)
            try:
                columns.append(parse_column(parse, cells, type_))
            except CellError:
                columns.append(_parse_cells(cells, parse, cell_errors, name))
        blank = [""] * len(rows)
        # The writeback cells repeat (a few sets of tags, flow states entered together).
        owned_columns = [share_repeats(_column(rows, i, shortest)) if i is not None else blank
                         for _col, i in self.owned_idx]
        owned_rows: Iterable[tuple[str, ...]] = (
            zip(*owned_columns, strict=True) if owned_columns else repeat((), len(rows)))
        records, values_of, cells_of = self.records, self.values_of, self.cells_of
        for n, (key, line, typed, owned_cells) in enumerate(
                zip(keys, lines, zip(*columns, strict=True), owned_rows, strict=True)):
            if not key:
                self.bad.append(RowProblem(line, "", _(
                    "the key column {column} is blank", column=repr(self.config.key_column))))
                continue
            unknown = cell_errors.get(n)
            if unknown is None:  # most rows: every cell read
                records.append(Record(line, key, values_of(typed), cells_of(owned_cells),
                                      NO_ERRORS, (), ALL_READ))
            else:
                records.append(Record(line, key, values_of(typed), cells_of(owned_cells),
                                      list(unknown.values()), (), unknown))

    def finish(self, missing: list[str]) -> TypedRows:
        """The records, less the rows whose key is on several rows (problems, in row
        order with the blank keys)."""
        counts = self.key_counts
        if any(n > 1 for key, n in counts.items() if key):
            kept = []
            for rec in self.records:
                n = counts[rec.key]
                if n == 1:
                    kept.append(rec)
                    continue
                self.bad.append(RowProblem(
                    rec.line, rec.key, _("key {key} appears on {n} rows; none of them is acted "
                                         "on until the key is unique", key=repr(rec.key), n=n)))
            self.records = kept
            self.bad.sort(key=lambda p: p.line)
        return TypedRows(self.records, self.bad, missing)


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
