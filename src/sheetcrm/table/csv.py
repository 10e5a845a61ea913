"""CSV file backend: fast reads through the stdlib, byte-exact writes.

Reading goes through ``csv.reader`` because it runs at C speed and is the floor the
other backends are measured against. Writing replaces only the spans of the cells
that change (``sheetcrm.table.csv_text``): the file's encoding, BOM, line endings
and the quoting of every other cell stay as they were. A write reads the file twice,
a piece at a time (``sheetcrm.table.csv_stream``): once to find the rows and count
what changes (``sheetcrm.table.csv_edit``), once to write the new file as it is made.
Holding the file's text whole (twice its bytes with Hangul in it) and a string per
field made the write the peak of a whole run at 200k rows.

The operator may save the file while sheetcrm writes it, by renaming a new file over
it or by rewriting it in place. A check ("does it still hold what we read?") followed
by a rename always leaves a window in which such a save is lost. On Linux the new
file goes in by an atomic *exchange* instead (``fsutil.exchange``): the file it
displaces is then still there to look at, and if it is not exactly what the update
was based on, or another program still has it open for writing
(``fsutil.being_written``: a read lease is refused then), it is the operator's save:
it is swapped back in and the update is redone on it. Nothing can land unseen
between the look and the swap (should sheetcrm be killed in between, what came out
stays beside the file as ``.<name>.*.tmp``). Where the exchange is not available
(other systems, filesystems such as NFS) the check and ``os.replace`` remain, with
their window of a few microseconds. The new file itself is always written by
``fsutil.write_temp_beside`` (fsynced, with the old file's permissions), and the
folder is fsynced once it is in place, as ``fsutil.atomic_write`` does.

The rule tabs of ``[rules]`` are sibling files ``<tab>.csv`` beside the customer file,
read with it (``Snapshot.tabs``) by the same encoding detection, and their ``상태``
column is written through the same rewrite (``write_column``).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import os
import stat
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime
from itertools import islice
from pathlib import Path

from sheetcrm.config.table import CsvTableSettings
from sheetcrm.errors import BackendError, ConfigError
from sheetcrm.fsutil import (
    atomic_write,
    being_written,
    exchange,
    fsync_directory,
    os_reason,
    write_temp_beside,
)
from sheetcrm.i18n import _
from sheetcrm.model import BLOCK_ROWS, Blocks, CellUpdate, Snapshot, WriteReport
from sheetcrm.table.base import TableContext
from sheetcrm.table.csv_edit import Change, ColumnValues, KeyedUpdates
from sheetcrm.table.csv_stream import PIECE, FileChanged, NewFile, Survey, survey

_MAX_ATTEMPTS = 5  # rewrites tried while the file keeps changing under us
_BUSY_PAUSE = 0.005  # seconds, times the attempt: a program is writing the file right now
_FALLBACK_ENCODING = "cp949"  # Excel on Korean Windows; a superset of EUC-KR
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


class CsvTable:
    """A customer table stored in one CSV file.

    ``encoding=None`` auto-detects: a UTF-8 BOM means UTF-8 with BOM, else strict
    UTF-8, else CP949. Writes keep the file's encoding, BOM, line endings and the
    quoting of every cell they do not change.
    """

    def __init__(
        self, path: Path | str, *, encoding: str | None = None, delimiter: str = ",",
        sleep: Callable[[float], None] = time.sleep, tabs: tuple[str, ...] = (),
    ) -> None:
        if len(delimiter) != 1 or delimiter in '"\r\n':
            raise ConfigError(_(
                "the CSV delimiter must be one character other than a quote or a newline, "
                "got {delimiter!r}", delimiter=delimiter))
        self.path = Path(path)
        self.delimiter = delimiter
        self.tabs = tabs  # rule tabs: sibling files "<tab>.csv" read with the customers
        self._encoding_setting = encoding
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
                   delimiter=settings.delimiter, tabs=context.tabs)

    @property
    def encoding(self) -> str | None:
        """The codec found by the last read() or write(); ``utf-8-sig`` means a BOM."""
        return self._encoding

    def read(self) -> Snapshot:
        """Read the header and leave the non-blank rows to be parsed as they are read
        (``Snapshot.blocks``). Raises BackendError when it cannot: an undecodable file
        here, a malformed one when its rows are parsed."""
        data = _read_bytes(self.path)
        codec = self._codec(data)
        tabs = self._read_tabs()
        rows = self._rows(data, codec)
        first = next(rows, None)
        if first is None:
            return Snapshot([], [], str(self.path), tabs=tabs)
        header = [name.strip() for name in first]
        return Snapshot(header, [], str(self.path), [], tabs, later=self._blocks(rows))

    def _rows(self, data: bytes, codec: str) -> Iterator[list[str]]:
        """The records of ``data`` as csv.reader parses them (decoding as it goes)."""
        # One long cell (a pasted text, an export) must not make the whole file
        # unreadable: the csv module refuses fields over 128 KiB unless told otherwise.
        csv.field_size_limit(max(csv.field_size_limit(), len(data) + 1))
        stream = io.TextIOWrapper(io.BytesIO(data), encoding=codec, newline="")
        try:
            yield from csv.reader(stream, delimiter=self.delimiter)
        except csv.Error as exc:
            raise BackendError(_("{path}: not a valid CSV file: {reason}",
                                 path=self.path, reason=exc)) from exc

    def _blocks(self, rows: Iterator[list[str]], size: int = BLOCK_ROWS) -> Blocks:
        """The rows past the header, ``size`` at a time, with their line numbers: blank
        rows are left out, and still counted (Excel numbers every row)."""
        seen = 0  # records past the header so far: record j is line j + 2
        while block := list(islice(rows, size)):
            kept = [n for n, row in enumerate(block) if any(map(str.strip, row))]
            yield [block[n] for n in kept], [seen + n + 2 for n in kept]
            seen += len(block)

    def tab_file(self, tab: str) -> CsvTable:
        """The sibling file ``<tab>.csv`` holding a rule tab, read and written as this one."""
        return CsvTable(self.path.parent / f"{tab}.csv", encoding=self._encoding_setting,
                        delimiter=self.delimiter, sleep=self.sleep)

    def _read_tabs(self) -> dict[str, list[list[str]]]:
        """Every rule tab whose file exists, as rows (blank ones kept: row numbers)."""
        found: dict[str, list[list[str]]] = {}
        for tab in self.tabs:
            sibling = self.tab_file(tab)
            if sibling.path.is_file():
                data = _read_bytes(sibling.path)
                found[tab] = list(sibling._rows(data, sibling._codec(data)))
        return found

    def write_column(self, column: str, value_for: Callable[[dict[str, str]], str | None]
                     ) -> WriteReport:
        """Set ``column`` of each row to ``value_for(row as header -> cell)`` unless None.

        The file is re-read and rewritten as ``write`` does (atomic, byte-exact, redone
        on an operator's save), so a row edited meanwhile is judged as it is now.
        """
        return self._write_with(lambda codec: ColumnValues(
            self.delimiter, codec, str(self.path), column, value_for))

    #: Rows can be added (``write(..., append=keys)``): ``base.GrowingTable``.
    adds_rows = True

    def write(self, key_column: str, updates: list[CellUpdate],
              append: Collection[str] = ()) -> WriteReport:
        """Apply ``updates`` to the rows holding their keys in the file as it is now.

        The file is re-read here, so edits saved since read() are kept. If it changes
        again while we rewrite it (a save by rename or in place, even one landing in
        the instant before the new file goes in), the whole update is redone on the new
        content; the operator's save is never replaced by an older version.
        A column named in updates but missing from the header is added past the
        widest row (notes typed in unnamed columns stay where they are), even when
        none of its updates lands (the writeback column should exist from the first
        run on). Nothing is rewritten when no byte would change.

        A key in ``append`` that no row holds now gets a row of its own at the end of
        the file (its updates are its cells; every other byte stays), in the same
        atomic replace as the updates.
        """
        if not updates and not append:
            return WriteReport()
        return self._write_with(lambda codec: KeyedUpdates(
            self.delimiter, codec, str(self.path), key_column, updates, append))

    def _write_with(self, make: Callable[[str], Change]) -> WriteReport:
        """Read the file through ``make(codec)``'s change, put the result in place
        (``csv_stream``: the file is read twice, a piece at a time)."""
        target = Path(os.path.realpath(self.path))  # replace the file, not a symlink
        busy = False
        try:
            for attempt in range(_MAX_ATTEMPTS):
                found = self._survey(target, make)
                busy = found.busy
                if busy:  # being saved in place right now: what we read may be half
                    self.concurrent_saves += 1
                    self.sleep(_BUSY_PAUSE * (attempt + 1))
                    continue
                try:
                    change = self._settled(found)
                except BackendError:
                    if _file_digest(target)[0] == found.digest:
                        raise
                    self.concurrent_saves += 1  # a save cut short what we read
                    continue
                if not found.writes:
                    return change.report
                try:
                    new = NewFile(target, found, self.delimiter, self.piece)
                    if self._replace_if_unchanged(target, found.digest, new):
                        return change.report
                except FileChanged:  # saved in place between the two passes
                    self.concurrent_saves += 1
        except OSError as exc:
            raise BackendError(_os_message(self.path, _("cannot write"), exc)) from exc
        if busy:
            raise BackendError(_(
                "{path}: the file keeps changing while sheetcrm writes it (another program "
                "has it open for writing; gave up after {attempts} tries); try again when "
                "it is not being saved", path=self.path, attempts=_MAX_ATTEMPTS))
        raise BackendError(_(
            "{path}: the file keeps changing while sheetcrm writes it (gave up after "
            "{attempts} tries); try again when it is not being saved",
            path=self.path, attempts=_MAX_ATTEMPTS))

    #: Bytes read at a time by a write (tests make it small to cut records anywhere).
    piece = PIECE

    def _survey(self, target: Path, make: Callable[[str], Change]) -> Survey:
        """The write's first pass over the file (``csv_stream.survey``)."""
        try:
            return survey(target, self._candidates, self.delimiter, make, self.piece)
        except FileNotFoundError as exc:
            raise BackendError(_("{path}: file not found", path=target)) from exc
        except OSError as exc:
            raise BackendError(_os_message(target, _("cannot read"), exc)) from exc

    def _settled(self, found: Survey) -> Change:
        """The change of a first pass that went through, or the BackendError why not:
        an undecodable file, a bad one, or text that does not encode back the same."""
        if found.codec is not None:
            self._encoding = found.codec
        if isinstance(found.problem, csv.Error):
            raise BackendError(_("{path}: not a valid CSV file: {reason}",
                                 path=self.path, reason=found.problem)) from found.problem
        if found.problem is not None:
            raise found.problem
        if found.codec is None or found.change is None:
            raise self._undecodable(list(found.tried))
        if not found.round_trips:
            raise BackendError(_(
                "{path}: the text does not come back the same in {codec}; sheetcrm does "
                "not write the file, so nothing in it is lost", path=self.path,
                codec=found.codec))
        return found.change

    def _before_replace(self, path: Path) -> None:
        """Hook called right before the concurrent-change check.

        Does nothing; tests override it (and ``_before_swap``) to simulate the
        operator saving the file at the worst possible moments.
        """

    def _before_swap(self, path: Path) -> None:
        """Hook called right before each swap (after the check found the file unchanged,
        and before each swap that gives an operator's save back)."""

    # -- internals -------------------------------------------------------------

    def _codec(self, data: bytes) -> str:
        """The first codec that decodes the whole file, remembered (with its BOM) so
        writes keep it: known before any row is parsed, since the rows are parsed
        later. Decoded a piece at a time and dropped: the file's text is never whole."""
        candidates = self._candidates(data[:4], data.isascii())
        view = memoryview(data)
        for codec in candidates:
            decoder = codecs.getincrementaldecoder(codec)()
            try:
                for start in range(0, len(view), PIECE):
                    decoder.decode(view[start:start + PIECE])
                decoder.decode(b"", True)
            except UnicodeDecodeError:
                continue
            self._encoding = codec
            return codec
        raise self._undecodable(candidates)

    def _candidates(self, head: bytes, ascii: bool) -> list[str]:
        """Codecs to try, in order, for a file starting with ``head`` (its first
        bytes) and all ASCII or not; ``utf-8-sig`` marks a BOM that writes must keep."""
        if self._requested and not _is_utf8(self._requested):
            return [self._requested]
        if head.startswith(codecs.BOM_UTF8):
            return ["utf-8-sig"]
        if self._requested:
            return ["utf-8"]
        if head.startswith(_UTF16_BOMS):
            raise BackendError(_("{path}: UTF-16 files are not supported; save it as "
                                 "\"CSV UTF-8\"", path=self.path))
        if ascii and self._encoding:
            # Pure ASCII fits any codec: keep the one seen before, so Korean written
            # into a CP949 file that happens to be all ASCII now stays CP949.
            return ["utf-8" if _is_utf8(self._encoding) else self._encoding]
        return ["utf-8", _FALLBACK_ENCODING]

    def _undecodable(self, candidates: list[str]) -> BackendError:
        return BackendError(_(
            "{path}: cannot decode as {tried}; save it as \"CSV UTF-8\" or set the "
            "encoding in [table]", path=self.path, tried=_(" or ").join(candidates)))

    def _replace_if_unchanged(self, target: Path, base: bytes, new: NewFile) -> bool:
        """Atomically replace ``target`` with ``new`` unless it no longer holds the bytes
        whose SHA-256 is ``base``.

        The content comparison (not mtime/size, whose granularity can hide a quick
        same-size save) decides; a False return makes write() redo the update. With
        the exchange, the file that came out is compared too, and put back if it is
        a save that landed after the check.
        """
        mode = stat.S_IMODE(target.stat().st_mode)
        side: Path | None = write_temp_beside(target, new.chunks(), mode=mode)
        assert side is not None
        try:
            self._before_replace(target)
            current, busy = _file_digest(target)
            if busy or current != base:
                self.concurrent_saves += 1
                return False
            self._before_swap(target)
            if not exchange(side, target):
                os.replace(side, target)  # no exchange here: a save since the check is lost
                side = None
            else:
                out, side = side, None  # it holds what was in place: maybe a save of theirs
                try:
                    displaced, busy = _file_digest(out)
                except BackendError:
                    displaced, busy = b"", True
                if busy or displaced != base:
                    self.concurrent_saves += 1
                    self.saves_given_back += 1
                    self._give_back(target, out, displaced, new.digest)
                    return False
                with contextlib.suppress(OSError):
                    os.unlink(out)
        finally:
            if side is not None:
                with contextlib.suppress(OSError):
                    os.unlink(side)
        fsync_directory(target.parent)
        return True

    def _give_back(self, target: Path, side: Path, theirs: bytes, ours: bytes) -> None:
        """Swap the operator's save (at ``side``) back into ``target``.

        Versions are told apart by the SHA-256 of their bytes (``theirs``, ``ours``): a
        large file is not held whole to be compared. ``target`` holds our version
        unless the operator saved yet again;
        then that newer save is what comes out of the swap, and it goes back in turn.
        A version is dropped only once it is known to be an older one, nobody writing
        it. Should the file never settle, the operator's save is kept beside it.
        """
        expected = ours
        try:
            for _attempt in range(_MAX_ATTEMPTS):
                self._before_swap(target)
                if not exchange(side, target):
                    break
                came, busy = _file_digest(side)
                if not busy and came == expected:
                    with contextlib.suppress(OSError):
                        os.unlink(side)
                    fsync_directory(target.parent)
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
        raise BackendError(_(
            "{path}: the file kept changing while sheetcrm put back a save made during its "
            "write; that save is kept as {kept} next to it: compare the two, keep the right "
            "one, then run again", path=self.path, kept=kept.name))


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, or a BackendError saying why not."""
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise BackendError(_("{path}: file not found", path=path)) from exc
    except OSError as exc:
        raise BackendError(_os_message(path, _("cannot read"), exc)) from exc


def _file_digest(path: Path) -> tuple[bytes, bool]:
    """The SHA-256 of the file's bytes, read a piece at a time, and whether another
    program has it open for writing now."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
            return digest.digest(), being_written(handle.fileno())
    except FileNotFoundError as exc:
        raise BackendError(_("{path}: file not found", path=path)) from exc
    except OSError as exc:
        raise BackendError(_os_message(path, _("cannot read"), exc)) from exc


def _os_message(path: Path, action: str, exc: OSError) -> str:
    """One-line message for an OS error, with a hint for the usual Windows lock."""
    if isinstance(exc, PermissionError):
        return _("{path}: {action}: {reason} (is it open in another program, or read-only?)",
                 path=path, action=action, reason=os_reason(exc))
    return _("{path}: {action}: {reason}", path=path, action=action, reason=os_reason(exc))


def _normalise_encoding(name: str, path: Path) -> str:
    """Canonical codec name, so 'UTF8' and 'utf_8' are recognised as UTF-8."""
    try:
        return codecs.lookup(name).name
    except LookupError as exc:
        raise BackendError(_("{path}: unknown encoding {name!r}", path=path, name=name)) from exc


def _is_utf8(codec: str) -> bool:
    return codec in ("utf-8", "utf-8-sig")


# --------------------------------------------------------------------------- rule tabs


def tab_file(table_path: Path, title: str) -> Path:
    """Where a CSV table's tab ``title`` (태그, 흐름, 템플릿) is kept: ``<title>.csv``
    beside the customer file."""
    return table_path.with_name(f"{title}.csv")


def write_tab_file(path: Path, rows: Sequence[Sequence[str]]) -> None:
    """Write a whole tab as a CSV file, atomically (``fsutil.atomic_write``).

    UTF-8 with a BOM and CRLF line ends, as Excel saves "CSV UTF-8": Excel on Korean
    Windows reads a file without the BOM as CP949 and shows the Hangul garbled.
    """
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows(rows)
    try:
        atomic_write(path, text.getvalue().encode("utf-8-sig"), mode=0o644)
    except OSError as exc:
        raise BackendError(_os_message(path, _("cannot write"), exc)) from exc
