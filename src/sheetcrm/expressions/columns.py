"""A condition over a whole column of rows: one compiled Python function per condition.

``compile`` turns a condition into closures, one call per node per row: a tag such as
``paid and (days_since(last_login) >= 7 or unopened >= 3)`` costs seven Python calls
on each of 100k rows. Here the same, already checked syntax tree is translated once
into a Python syntax tree (``ast``) of one function, ``[<condition> for v in rows]``,
which Python compiles: the operators become Python's own ``and``/``or``/``not``/
``if-else`` (short-circuiting exactly as the closures do) and each remaining
operation is one call of the very function the closures call (``semantics``, the
helpers).

No text is evaluated: the function is built from ``ast`` nodes, never from source
text, and the operator's words never become code. Every name, constant, keyword
argument's name, operation and helper is bound as a global under a made-up
identifier (``_g3``); the tree names only those, ``v``, ``rows`` and ``ctx``. A
helper is called only if the caller says it reads nothing of the row but the time
(``row_free``); a condition that calls another (``in_flow``, ``tagged``: per-row
state) or that uses a rare construct (a chained comparison) gets no column function
and is evaluated row by row as before.

A column is evaluated all or nothing: if any row fails, the caller falls back to the
closures row by row, which fail on that row with the usual message.
"""

from __future__ import annotations

import ast
import types
from collections.abc import Callable, Collection, Mapping
from typing import Any

from jinja2 import nodes

from sheetcrm.expressions.semantics import (
    ARITHMETIC,
    COMPARISONS,
    FILTERS,
    TESTS,
    UNARY,
    as_text,
)

#: ``function(rows, ctx) -> [value of the condition on each row]``
ColumnFunction = Callable[[list[Mapping[str, Any]], Any], list[Any]]


class _NotColumnar(Exception):
    """The condition uses something written row by row only."""


def column_function(node: nodes.Node, constants: Mapping[int, Any],
                    helpers: Mapping[str, Callable[..., Any]],
                    row_free: Collection[str]) -> ColumnFunction | None:
    """The condition ``node`` as one function over rows, or None if it must stay per row.

    ``constants`` holds the parts the compiler already worked out (``id(node)`` ->
    value); ``helpers`` are the functions conditions may call, of which those in
    ``row_free`` may be called from a column.
    """
    writer = _Writer(constants, helpers, row_free)
    try:
        body = writer.write(node)
    except _NotColumnar:
        return None
    loop = ast.comprehension(target=ast.Name("v", ast.Store()), iter=_name("rows"), ifs=[],
                             is_async=0)
    function = ast.FunctionDef(
        name="column",
        args=ast.arguments(posonlyargs=[], args=[ast.arg("rows"), ast.arg("ctx")],
                           kwonlyargs=[], kw_defaults=[], defaults=[]),
        body=[ast.Return(ast.ListComp(elt=body, generators=[loop]))],
        decorator_list=[], returns=None)
    module = ast.fix_missing_locations(ast.Module(body=[function], type_ignores=[]))
    code = compile(module, "<condition column>", "exec")
    (inner,) = [c for c in code.co_consts if isinstance(c, types.CodeType)]
    scope: dict[str, Any] = {"__builtins__": {}, **writer.bound}
    column: ColumnFunction = types.FunctionType(inner, scope, "column")
    return column


def _name(identifier: str) -> ast.Name:
    return ast.Name(identifier, ast.Load())


def _call(function: ast.expr, *args: ast.expr) -> ast.Call:
    return ast.Call(func=function, args=list(args), keywords=[])


class _Writer:
    def __init__(self, constants: Mapping[int, Any],
                 helpers: Mapping[str, Callable[..., Any]], row_free: Collection[str]) -> None:
        self.constants, self.helpers, self.row_free = constants, helpers, row_free
        self.bound: dict[str, Any] = {}

    def bind(self, value: Any) -> ast.Name:
        """A made-up global identifier for ``value``: the only way a value gets in."""
        name = f"_g{len(self.bound)}"
        self.bound[name] = value
        return _name(name)

    def write(self, node: nodes.Node) -> ast.expr:
        if id(node) in self.constants:
            return self.bind(self.constants[id(node)])
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            if type(node) in ARITHMETIC:
                op = ARITHMETIC[type(node)]  # type: ignore[index]
                return _call(self.bind(_none_safe(op)), self.write(node.left),  # type: ignore[attr-defined]
                             self.write(node.right))  # type: ignore[attr-defined]
            if type(node) in UNARY:
                unary = UNARY[type(node)]  # type: ignore[index]
                return _call(self.bind(_none_safe_unary(unary)),
                             self.write(node.node))  # type: ignore[attr-defined]
            raise _NotColumnar
        tree: ast.expr = method(node)
        return tree

    def _Name(self, node: nodes.Name) -> ast.expr:  # noqa: N802 (named after the node type)
        return ast.Subscript(value=_name("v"), slice=self.bind(node.name), ctx=ast.Load())

    def _Const(self, node: nodes.Const) -> ast.expr:  # noqa: N802
        return self.bind(node.value)

    def _List(self, node: nodes.List) -> ast.expr:  # noqa: N802
        return ast.List(elts=[self.write(item) for item in node.items], ctx=ast.Load())

    def _Tuple(self, node: nodes.Tuple) -> ast.expr:  # noqa: N802
        return ast.Tuple(elts=[self.write(item) for item in node.items], ctx=ast.Load())

    def _Compare(self, node: nodes.Compare) -> ast.expr:  # noqa: N802
        if len(node.ops) != 1:
            raise _NotColumnar  # a chain evaluates its middle once: left to the closures
        operand = node.ops[0]
        test = self.bind(COMPARISONS[operand.op])
        if operand.op in ("in", "notin") and isinstance(operand.expr, (nodes.List, nodes.Tuple)):
            items = [self.constants[id(i)] if id(i) in self.constants
                     else i.value if isinstance(i, nodes.Const) else _MISSING
                     for i in operand.expr.items]
            if _MISSING not in items:  # the closures test a constant list as a tuple
                return _call(test, self.write(node.expr), self.bind(tuple(items)))
        return _call(test, self.write(node.expr), self.write(operand.expr))

    def _And(self, node: nodes.And) -> ast.expr:  # noqa: N802
        return ast.BoolOp(op=ast.And(), values=[self.write(node.left), self.write(node.right)])

    def _Or(self, node: nodes.Or) -> ast.expr:  # noqa: N802
        return ast.BoolOp(op=ast.Or(), values=[self.write(node.left), self.write(node.right)])

    def _Not(self, node: nodes.Not) -> ast.expr:  # noqa: N802
        return ast.UnaryOp(op=ast.Not(), operand=self.write(node.node))

    def _CondExpr(self, node: nodes.CondExpr) -> ast.expr:  # noqa: N802
        otherwise = self.write(node.expr2) if node.expr2 is not None else self.bind(None)
        return ast.IfExp(test=self.write(node.test), body=self.write(node.expr1),
                         orelse=otherwise)

    def _Concat(self, node: nodes.Concat) -> ast.expr:  # noqa: N802
        text = self.bind(as_text)
        parts = ast.List(elts=[_call(text, self.write(part)) for part in node.nodes],
                         ctx=ast.Load())
        return _call(self.bind("".join), parts)

    def _Call(self, node: nodes.Call) -> ast.expr:  # noqa: N802
        assert isinstance(node.node, nodes.Name)  # the compiler refused anything else
        name = node.node.name
        if name not in self.row_free:
            raise _NotColumnar
        return self._apply(self.helpers[name], [_name("ctx")], node.args, node.kwargs)

    def _Filter(self, node: nodes.Filter) -> ast.expr:  # noqa: N802
        subject = self.write(node.node) if node.node is not None else self.bind(None)
        return self._apply(FILTERS[node.name], [subject], node.args,
                           node.kwargs)  # type: ignore[arg-type]

    def _Test(self, node: nodes.Test) -> ast.expr:  # noqa: N802
        return _call(self.bind(TESTS[node.name]), self.write(node.node))

    def _apply(self, function: Callable[..., Any], first: list[ast.expr],
               args: list[nodes.Expr], kwargs: list[nodes.Keyword]) -> ast.expr:
        """``function(*first, *args, **{names: values})``: keyword names are bound too."""
        call = _call(self.bind(function), *first, *(self.write(arg) for arg in args))
        if kwargs:
            keys: list[ast.expr | None] = [self.bind(kw.key) for kw in kwargs]
            values = [self.write(kw.value) for kw in kwargs]
            call.keywords = [ast.keyword(arg=None, value=ast.Dict(keys=keys, values=values))]
        return call


_MISSING = object()


def _none_safe(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def apply(a: Any, b: Any) -> Any:
        return None if a is None or b is None else op(a, b)

    return apply


def _none_safe_unary(op: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        return None if value is None else op(value)

    return apply
