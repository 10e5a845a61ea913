"""Conditions mean what they mean in Python (and in Jinja's syntax), blank cells have
their own semantics, Korean names work, and helpers get the caller's context first,
their arguments evaluated per row.

The names, values and helpers the expressions run on are in
``tests.support.expressions``.
"""

from __future__ import annotations

from typing import Any

import pytest

from sheetcrm.expressions import compile_expression
from tests.support.expressions import VALUES, Ctx, compile_, rule_error, run

# --- semantics match Python ------------------------------------------------------------


PYTHON_CASES = [
    "1 + 2 * 3",
    "(1 + 2) * 3",
    "7 / 2",
    "7 // 2",
    "-7 // 2",
    "7 % 3",
    "-7 % 3",
    "2 - -3",
    "+a - -b",
    "a * c - b",
    "a - c * a // 2",
    "x * 2",
    "'a' + 'b'",
    "'ab' * 3",
    "[1] + [2]",
    "1 < 2 < 3",
    "3 > 2 > 2",
    "1 <= 1 < 2 != 3",
    "a < c > b",
    "1 == 1.0",
    "1 != 1",
    "'a' < 'b'",
    "[1, 2] == [1, 2]",
    "(1, 2) == (1, 2)",
    "[1, 2] == (1, 2)",
    "a and b",
    "a or b",
    "b or a",
    "b and a",
    "not a",
    "not b",
    "0 or ''",
    "'' or 'x'",
    "1 and 0 or 5",
    "not 1 == 2",
    "not a > c and c > a",
    "a if b else c",
    "a if y else c if a else b",
    "1 in [1, 2]",
    "3 not in [1, 2]",
    "'ab' in 'cab'",
    "'vip' in tags",
    "'gold' not in tags",
    "a in (1, 2, 3)",
    "x >= 1 and not y",
    "s == 'Hello'",
    "paid == False",
    "True",
    "None",
    "'문자열'",
    "[a, b, [c]]",
    "(a, b)",
]


@pytest.mark.parametrize("source", PYTHON_CASES)
def test_matches_python(source: str) -> None:
    expected = eval(source, {"__builtins__": {}}, dict(VALUES))  # the oracle, fixed text
    result = run(source)
    assert result == expected
    assert type(result) is type(expected)


JINJA_CASES = [
    ("true and not false", True),
    ("none is none", True),
    ("a ~ 'x' ~ 1.5", "3x1.5"),
    ("s ~ n ~ '!'", "Hello!"),  # blank joins as nothing
    ("a if b", None),  # no else: None, like Jinja's undefined
    ("s|lower", "hello"),
    ("s|upper", "HELLO"),
    ("'  x  '|trim", "x"),
    ("s|length", 5),
    ("tags|length", 2),
    ("b|default(7)", 0),
    ("b|default(7, true)", 7),
    ("''|default('-', boolean=true)", "-"),
    ("'12'|int", 12),
    ("'1,234'|int", 1234),
    ("'3.7'|int", 3),
    ("x|int", 1),
    ("'abc'|int(0)", 0),
    ("'abc'|int(default=-1)", -1),
    ("'1.5'|float", 1.5),
    ("a|float", 3.0),
    ("'x'|float(0.0)", 0.0),
    ("(-3)|abs", 3),
    ("3.14159|round(2)", 3.14),
    ("2.5|round", 2.0),
    ("2.1|round(0, 'ceil')", 3.0),
    ("2.9|round(method='floor')", 2.0),
    ("a is number", True),
    ("x is number", True),
    ("y is number", False),  # a yes/no value is not a number
    ("s is number", False),
    ("s is string", True),
    ("a is string", False),
    ("s is not none", True),
    ("a + 1 > 2 and s|lower == 'hello'", True),
]


@pytest.mark.parametrize(("source", "expected"), JINJA_CASES)
def test_jinja_syntax(source: str, expected: Any) -> None:
    result = run(source)
    assert result == expected
    assert type(result) is type(expected)


# --- blank cells ------------------------------------------------------------------------

NULL_CASES = [
    ("n < 1", False),
    ("n <= 1", False),
    ("n > 1", False),
    ("n >= 1", False),
    ("1 > n", False),
    ("n >= n", False),
    ("1 < n < 3", False),
    ("n == none", True),
    ("n != none", False),
    ("n == 0", False),
    ("n != 0", True),
    ("n + 1", None),
    ("1 - n", None),
    ("n * 2", None),
    ("n / 2", None),
    ("2 // n", None),
    ("n % 2", None),
    ("-n", None),
    ("n + 1 > 0", False),
    ("1 in n", False),
    ("1 not in n", True),
    ("n in [1, none]", True),
    ("n in [1, 2]", False),
    ("n in 'abc'", False),
    ("not n", True),
    ("n or 'x'", "x"),
    ("n and 1", None),
    ("n|length", 0),
    ("n|default(5)", 5),
    ("n|lower", None),
    ("n|trim", None),
    ("n|int", None),
    ("n|float", None),
    ("n|abs", None),
    ("n|round", None),
    ("n is none", True),
    ("n is not none", False),
    ("n is number", False),
    ("n is string", False),
    ("n ~ 'x'", "x"),
    ("days_since(n) >= 1", False),
    ("not paid and days_since(n) >= 1", False),
]


@pytest.mark.parametrize(("source", "expected"), NULL_CASES)
def test_blank_cells(source: str, expected: Any) -> None:
    assert run(source) == expected
    assert type(run(source)) is type(expected)


# --- names and helpers -------------------------------------------------------------------


def test_korean_identifiers() -> None:
    compiled = compile_("not 결제여부 and 신청일수 >= 1")
    assert compiled.names == {"결제여부", "신청일수"}
    assert compiled({**VALUES, "결제여부": False, "신청일수": 2}, Ctx()) is True
    assert compiled({**VALUES, "결제여부": True, "신청일수": 2}, Ctx()) is False


def test_typical_condition() -> None:
    compiled = compile_("not paid and days_since(applied_at) >= 1")
    assert compiled.source == "not paid and days_since(applied_at) >= 1"
    assert compiled.names == frozenset({"paid", "applied_at"})
    assert compiled.helpers == frozenset({"days_since"})
    assert compiled({**VALUES, "paid": False, "applied_at": 10}, Ctx()) is True
    assert compiled({**VALUES, "paid": False, "applied_at": 12}, Ctx()) is False
    assert compiled({**VALUES, "paid": True, "applied_at": 10}, Ctx()) is False


def test_helpers_receive_ctx_first() -> None:
    ctx = Ctx()
    compiled = compile_("days_since(applied_at) >= 1 and in_flow('payment')")
    assert compiled(VALUES, ctx) is True
    assert ctx.calls == [("days_since", (10,), {}), ("in_flow", ("payment",), {})]


def test_helper_keyword_arguments_constant_and_computed() -> None:
    ctx = Ctx()
    assert compile_("sent_count(days=7)")(VALUES, ctx) == 1
    assert compile_("sent_count(days=c * 7)")(VALUES, ctx) == 5
    assert compile_("sent_count()")(VALUES, ctx) == 4
    assert [call[2] for call in ctx.calls] == [{"days": 7}, {"days": 35}, {"days": 30}]


def test_helper_positional_and_keyword_arguments() -> None:
    assert run("between(a, low=1, high=c)") is True
    assert run("between(a, high=2)") is False
    assert run("between(a, 4, c)") is False
    assert run("today() - applied_at") == 2


def test_helper_arguments_are_evaluated_per_row() -> None:
    compiled = compile_("days_since(applied_at + b)")
    assert compiled({**VALUES, "b": 1}, Ctx()) == 1
    assert compiled({**VALUES, "b": 2}, Ctx()) == 0


def test_short_circuit_skips_helpers() -> None:
    ctx = Ctx()
    compile_("paid and days_since(applied_at) >= 1")(VALUES, ctx)
    assert ctx.calls == []


def test_constant_list_in_condition_is_not_shared() -> None:
    compiled = compile_("[a, 1]")
    first = compiled(VALUES, Ctx())
    first.append("x")
    assert compiled(VALUES, Ctx()) == [3, 1]


@pytest.mark.parametrize(
    "source",
    [
        "nosuchname",
        "false and nosuchname",
        "true or nosuchname",
        "paid and (a > 1 or nosuchname)",
        "a if true else nosuchname",
        "[1, nosuchname]",
        "sent_count(days=nosuchname)",
        "nosuchname|default(1)",
        "nosuchname is none",
        "not nosuchname",
    ],
)
def test_unknown_name_is_caught_even_behind_short_circuit(source: str) -> None:
    error = rule_error(source)
    assert "unknown name 'nosuchname'" in str(error)
    assert "known names: " in str(error) and "결제여부" in str(error)
    assert source in str(error)


def test_unknown_name_suggests_a_close_one() -> None:
    assert "did you mean 'paid'?" in str(rule_error("not piad"))


def test_helper_used_without_call_is_explained() -> None:
    assert "today is a function, write today(...)" in str(rule_error("applied_at < today"))


def test_unknown_function() -> None:
    error = str(rule_error("day_since(applied_at) > 1"))
    assert "unknown function 'day_since'" in error
    assert "did you mean 'days_since'?" in error
    assert "known functions: between, broken, days_since" in error


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("days_since()", "missing a required argument"),
        ("in_flow('a', 'b')", "too many positional arguments"),
        ("sent_count(dayz=7)", "unexpected keyword argument 'dayz'"),
        ("a|round(digits=1)", "unexpected keyword argument 'digits'"),
        ("a|lower(1)", "too many positional arguments"),
    ],
)
def test_wrong_arguments_are_caught_at_compile_time(source: str, problem: str) -> None:
    assert problem in str(rule_error(source))


def test_no_names_and_no_helpers() -> None:
    compiled = compile_expression("1 + 1 == 2", names=(), helpers={}, path="p")
    assert compiled({}, None) is True
    assert compiled.names == compiled.helpers == frozenset()
