"""Byte-exact edits of CSV text: records and fields found with their raw text.

Writing cannot round-trip through ``csv.writer``: that would re-quote every field,
normalise line endings and drop a BOM, and the operator would see their whole file
change in version control or in Excel's "file changed" prompt. Instead the raw text
is split into records and fields by a small tokenizer (two regexes that parse exactly
as ``csv.reader`` with the excel dialect does) which keeps every field's raw text, so
that only the spans of the cells that change are replaced. Every other byte stays.

This module works on decoded text only (no files, no updates): ``csv_stream`` hands
it the file a piece at a time (``whole_records`` says where the last whole record of
a piece ends, the rest waits for the next piece), ``csv_edit`` decides what changes,
and the edited text goes out in pieces (``pieces``), never built whole.
"""

from __future__ import annotations

import functools
import re
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain

_QUOTED = re.compile(r'"([^"]*(?:""[^"]*)*)"?(.*)', re.DOTALL)


class Edits:
    """Span replacements (start, end, new text), in text order.

    Two machine integers and a reference per edit, instead of a tuple and two int
    objects.
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

    def span(self, column: int) -> tuple[int, int]:
        """Start and end offsets of one field (``column < len(raws)``)."""
        start = self.start + sum(map(len, self.raws[:column])) + column
        return start, start + len(self.raws[column])

    def value(self, column: int) -> str:
        """The field's value as csv.reader reads it ("" past the end of the row)."""
        return unquote(self.raws[column]) if column < len(self.raws) else ""


def line_ending(text: str, at: int) -> str | None:
    """The line terminator at offset ``at`` (a record's end), None when there is none."""
    for eol in ("\r\n", "\n", "\r"):
        if text.startswith(eol, at):
            return eol
    return None


def cell_text(value: str, delimiter: str) -> str:
    """Raw field text for a value, quoted only when csv.reader would need it."""
    needs_quotes = (
        delimiter in value
        or '"' in value
        or "\r" in value
        or "\n" in value
        or value != value.strip()
    )
    return '"' + value.replace('"', '""') + '"' if needs_quotes else value


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
    return [Record(start, end, fields(text[start:end], delimiter))
            for start, end in _scan(text, delimiter)]


def whole_records(text: str, delimiter: str, final: bool) -> tuple[list[tuple[int, int]], int]:
    """The start and end of each record of ``text`` known to be whole, and where the
    text they cover ends.

    Unless ``text`` is the end of the file, its last record is left out: it may go on
    in the text still to come (a quoted field, a CR whose LF follows), so it is read
    again with that text. Every record before it ended at a terminator followed by
    more text, so reading further cannot change it.
    """
    bounds = list(_scan(text, delimiter))
    if final:
        return bounds, len(text)
    if not bounds:
        return [], 0
    return bounds[:-1], bounds[-1][0]


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


def fields(content: str, delimiter: str) -> list[str]:
    """The raw fields of one record's text (without its line terminator).

    A field that does not open with a quote runs to the next delimiter, so the
    record is split at the delimiters (at C speed) between the quoted fields, and
    only those are matched by the field regex.
    """
    if not content:
        return []
    if '"' not in content:
        return content.split(delimiter)
    opening = delimiter + '"'
    if content[0] != '"' and opening not in content:
        return content.split(delimiter)  # quotes only inside bare fields
    field_re = _patterns(delimiter)[1]
    raws: list[str] = []
    pos, size = 0, len(content)
    while True:
        if content.startswith('"', pos):
            match = field_re.match(content, pos)
            assert match is not None  # the field regex matches the empty string
            end = match.end()
            raws.append(content[pos:end])
            if end >= size:
                return raws
            pos = end + 1  # past the delimiter
            continue
        quoted = content.find(opening, pos)
        if quoted < 0:
            raws.extend(content[pos:].split(delimiter))
            return raws
        raws.extend(content[pos:quoted].split(delimiter))
        pos = quoted + 1


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
