"""The table interface every backend implements.

A backend reads a snapshot (header + rows of text cells) and writes a batch of cell
updates addressed by *row key and column name*, never by row number: the backend
finds each row by its key at write time.
"""

from __future__ import annotations

from typing import Protocol

from sheetcrm.model import CellUpdate, Snapshot, WriteReport


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


def column_positions(header: list[str], width: int, updates: list[CellUpdate], source: str
                     ) -> tuple[dict[str, int], list[str]]:
    """Column number of every column the updates name; unknown ones go past ``width``.

    ``width`` is the widest row of the table, header included: cells past the header
    may hold the operator's notes, so a new column must start after all of them.
    Returns the positions and the names to append to the header, in order of first
    appearance. A blank column name is a programming error, never written.
    """
    from sheetcrm.errors import BackendError

    columns: dict[str, int] = {}
    for number, name in enumerate(header):
        if name:
            columns.setdefault(name, number)
    added: list[str] = []
    for update in updates:
        name = update.column.strip()
        if not name:
            raise BackendError(f"{source}: an update names a blank column")
        if name not in columns:
            columns[name] = width + len(added)
            added.append(name)
    return columns, added


def api_endpoint(value: str | None, *, example: str) -> str | None:
    """A validated API base URL, or None when unset.

    https, or plain http only to this machine (an emulator or a local proxy):
    credentials travel with every request.
    """
    import ipaddress
    from urllib.parse import urlsplit

    from sheetcrm.errors import ConfigError

    if value is None:
        return None
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment:
        raise ConfigError(f"{value!r} is not a base URL; expected e.g. {example!r} or "
                          "'http://127.0.0.1:8080'", path="table.endpoint")
    host = parts.hostname
    loopback = host == "localhost"
    if not loopback:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
    if parts.scheme == "http" and not loopback:
        raise ConfigError(f"{value!r} would send credentials in clear text; use https "
                          "(plain http is accepted only for 127.0.0.1 or localhost)",
                          path="table.endpoint")
    return url


def match_rows(updates: list[CellUpdate], rows_by_key: dict[str, list[int]],
               report: WriteReport) -> list[tuple[int, CellUpdate]]:
    """Pair each update with the one row that holds its key *now*.

    Keys on no row go to ``report.missing_keys``; keys on several rows to
    ``report.ambiguous_keys``, and none of those rows is written.
    """
    matched: list[tuple[int, CellUpdate]] = []
    missing: dict[str, None] = {}
    ambiguous: dict[str, None] = {}
    for update in updates:
        key = update.key.strip()
        rows = rows_by_key.get(key, []) if key else []
        if len(rows) == 1:
            matched.append((rows[0], update))
        elif rows:
            ambiguous[update.key] = None
        else:
            missing[update.key] = None
    report.missing_keys = list(missing)
    report.ambiguous_keys = list(ambiguous)
    return matched
