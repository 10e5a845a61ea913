"""Byte-exact edits of CSV text: only the cells that change are rewritten.

Writing cannot round-trip through ``csv.writer``: that would re-quote every field,
normalise line endings and drop a BOM, and the operator would see their whole file
change in version control or in Excel's "file changed" prompt. Instead the raw text
is split into records and fields by a small tokenizer (two regexes that parse exactly
as ``csv.reader`` with the excel dialect does) which keeps every field's raw text,
and only the spans of the cells that change are replaced. Every other byte stays.

This module works on decoded text only (no files): ``sheetcrm.table.csv`` reads and
decodes the file, hands the text to ``Rewrite``, and writes the result out piece by
piece (``pieces``). A sheet of 200k rows is a few million fields, so nothing here keeps
every field of the file at once: a record is kept as its two offsets (``Bounds``) and
split into fields when it is looked at, and the new text is never built whole.
"""

from __future__ import annotations

import functools
import re
from array import array
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import chain, groupby
from operator import itemgetter

from sheetcrm.errors import BackendError
from sheetcrm.i18n import _
from sheetcrm.model import CellUpdate, WriteReport
from sheetcrm.table.base import column_positions, match_rows

_QUOTED = re.compile(r'"([^"]*(?:""[^"]*)*)"?(.*)', re.DOTALL)



class Edits:
    """Span replacements (start, end, new text), in text order.

    A run's write edits a few cells of every row: two machine integers and a
    reference each, instead of a tuple and two int objects.
    """

    __slots__ = ("ends", "starts", "texts")

    def __init__(self, edits: Iterable[tuple[int, int, str]] = ()) -> None:
        self.starts, self.ends = array("q"), array("q")
        self.texts: list[str] = []
        self.extend(edits)

    def append(self, start: int, end: int, text: str) -> None:
        self.starts.append(start)
        self.ends.append(end)
        self.texts.append(text)

    def extend(self, edits: Iterable[tuple[int, int, str]]) -> None:
        for start, end, text in edits:
            self.append(start, end, text)

    def __len__(self) -> int:
        return len(self.texts)

    def __iter__(self) -> Iterator[tuple[int, int, str]]:
        return zip(self.starts, self.ends, self.texts, strict=True)


class _RowsByKey(Mapping[str, list[int]]):
    """Key -> the records holding it, for ``match_rows``: a record number where the
    key is on one row (nearly always), a list only where it is on several."""

    def __init__(self) -> None:
        self._rows: dict[str, int | list[int]] = {}

    def add(self, key: str, number: int) -> None:
        held = self._rows.get(key)
        if held is None:
            self._rows[key] = number
        elif isinstance(held, int):
            self._rows[key] = [held, number]
        else:
            held.append(number)

    def __getitem__(self, key: str) -> list[int]:
        held = self._rows[key]
        return [held] if isinstance(held, int) else held

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


class Bounds:
    """Where each record of the text starts and ends, and the most fields in one.

    Two machine integers per record instead of a ``Record`` with a string per field:
    the fields are split again (``record``) only for the records looked at. ``visit``
    sees each record's fields (its number, 0 for the header, and the raw fields) while
    they are split anyway, to take what it needs of them (the keys).
    """

    def __init__(self, text: str, delimiter: str,
                 visit: Callable[[int, list[str]], None] | None = None) -> None:
        self.text, self.delimiter = text, delimiter
        self.starts, self.ends = array("q"), array("q")
        self.width = 0
        for n, (start, end) in enumerate(_scan(text, delimiter)):
            self.starts.append(start)
            self.ends.append(end)
            if visit is not None:
                raws = _fields(text[start:end], delimiter)
                visit(n, raws)
                self.width = max(self.width, len(raws))
                continue
            content = text[start:end]
            if not content:
                continue
            fields = (content.count(delimiter) + 1 if '"' not in content
                      else len(_split_fields(content, delimiter, _patterns(delimiter)[1])))
            self.width = max(self.width, fields)

    def __len__(self) -> int:
        return len(self.starts)

    def record(self, n: int) -> Record:
        """Record ``n`` (0 is the header) with its fields."""
        start, end = self.starts[n], self.ends[n]
        return Record(start, end, _fields(self.text[start:end], self.delimiter))


class Rewrite:
    """One pass of applying updates to the decoded text of the file."""

    def __init__(self, text: str, delimiter: str, codec: str, source: str) -> None:
        self.text = text
        self.delimiter = delimiter
        self.codec = codec
        self.source = source
        first = next(_scan(text, delimiter), None)
        self.header = ([unquote(raw).strip() for raw in _fields(text[first[0]:first[1]],
                                                                delimiter)]
                       if first is not None else [])
        self._bounds: Bounds | None = None

    @property
    def records(self) -> Bounds:
        """Every record's bounds (one scan of the text, made when first needed)."""
        if self._bounds is None:
            self._bounds = Bounds(self.text, self.delimiter)
        return self._bounds

    def _rows(self) -> Iterator[tuple[int, Record]]:
        """Every record past the header, with its number, split one at a time."""
        for n in range(1, len(self.records)):
            yield n, self.records.record(n)

    def apply(self, key_column: str, updates: list[CellUpdate],
              append: Collection[str] = ()) -> tuple[Edits | None, WriteReport]:
        """Return the edits to the text (None if nothing changes) and what was done.

        Keys in ``append`` that no row holds get a new row at the end of the text.
        """
        key_index = self._key_index(key_column)
        rows_by_key = self._scan_keys(key_index)
        # Operators type notes in unnamed columns past the header: a new column goes
        # past the widest row, so none of its cells lands on a note.
        width = self.records.width
        columns, added = column_positions(self.header, width, updates, self.source)
        report = WriteReport(columns_added=added)
        targets = self._targets(rows_by_key, updates, report)
        edits = Edits()
        if added:
            header = self.records.record(0)
            names = [self._cell_text(self._storable(name)) for name in added]
            tail = [""] * (width - len(header.raws)) + names
            edits.append(header.end, header.end, "".join(self.delimiter + t for t in tail))
        for index, matched in groupby(targets, key=itemgetter(0)):
            cells = {columns[update.column.strip()]: self._storable(update.value)
                     for _index, update in matched}  # the last update of a cell wins
            row_edits, changed = self._row_edits(self.records.record(index), cells)
            edits.extend(row_edits)
            report.cells_written += changed
            report.rows_written += 1 if changed else 0
        if append:
            header_width = width + len(added) if added else len(self.records.record(0).raws)
            rows = self._new_rows(key_index, columns, updates, append, report)
            if rows:
                edits.append(len(self.text), len(self.text),
                             self._append_text(rows, header_width))
        return (edits or None), report

    def apply_column(self, column: str, value_for: Callable[[dict[str, str]], str | None]
                     ) -> tuple[Edits | None, WriteReport]:
        """Set ``column`` of each row to ``value_for(its cells by header name)``, where
        that is not None (the column is added past the widest row when missing)."""
        if not self.records:
            return None, WriteReport()
        width = self.records.width
        probe = [CellUpdate("", column, "")]
        columns, added = column_positions(self.header, width, probe, self.source)
        index = columns[column.strip()]
        report = WriteReport(columns_added=added)
        edits = Edits()
        if added:
            header = self.records.record(0)
            tail = [""] * (width - len(header.raws)) + [self._cell_text(self._storable(column))]
            edits.append(header.end, header.end, "".join(self.delimiter + t for t in tail))
        for _n, record in self._rows():
            cells = {name: record.value(i) for i, name in enumerate(self.header) if name}
            value = value_for(cells)
            if value is None:
                continue
            row_edits, changed = self._row_edits(record, {index: self._storable(value)})
            edits.extend(row_edits)
            report.cells_written += changed
            report.rows_written += 1 if changed else 0
        return (edits or None), report

    def _new_rows(self, key_index: int, columns: dict[str, int], updates: list[CellUpdate],
                  append: Collection[str], report: WriteReport) -> dict[str, dict[int, str]]:
        """The cells of a row for each key to add that no row holds (no longer missing)."""
        present = {record.value(key_index).strip() for _n, record in self._rows()}
        adding = {key.strip() for key in append if key.strip()} - present
        rows: dict[str, dict[int, str]] = {}
        for update in updates:
            key = update.key.strip()
            if key in adding:
                rows.setdefault(key, {key_index: key})[columns[update.column.strip()]] = (
                    update.value)
        for key in sorted(adding - set(rows)):
            rows[key] = {key_index: key}
        report.missing_keys = [k for k in report.missing_keys if k.strip() not in adding]
        report.added_keys = list(rows)
        report.cells_written += sum(len(cells) for cells in rows.values())
        return rows

    def _append_text(self, rows: dict[str, dict[int, str]], header_width: int) -> str:
        """New records at the end, in the file's line ending, keeping a missing last one."""
        eol = _line_ending(self.text, self.records.ends[0])
        lines = []
        for cells in rows.values():
            count = max(header_width, max(cells) + 1)
            lines.append(self.delimiter.join(
                self._cell_text(self._storable(cells.get(i, ""))) for i in range(count)))
        if self.text.endswith(("\n", "\r")):
            return "".join(line + eol for line in lines)
        return "".join(eol + line for line in lines)

    def _key_index(self, key_column: str) -> int:
        """Column number of the key column; a missing one is a setup error."""
        name = key_column.strip()
        if name not in self.header:
            raise BackendError(_("{source}: the key column {name!r} is not in the header",
                                 source=self.source, name=name))
        return self.header.index(name)

    def _scan_keys(self, key_index: int) -> _RowsByKey:
        """Scan the records (``records``), noting which hold each key on the way."""
        rows_by_key = _RowsByKey()

        def note(number: int, raws: list[str]) -> None:
            if number and key_index < len(raws):  # record 0 is the header
                key = unquote(raws[key_index]).strip()
                if key:
                    rows_by_key.add(key, number)

        self._bounds = Bounds(self.text, self.delimiter, note)
        return rows_by_key

    def _targets(self, rows_by_key: _RowsByKey, updates: list[CellUpdate],
                 report: WriteReport) -> list[tuple[int, CellUpdate]]:
        """Each update with the record holding its key now, in record order (updates of
        one record in their order); fill missing/ambiguous."""
        matched = match_rows(updates, rows_by_key, report)
        matched.sort(key=itemgetter(0))  # stable: a cell's last update stays last
        return matched

    def _row_edits(
        self, record: Record, cells: dict[int, str]
    ) -> tuple[list[tuple[int, int, str]], int]:
        """Span replacements for one row, plus fields appended past its end."""
        edits: list[tuple[int, int, str]] = []
        appended: dict[int, str] = {}
        spans = record.spans()
        for column in sorted(cells):
            value = cells[column]
            if record.value(column) == value:
                continue
            if column < len(spans):
                start, end = spans[column]
                edits.append((start, end, self._cell_text(value)))
            else:
                appended[column] = self._cell_text(value)
        changed = len(edits) + len(appended)
        if appended:
            width = len(record.raws)
            tail = [appended.get(c, "") for c in range(width, max(appended) + 1)]
            edits.append((record.end, record.end, "".join(self.delimiter + t for t in tail)))
        return edits, changed

    def _storable(self, value: str) -> str:
        """The value as the file's encoding can hold it: unencodable characters -> '?'."""
        try:
            value.encode(self.codec)
        except UnicodeEncodeError:
            return value.encode(self.codec, errors="replace").decode(self.codec)
        return value

    def _cell_text(self, value: str) -> str:
        """Raw field text for a value, quoted only when csv.reader would need it."""
        needs_quotes = (
            self.delimiter in value
            or '"' in value
            or "\r" in value
            or "\n" in value
            or value != value.strip()
        )
        return '"' + value.replace('"', '""') + '"' if needs_quotes else value


@dataclass(frozen=True, slots=True)
class Record:
    """One CSV record: where it is in the text and the raw text of each field.

    The fields are contiguous, separated by one delimiter each, so a field's span
    follows from the lengths of the ones before it.
    """

    start: int  # offset of the first character
    end: int  # offset of the line terminator (len(text) when there is none)
    raws: list[str]  # raw field text, quotes included; [] for a blank line

    def spans(self) -> list[tuple[int, int]]:
        """Start and end offsets of every field in the text."""
        spans = []
        start = self.start
        for raw in self.raws:
            end = start + len(raw)
            spans.append((start, end))
            start = end + 1  # past the delimiter
        return spans

    def value(self, column: int) -> str:
        """The field's value as csv.reader reads it ("" past the end of the row)."""
        return unquote(self.raws[column]) if column < len(self.raws) else ""


def _line_ending(text: str, at: int) -> str:
    """The line terminator at offset ``at`` (the header's end); CRLF when there is none."""
    for eol in ("\r\n", "\n", "\r"):
        if text.startswith(eol, at):
            return eol
    return "\r\n"


@functools.lru_cache(maxsize=8)
def _patterns(delimiter: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Regexes for one record and one field, mirroring csv.reader (excel dialect).

    A field is either quoted (``""`` inside is a quote; text after the closing quote
    up to the next delimiter is kept literally, as csv.reader does when not strict;
    an unclosed quote runs to the end of the text) or bare up to a delimiter or
    newline. All quantifiers are greedy and the greedy path always matches, so the
    regex engine never backtracks into another parse.
    """
    d = re.escape(delimiter)
    field = rf'(?:"[^"]*(?:""[^"]*)*(?:"[^{d}\r\n]*)?|[^{d}\r\n]*)'
    record = rf"{field}(?:{d}{field})*(?P<eol>\r\n|\r|\n|\Z)"
    return re.compile(record), re.compile(field)


def split_records(text: str, delimiter: str) -> list[Record]:
    """Split text into records keeping raw spans; agrees with csv.reader's rows."""
    return [Record(start, end, _fields(text[start:end], delimiter))
            for start, end in _scan(text, delimiter)]


def _scan(text: str, delimiter: str) -> Iterator[tuple[int, int]]:
    """Each record's start and end (the offset of its line terminator), in order."""
    record_re = _patterns(delimiter)[0]
    expected = 0
    for match in record_re.finditer(text):
        start, end = match.start(), match.start("eol")
        if start != expected:  # cannot happen: every position starts a record
            raise AssertionError(f"CSV tokenizer skipped text at offset {expected}")
        expected = match.end()
        if start == match.end():  # the empty match at the end of the text
            continue
        yield start, end


def _fields(content: str, delimiter: str) -> list[str]:
    """The raw fields of one record's text (without its line terminator)."""
    if not content:
        return []
    if '"' not in content:
        return content.split(delimiter)
    return _split_fields(content, delimiter, _patterns(delimiter)[1])


def _split_fields(content: str, delimiter: str, field_re: re.Pattern[str]) -> list[str]:
    """Raw fields of one record that contains quotes (so may hold delimiters)."""
    raws: list[str] = []
    pos = 0
    while True:
        match = field_re.match(content, pos)
        assert match is not None  # the field regex matches the empty string
        raws.append(match.group())
        pos = match.end()
        if pos >= len(content):
            return raws
        pos += 1  # the delimiter


def unquote(raw: str) -> str:
    """A raw field's value: strip the quotes, undouble inner ones, keep trailing text."""
    if not raw.startswith('"'):
        return raw
    match = _QUOTED.fullmatch(raw)
    assert match is not None  # every string starting with a quote matches
    return match.group(1).replace('""', '"') + match.group(2)


def splice(text: str, edits: Iterable[tuple[int, int, str]]) -> str:
    """Replace each (start, end) span by its new text; edits are in text order."""
    return "".join(pieces(text, edits))


def pieces(text: str, edits: Iterable[tuple[int, int, str]], size: int = 1 << 16
           ) -> Iterator[str]:
    """The text with the edits made, in pieces of about ``size`` characters, so that
    the new text is never held whole (nor a long unchanged stretch copied at once)."""
    batch: list[str] = []
    held = 0
    pos = 0
    for start, end, new in chain(edits, [(len(text), len(text), "")]):
        while start - pos > size:  # a long stretch without edits: in slices
            if batch:
                yield "".join(batch)
                batch, held = [], 0
            yield text[pos:pos + size]
            pos += size
        batch.append(text[pos:start])
        batch.append(new)
        held += start - pos + len(new)
        pos = end
        if held >= size:
            yield "".join(batch)
            batch, held = [], 0
    if batch:
        yield "".join(batch)
