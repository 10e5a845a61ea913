"""Rows with values that are not known: a cell that could not be read.

A condition is evaluated on a ``PartialValues`` mapping that leaves such names out;
reading one raises ``UnknownValue``, which no operator or helper catches, so the
condition's answer is "unknown" exactly when it depends on the value. One that gets
its answer without reading it (short-circuiting ``and`` / ``or`` / ``if``) keeps it:
it took the same path whatever the value is. Kept apart from the compiler, which does
not need to know: its closures read ``values[name]`` either way.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

__all__ = ["PartialValues", "UnknownValue"]


class UnknownValue(Exception):  # not an error: the answer is "unknown"
    """The expression read a value that is not known on this row (``PartialValues``).

    ``name`` is the field whose cell could not be read. Short-circuiting decides
    whether it matters: ``not paid and days_since(applied_at) >= 1`` never reads
    ``applied_at`` for a customer who paid, so it is false whatever that cell says.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)


class PartialValues(dict[str, Any]):
    """A row's values with some names unknown: reading one raises UnknownValue.

    The compiled closures read ``values[name]``; a name left out of this dict goes to
    ``__missing__``. The result of an evaluation that finishes never depended on the
    unknown values (it took the same path whatever they are), so it is the answer.
    """

    def __init__(self, values: Mapping[str, Any], unknown: Collection[str]) -> None:
        super().__init__((k, v) for k, v in values.items() if k not in unknown)
        self.unknown = frozenset(unknown)

    def __missing__(self, name: str) -> Any:
        if name in self.unknown:
            raise UnknownValue(name)
        raise KeyError(name)
