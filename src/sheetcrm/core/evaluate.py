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
"""

from __future__ import annotations

from collections.abc import Callable

from sheetcrm.config import _quote_key
from sheetcrm.core.rules import RowContext, Rules
from sheetcrm.expressions import CompiledExpression, ExpressionRuntimeError
from sheetcrm.model import Record

#: Told of a condition that failed on the row: its key path and the error.
OnError = Callable[[str, ExpressionRuntimeError], None]


class RowConditions:
    """The tags, triggers and goals of one row. ``ctx`` is set up for this row."""

    __slots__ = ("rules", "ctx", "values", "evaluations", "_on_error", "_tags")

    def __init__(self, rules: Rules, rec: Record, ctx: RowContext,
                 on_error: OnError | None = None) -> None:
        self.rules, self.ctx, self.values = rules, ctx, rec.values
        self.evaluations = 0
        self._on_error = on_error
        self._tags: dict[str, bool] | None = None
        ctx.key = rec.key
        ctx.tags = set()

    def tags(self) -> dict[str, bool]:
        """Every tag, in the config's order, and whether the row has it."""
        if self._tags is None:
            found: dict[str, bool] = {}
            values, ctx = self.values, self.ctx
            for tag, expr in self.rules.tags:
                self.evaluations += 1
                try:
                    on = bool(expr(values, ctx))
                except ExpressionRuntimeError as exc:
                    on = self._failed(exc, f"tags.{_quote_key(tag)}")
                if on:
                    ctx.tags.add(tag)
                found[tag] = on
            self._tags = found
        return self._tags

    def triggered(self, flow: str) -> bool:
        """The flow's trigger holds for this row."""
        rules = self.rules.flows[flow]
        if self._tags is None:
            self.tags()
        if rules.trigger_tag is not None:
            return rules.trigger_tag in self.ctx.tags
        return self._holds(rules.trigger, f"flows.{flow}.trigger")

    def goal_met(self, flow: str) -> bool:
        """The flow's goal is met (False for a flow without a goal)."""
        rules = self.rules.flows[flow]
        if rules.goal is None:
            return False
        if self._tags is None:
            self.tags()
        return self._holds(rules.goal, f"flows.{flow}.goal")

    def _holds(self, expr: CompiledExpression, where: str) -> bool:
        self.evaluations += 1
        try:
            return bool(expr(self.values, self.ctx))
        except ExpressionRuntimeError as exc:
            return self._failed(exc, where)

    def _failed(self, exc: ExpressionRuntimeError, where: str) -> bool:
        if self._on_error is None:
            raise exc
        self._on_error(where, exc)
        return False
