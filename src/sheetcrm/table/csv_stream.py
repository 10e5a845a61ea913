"""A CSV write reads the file twice, a piece at a time, and never holds it whole.

At 200k rows the file is tens of megabytes, its decoded text twice that (Hangul takes
two bytes a character in a str), and a daemon's memory limit is set by its peak, which
was this write. So the file is read a piece at a time (``piece`` bytes, 256 KiB),
decoded by an incremental decoder (any codec, stateful ones such as ISO-2022-KR too)
and gone through twice:

- ``survey``: every record as csv.reader parses it, for the change (``csv_edit``) to
  find the rows and count what changes, with the widest row; the bytes are hashed
  (the compare-and-swap of ``sheetcrm.table.csv`` checks that digest) and, for a
  codec other than UTF-8, the decoded text is encoded back and hashed too: a file
  whose text does not give its bytes back is never written.
- ``NewFile.chunks``: the file read again, the records cut out by the tokenizer of
  ``csv_text``, the changed cells spliced in and the text encoded out as it goes.
  Its bytes are hashed again: if they are not those the survey saw (a save in place
  between the passes), ``FileChanged`` is raised and the write is redone.

A record cut by the end of a piece waits for the next one (``csv_text.whole_records``;
a piece read is at least as long as what waits, so a cell of many megabytes is
re-read a bounded number of times).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sheetcrm.errors import BackendError
from sheetcrm.fsutil import being_written
from sheetcrm.i18n import _
from sheetcrm.table.csv_edit import Change, row_edits
from sheetcrm.table.csv_text import Edits, Record, fields, line_ending, pieces, whole_records

PIECE = 1 << 18  # bytes read at a time


class FileChanged(Exception):  # noqa: N818 - a signal to redo the write, not an error
    """The file's bytes in the second pass are not those the survey saw."""


class _Source:
    """The bytes of an open file a piece at a time: hashed, and decoded as they come.

    With ``echo`` the decoded text is encoded back as it comes and hashed, so that
    ``round_trips`` can say whether it gives the file's bytes back.
    """

    def __init__(self, handle: BinaryIO, codec: str, piece: int, echo: bool = False) -> None:
        self.handle, self.piece = handle, piece
        self.decoder = codecs.getincrementaldecoder(codec)()
        self.encoder = codecs.getincrementalencoder(codec)() if echo else None
        self.digest, self.echo = hashlib.sha256(), hashlib.sha256()
        self.ascii = True
        self.ended = False  # the end of the file was read

    def text(self, at_least: int = 0) -> tuple[str, bool]:
        """The next decoded piece, and whether the file ends with it."""
        data = self.handle.read(max(self.piece, at_least))
        final = self.ended = not data
        if data:
            self.digest.update(data)
            self.ascii = self.ascii and data.isascii()
        text = self.decoder.decode(data, final)
        if self.encoder is not None:
            self.echo.update(self.encoder.encode(text, final))
        return text, final

    def drain(self) -> bytes:
        """The digest of the file as this pass read it, the rest of it read when the
        pass stopped short (the checks of a failed pass compare it with the file now).

        Once the end was read, nothing more is: bytes found past it are a save (one
        in place truncates the file first), and the empty file or the part of it read
        must not pass for the file as it is now.
        """
        while not self.ended and (data := self.handle.read(max(self.piece, 1 << 20))):
            self.digest.update(data)
        return self.digest.digest()

    def round_trips(self) -> bool:
        return self.encoder is None or self.echo.digest() == self.digest.digest()

    def lines(self) -> Iterator[str]:
        """The decoded text in lines as csv.reader takes them (ended by CR, LF or
        CRLF, the ending kept); a line still open at a piece's end waits for the next."""
        held = ""
        while True:
            text, final = self.text(len(held))
            if held:
                text = held + text
            if final:
                yield from io.StringIO(text, newline="")
                return
            lines = io.StringIO(text, newline="").readlines()
            held = lines.pop() if lines and not lines[-1].endswith("\n") else ""
            yield from lines


@dataclass
class Survey:
    """What the first pass found: the codec, the SHA-256 of the bytes, whether another
    program had the file open for writing, and the change, ready for the second pass
    (``writes``: whether any byte changes), or the exception that stopped it."""

    codec: str | None  # None: no candidate decoded the file
    digest: bytes
    busy: bool
    change: Change | None = None
    writes: bool = False
    problem: Exception | None = None  # a BackendError, or the csv.Error of a bad file
    round_trips: bool = True
    ascii: bool = False
    tried: tuple[str, ...] = ()  # the codecs tried, for the message when none fits


def survey(path: Path, choose: Callable[[bytes, bool], list[str]], delimiter: str,
           make: Callable[[str], Change], piece: int = PIECE) -> Survey:
    """The first pass, with the first codec that decodes the whole file.

    ``choose(head, ascii)`` gives the codecs to try from the file's first bytes and
    whether it is all ASCII (a BackendError to refuse the file); it is asked again
    when the file turns out all ASCII. ``make(codec)`` gives a new change for each
    pass. OSError is raised as is.
    """
    with open(path, "rb", buffering=0) as handle:
        # One long cell (a pasted text) must not make the file unwritable: the csv
        # module refuses fields over 128 KiB unless told otherwise.
        size = os.fstat(handle.fileno()).st_size
        csv.field_size_limit(max(csv.field_size_limit(), size + 1))
        found = _survey(handle, choose, delimiter, make, piece)
        found.busy = being_written(handle.fileno())
        return found


def _survey(handle: BinaryIO, choose: Callable[[bytes, bool], list[str]], delimiter: str,
            make: Callable[[str], Change], piece: int) -> Survey:
    head = handle.read(4)
    try:
        candidates = choose(head, False)
    except BackendError as exc:
        return Survey(None, _digest(handle), False, problem=exc)
    for codec in candidates:
        last = codec == candidates[-1]
        found = _pass(handle, codec, delimiter, make(codec), piece, last)
        found.tried = tuple(candidates)
        if found.codec is None and not last:
            continue
        if found.ascii and found.problem is None:
            # All ASCII reads the same in any of the candidates: the one the file
            # had before (choose knows it) keeps Korean written into it encodable.
            settled = choose(head, True)[0]
            if settled != codec:
                found = _pass(handle, settled, delimiter, make(settled), piece, True)
        return found
    raise AssertionError("choose gave no codec")  # pragma: no cover


def _pass(handle: BinaryIO, codec: str, delimiter: str, change: Change, piece: int,
          last: bool) -> Survey:
    """The first pass with one codec (``codec`` None in the result: it did not
    decode the file; the digest is known only if this was the ``last`` try)."""
    handle.seek(0)
    source = _Source(handle, codec, piece, echo=codec not in ("utf-8", "utf-8-sig"))
    try:
        writes = _first_pass(source, delimiter, change)
    except UnicodeDecodeError:
        return Survey(None, source.drain() if last else b"", False)
    except (csv.Error, BackendError) as exc:
        return Survey(codec, source.drain(), False, change, problem=exc)
    return Survey(codec, source.digest.digest(), False, change, writes,
                  round_trips=source.round_trips(), ascii=source.ascii)


def _digest(handle: BinaryIO) -> bytes:
    """The SHA-256 of the whole file, read from its start."""
    handle.seek(0)
    digest = hashlib.sha256()
    while data := handle.read(1 << 20):
        digest.update(data)
    return digest.digest()


def _first_pass(source: _Source, delimiter: str, change: Change) -> bool:
    """Show the change every record; whether it changes any byte of the file."""
    width = 0
    for number, row in enumerate(csv.reader(source.lines(), delimiter=delimiter)):
        if number:
            change.see(number, row)
        else:
            change.see_header(row)
        if len(row) > width:
            width = len(row)
    return change.settle(width)


def _read_apart(source: _Source, base: bytes, path: Path, number: int) -> Exception:
    """Record ``number`` is not the one the first pass saw there: a save between the
    passes (the write is redone), else the two parsers read the file apart (refused)."""
    if source.drain() != base:
        return FileChanged()
    return BackendError(_(
        "{path}: row {row} did not read the same in the two passes of the write; nothing "
        "was written. Save the file again as \"CSV UTF-8\" and run again", path=path,
        row=number + 1))


class NewFile:
    """The new content of the file, made by the second pass as it is written out
    (``chunks``), so that neither the old text nor the new is ever held whole."""

    def __init__(self, path: Path, found: Survey, delimiter: str, piece: int = PIECE) -> None:
        assert found.codec is not None and found.change is not None
        self.path, self.codec, self.base = path, found.codec, found.digest
        self.change, self.delimiter, self.piece = found.change, delimiter, piece
        self.digest = b""  # SHA-256 of what chunks() gave, once it has given it all

    def chunks(self) -> Iterator[bytes]:
        """The bytes, in order (an incremental encoder writes a BOM only once).

        Raises FileChanged when the file no longer holds what the survey read.
        """
        encoder = codecs.getincrementalencoder(self.codec)()
        digest = hashlib.sha256()
        for text in self._texts():
            data = encoder.encode(text)
            digest.update(data)
            yield data
        data = encoder.encode("", final=True)
        digest.update(data)
        yield data
        self.digest = digest.digest()

    def _texts(self) -> Iterator[str]:
        """The new text in pieces: the old one with the changed cells spliced in, then
        the rows added."""
        change, delimiter = self.change, self.delimiter
        number = 0
        eol: str | None = None
        last = ""  # the text's last character
        try:
            with open(self.path, "rb", buffering=0) as handle:
                source = _Source(handle, self.codec, self.piece)
                held = ""
                while True:
                    text, final = source.text(len(held))
                    if held:
                        text = held + text
                    last = text[-1:] or last
                    bounds, cut = whole_records(text, delimiter, final)
                    edits = Edits()
                    for start, end in bounds:
                        if not number:
                            eol = line_ending(text, end)
                            tail = change.header_tail()
                            if tail:
                                edits.append(end, end, tail)
                        elif cells := change.cells(number):
                            record = Record(start, end, fields(text[start:end], delimiter))
                            if not change.confirm(number, record):
                                raise _read_apart(source, self.base, self.path, number)
                            edits.extend(row_edits(record, cells, delimiter))
                        number += 1
                    yield from pieces(text[:cut] if cut < len(text) else text, edits)
                    held = text[cut:]
                    if final:
                        break
        except (FileNotFoundError, UnicodeDecodeError) as exc:
            raise FileChanged from exc
        if source.digest.digest() != self.base:
            raise FileChanged
        added = change.appended_text(eol, last in ("\n", "\r"))
        if added:
            yield added
