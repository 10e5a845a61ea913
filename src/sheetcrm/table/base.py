"""The table interface every backend implements, and what opening one is given.

A backend reads a snapshot (header + rows of text cells) and writes a batch of cell
updates addressed by *row key and column name*, never by row number: the backend
finds each row by its key at write time.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sheetcrm.config.base import resolve_path
from sheetcrm.model import CellUpdate, Snapshot, WriteReport

Row = TypeVar("Row")


class Table(Protocol):
    """A customer table. One file per backend under ``sheetcrm/table/``."""

    def read(self) -> Snapshot:
        """Read the whole table. Raises BackendError when it cannot."""
        ...

    def write(self, key_column: str, updates: list[CellUpdate]) -> WriteReport:
        """Apply ``updates`` to the rows that hold their keys *now*.

        Only the columns named in ``updates`` are touched; a named column that is
        missing from the header is appended past the widest row (the header is padded
        with blank names up to it), so notes typed in unnamed columns past the header
        are never overwritten. Raises BackendError.
        """
        ...


class GrowingTable(Table, Protocol):
    """A table that can also add rows (a form's intake): only CSV for now.

    ``append`` names keys whose row is added at the end when no row holds the key at
    write time (a row that does hold it by then is updated instead); the new row's
    cells are the updates addressed to that key. ``WriteReport.added_keys`` lists the
    rows added.
    """

    adds_rows: bool

    def write(self, key_column: str, updates: list[CellUpdate],
              append: Collection[str] = ()) -> WriteReport: ...


def can_add_rows(table: Table) -> bool:
    """Whether ``table`` is a ``GrowingTable`` (Google Sheets and Airtable are not yet)."""
    return bool(getattr(table, "adds_rows", False))


@dataclass(frozen=True)
class TableContext:
    """What a backend may need besides its own ``[table]`` settings.

    A backend is given its settings and this, never the whole config: the folder
    relative paths start from, the environment (a key file or a token that is not in
    the file), and the columns sheetcrm reads and writes (a backend that must name
    the columns it asks for, like Airtable's, needs them).
    """

    base_dir: Path  # the config file's folder
    env: Mapping[str, str] = field(default_factory=dict)
    columns: tuple[str, ...] = ()  # the columns [fields] names, in its order
    writeback: Mapping[str, str] = field(default_factory=dict)  # column -> role (tags, ...)
    tabs: tuple[str, ...] = ()  # the rule tabs ([rules]) read with the customers

    def resolve(self, relative: str) -> Path:
        """A path from the settings: relative ones start in the config's folder."""
        return resolve_path(relative, self.base_dir)


class TableBackend(Protocol):
    """A backend class: opens its table from the settings of its ``backend``."""

    @classmethod
    def from_settings(cls, settings: Any, context: TableContext) -> Table: ...


def column_positions(header: list[str], width: int, updates: list[CellUpdate], source: str
                     ) -> tuple[dict[str, int], list[str]]:
    """Column number of every column the updates name; unknown ones go past ``width``.

    ``width`` is the widest row of the table, header included: cells past the header
    may hold the operator's notes, so a new column must start after all of them.
    Returns the positions and the names to append to the header, in order of first
    appearance. A blank column name is a programming error, never written.
    """
    from sheetcrm.errors import BackendError
    from sheetcrm.i18n import _

    columns: dict[str, int] = {}
    for number, name in enumerate(header):
        if name:
            columns.setdefault(name, number)
    added: list[str] = []
    for update in updates:
        name = update.column.strip()
        if not name:
            raise BackendError(_("{source}: an update names a blank column", source=source))
        if name not in columns:
            columns[name] = width + len(added)
            added.append(name)
    return columns, added


def match_rows(updates: Iterable[CellUpdate], rows_by_key: Mapping[str, Sequence[Row]],
               report: WriteReport) -> list[tuple[Row, CellUpdate]]:
    """Pair each update with the one row that holds its key *now*.

    A row is whatever the backend addresses rows by (a line number, a record id).
    Keys on no row go to ``report.missing_keys``; keys on several rows to
    ``report.ambiguous_keys``, and none of those rows is written.
    """
    return list(matched_rows(updates, rows_by_key.get, report))


def matched_rows(updates: Iterable[CellUpdate],
                 rows_of: Callable[[str], Sequence[Row] | None],
                 report: WriteReport) -> Iterator[tuple[Row, CellUpdate]]:
    """``match_rows`` one pair at a time, the rows of a key told by ``rows_of`` (None
    or empty: none), for a backend that keeps no list of pairs; the report's missing
    and ambiguous keys are filled once the last pair is given."""
    missing: dict[str, None] = {}
    ambiguous: dict[str, None] = {}
    for update in updates:
        key = update.key.strip()
        rows = rows_of(key) if key else None
        if rows and len(rows) == 1:
            yield rows[0], update
        elif rows:
            ambiguous[update.key] = None
        else:
            missing[update.key] = None
    report.missing_keys = list(missing)
    report.ambiguous_keys = list(ambiguous)
