"""What conditions refuse: every escape from the sandbox at compile time, deep
nesting, and anything short that would take gigabytes or forever (at load for a
constant part, for that row only for a cell's value).

The names, values and helpers the expressions run on are in
``tests.support.expressions``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from sheetcrm import expressions
from sheetcrm.expressions import ExpressionRuntimeError
from tests.support.expressions import VALUES, Ctx, compile_, rule_error, run

# --- refused constructs -------------------------------------------------------------------


ESCAPES = [
    ("paid.__class__", "attribute access"),
    ("''.__class__.__mro__", "attribute access"),
    ("(1).__class__", "attribute access"),
    ("paid.__init__.__globals__", "attribute access"),
    ("days_since.__globals__", "attribute access"),
    ("days_since(a).real", "attribute access"),
    ("s.upper()", "calling the result of an expression"),
    ("[].append(1)", "calling the result of an expression"),
    ("x['a']", "subscripts"),
    ("tags[0]", "subscripts"),
    ("s[1:2]", "subscripts"),
    ("tags.0", "subscripts"),
    ("range(10)", "unknown function 'range'"),
    ("dict(a=1)", "unknown function 'dict'"),
    ("__import__('os')", "unknown function '__import__'"),
    ("super()", "unknown function 'super'"),
    ("lipsum", "unknown name 'lipsum'"),
    ("lipsum()", "unknown function 'lipsum'"),
    ("cycler", "unknown name 'cycler'"),
    ("joiner", "unknown name 'joiner'"),
    ("namespace", "unknown name 'namespace'"),
    ("self", "unknown name 'self'"),
    ("loop.index", "attribute access"),
    ("__builtins__", "unknown name '__builtins__'"),
    ("paid()", "'paid' is a value, not a function"),
    ("{'a': 1}", "dict literals"),
    ("2 ** 10", "power operator"),
    ("s|attr('__class__')", "unknown filter 'attr'"),
    ("tags|map('upper')", "unknown filter 'map'"),
    ("s|format(a)", "unknown filter 'format'"),
    ("s is callable", "unknown test 'is callable'"),
    ("a is divisibleby 3", "unknown test 'is divisibleby'"),
    ("a is number(1)", "takes no arguments"),
    ("days_since(*tags)", "*args and **kwargs"),
    ("sent_count(**{'days': 1})", "*args and **kwargs"),
    ("{% if paid %}x{% endif %}", "statements"),
    ("paid }}{{ s.__class__", "after the end of the expression"),
    ("paid }}{% for x in y %}", "after the end of the expression"),
]


@pytest.mark.parametrize(("source", "construct"), ESCAPES)
def test_escapes_are_refused_at_compile_time(source: str, construct: str) -> None:
    error = str(rule_error(source))
    assert construct in error
    assert source in error or repr(source) in error


def test_deep_nesting_is_refused_not_a_crash() -> None:
    assert "nested" in str(rule_error("not " * 150 + "paid"))
    assert "nested" in str(rule_error("a" + " + a" * 2000))
    assert "nested" in str(rule_error("(" * 2000 + "a" + ")" * 2000))
    assert run("not " * 50 + "paid") is False


def test_module_never_evaluates_text() -> None:
    modules = sorted(Path(expressions.__file__).parent.glob("*.py"))
    assert len(modules) > 1  # the package, every module of it
    for module in modules:
        source = module.read_text(encoding="utf-8")
        assert not re.search(r"\b(eval|exec)\(|__import__|import builtins", source), module


# --- nothing short takes gigabytes or forever ----------------------------------------------


def test_a_number_past_pythons_digit_limit_is_a_rule_error_at_its_position() -> None:
    error = str(rule_error("a == " + "9" * 5000))
    assert "a number of 5,000 digits is too long (at most 4,300)" in error
    assert "(line 1, column 6)" in error
    *_, source_line, caret_line = error.splitlines()
    assert caret_line.index("^") == source_line.index("9")
    assert len(error) < 500  # the 5,000 digits are not repeated in the message


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("'x' * 1000000000", "would build a value longer than 100,000"),
        ("1000000000 * 'x'", "would build a value longer than 100,000"),
        ("[1, 2] * 1000000000", "would build a value longer than 100,000"),
        ("(1, 2) * 1000000000", "would build a value longer than 100,000"),
        ("['x' * 60000] * 2", "would build a value longer than 100,000"),
        ("[[1] * 1000] * 1000", "would build a value longer than 100,000"),  # nesting
        ("s ~ ('x' * 1000000000)", "would build a value longer than 100,000"),
        ("'x' * 10**9", "the power operator (**)"),
        ("a|round(1000000000, 'ceil')", "precision must be a whole number from -100 to 100"),
        ("a|round(1000000000)", "precision must be a whole number from -100 to 100"),
        ("a|round(-1000000000)", "precision must be a whole number from -100 to 100"),
        ("a|round(precision=2.5)", "precision must be a whole number"),
        ("a|round(1, 'up')", "method must be 'common', 'ceil' or 'floor'"),
        ("round(a, 1000000000)", "unknown function 'round'"),
        ("('9' * 5000)|int", "is too large"),
        ("1 / 0", "division by zero"),
    ],
)
def test_a_constant_part_that_would_blow_up_is_refused_at_load(source: str, problem: str) -> None:
    error = str(rule_error(source))
    assert problem in error
    assert "Traceback" not in error and len(error) < 500


@pytest.mark.parametrize(
    ("source", "overrides", "problem"),
    [
        ("s * n", {"s": "x", "n": 1_000_000_000}, "longer than 100,000"),
        ("tags * n", {"n": 1_000_000_000}, "longer than 100,000"),
        ("[tags] * n", {"tags": ["x" * 1000], "n": 1000}, "longer than 100,000"),
        ("a|round(n, 'ceil')", {"n": 1_000_000_000}, "precision must be"),
        ("a|round(n)", {"a": 5, "n": -1_000_000_000}, "precision must be"),
        ("s|int", {"s": "9" * 5000}, "is too large"),
        ("a|float", {"a": 10**400}, "is too large"),
        ("a * a", {"a": 10**4000}, "more than 4,300 digits"),
        ("a|round(1, s)", {}, "method must be"),
    ],
)
def test_a_value_from_a_cell_that_would_blow_up_fails_that_row_only(
    source: str, overrides: dict[str, Any], problem: str, within: Any
) -> None:
    compiled = compile_(source)
    with pytest.raises(ExpressionRuntimeError) as caught:
        within(lambda: compiled({**VALUES, **overrides}, Ctx()))
    assert problem in caught.value.message
    assert len(str(caught.value)) < 500  # a long cell value is shortened in the message


def test_constant_parts_are_worked_out_once_and_keep_their_meaning() -> None:
    assert run("a * (2 * 3)") == 18
    assert run("s ~ ('-' * 3)") == "Hello---"
    assert run("a in [1, 2] * 2") is False
    compiled = compile_("[1] * 3")
    first = compiled(VALUES, Ctx())
    first.append(0)
    assert compiled(VALUES, Ctx()) == [1, 1, 1]  # a list is still fresh every time
    assert run("'x' * 100000 == 'x' * 100000") is True  # the limit itself is allowed


def test_the_limits_do_not_refuse_ordinary_arithmetic() -> None:
    assert run("x * 1.1 > 1") is True
    assert run("a * 4000") == 12000
    assert run("(10 * 10) * (10 * 10)") == 10_000
    assert run("3.14159|round(2, 'floor')") == 3.14
    assert run("1234|round(-2)") == 1200
