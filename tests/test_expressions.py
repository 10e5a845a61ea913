"""Conditions: Python semantics, blank-cell semantics, helpers, and what is refused."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from sheetcrm import expressions
from sheetcrm.errors import RuleError
from sheetcrm.expressions import CompiledExpression, ExpressionRuntimeError, compile_expression

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


# --- literal arguments of helpers are checked at load ---------------------------------


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
