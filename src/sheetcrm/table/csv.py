"""CSV file backend: fast reads through the stdlib, byte-exact writes.

Reading goes through ``csv.reader`` because it runs at C speed and is the floor the
other backends are measured against.

Writing cannot round-trip through ``csv.writer``: that would re-quote every field,
normalise line endings and drop a BOM, and the operator would see their whole file
change in version control or in Excel's "file changed" prompt. Instead the raw text
is split into records and fields by a small tokenizer (two regexes that parse exactly
as ``csv.reader`` with the excel dialect does) which keeps every field's raw text,
and only the spans of the cells that change are replaced. Every other byte stays.

The operator may save the file while sheetcrm writes it, by renaming a new file over
it or by rewriting it in place. A check ("does it still hold what we read?") followed
by a rename always leaves a window in which such a save is lost. On Linux the new
file goes in by an atomic *exchange* instead (``renameat2(RENAME_EXCHANGE)``): the
file it displaces is then still there to look at, and if it is not exactly what the
update was based on, or another program still has it open for writing (a read lease
is refused then), it is the operator's save: it is swapped back in and the update is
redone on it. Nothing can land unseen between the look and the swap (should
sheetcrm be killed in between, what came out stays beside the file as
``.<name>.*.tmp``). Where the exchange is not available (other systems, filesystems
such as NFS) the check and ``os.replace`` remain, with their window of a few
microseconds. renameat2 is called
through ctypes because Python's ``os`` has no binding and the one PyPI wrapper
(``renameat2``, last released 2022) is not maintained.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import ctypes
import errno
import functools
import io
import os
import re
import signal
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from sheetcrm.config.table import CsvTableSettings
from sheetcrm.errors import BackendError, ConfigError
from sheetcrm.model import CellUpdate, Snapshot, WriteReport
from sheetcrm.table.base import TableContext, column_positions, match_rows

_MAX_ATTEMPTS = 5  # rewrites tried while the file keeps changing under us
_BUSY_PAUSE = 0.005  # seconds, times the attempt: a program is writing the file right now
_RENAME_EXCHANGE = 2  # <linux/fs.h>
_AT_FDCWD = -100
_FALLBACK_ENCODING = "cp949"  # Excel on Korean Windows; a superset of EUC-KR
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_QUOTED = re.compile(r'"([^"]*(?:""[^"]*)*)"?(.*)', re.DOTALL)


class CsvTable:
    """A customer table stored in one CSV file.

    ``encoding=None`` auto-detects: a UTF-8 BOM means UTF-8 with BOM, else strict
    UTF-8, else CP949. Writes keep the file's encoding, BOM, line endings and the
    quoting of every cell they do not change.
    """

    def __init__(
        self, path: Path | str, *, encoding: str | None = None, delimiter: str = ",",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if len(delimiter) != 1 or delimiter in '"\r\n':
            raise ConfigError(
                f"CSV delimiter must be one character other than a quote or a newline, "
                f"got {delimiter!r}"
            )
        self.path = Path(path)
        self.delimiter = delimiter
        self._requested = _normalise_encoding(encoding, self.path) if encoding else None
        self._encoding: str | None = None
        self.sleep = sleep  # the short pause while another program is writing the file
        #: Saves by another program that a write() ran into and redid its update on.
        self.concurrent_saves = 0
        #: Of those, saves that landed in the instant before the swap and were given back.
        self.saves_given_back = 0

    @classmethod
    def from_settings(cls, settings: CsvTableSettings, context: TableContext) -> CsvTable:
        """The table of ``[table] backend = "csv"``; ``path`` is relative to the config."""
        return cls(context.resolve(settings.path), encoding=settings.encoding,
                   delimiter=settings.delimiter)

    @property
    def encoding(self) -> str | None:
        """The codec found by the last read() or write(); ``utf-8-sig`` means a BOM."""
        return self._encoding

    def read(self) -> Snapshot:
        """Read header and non-blank rows. Raises BackendError when it cannot."""
        rows = self._parse(_read_bytes(self.path))
        if not rows:
            return Snapshot(header=[], rows=[], source=str(self.path))
        header = [name.strip() for name in rows[0]]
        body = [row for row in rows[1:] if any(map(str.strip, row))]
        return Snapshot(header=header, rows=body, source=str(self.path))

    def write(self, key_column: str, updates: list[CellUpdate]) -> WriteReport:
        """Apply ``updates`` to the rows holding their keys in the file as it is now.

        The file is re-read here, so edits saved since read() are kept. If it changes
        again while we rewrite it (a save by rename or in place, even one landing in
        the instant before the new file goes in), the whole update is redone on the new
        content; the operator's save is never replaced by an older version.
        A column named in updates but missing from the header is added past the
        widest row (notes typed in unnamed columns stay where they are), even when
        none of its updates lands (the writeback column should exist from the first
        run on). Nothing is rewritten when no byte would change.
        """
        if not updates:
            return WriteReport()
        target = Path(os.path.realpath(self.path))  # replace the file, not a symlink
        busy = False
        try:
            for attempt in range(_MAX_ATTEMPTS):
                original, busy = _read_file(target)
                if busy:  # being saved in place right now: what we read may be half
                    self.concurrent_saves += 1
                    self.sleep(_BUSY_PAUSE * (attempt + 1))
                    continue
                try:
                    new, report = self._rewrite(original, key_column, updates)
                except BackendError:
                    if _read_file(target)[0] == original:
                        raise
                    self.concurrent_saves += 1  # a save cut short what we read
                    continue
                if new is None or self._replace_if_unchanged(target, original, new):
                    return report
        except OSError as exc:
            raise BackendError(_os_message(self.path, "cannot write", exc)) from exc
        why = " (another program has it open for writing)" if busy else ""
        raise BackendError(
            f"{self.path}: file keeps changing while sheetcrm writes it{why} "
            f"(gave up after {_MAX_ATTEMPTS} attempts); try again when it is not being saved"
        )

    def _before_replace(self, path: Path) -> None:
        """Hook called right before the concurrent-change check.

        Does nothing; tests override it (and ``_before_swap``) to simulate the
        operator saving the file at the worst possible moments.
        """

    def _before_swap(self, path: Path) -> None:
        """Hook called right before each swap (after the check found the file unchanged,
        and before each swap that gives an operator's save back)."""

    # -- internals -------------------------------------------------------------

    def _rewrite(
        self, original: bytes, key_column: str, updates: list[CellUpdate]
    ) -> tuple[bytes | None, WriteReport]:
        """New file content (None when nothing changes) and the report for it."""
        text = self._decode(original)
        codec = self._encoding
        assert codec is not None
        if not _is_utf8(codec) and text.encode(codec) != original:
            raise BackendError(f"{self.path}: {codec} does not round-trip; refusing to write")
        edit = _Rewrite(text, self.delimiter, codec, str(self.path))
        new_text, report = edit.apply(key_column, updates)
        return (None if new_text is None else new_text.encode(codec)), report

    def _parse(self, data: bytes) -> list[list[str]]:
        """Rows exactly as csv.reader gives them, with the first codec that decodes.

        Decoding while parsing (as open() does) is faster than decoding first and
        parsing a StringIO, and needs no separate trial decode.
        """
        # One long cell (a pasted text, an export) must not make the whole file
        # unreadable: the csv module refuses fields over 128 KiB unless told otherwise.
        csv.field_size_limit(max(csv.field_size_limit(), len(data) + 1))
        candidates = self._candidates(data)
        for codec in candidates:
            stream = io.TextIOWrapper(io.BytesIO(data), encoding=codec, newline="")
            try:
                rows = list(csv.reader(stream, delimiter=self.delimiter))
            except UnicodeDecodeError:
                continue
            except csv.Error as exc:
                raise BackendError(f"{self.path}: not valid CSV: {exc}") from exc
            self._encoding = codec
            return rows
        raise self._undecodable(candidates)

    def _decode(self, data: bytes) -> str:
        """Decode the file, remembering the codec (and BOM) so writes can keep them."""
        candidates = self._candidates(data)
        for codec in candidates:
            try:
                text = data.decode(codec)
            except UnicodeDecodeError:
                continue
            self._encoding = codec
            return text
        raise self._undecodable(candidates)

    def _candidates(self, data: bytes) -> list[str]:
        """Codecs to try, in order; ``utf-8-sig`` marks a BOM that writes must keep."""
        if self._requested and not _is_utf8(self._requested):
            return [self._requested]
        if data.startswith(codecs.BOM_UTF8):
            return ["utf-8-sig"]
        if self._requested:
            return ["utf-8"]
        if data.startswith(_UTF16_BOMS):
            raise BackendError(f"{self.path}: UTF-16 files are not supported; save as CSV UTF-8")
        if data.isascii() and self._encoding:
            # Pure ASCII fits any codec: keep the one seen before, so Korean written
            # into a CP949 file that happens to be all ASCII now stays CP949.
            return ["utf-8" if _is_utf8(self._encoding) else self._encoding]
        return ["utf-8", _FALLBACK_ENCODING]

    def _undecodable(self, candidates: list[str]) -> BackendError:
        tried = " or ".join(candidates)
        return BackendError(f"{self.path}: cannot decode as {tried}; set the encoding explicitly")

    def _replace_if_unchanged(self, target: Path, original: bytes, new: bytes) -> bool:
        """Atomically replace ``target`` with ``new`` unless it no longer holds ``original``.

        The content comparison (not mtime/size, whose granularity can hide a quick
        same-size save) decides; a False return makes write() redo the update. With
        the exchange, the file that came out is compared too, and put back if it is
        a save that landed after the check.
        """
        side: Path | None = _temp_copy(target, new)
        assert side is not None
        try:
            self._before_replace(target)
            current, busy = _read_file(target)
            if busy or current != original:
                self.concurrent_saves += 1
                return False
            self._before_swap(target)
            if not _exchange(side, target):
                os.replace(side, target)  # no exchange here: a save since the check is lost
                side = None
            else:
                out, side = side, None  # it holds what was in place: maybe a save of theirs
                try:
                    displaced, busy = _read_file(out)
                except BackendError:
                    displaced, busy = b"", True
                if busy or displaced != original:
                    self.concurrent_saves += 1
                    self.saves_given_back += 1
                    self._give_back(target, out, displaced, new)
                    return False
                with contextlib.suppress(OSError):
                    os.unlink(out)
        finally:
            if side is not None:
                with contextlib.suppress(OSError):
                    os.unlink(side)
        _fsync_directory(target.parent)
        return True

    def _give_back(self, target: Path, side: Path, theirs: bytes, ours: bytes) -> None:
        """Swap the operator's save (at ``side``, holding ``theirs``) back into ``target``.

        ``target`` holds our version (``ours``) unless the operator saved yet again;
        then that newer save is what comes out of the swap, and it goes back in turn.
        A version is dropped only once it is known to be an older one, nobody writing
        it. Should the file never settle, the operator's save is kept beside it.
        """
        expected = ours
        try:
            for _ in range(_MAX_ATTEMPTS):
                self._before_swap(target)
                if not _exchange(side, target):
                    break
                came, busy = _read_file(side)
                if not busy and came == expected:
                    with contextlib.suppress(OSError):
                        os.unlink(side)
                    _fsync_directory(target.parent)
                    return
                # A newer save came out: it goes back in, and the one just put in is
                # what the next swap should bring out.
                expected, theirs = theirs, came
        except (OSError, BackendError):
            pass  # whatever is at side now is an operator's save: keep it
        kept = target.with_name(
            f"{target.stem}.{datetime.now():%Y%m%d-%H%M%S-%f}.kept{target.suffix}")
        with contextlib.suppress(OSError):
            os.replace(side, kept)
        raise BackendError(
            f"{self.path}: kept changing while sheetcrm put back a save made during its write; "
            f"that save is kept as {kept.name} next to it: compare the two and keep the "
            "right one, then run again")


class _Rewrite:
    """One pass of applying updates to the decoded text of the file."""

    def __init__(self, text: str, delimiter: str, codec: str, source: str) -> None:
        self.text = text
        self.delimiter = delimiter
        self.codec = codec
        self.source = source
        self.records = _records(text, delimiter)
        self.header = (
            [_unquote(raw).strip() for raw in self.records[0].raws] if self.records else []
        )

    def apply(self, key_column: str, updates: list[CellUpdate]) -> tuple[str | None, WriteReport]:
        """Return the new text (None if nothing changes) and what was done."""
        key_index = self._key_index(key_column)
        # Operators type notes in unnamed columns past the header: a new column goes
        # past the widest row, so none of its cells lands on a note.
        width = max(len(record.raws) for record in self.records)
        columns, added = column_positions(self.header, width, updates, self.source)
        report = WriteReport(columns_added=added)
        targets = self._targets(key_index, columns, updates, report)
        edits: list[tuple[int, int, str]] = []
        if added:
            header = self.records[0]
            names = [self._cell_text(self._storable(name)) for name in added]
            tail = [""] * (width - len(header.raws)) + names
            edits.append((header.end, header.end, "".join(self.delimiter + t for t in tail)))
        for index in sorted(targets):
            row_edits, changed = self._row_edits(self.records[index], targets[index])
            edits.extend(row_edits)
            report.cells_written += changed
            report.rows_written += 1 if changed else 0
        return (_splice(self.text, edits) if edits else None), report

    def _key_index(self, key_column: str) -> int:
        """Column number of the key column; a missing one is a setup error."""
        name = key_column.strip()
        if name not in self.header:
            raise BackendError(f"{self.source}: key column {name!r} is not in the header")
        return self.header.index(name)

    def _targets(
        self,
        key_index: int,
        columns: dict[str, int],
        updates: list[CellUpdate],
        report: WriteReport,
    ) -> dict[int, dict[int, str]]:
        """Group updates by the record holding their key now; fill missing/ambiguous."""
        rows_by_key: dict[str, list[int]] = {}
        for number in range(1, len(self.records)):  # record 0 is the header
            key = self.records[number].value(key_index).strip()
            if key:
                rows_by_key.setdefault(key, []).append(number)
        targets: dict[int, dict[int, str]] = {}
        for number, update in match_rows(updates, rows_by_key, report):
            cells = targets.setdefault(number, {})
            cells[columns[update.column.strip()]] = self._storable(update.value)
        return targets

    def _row_edits(
        self, record: _Record, cells: dict[int, str]
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
class _Record:
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
        return _unquote(self.raws[column]) if column < len(self.raws) else ""


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


def _records(text: str, delimiter: str) -> list[_Record]:
    """Split text into records keeping raw spans; agrees with csv.reader's rows."""
    record_re, field_re = _patterns(delimiter)
    records: list[_Record] = []
    expected = 0
    for match in record_re.finditer(text):
        start, end = match.start(), match.start("eol")
        if start != expected:  # cannot happen: every position starts a record
            raise AssertionError(f"CSV tokenizer skipped text at offset {expected}")
        expected = match.end()
        if start == match.end():  # the empty match at the end of the text
            continue
        content = text[start:end]
        if not content:
            raws: list[str] = []
        elif '"' not in content:
            raws = content.split(delimiter)
        else:
            raws = _split_fields(content, delimiter, field_re)
        records.append(_Record(start, end, raws))
    return records


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


def _unquote(raw: str) -> str:
    """A raw field's value: strip the quotes, undouble inner ones, keep trailing text."""
    if not raw.startswith('"'):
        return raw
    match = _QUOTED.fullmatch(raw)
    assert match is not None  # every string starting with a quote matches
    return match.group(1).replace('""', '"') + match.group(2)


def _splice(text: str, edits: list[tuple[int, int, str]]) -> str:
    """Replace each (start, end) span by its new text; edits are in text order."""
    pieces: list[str] = []
    pos = 0
    for start, end, new in edits:
        pieces.append(text[pos:start])
        pieces.append(new)
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, or a BackendError saying why not."""
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise BackendError(f"{path}: file not found") from exc
    except OSError as exc:
        raise BackendError(_os_message(path, "cannot read", exc)) from exc


def _read_file(path: Path) -> tuple[bytes, bool]:
    """The file's bytes, and whether another program has it open for writing now."""
    try:
        with open(path, "rb") as handle:
            return handle.read(), _being_written(handle.fileno())
    except FileNotFoundError as exc:
        raise BackendError(f"{path}: file not found") from exc
    except OSError as exc:
        raise BackendError(_os_message(path, "cannot read", exc)) from exc


def _being_written(fd: int) -> bool:
    """Whether another open file has this one open for writing (Linux; else False).

    Linux refuses a read lease while any writer has the file open. The lease is let
    go at once; should a writer open the file in that instant, the lease break is
    signalled with SIGURG (ignored by default) rather than SIGIO (fatal by default).
    A file owned by another user (EACCES) or a filesystem without leases (EINVAL)
    gives no answer: False, and the content comparison decides alone.
    """
    setlease = getattr(fcntl, "F_SETLEASE", None)
    if setlease is None:
        return False
    try:
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, setlease, fcntl.F_RDLCK)
    except OSError as exc:
        return exc.errno == errno.EAGAIN
    fcntl.fcntl(fd, setlease, fcntl.F_UNLCK)
    return False


def _temp_copy(target: Path, data: bytes) -> Path:
    """``data`` in a new hidden file next to ``target``, durable, with its permissions."""
    mode = stat.S_IMODE(target.stat().st_mode)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(name, mode)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    return Path(name)


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    """glibc's renameat2 (2.28 and later), or None on other systems."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                         ctypes.c_uint]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap the files at ``a`` and ``b``; False (nothing moved) where the
    system or the filesystem cannot."""
    function = _renameat2()
    if function is None:
        return False
    if function(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _os_message(path: Path, action: str, exc: OSError) -> str:
    """One-line message for an OS error, with a hint for the usual Windows lock."""
    message = f"{path}: {action}: {exc.strerror or exc}"
    if isinstance(exc, PermissionError):
        message += " (is it open in another program, or read-only?)"
    return message


def _normalise_encoding(name: str, path: Path) -> str:
    """Canonical codec name, so 'UTF8' and 'utf_8' are recognised as UTF-8."""
    try:
        return codecs.lookup(name).name
    except LookupError as exc:
        raise BackendError(f"{path}: unknown encoding {name!r}") from exc


def _is_utf8(codec: str) -> bool:
    return codec in ("utf-8", "utf-8-sig")


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable; best effort (not possible on every platform)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
