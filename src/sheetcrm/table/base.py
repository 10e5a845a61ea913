"""The table interface every backend implements.

A backend reads a snapshot (header + rows of text cells) and writes a batch of cell
updates addressed by *row key and column name*, never by row number: the backend
finds each row by its key at write time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class Snapshot:
    """The table as read: header names and rows of text cells.

    Rows may be shorter than the header (missing trailing cells read as "").
    """

    header: list[str]
    rows: list[list[str]]
    source: str = ""  # human-readable origin (file path, sheet URL) for messages


@dataclass(frozen=True)
class CellUpdate:
    """Set ``column`` of the row whose key column holds ``key`` to ``value``."""

    key: str
    column: str
    value: str


@dataclass
class WriteReport:
    """What a write did."""

    cells_written: int = 0
    rows_written: int = 0
    columns_added: list[str] = field(default_factory=list)
    missing_keys: list[str] = field(default_factory=list)  # key no longer in the table
    ambiguous_keys: list[str] = field(default_factory=list)  # key now on several rows
    requests: int = 0  # API requests spent (0 for local files)


class Table(Protocol):
    """A customer table. One file per backend under ``sheetcrm/table/``."""

    def read(self) -> Snapshot:
        """Read the whole table. Raises BackendError when it cannot."""
        ...

    def write(self, key_column: str, updates: list[CellUpdate]) -> WriteReport:
        """Apply ``updates`` to the rows that hold their keys *now*.

        Only the columns named in ``updates`` are touched; a named column that is
        missing from the header is appended at its end. Raises BackendError.
        """
        ...
