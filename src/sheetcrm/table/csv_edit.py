"""What a CSV write changes, decided record by record while the file goes by twice.

A write reads the file twice, a piece at a time (``csv_stream``): the first pass shows
every record as csv.reader parses it (``see``), and the change works out which row
holds each update's key and how many cells would change, so the report and "is there
anything to write?" are known before a byte is written; the second pass, writing the
new file, asks which cells of each record change (``cells``) and splices only those
(``row_edits``). Neither pass keeps a record once it has gone by.

At 200k rows what a change keeps must stay small: instead of a dict from each key to
its row (a string and an int object per row), the updates are sorted by key once and
a key is found by bisection in the sorted distinct keys; what is known of each key
(the record holding it, the cells it changes) is a machine integer in an array.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from array import array
from bisect import bisect_left
from collections.abc import Callable, Collection

from sheetcrm.errors import BackendError
from sheetcrm.i18n import _
from sheetcrm.model import CellUpdate, WriteReport
from sheetcrm.table.base import column_positions, matched_rows
from sheetcrm.table.csv_text import Record, cell_text

_AMBIGUOUS = -1  # in KeyedUpdates.holder: the key is on several records


class Change(ABC):
    """What one write does to the file's records; see the module docstring.

    ``see`` is given every record in order in the first pass (0 is the header), then
    ``settle`` once with the widest row; the second pass asks ``cells`` of each
    record past the header, in order, and adds ``header_tail`` and ``new_rows``.
    """

    def __init__(self, delimiter: str, codec: str, source: str) -> None:
        self.delimiter, self.codec, self.source = delimiter, codec, source
        self.header: list[str] = []  # the names, stripped
        self.header_fields = 0  # fields of the header record
        self.has_header = False  # an empty file has none
        self.report = WriteReport()
        self.added: list[str] = []  # columns to add past the widest row
        self.width = 0

    def see_header(self, row: list[str]) -> None:
        """The header record, as csv.reader gives it."""
        self.header = [name.strip() for name in row]
        self.header_fields = len(row)
        self.has_header = True

    @abstractmethod
    def see(self, number: int, row: list[str]) -> None:
        """Record ``number`` (1 and on) as csv.reader gives it (first pass)."""

    @abstractmethod
    def settle(self, width: int) -> bool:
        """The first pass is over, ``width`` the most fields in a record: fill the
        report and say whether any byte of the file changes."""

    @abstractmethod
    def cells(self, number: int) -> dict[int, str] | None:
        """The new values of record ``number`` by column (second pass); None when
        nothing is set in it. A value equal to the cell's is left alone."""

    def new_rows(self) -> list[dict[int, str]]:
        """The cells of each row to add at the end of the file."""
        return []

    def confirm(self, number: int, record: Record) -> bool:
        """Whether record ``number``, as the second pass cut it out, is the one the
        first pass saw there (checked before its cells change).

        The passes parse alike (csv.reader, then ``csv_text``'s tokenizer, which
        mirrors it); where cells are about to be written, that is checked, so that a
        file the two ever read apart is refused rather than written on the wrong row.
        """
        return True

    def header_tail(self) -> str:
        """What goes after the header's last field: the added columns' names."""
        if not self.added:
            return ""
        names = [cell_text(self.storable(name), self.delimiter) for name in self.added]
        tail = [""] * (self.width - self.header_fields) + names
        return "".join(self.delimiter + text for text in tail)

    def appended_text(self, eol: str | None, newline_at_end: bool) -> str:
        """The added rows (``new_rows``) as text for the end of the file: in the
        header's line ending ``eol`` (CRLF when it has none), each ended by one when
        the file ends with one, else each after one (a missing last one stays missing).
        """
        rows = self.new_rows()
        if not rows:
            return ""
        eol = eol or "\r\n"
        width = self.width + len(self.added) if self.added else self.header_fields
        lines = [self.delimiter.join(
            cell_text(self.storable(cells.get(i, "")), self.delimiter)
            for i in range(max(width, max(cells) + 1))) for cells in rows]
        if newline_at_end:
            return "".join(line + eol for line in lines)
        return "".join(eol + line for line in lines)

    def storable(self, value: str) -> str:
        """The value as the file's encoding can hold it: unencodable characters -> '?'."""
        try:
            value.encode(self.codec)
        except UnicodeEncodeError:
            return value.encode(self.codec, errors="replace").decode(self.codec)
        return value


def _stripped_key(update: CellUpdate) -> str:
    return update.key.strip()


class KeyedUpdates(Change):
    """``CsvTable.write``: cell updates addressed by key, and rows to add.

    Keys match after stripping and a blank key matches nothing; a key on no record is
    reported missing, one on several ambiguous, and none of those records is written
    (``base.matched_rows``, as for the other backends; the records are kept here as
    arrays rather than a list of pairs).
    """

    def __init__(self, delimiter: str, codec: str, source: str, key_column: str,
                 updates: list[CellUpdate], append: Collection[str] = ()) -> None:
        super().__init__(delimiter, codec, source)
        self.key_column, self.updates = key_column.strip(), updates
        self.key_index = 0
        self.columns: dict[str, int] = {}  # column -> number (the header's, then added)
        # The updates sorted by key (stable: a cell's last update stays last), the
        # distinct keys, and where each key's updates start in the sorted list.
        self.order = sorted(updates, key=_stripped_key)
        self.keys: list[str] = []
        self.runs = array("i")
        for number, update in enumerate(self.order):
            key = update.key.strip()
            if not self.keys or key != self.keys[-1]:
                self.keys.append(key)
                self.runs.append(number)
        self.runs.append(len(self.order))
        # Per key: the record holding it (0 none yet, _AMBIGUOUS several), and the
        # cells it changes there. Per record: its key's number, -1 for none.
        self.holder = array("i", bytes(4 * len(self.keys)))
        self.changes = array("i", bytes(4 * len(self.keys)))
        self.key_of = array("i", [-1])  # the header holds no key
        self.adding = {key.strip() for key in append if key.strip()}
        self._rows: dict[str, dict[int, str]] = {}

    def _find(self, key: str) -> int:
        """The number of ``key`` among the distinct keys, -1 when no update has it."""
        at = bisect_left(self.keys, key)
        return at if at < len(self.keys) and self.keys[at] == key else -1

    def _rows_of(self, key: str) -> tuple[int, ...]:
        """The records holding ``key`` as ``base.matched_rows`` asks (two stand-ins for
        several: only their number matters there)."""
        holder = self.holder[self._find(key)]
        return (holder, holder) if holder == _AMBIGUOUS else (holder,) if holder else ()

    def _named(self, found: int) -> dict[str, str]:
        """The storable value of each column key number ``found`` sets (the last
        update of a cell wins), by column name."""
        return {update.column.strip(): self.storable(update.value)
                for update in self.order[self.runs[found]:self.runs[found + 1]]}

    def _no_key_column(self) -> BackendError:
        return BackendError(_("{source}: the key column {name!r} is not in the header",
                              source=self.source, name=self.key_column))

    def see_header(self, row: list[str]) -> None:
        super().see_header(row)
        if self.key_column not in self.header:
            raise self._no_key_column()
        self.key_index = self.header.index(self.key_column)
        for number, name in enumerate(self.header):
            if name:
                self.columns.setdefault(name, number)

    def see(self, number: int, row: list[str]) -> None:
        key = row[self.key_index].strip() if self.key_index < len(row) else ""
        found = self._find(key) if key else -1
        self.key_of.append(found)
        if self.adding and key in self.adding:
            self.adding.discard(key)  # a row holds it now: updated, not added
        if found < 0:
            return
        if self.holder[found]:
            self.holder[found] = _AMBIGUOUS
            return
        self.holder[found] = number
        changed = 0
        for name, value in self._named(found).items():
            column = self.columns.get(name, -1)  # a column to add is blank so far
            changed += value != (row[column] if 0 <= column < len(row) else "")
        self.changes[found] = changed

    def settle(self, width: int) -> bool:
        if not self.has_header:  # an empty file
            raise self._no_key_column()
        self.width = width
        self.columns, self.added = column_positions(self.header, width, self.updates,
                                                    self.source)
        report = self.report
        report.columns_added = self.added
        if self.holder and min(self.holder) <= 0:  # some key is on no row, or several
            for _pair in matched_rows(self.updates, self._rows_of, report):
                pass  # only the report's missing and ambiguous keys are wanted here
        for found, holder in enumerate(self.holder):
            if holder > 0 and self.changes[found]:
                report.cells_written += self.changes[found]
                report.rows_written += 1
        self._rows = self._adding(report)
        return bool(self.added or report.cells_written or self._rows)

    def _adding(self, report: WriteReport) -> dict[str, dict[int, str]]:
        """The cells of a row for each key to add that no row holds (no longer missing)."""
        rows: dict[str, dict[int, str]] = {}
        for update in self.updates:
            key = update.key.strip()
            if key in self.adding:
                rows.setdefault(key, {self.key_index: key})[
                    self.columns[update.column.strip()]] = update.value
        for key in sorted(self.adding - set(rows)):
            rows[key] = {self.key_index: key}
        report.missing_keys = [k for k in report.missing_keys if k.strip() not in self.adding]
        report.added_keys = list(rows)
        report.cells_written += sum(len(cells) for cells in rows.values())
        return rows

    def cells(self, number: int) -> dict[int, str] | None:
        found = self.key_of[number] if number < len(self.key_of) else -1
        if found < 0 or self.holder[found] != number or not self.changes[found]:
            return None
        return {self.columns[name]: value for name, value in self._named(found).items()}

    def new_rows(self) -> list[dict[int, str]]:
        return list(self._rows.values())

    def confirm(self, number: int, record: Record) -> bool:
        return record.value(self.key_index).strip() == self.keys[self.key_of[number]]


class ColumnValues(Change):
    """``CsvTable.write_column``: one column of each row set from the row's cells.

    ``value_for`` is asked once per row, in the first pass; the values that change a
    cell are kept for the second (the rule tabs it serves are small files).
    """

    def __init__(self, delimiter: str, codec: str, source: str, column: str,
                 value_for: Callable[[dict[str, str]], str | None]) -> None:
        super().__init__(delimiter, codec, source)
        self.column, self.value_for = column, value_for
        self.index = -1  # the column's number in the header, -1 until it is added
        self.values: dict[int, str] = {}  # record -> new value, where it changes

    def see_header(self, row: list[str]) -> None:
        super().see_header(row)
        name = self.column.strip()
        self.index = self.header.index(name) if name in self.header else -1

    def see(self, number: int, row: list[str]) -> None:
        cells = {name: row[i] if i < len(row) else "" for i, name in enumerate(self.header)
                 if name}
        value = self.value_for(cells)
        if value is None:
            return
        value = self.storable(value)
        if value != (row[self.index] if 0 <= self.index < len(row) else ""):
            self.values[number] = value

    def settle(self, width: int) -> bool:
        if not self.has_header:
            return False  # an empty file: no header to add a column to
        self.width = width
        probe = [CellUpdate("", self.column, "")]
        columns, self.added = column_positions(self.header, width, probe, self.source)
        self.index = columns[self.column.strip()]
        self.report = WriteReport(columns_added=self.added, cells_written=len(self.values),
                                  rows_written=len(self.values))
        return bool(self.added or self.values)

    def cells(self, number: int) -> dict[int, str] | None:
        value = self.values.get(number)
        return None if value is None else {self.index: value}


def row_edits(record: Record, cells: dict[int, str], delimiter: str
              ) -> list[tuple[int, int, str]]:
    """Span replacements for one record, in text order, plus the fields added past
    its end (blank up to the first one set); a cell already holding its value is
    left alone."""
    edits: list[tuple[int, int, str]] = []
    appended: dict[int, str] = {}
    fields = len(record.raws)
    for column in sorted(cells):
        value = cells[column]
        if record.value(column) == value:
            continue
        if column < fields:
            start, end = record.span(column)
            edits.append((start, end, cell_text(value, delimiter)))
        else:
            appended[column] = cell_text(value, delimiter)
    if appended:
        tail = [appended.get(c, "") for c in range(fields, max(appended) + 1)]
        edits.append((record.end, record.end, "".join(delimiter + t for t in tail)))
    return edits
