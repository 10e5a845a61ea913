"""Jinja's syntax tree, whitelisted node by node, compiled into Python closures.

Each allowed node type becomes a closure ``evaluate(values, ctx)``; any other node is
refused by name, so nothing can reach attributes, items of arbitrary objects or
Python builtins. The closures only ever index ``values`` by a checked name, call a
checked helper, or apply one of the operations in ``semantics``.

A part of an expression that reads no name and calls no helper is evaluated once at
load: if it fails (``'x' * 1000000000``, ``1 / 0``) the config is refused with the key
path, since it would fail on every row; otherwise its value is kept, which also saves
the work on every row.

A helper's literal arguments can be checked at load too (``checks``): the caller
knows, say, which flows exist, so ``in_flow('paymnt')`` is refused with a
did-you-mean instead of being false forever. Arguments computed from cells are left to
the helper at run time.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Collection, Mapping
from typing import Any, NoReturn

from jinja2 import nodes

from sheetcrm.errors import RuleError
from sheetcrm.expressions.columns import ColumnFunction, column_function
from sheetcrm.expressions.parse import parse
from sheetcrm.expressions.semantics import (
    ARITHMETIC,
    COMPARISONS,
    FILTER_CHECKS,
    FILTERS,
    TESTS,
    UNARY,
    ArgumentCheck,
    as_text,
    shown,
)
from sheetcrm.i18n import N_, _

Evaluator = Callable[[Mapping[str, Any], Any], Any]

#: Deeper nesting is refused at compile time, which also bounds recursion at run time.
MAX_DEPTH = 100


class ExpressionRuntimeError(Exception):
    """An expression failed on one row's values (e.g. ``'a' < 1``); mark that row."""

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        self.message = message
        super().__init__(_("expression {source}: {problem}", source=shown(source),
                           problem=message))


class CompiledExpression:
    """A condition compiled once at config load, evaluated for every row."""

    __slots__ = ("source", "names", "helpers", "_evaluate", "column")

    def __init__(
        self,
        source: str,
        names: frozenset[str],
        helpers: frozenset[str],
        evaluate: Evaluator,
        column: ColumnFunction | None = None,
    ) -> None:
        self.source = source
        self.names = names  # variables the expression reads
        self.helpers = helpers  # helper functions it calls
        self._evaluate = evaluate
        # Over many rows at once (``columns``); None: row by row only.
        self.column = column

    def __call__(self, values: Mapping[str, Any], ctx: Any) -> Any:
        """Evaluate with ``values`` (name -> typed value); ``ctx`` goes to every helper."""
        try:
            return self._evaluate(values, ctx)
        except KeyError as exc:
            raise ExpressionRuntimeError(self.source,
                                         _("no value for {name}", name=exc)) from exc
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise ExpressionRuntimeError(self.source, str(exc)) from exc

    def __repr__(self) -> str:
        return f"CompiledExpression({self.source!r})"


def compile_expression(
    source: str,
    *,
    names: Collection[str],
    helpers: Mapping[str, Callable[..., Any]],
    path: str,
    checks: Mapping[str, Mapping[str, ArgumentCheck]] | None = None,
    row_free: Collection[str] = (),
) -> CompiledExpression:
    """Compile ``source`` or raise RuleError (at ``path``) saying what is wrong and where.

    ``names`` are the variables the expression may read; ``helpers`` the functions it
    may call, each receiving the evaluation's ``ctx`` as first argument. Every name is
    checked here, including ones short-circuiting would never reach at run time.
    ``checks`` maps a helper's name to its parameters' checks: each literal argument
    given for such a parameter is checked here (``{"in_flow": {"flow": one_of(...)}}``).
    The helpers in ``row_free`` read nothing of a row but the time: a condition calling
    no other gets a ``column`` function too.
    """
    node = parse(source, path)
    compiler = _Compiler(source, frozenset(names), helpers, path, checks or {})
    evaluate = compiler.compile(node)
    column = column_function(node, compiler._constants, helpers, row_free)
    return CompiledExpression(source, frozenset(compiler.used_names),
                              frozenset(compiler.used_helpers), evaluate, column)


def one_of(what: str, known: Collection[str]) -> ArgumentCheck:
    """A check for ``checks``: the argument names one of ``known`` (a flow, a tag...)."""

    def check(value: Any) -> None:
        if value not in known:
            listed = ", ".join(repr(name) for name in known) or _("(none)")
            raise ValueError(unknown(what, value, known, listed))

    return check


#: What ``unknown`` says for each kind of name: without and with a close match.
UNKNOWN = {
    "name": (N_("unknown name {value}; known names: {known}"),
             N_("unknown name {value}; did you mean {guess}?; known names: {known}")),
    "function": (N_("unknown function {value}; known functions: {known}"),
                 N_("unknown function {value}; did you mean {guess}?; "
                    "known functions: {known}")),
    "flow": (N_("unknown flow {value}; known flows: {known}"),
             N_("unknown flow {value}; did you mean {guess}?; known flows: {known}")),
    "tag": (N_("unknown tag {value}; known tags: {known}"),
            N_("unknown tag {value}; did you mean {guess}?; known tags: {known}")),
    "event": (N_("unknown event {value}; known events: {known}"),
              N_("unknown event {value}; did you mean {guess}?; known events: {known}")),
    "variant": (N_("unknown variant {value}; known variants: {known}"),
                N_("unknown variant {value}; did you mean {guess}?; known variants: {known}")),
}


def unknown(what: str, value: Any, known: Collection[str], listed: str) -> str:
    """``unknown flow 'paymnt'; did you mean 'payment'?; known flows: ...``.

    ``what`` is one of ``UNKNOWN``'s kinds.
    """
    plain, guessed = UNKNOWN[what]
    close = difflib.get_close_matches(value, known, n=1) if isinstance(value, str) else []
    if close:
        return _(guessed, value=shown(value), guess=repr(close[0]), known=listed)
    return _(plain, value=shown(value), known=listed)


# Constructs that are refused, named the way an operator would recognise them.
_REFUSED = {
    nodes.Getattr: N_("attribute access (x.y)"),
    nodes.Getitem: N_("subscripts (x[...])"),
    nodes.Slice: N_("slicing (x[a:b])"),
    nodes.Dict: N_("dict literals ({...})"),
    nodes.Pow: N_("the power operator (**)"),
}


class _Compiler:
    """Turns whitelisted Jinja nodes into closures ``evaluate(values, ctx)``.

    One method per allowed node type; any other node is refused by name. The
    closures only ever index ``values`` by a checked name, call a checked helper, or
    apply one of the operations of ``semantics``.
    """

    def __init__(
        self,
        source: str,
        names: frozenset[str],
        helpers: Mapping[str, Callable[..., Any]],
        path: str,
        checks: Mapping[str, Mapping[str, ArgumentCheck]],
    ) -> None:
        self.source = source
        self.names = names
        self.helpers = helpers
        self.path = path
        self.checks = checks
        self.used_names: set[str] = set()
        self.used_helpers: set[str] = set()
        self._depth = 0
        self._dynamic = 0  # names read and helpers called so far
        self._constants: dict[int, Any] = {}  # id(node) -> its value, for constant parts
        self._methods: dict[type[nodes.Node], Callable[[Any], Evaluator]] = {
            nodes.Name: self._name,
            nodes.Const: self._const,
            nodes.List: self._list,
            nodes.Tuple: self._tuple,
            nodes.Compare: self._compare,
            nodes.And: self._and,
            nodes.Or: self._or,
            nodes.Not: self._not,
            nodes.Neg: self._unary,
            nodes.Pos: self._unary,
            nodes.Concat: self._concat,
            nodes.CondExpr: self._cond,
            nodes.Call: self._call,
            nodes.Filter: self._filter,
            nodes.Test: self._test,
            **dict.fromkeys(ARITHMETIC, self._arithmetic),
        }

    def fail(self, problem: str) -> NoReturn:
        raise RuleError(_("{problem} (in expression {source})", problem=problem,
                          source=shown(self.source)), path=self.path)

    def compile(self, node: nodes.Node) -> Evaluator:
        method = self._methods.get(type(node))
        if method is None:
            refused = _REFUSED.get(type(node))  # type: ignore[arg-type]
            what = _(refused) if refused else f"{type(node).__name__} nodes"
            self.fail(_("not allowed in an expression: {what}", what=what))
        self._depth += 1
        if self._depth > MAX_DEPTH:
            self.fail(_("the expression is nested more than {most} levels deep",
                        most=MAX_DEPTH))
        dynamic = self._dynamic
        try:
            evaluate = method(node)
        finally:
            self._depth -= 1
        if self._dynamic == dynamic and not isinstance(node, nodes.Const):
            return self._fold(node, evaluate)
        return evaluate

    def _fold(self, node: nodes.Node, evaluate: Evaluator) -> Evaluator:
        """A part that reads no name and calls no helper has one value: work it out now.

        If that fails, it would fail on every row: refused here, with the key path.
        """
        try:
            value = evaluate({}, None)
        except (TypeError, ValueError, ArithmeticError) as exc:
            self.fail(str(exc))
        if not _immutable(value):
            return evaluate  # a list: every evaluation gets a fresh one
        self._constants[id(node)] = value
        return lambda values, ctx: value

    def _literal(self, node: nodes.Node, *, as_container: bool = False) -> Any:
        """The value of a constant part, or ``_NOT_LITERAL``; lets hot paths skip a call.

        With ``as_container``, a list of constants (``plan in ['a', 'b']``) is a tuple
        built once; elsewhere a list stays a fresh list, since ``[1] == (1,)`` is False.
        """
        value = self._constants.get(id(node), _NOT_LITERAL)
        if value is not _NOT_LITERAL or not isinstance(node, nodes.Node):
            return value
        if isinstance(node, nodes.Const):
            return node.value
        if as_container and isinstance(node, (nodes.List, nodes.Tuple)):
            items = tuple(self._literal(item) for item in node.items)
            if _NOT_LITERAL not in items:
                return items
        return _NOT_LITERAL

    # names and literals

    def _name(self, node: nodes.Name) -> Evaluator:
        name = node.name
        if name not in self.names:
            self.fail(self._unknown_name(name))
        self.used_names.add(name)
        self._dynamic += 1
        return lambda values, ctx: values[name]

    def _unknown_name(self, name: str) -> str:
        if name in self.helpers:
            return _("unknown name {quoted}: {name} is a function, write {name}(...)",
                     quoted=repr(name), name=name)
        return unknown("name", name, self.names, ", ".join(sorted(self.names)) or _("(none)"))

    def _const(self, node: nodes.Const) -> Evaluator:
        value = node.value
        if value is not None and type(value) not in (str, int, float, bool):
            self.fail(_("constants of type {type} are not allowed", type=type(value).__name__))
        return lambda values, ctx: value

    def _list(self, node: nodes.List) -> Evaluator:
        items = tuple(self.compile(item) for item in node.items)
        return lambda values, ctx: [item(values, ctx) for item in items]

    def _tuple(self, node: nodes.Tuple) -> Evaluator:
        items = tuple(self.compile(item) for item in node.items)
        return lambda values, ctx: tuple(item(values, ctx) for item in items)

    # operators

    def _compare(self, node: nodes.Compare) -> Evaluator:
        first = self.compile(node.expr)
        steps = []
        for operand in node.ops:
            if operand.op not in COMPARISONS:
                self.fail(_("the comparison {op} is not allowed", op=repr(operand.op)))
            steps.append((COMPARISONS[operand.op], self.compile(operand.expr)))
        if len(steps) > 1:
            return _chain(first, tuple(steps))
        ((test, second),) = steps
        operand = node.ops[0]
        constant = self._literal(operand.expr, as_container=operand.op in ("in", "notin"))
        if constant is not _NOT_LITERAL:  # the common `x >= 1`: one call fewer per row
            return lambda values, ctx: test(first(values, ctx), constant)
        return lambda values, ctx: test(first(values, ctx), second(values, ctx))

    def _and(self, node: nodes.And) -> Evaluator:
        left, right = self.compile(node.left), self.compile(node.right)
        return lambda values, ctx: left(values, ctx) and right(values, ctx)

    def _or(self, node: nodes.Or) -> Evaluator:
        left, right = self.compile(node.left), self.compile(node.right)
        return lambda values, ctx: left(values, ctx) or right(values, ctx)

    def _not(self, node: nodes.Not) -> Evaluator:
        inner = self.compile(node.node)
        return lambda values, ctx: not inner(values, ctx)

    def _arithmetic(self, node: nodes.BinExpr) -> Evaluator:
        op = ARITHMETIC[type(node)]
        left, right = self.compile(node.left), self.compile(node.right)

        def evaluate(values: Mapping[str, Any], ctx: Any) -> Any:
            a, b = left(values, ctx), right(values, ctx)
            return None if a is None or b is None else op(a, b)

        return evaluate

    def _unary(self, node: nodes.UnaryExpr) -> Evaluator:
        op = UNARY[type(node)]
        inner = self.compile(node.node)

        def evaluate(values: Mapping[str, Any], ctx: Any) -> Any:
            value = inner(values, ctx)
            return None if value is None else op(value)

        return evaluate

    def _concat(self, node: nodes.Concat) -> Evaluator:
        parts = tuple(self.compile(part) for part in node.nodes)
        return lambda values, ctx: "".join([as_text(part(values, ctx)) for part in parts])

    def _cond(self, node: nodes.CondExpr) -> Evaluator:
        test, then = self.compile(node.test), self.compile(node.expr1)
        otherwise = self.compile(node.expr2) if node.expr2 is not None else _none
        return lambda values, ctx: (
            then(values, ctx) if test(values, ctx) else otherwise(values, ctx)
        )

    # calls, filters, tests

    def _call(self, node: nodes.Call) -> Evaluator:
        callee = node.node
        if not isinstance(callee, nodes.Name):
            self.fail(_("calling the result of an expression is not allowed"))
        name = callee.name
        if name not in self.helpers:
            self.fail(self._unknown_function(name))
        self._refuse_star_args(node, f"{name}()")
        helper = self.helpers[name]
        self.used_helpers.add(name)
        self._dynamic += 1
        args = tuple(self.compile(arg) for arg in node.args)
        kwargs = self._keywords(node.kwargs)
        self._check_arguments(helper, f"{name}()", [_CTX, *node.args], node.kwargs,
                              self.checks.get(name, {}))
        literals = [self._literal(arg) for arg in node.args]
        literal_kwargs = {kw.key: self._literal(kw.value) for kw in node.kwargs}
        if _NOT_LITERAL not in (*literals, *literal_kwargs.values()):
            # in_flow('payment'), sent_count(days=7): arguments fixed at load time
            fixed = tuple(literals)
            return lambda values, ctx: helper(ctx, *fixed, **literal_kwargs)
        if kwargs:
            return _call_with_keywords(helper, args, kwargs)
        if len(args) == 1:
            (arg,) = args
            return lambda values, ctx: helper(ctx, arg(values, ctx))
        return lambda values, ctx: helper(ctx, *[arg(values, ctx) for arg in args])

    def _unknown_function(self, name: str) -> str:
        if name in self.names:
            return _("{name} is a value, not a function: calling it is not allowed",
                     name=repr(name))
        listed = ", ".join(sorted(self.helpers)) or _("(none)")
        return unknown("function", name, self.helpers, listed)

    def _filter(self, node: nodes.Filter) -> Evaluator:
        if node.name not in FILTERS:
            allowed = ", ".join(FILTERS)
            self.fail(_("unknown filter {name}; allowed filters: {allowed}",
                        name=repr(node.name), allowed=allowed))
        self._refuse_star_args(node, f"|{node.name}")
        function = FILTERS[node.name]
        subject = self.compile(node.node) if node.node is not None else _none
        args = tuple(self.compile(arg) for arg in node.args)
        kwargs = self._keywords(node.kwargs)  # type: ignore[arg-type]
        self._check_arguments(function, f"|{node.name}", [node.node, *node.args],
                              node.kwargs, FILTER_CHECKS.get(node.name, {}))  # type: ignore[arg-type]
        if not args and not kwargs:
            return lambda values, ctx: function(subject(values, ctx))
        return _call_with_keywords(function, (subject, *args), kwargs, pass_ctx=False)

    def _test(self, node: nodes.Test) -> Evaluator:
        if node.name not in TESTS:
            allowed = ", ".join(TESTS)
            self.fail(_("unknown test 'is {name}'; allowed tests: {allowed}", name=node.name,
                        allowed=allowed))
        if node.args or node.kwargs or node.dyn_args or node.dyn_kwargs:
            self.fail(_("the test 'is {name}' takes no arguments", name=node.name))
        test = TESTS[node.name]
        subject = self.compile(node.node)
        return lambda values, ctx: test(subject(values, ctx))

    def _keywords(self, keywords: list[nodes.Keyword]) -> tuple[tuple[str, Evaluator], ...]:
        return tuple((keyword.key, self.compile(keyword.value)) for keyword in keywords)

    def _refuse_star_args(self, node: nodes.Call | nodes.Filter, what: str) -> None:
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            self.fail(_("*args and **kwargs are not allowed in {what}", what=what))

    def _check_arguments(
        self,
        function: Callable[..., Any],
        what: str,
        args: list[Any],
        kwargs: list[nodes.Keyword],
        checks: Mapping[str, ArgumentCheck],
    ) -> None:
        """Catch ``days_since()``, ``round(digits=1)`` or ``in_flow('paymnt')`` at load.

        The arguments must fit the signature; each literal one whose parameter has a
        check must pass it. Arguments computed per row are the function's business.
        """
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            return  # a builtin without a signature: checked when called
        try:
            bound = signature.bind(*args, **{kw.key: kw.value for kw in kwargs})
        except TypeError as exc:
            self.fail(f"{what}: {exc}")
        for parameter, check in checks.items():
            value = self._literal(bound.arguments.get(parameter, _NOT_LITERAL))
            if value is _NOT_LITERAL:
                continue
            try:
                check(value)
            except (TypeError, ValueError) as exc:
                self.fail(f"{what}: {exc}")


_NOT_LITERAL = object()


def _immutable(value: Any) -> bool:
    if type(value) is tuple:
        return all(_immutable(item) for item in value)
    return value is None or type(value) in (str, int, float, bool)


_CTX = object()  # stands for a helper's ctx parameter when arguments are bound


def _none(values: Mapping[str, Any], ctx: Any) -> None:
    return None


def _chain(
    first: Evaluator, steps: tuple[tuple[Callable[[Any, Any], bool], Evaluator], ...]
) -> Evaluator:
    """``a < b <= c`` as in Python: each middle operand is evaluated once."""

    def evaluate(values: Mapping[str, Any], ctx: Any) -> bool:
        left = first(values, ctx)
        for test, operand in steps:
            right = operand(values, ctx)
            if not test(left, right):
                return False
            left = right
        return True

    return evaluate


def _call_with_keywords(
    function: Callable[..., Any],
    args: tuple[Evaluator, ...],
    kwargs: tuple[tuple[str, Evaluator], ...],
    *,
    pass_ctx: bool = True,
) -> Evaluator:
    """The general call: positional and keyword arguments, each an expression."""

    def evaluate(values: Mapping[str, Any], ctx: Any) -> Any:
        positional = [arg(values, ctx) for arg in args]
        keywords = {key: arg(values, ctx) for key, arg in kwargs}
        if pass_ctx:
            return function(ctx, *positional, **keywords)
        return function(*positional, **keywords)

    return evaluate
