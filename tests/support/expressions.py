"""What the expression tests share: the names a condition may use, a row's values,
and helpers that record how they are called.

``compile_`` compiles with these names and helpers at the config path ``PATH``;
``run`` evaluates a source on the row (with ``overrides``); ``rule_error`` expects a
compile-time error at that path and returns it. The test files are
``tests/test_expressions_*.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from sheetcrm.errors import RuleError
from sheetcrm.expressions import CompiledExpression, compile_expression

PATH = 'tags."결제 대기"'
NAMES = ["a", "b", "c", "x", "y", "n", "s", "paid", "applied_at", "결제여부", "신청일수", "tags"]
VALUES: dict[str, Any] = {
    "a": 3,
    "b": 0,
    "c": 5,
    "x": 1.5,
    "y": False,
    "n": None,
    "s": "Hello",
    "paid": False,
    "applied_at": 10,
    "결제여부": False,
    "신청일수": 2,
    "tags": ["vip", "new"],
}


class Ctx:
    """Stands in for the caller's per-evaluation context."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []


def days_since(ctx: Ctx, day: int | None) -> int | None:
    ctx.calls.append(("days_since", (day,), {}))
    return None if day is None else 12 - day


def sent_count(ctx: Ctx, days: int = 30) -> int:
    ctx.calls.append(("sent_count", (), {"days": days}))
    return days // 7


def in_flow(ctx: Ctx, flow: str) -> bool:
    ctx.calls.append(("in_flow", (flow,), {}))
    return flow == "payment"


def between(ctx: Ctx, value: Any, low: Any = 0, high: Any = 10) -> bool:
    return low <= value <= high


def today(ctx: Ctx) -> int:
    return 12


def broken(ctx: Ctx, value: Any) -> Any:
    return value + "text"


HELPERS = {
    "days_since": days_since,
    "sent_count": sent_count,
    "in_flow": in_flow,
    "between": between,
    "today": today,
    "broken": broken,
}


def compile_(source: str, names: list[str] = NAMES) -> CompiledExpression:
    return compile_expression(source, names=names, helpers=HELPERS, path=PATH)


def run(source: str, **overrides: Any) -> Any:
    return compile_(source)({**VALUES, **overrides}, Ctx())


def rule_error(source: str) -> RuleError:
    with pytest.raises(RuleError) as caught:
        compile_(source)
    assert caught.value.path == PATH
    assert str(caught.value).startswith(PATH + ": ")
    return caught.value
