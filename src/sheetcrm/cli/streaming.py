"""``--json`` for results of any size: written as it is made, one item per line.

``plan --json`` over 100k rows lists some 120k flow moves, sends and cell writes.
Building them all as dicts and one indented string took 2.3 s and more than twice the
plan's own memory; the pure-Python encoder that ``indent`` needs was most of the time.
Here the object's small members are indented as ``json.dumps(..., indent=2)`` would;
each long list (``Rows``) is written an item at a time, each item on one line by
the C encoder, in batches. The document parses to the same value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import click

_BATCH = 2000  # items encoded per write


@dataclass(frozen=True)
class Rows:
    """A long list member: its items are made and written one at a time."""

    items: Iterable[Any]


def write_json(members: Iterable[tuple[str, Any]], out: IO[str] | None = None) -> None:
    """Write a JSON object of ``members`` (name, value or ``Rows``) to ``out`` (stdout)."""
    for chunk in _chunks(members):
        click.echo(chunk, file=out, nl=False)


def _chunks(members: Iterable[tuple[str, Any]]) -> Iterator[str]:
    compact = json.JSONEncoder(ensure_ascii=False, default=str, separators=(", ", ": "))
    pretty = json.JSONEncoder(ensure_ascii=False, default=str, indent=2)
    first = True
    yield "{"
    for name, value in members:
        yield ("\n" if first else ",\n") + f"  {json.dumps(name, ensure_ascii=False)}: "
        first = False
        if not isinstance(value, Rows):
            yield pretty.encode(value).replace("\n", "\n  ")
            continue
        batch: list[str] = []
        opened = False
        for item in value.items:
            batch.append(compact.encode(item))
            if len(batch) == _BATCH:
                yield ("[\n    " if not opened else ",\n    ") + ",\n    ".join(batch)
                opened, batch = True, []
        if batch:
            yield ("[\n    " if not opened else ",\n    ") + ",\n    ".join(batch)
            opened = True
        yield "\n  ]" if opened else "[]"
    yield "\n}\n" if not first else "}\n"
