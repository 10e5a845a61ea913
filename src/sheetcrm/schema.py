"""Turn a table snapshot (text cells) into typed customer records.

Parsing cells is where most real-world failures are, so every problem is caught
here and attached to its row: a bad cell marks that row (column, value, expected
form) and the other rows go on. Blank and duplicate keys make rows errors that are
never acted on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .config import Config
from .errors import CellError, ConfigError
from .fields import make_parser
from .table.base import Snapshot


@dataclass
class Record:
    """One customer row.

    ``line`` is the 1-based data row number as read, for messages only: writes
    always go by key.
    """

    line: int
    key: str
    values: dict[str, Any]
    current: dict[str, str]  # writeback column -> cell text as read
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class RowProblem:
    """A row that cannot be addressed by key (blank or duplicate key)."""

    line: int
    key: str
    message: str


@dataclass
class Table:
    records: list[Record]  # rows with a unique, non-blank key (possibly with cell errors)
    problems: list[RowProblem]  # rows never acted on nor written
    missing_writeback: list[str]  # owned columns not yet in the header


def header_problems(header: list[str], config: Config) -> list[str]:
    """What makes a header unusable: missing field columns, blank or duplicate names."""
    problems = []
    counts = Counter(h for h in header if h)
    for name, n in counts.items():
        if n > 1:
            problems.append(f"column {name!r} appears {n} times in the header")
    for name, spec in config.fields.items():
        if spec.column not in counts:
            problems.append(f"column {spec.column!r} (field {name!r}) is not in the header")
    return problems


def read_records(snapshot: Snapshot, config: Config) -> Table:
    """Type every row. Raises ConfigError when the header does not fit the config."""
    header = snapshot.header
    problems = header_problems(header, config)
    if problems:
        raise ConfigError(
            f"{snapshot.source or 'table'}: " + "; ".join(problems)
            + f". Header is: {', '.join(repr(h) for h in header)}"
        )
    index = {name: i for i, name in enumerate(header) if name}
    key_i = index[config.key_column]
    owned = config.writeback.columns()
    owned_idx = [(col, index.get(col)) for col in owned]

    key_counts = Counter(_cell(row, key_i).strip() for row in snapshot.rows)
    columns = [
        (name, index[spec.column], make_parser(spec.type, column=spec.column, tz=config.tz))
        for name, spec in config.fields.items()
    ]

    records: list[Record] = []
    bad: list[RowProblem] = []
    for n, row in enumerate(snapshot.rows, start=1):
        key = _cell(row, key_i).strip()
        if not key:
            bad.append(RowProblem(n, "", f"the key column {config.key_column!r} is blank"))
            continue
        if key_counts[key] > 1:
            bad.append(RowProblem(
                n, key, f"key {key!r} appears on {key_counts[key]} rows; "
                "none of them is acted on until the key is unique"))
            continue
        values: dict[str, Any] = {}
        errors: list[str] = []
        width = len(row)
        for name, i, parse in columns:
            raw = row[i] if i < width else ""
            try:
                values[name] = parse(raw)
            except CellError as exc:
                values[name] = None
                errors.append(f"{exc.column}: {exc.value!r} is not {exc.expected}")
        current = {col: (_cell(row, i) if i is not None else "") for col, i in owned_idx}
        records.append(Record(n, key, values, current, errors))
    missing = [col for col, i in owned_idx if i is None]
    return Table(records, bad, missing)


def _cell(row: list[str], i: int) -> str:
    return row[i] if i < len(row) else ""
