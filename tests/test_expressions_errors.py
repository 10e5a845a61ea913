"""Errors in conditions: syntax errors name the source and the position (a caret
under the problem, counting wide Korean characters); run-time errors name the
expression and are not config errors.

The names, values and helpers the expressions run on are in
``tests.support.expressions``.
"""

from __future__ import annotations

from typing import Any

import pytest

from sheetcrm.errors import RuleError
from sheetcrm.expressions import ExpressionRuntimeError, compile_expression
from tests.support.expressions import VALUES, Ctx, compile_, rule_error

# --- syntax errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "line", "column"),
    [
        ("not paid and", 1, 13),
        ("(paid and (a > 1)", 1, 18),
        ("paid and > a", 1, 10),
        ("paid and and a", 1, 14),  # Jinja reads the second `and` as a name
        ("paid = 1", 1, 6),
        ("paid $ a", 1, 6),
        ("'unclosed", 1, 1),
        ("a > 1 1", 1, 7),
        ("a }} b", 1, 3),
        ("결제여부 and\n  (a >", 2, 7),
        ("결제여부 and\r\n  (a >", 2, 7),
    ],
)
def test_syntax_error_names_source_and_position(source: str, line: int, column: int) -> None:
    error = str(rule_error(source))
    assert "syntax error in expression" in error
    assert repr(source.replace("\r\n", "\n")) in error
    assert f"(line {line}, column {column})" in error
    caret_line = error.splitlines()[-1]
    assert caret_line.strip() == "^"


def test_syntax_error_caret_sits_under_the_problem() -> None:
    error = str(rule_error("paid and > a"))
    *_, source_line, caret_line = error.splitlines()
    assert source_line == "    paid and > a"
    assert caret_line == "    " + " " * 9 + "^"


def test_syntax_error_caret_counts_wide_korean_characters() -> None:
    error = str(rule_error("결제여부 $"))
    *_, source_line, caret_line = error.splitlines()
    assert caret_line.index("^") == 4 + 2 * 4 + 1  # 4 wide characters, then a space


def test_syntax_error_keeps_jinjas_message() -> None:
    assert "expected ')'" in str(rule_error("(paid and a"))


@pytest.mark.parametrize("source", ["", "   ", "\n"])
def test_empty_expression(source: str) -> None:
    assert "empty" in str(rule_error(source))


def test_template_braces_are_explained() -> None:
    assert "without the {{ }}" in str(rule_error("{{ paid }}"))


# --- run-time errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "overrides", "fragment"),
    [
        ("s < 1", {}, "'<' not supported"),
        ("s + 1", {}, "can only concatenate str"),
        ("a / b", {}, "division by zero"),
        ("a // b", {}, "division"),
        ("s|int", {}, "int: 'Hello' is not a number"),
        ("s|float", {}, "float: 'Hello' is not a number"),
        ("a|length", {}, "has no len()"),
        ("1 in a", {}, "not iterable"),
        ("broken(a)", {}, "unsupported operand"),
        ("s * 1000000", {}, "longer than"),
        ("'%s' % s", {}, "'%' needs numbers"),
        ("a|round(1, s)", {}, "method must be"),
        ("paid", {"paid": KeyError}, "no value for 'paid'"),
    ],
)
def test_runtime_errors_name_the_expression(
    source: str, overrides: dict[str, Any], fragment: str
) -> None:
    values = dict(VALUES)
    for key in overrides:
        del values[key]
    compiled = compile_(source)
    with pytest.raises(ExpressionRuntimeError) as caught:
        compiled(values, Ctx())
    assert caught.value.source == source
    assert fragment in caught.value.message
    assert source in str(caught.value)


def test_runtime_error_is_not_a_config_error() -> None:
    assert issubclass(ExpressionRuntimeError, Exception)
    assert not issubclass(ExpressionRuntimeError, RuleError)


def test_other_exceptions_from_helpers_propagate() -> None:
    class Outage(Exception):
        pass

    def failing(ctx: Any) -> None:
        raise Outage

    compiled = compile_expression("failing()", names=(), helpers={"failing": failing}, path="p")
    with pytest.raises(Outage):
        compiled({}, None)


def test_compiled_expression_is_reusable_across_rows() -> None:
    compiled = compile_("a + 1 if a is number else s|lower")
    assert [compiled({**VALUES, "a": v}, Ctx()) for v in (1, "x", None, 2.5)] == [
        2,
        "hello",
        "hello",
        3.5,
    ]
    assert repr(compiled) == "CompiledExpression('a + 1 if a is number else s|lower')"
