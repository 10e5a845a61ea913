"""A condition over a column of rows gives, row for row, what its closures give.

``expressions.columns`` builds one function per condition from the same checked tree;
every case of the semantics tests, over rows whose values vary (blank cells, other
types), must agree with the closures row by row, and fail where one row fails.
"""

from __future__ import annotations

from typing import Any

import pytest

from sheetcrm.expressions import ExpressionRuntimeError, compile_expression
from tests.support.expressions import HELPERS, NAMES, VALUES, Ctx
from tests.test_expressions_semantics import JINJA_CASES, NULL_CASES, PYTHON_CASES

ROW_FREE = frozenset({"days_since", "sent_count", "between", "today", "broken"})

CHAINED = {"1 < n < 3", "a < c > b", "1 <= a < c"}

ROWS: list[dict[str, Any]] = [
    VALUES,
    {**VALUES, "a": None, "s": None, "paid": True, "applied_at": None},
    {**VALUES, "b": 7, "c": -2, "x": 0.0, "y": True, "결제여부": True, "신청일수": None},
    {**VALUES, "n": 4, "tags": [], "s": ""},
]

SOURCES = sorted({*PYTHON_CASES, *(c[0] for c in JINJA_CASES), *(c[0] for c in NULL_CASES),
                  "paid and days_since(applied_at) >= 1",
                  "not 결제여부 and 신청일수 >= 1",
                  "between(a, high=c) or between(b, low=-1, high=n or 0)",
                  "sent_count(days=a or 7) > 0",
                  "broken(s) == 'x'",
                  "(a or 0) + (n or 0) > 3",
                  "s ~ '-' ~ a",
                  "a in [1, 3, c] and s|lower in ('hello', 'x')",
                  "today() - (applied_at or 0) if paid else -a"})


def _rows_one_by_one(expr: Any, rows: list[dict[str, Any]]) -> list[Any] | None:
    out = []
    for row in rows:
        try:
            out.append(expr(row, Ctx()))
        except ExpressionRuntimeError:
            return None
    return out


@pytest.mark.parametrize("source", SOURCES)
def test_a_column_agrees_with_the_closures_row_by_row(source: str) -> None:
    expr = compile_expression(source, names=NAMES, helpers=HELPERS, path="p",
                              row_free=ROW_FREE)
    if expr.column is None:  # a chained comparison over names stays row by row
        assert source in CHAINED
        return
    for rows in ([r] for r in ROWS):
        expected = _rows_one_by_one(expr, rows)
        if expected is None:
            with pytest.raises(Exception):  # noqa: B017 (whatever the closures wrap)
                expr.column(rows, Ctx())
        else:
            got = expr.column(rows, Ctx())
            assert got == expected
            assert [type(v) for v in got] == [type(v) for v in expected]
    expected = _rows_one_by_one(expr, ROWS)
    if expected is not None:
        assert expr.column(ROWS, Ctx()) == expected


def test_a_constant_list_is_a_fresh_list_on_every_row() -> None:
    expr = compile_expression("[1, a]", names=NAMES, helpers=HELPERS, path="p",
                              row_free=ROW_FREE)
    assert expr.column is not None
    first, second = expr.column([VALUES, VALUES], Ctx())
    assert first == second == [1, 3] and first is not second


@pytest.mark.parametrize("source", ["in_flow('payment') and a > 1", "1 < a < 5"])
def test_per_row_state_and_chained_comparisons_stay_row_by_row(source: str) -> None:
    expr = compile_expression(source, names=NAMES, helpers=HELPERS, path="p",
                              row_free=ROW_FREE)
    assert expr.column is None


def test_operator_text_never_becomes_code() -> None:
    # A string that would be code if it were pasted into source stays a value.
    expr = compile_expression("s == \"__import__('os').system('false')\"", names=NAMES,
                              helpers=HELPERS, path="p", row_free=ROW_FREE)
    assert expr.column is not None
    assert expr.column([VALUES], Ctx()) == [False]
    assert "__builtins__" in expr.column.__globals__
    assert expr.column.__globals__["__builtins__"] == {}


# --- the planner: the same plan whether a condition runs by column or row by row --------


def _plan_dump(plan: Any) -> list[Any]:
    return [plan.tags, [repr(m) for m in plan.moves], [repr(s) for s in plan.sends],
            [repr(h) for h in plan.held], [repr(e) for e in plan.errors],
            plan.evaluations, plan.broken_rules, [repr(c) for c in plan.tag_changes]]


def _row_by_row(rows: list[list[str]], config: Any, monkeypatch: Any) -> Any:
    """The plan of ``rows`` with every condition evaluated row by row."""
    from sheetcrm.core import engine, evaluate
    from tests.test_unknown_cells import plan_for

    class RowByRow(evaluate.Columns):
        def __init__(self, rules: Any, rows: Any, ctx: Any) -> None:
            super().__init__(rules, [], ctx)  # no rows: every condition row by row

    monkeypatch.setattr(engine, "Columns", RowByRow)
    return plan_for(rows, config)


def test_the_planner_plans_the_same_by_column_as_row_by_row(monkeypatch) -> None:
    from tests.test_unknown_cells import make_config, plan_for, row

    def more_tags(raw: dict[str, Any]) -> None:
        raw["tags"]["문자 비교"] = "course < score"  # fails on rows with a score
        raw["tags"]["최근"] = "days_since(applied_at) < 10 or score is none"
        raw["flows"]["welcome"]["goal"] = "score >= 3"

    config = make_config(more_tags)
    rows = [row(), row("b@x.com", paid="O", score="7"), row("c@x.com", score="many"),
            row("d@x.com", applied="2026-11-20", score="2"), row("", paid="O"),
            row("e@x.com", paid="O", applied="someday"), row("f@x.com", paid="O"),
            row("f@x.com"), row("g@x.com", paid="O", score="1")]
    by_column = plan_for(rows, config)
    assert _plan_dump(by_column) == _plan_dump(_row_by_row(rows, config, monkeypatch))
    assert any(e.kind == "rule" for e in by_column.errors)  # the failing tag, row by row
    assert by_column.tags["a@x.com"] == ["결제 대기", "최근"]


def test_rows_sharing_a_combination_of_tags_plan_as_if_each_had_its_own(monkeypatch) -> None:
    from sheetcrm.core import engine, evaluate
    from tests.test_unknown_cells import make_config, plan_for, row

    def row_free_tags(raw: dict[str, Any]) -> None:  # every tag a column: shared tag sets
        raw["tags"] = {"결제 대기": "not paid and days_since(applied_at) >= 1",
                       "고득점": "score > 5", "최근": "days_since(applied_at) < 10"}

    config = make_config(row_free_tags)
    rows = [row(), row("b@x.com", paid="O", score="7", tags="고득점"), row("c@x.com"),
            row("d@x.com", applied="2026-11-20", score="9", tags="결제 대기"),
            row("e@x.com", score="many", tags="고득점, 최근"),  # 고득점 not known: kept
            row("f@x.com", paid="O", score="7"), row("g@x.com", applied="someday")]
    made: list[evaluate.Columns] = []

    class Seen(evaluate.Columns):
        def __init__(self, rules: Any, rows: Any, ctx: Any) -> None:
            super().__init__(rules, rows, ctx)
            made.append(self)

    monkeypatch.setattr(engine, "Columns", Seen)
    by_column = plan_for(rows, config)
    assert made[0].tag_sets is not None and len(made[0].tag_sets) == 5  # rows all read
    assert made[0].tag_sets[1] is made[0].tag_sets[4]  # b and f: one set of tags
    assert _plan_dump(by_column) == _plan_dump(_row_by_row(rows, config, monkeypatch))
    assert by_column.tags == {"a@x.com": ["결제 대기"], "b@x.com": ["고득점"],
                              "c@x.com": ["결제 대기"], "d@x.com": ["결제 대기", "고득점", "최근"],
                              "e@x.com": ["결제 대기", "고득점"], "f@x.com": ["고득점"],
                              "g@x.com": []}
