"""Literal arguments of helpers are checked at load: a bad flow name or period is a
rule error naming the closest valid one; arguments computed per row stay allowed.

The names, values and helpers the expressions run on are in
``tests.support.expressions``.
"""

from __future__ import annotations

from typing import Any

import pytest

from sheetcrm import expressions
from sheetcrm.errors import RuleError
from sheetcrm.expressions import CompiledExpression, compile_expression
from tests.support.expressions import HELPERS, NAMES, PATH, VALUES, Ctx


def check_flow(flow: Any) -> None:
    if flow not in ("payment", "onboarding"):
        raise ValueError(f"unknown flow {flow!r}")


def check_days(days: Any) -> None:
    if days not in (7, 30):
        raise ValueError(f"unknown period {days!r}")


def compile_checked(source: str) -> CompiledExpression:
    checks = {"in_flow": {"flow": check_flow}, "sent_count": {"days": check_days}}
    return compile_expression(source, names=NAMES, helpers=HELPERS, path=PATH, checks=checks)


@pytest.mark.parametrize(
    "source",
    ["in_flow('paymnt')", "in_flow(flow='paymnt')", "a > 1 and not in_flow('x')",
     "sent_count(days=8)", "sent_count(4 + 4)"],
)
def test_a_literal_helper_argument_that_fails_its_check_is_a_rule_error(source: str) -> None:
    with pytest.raises(RuleError) as caught:
        compile_checked(source)
    assert str(caught.value).startswith(PATH + ": ")
    assert "in_flow(): unknown flow" in str(caught.value) or "sent_count(): unknown period" \
        in str(caught.value)


def test_arguments_computed_per_row_and_unchecked_helpers_stay_allowed() -> None:
    ctx = Ctx()
    assert compile_checked("in_flow('payment')")(VALUES, ctx) is True
    assert compile_checked("in_flow(s)")(VALUES, ctx) is False  # checked by the helper
    assert compile_checked("sent_count(days=a * 10)")(VALUES, ctx) == 4
    assert compile_checked("days_since(5)")(VALUES, ctx) == 7
    assert ctx.calls == [("in_flow", ("payment",), {}), ("in_flow", ("Hello",), {}),
                         ("sent_count", (), {"days": 30}), ("days_since", (5,), {})]


def test_one_of_suggests_the_closest_name() -> None:
    check = expressions.one_of("flow", ["payment", "onboarding"])
    check("payment")
    with pytest.raises(ValueError) as caught:
        check("paymnt")
    assert str(caught.value) == ("unknown flow 'paymnt'; did you mean 'payment'?; "
                                 "known flows: 'payment', 'onboarding'")
