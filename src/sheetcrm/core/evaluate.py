"""One row's conditions, evaluated the one way every use case reads them.

The planner, ``preview``'s explanation, the re-check right before a send and
``check`` all ask a row the same questions: which tags it has, worked out in the
order they are written so that a tag sees the tags above it (``tagged('미결제')``),
then for each flow whether its trigger holds (a trigger that names a tag is that
tag, not evaluated again) and whether its goal is met. They are answered here, once,
so that the four cannot come to read the same row differently.

A flow's condition is evaluated when it is asked for, and ``evaluations`` counts
what was evaluated: the planner asks for the goal only of a flow the customer is in
or is entering, so a goal that cannot be evaluated on a row outside the flow does
not stop that row. A failing condition raises ExpressionRuntimeError (the caller
marks the row); ``check`` passes ``on_error`` instead, to hear of every failing
condition with its key path, each read as false.

A cell that could not be read makes its field unknown on the row (``Record.unknown``).
A condition that reads it is unknown too: a tag that is not known is not set (and
``tagged()`` of it is unknown in turn), a trigger or goal that is not known is
``None``, and the planner leaves that flow as it is for the row. ``waiting`` keeps
each such tag and flow, with the field that stopped it, for the row's error cell. A
condition that gets its answer without reading the unknown field (``not paid and
...`` for a customer who paid) is known, and counts as usual.

The planner asks the same questions of every row: ``Columns`` works out each
condition that reads only the row and the time over all rows with every cell read,
one generated function per condition (``expressions.columns``), before the rows are
planned one by one. A row then reads its answer from the column; a condition that
reads per-row state (``in_flow``, ``tagged``), a row with an unreadable cell, and
every row of a column that failed somewhere are evaluated row by row as before, so
the answers, the failures and ``evaluations`` are the same either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from sheetcrm.config import _quote_key
from sheetcrm.core.rules import RowContext, Rules
from sheetcrm.expressions import (
    CompiledExpression,
    ExpressionRuntimeError,
    PartialValues,
    UnknownValue,
)
from sheetcrm.model import Record

_NO_TAGS: frozenset[str] = frozenset()

#: Told of a condition that failed on the row: its key path and the error.
OnError = Callable[[str, ExpressionRuntimeError], None]


class TagSet(NamedTuple):
    """One combination of tags, shared (read-only) by every row that has it."""

    found: dict[str, bool]  # every tag, in the config's order, and whether it is on
    on: frozenset[str]  # the tags that are on
    listed: list[str]  # the same, in the config's order


class Columns:
    """Every row-free condition of the rules, worked out over many rows at once.

    ``tags[i]``, ``triggers[flow]`` and ``goals[flow]`` hold each row's value in the
    order of ``rows``, or None: that condition is evaluated row by row. When every tag
    is a column, ``tag_sets[slot]`` is the row's tags: rows have a few combinations of
    tags between them, each made once instead of once a row.
    """

    __slots__ = ("tags", "triggers", "goals", "tag_sets")

    def __init__(self, rules: Rules, rows: list[Mapping[str, Any]], ctx: RowContext) -> None:
        self.tags = [_column(expr, rows, ctx) for _tag, expr in rules.tags]
        self.triggers = {name: _column(f.trigger, rows, ctx) if f.trigger_tag is None else None
                         for name, f in rules.flows.items()}
        self.goals = {name: _column(f.goal, rows, ctx) if f.goal is not None else None
                      for name, f in rules.flows.items()}
        self.tag_sets: list[TagSet] | None = None
        if rows and all(column is not None for column in self.tags):
            names = [tag for tag, _expr in rules.tags]
            made: dict[tuple[bool, ...], TagSet] = {}

            def tag_set(ons: tuple[bool, ...]) -> TagSet:
                listed = [tag for tag, on in zip(names, ons, strict=True) if on]
                made[ons] = TagSet(dict(zip(names, ons, strict=True)), frozenset(listed), listed)
                return made[ons]

            truths = [list(map(bool, column)) for column in self.tags if column is not None]
            self.tag_sets = [made.get(ons) or tag_set(ons) for ons in zip(*truths, strict=True)]


def _column(expr: CompiledExpression, rows: list[Mapping[str, Any]],
            ctx: RowContext) -> list[Any] | None:
    if expr.column is None or not rows:
        return None
    try:
        return expr.column(rows, ctx)
    except Exception:  # it fails on some row: row by row, where it says which and why
        return None


class RowConditions:
    """The tags, triggers and goals of one row. ``ctx`` is set up for this row.

    With ``columns``, the row is row ``slot`` of them (-1: not in them).
    """

    __slots__ = ("rules", "ctx", "values", "evaluations", "waiting", "unknown_sources",
                 "_on_error", "_tags", "_tag_set", "_columns", "_slot")

    def __init__(self, rules: Rules, rec: Record, ctx: RowContext,
                 on_error: OnError | None = None, columns: Columns | None = None,
                 slot: int = -1) -> None:
        self.rules, self.ctx = rules, ctx
        self._columns, self._slot = (columns, slot) if slot >= 0 else (None, -1)
        self.values = PartialValues(rec.values, rec.unknown) if rec.unknown else rec.values
        self.evaluations = 0
        # ("tag" or "flow", its name) -> the field whose unreadable cell stopped it
        self.waiting: dict[tuple[str, str], str] = {}
        self.unknown_sources: set[str] = set()  # conditions not known on this row
        self._on_error = on_error
        self._tags: dict[str, bool] | None = None
        self._tag_set: TagSet | None = None
        ctx.key = rec.key
        ctx.tags = _NO_TAGS
        ctx.unknown_tags = {}

    def tags(self) -> dict[str, bool]:
        """Every tag, in the config's order, and whether the row has it.

        A tag that is not known on the row is False here, and in ``unknown_tags``.
        """
        if self._tags is None and self._columns is not None and self._columns.tag_sets:
            self.evaluations += len(self.rules.tags)
            tag_set = self._tag_set = self._columns.tag_sets[self._slot]
            self.ctx.tags = tag_set.on
            self._tags = tag_set.found  # shared by the rows with these tags: read-only
        if self._tags is None:
            found: dict[str, bool] = {}
            on_tags: set[str] = set()  # what tagged() reads while the tags below are worked out
            values, ctx, slot = self.values, self.ctx, self._slot
            ctx.tags = on_tags
            columns = self._columns.tags if self._columns is not None else None
            for i, (tag, expr) in enumerate(self.rules.tags):
                self.evaluations += 1
                column = columns[i] if columns is not None else None
                if column is not None:
                    on = bool(column[slot])
                    if on:
                        on_tags.add(tag)
                    found[tag] = on
                    continue
                try:
                    on = bool(expr(values, ctx))
                except ExpressionRuntimeError as exc:
                    on = self._failed(exc, f"tags.{_quote_key(tag)}")
                except UnknownValue as exc:
                    on = False
                    ctx.unknown_tags[tag] = self.waiting["tag", tag] = exc.name
                    self.unknown_sources.add(expr.source)
                if on:
                    on_tags.add(tag)
                found[tag] = on
            self._tags = found
        return self._tags

    def tags_on(self, shown: list[str], lists: dict[tuple[str, ...], list[str]]
                ) -> list[str]:
        """The tags the row has, in the config's order; a tag not known on the row stays
        as ``shown`` (the sheet's tag cell) has it. Rows with the same tags share one
        list (read-only): their combination's, or the one kept in ``lists``."""
        found = self.tags()
        unknown = self.ctx.unknown_tags
        if self._tag_set is not None and not unknown:
            return self._tag_set.listed
        tags = [tag for tag, on in found.items() if on or (tag in unknown and tag in shown)]
        return lists.setdefault(tuple(tags), tags)

    @property
    def unknown_tags(self) -> dict[str, str]:
        """Tags not known on this row -> the field that could not be read."""
        if self._tags is None:
            self.tags()
        return self.ctx.unknown_tags

    def triggered(self, flow: str) -> bool | None:
        """The flow's trigger holds for this row (None: not known on this row)."""
        rules = self.rules.flows[flow]
        if self._tags is None:
            self.tags()
        if rules.trigger_tag is not None:
            field = self.ctx.unknown_tags.get(rules.trigger_tag)
            if field is not None:
                self.waiting["flow", flow] = field
                return None
            return rules.trigger_tag in self.ctx.tags
        column = self._columns.triggers[flow] if self._columns is not None else None
        if column is not None:
            self.evaluations += 1
            return bool(column[self._slot])
        return self._holds(rules.trigger, "trigger", flow)

    def trigger_not_needed(self, flow: str) -> None:
        """The flow goes on without its trigger (a hand-over): nothing waits for it."""
        self.waiting.pop(("flow", flow), None)

    def goal_met(self, flow: str) -> bool | None:
        """The flow's goal is met (False for a flow without a goal; None: not known)."""
        rules = self.rules.flows[flow]
        if rules.goal is None:
            return False
        if self._tags is None:
            self.tags()
        column = self._columns.goals[flow] if self._columns is not None else None
        if column is not None:
            self.evaluations += 1
            return bool(column[self._slot])
        return self._holds(rules.goal, "goal", flow)

    def _holds(self, expr: CompiledExpression, which: str, flow: str) -> bool | None:
        """``which`` is "trigger" or "goal": the key path is made only when it fails."""
        self.evaluations += 1
        try:
            return bool(expr(self.values, self.ctx))
        except ExpressionRuntimeError as exc:
            return self._failed(exc, f"flows.{_quote_key(flow)}.{which}")
        except UnknownValue as exc:
            self.waiting["flow", flow] = exc.name
            self.unknown_sources.add(expr.source)
            return None

    def _failed(self, exc: ExpressionRuntimeError, where: str) -> bool:
        if self._on_error is None:
            raise exc
        self._on_error(where, exc)
        return False
