"""What a compiled expression does at run time, and the limits it runs within.

Semantics follow Python, except where blank cells (``None``) must not crash a rule:

* ``<``, ``<=``, ``>``, ``>=`` with ``None`` on either side are False;
  ``==`` and ``!=`` behave normally.
* Arithmetic (``+ - * / // %``, unary ``-``/``+``) with a ``None`` operand is None.
* ``x in None`` is False (so ``x not in None`` is True); ``None in 'text'`` is False.
* ``~`` joins text and turns ``None`` into ``''``; ``length`` of None is 0; the other
  filters return None for None.
* ``is number`` is false for True/False (Jinja says true): a yes/no column is not a
  number to an operator.
* ``int`` and ``float`` raise on text that is not a number unless given a default
  (Jinja silently gives 0, which would quietly change who gets a message).

Any other TypeError, ValueError or ArithmeticError while evaluating (say ``'a' < 1``)
becomes ``ExpressionRuntimeError``, so the caller marks only that row.

Nothing a short expression can say may take gigabytes or forever: ``**`` is refused,
``*`` may not build a text or list longer than :data:`MAX_REPEAT` (counting what a
list holds, so nesting does not multiply past it), ``round`` takes at most
:data:`MAX_ROUND_DIGITS` digits, and a number literal is limited as Python limits
``int()``. The size functions here are shared with the template sandbox, which
guards the same operations.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sized
from typing import Any

from jinja2 import nodes

from sheetcrm.i18n import _

#: Checks one literal argument of a helper at load: raises ValueError saying why not.
ArgumentCheck = Callable[[Any], None]

#: Longest string or list that ``*`` may build (``'x' * 10**9`` would exhaust memory).
MAX_REPEAT = 100_000
#: ``round`` precision limit either way: ``10**precision`` must stay a small number.
MAX_ROUND_DIGITS = 100
#: Largest whole number ``*`` may build, in decimal digits: Python's own limit for
#: turning a number into text, so every result can still be shown.
MAX_DIGITS = 4300
#: Longest text or value shown inside an error message.
SHOWN = 80


def shown(value: Any) -> str:
    """``repr(value)`` for a message, shortened in the middle when long."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to write out
        return f"a number of about {int(value.bit_length() * 0.30103):,} digits"
    if len(text) <= SHOWN:
        return text
    half = SHOWN // 2
    size = f" ({len(value):,} characters)" if isinstance(value, str) else ""
    return f"{text[:half]}…{text[-half:]}{size}"


def _null_safe_order(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """Ordering that is False when a side is blank, instead of a TypeError."""

    def compare(a: Any, b: Any) -> bool:
        return a is not None and b is not None and op(a, b)

    return compare


def _contains(item: Any, container: Any) -> bool:
    if container is None or (item is None and isinstance(container, str)):
        return False
    return item in container


def _not_contains(item: Any, container: Any) -> bool:
    return not _contains(item, container)


COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": _null_safe_order(operator.lt),
    "lteq": _null_safe_order(operator.le),
    "gt": _null_safe_order(operator.gt),
    "gteq": _null_safe_order(operator.ge),
    "in": _contains,
    "notin": _not_contains,
}


_SEQUENCES = (str, bytes, list, tuple)
_LOG10_2 = math.log10(2)


def size_of(value: Any, limit: int) -> int:
    """How big a value is: the characters of a text, the items of a list plus theirs.

    A list that holds one long text many times is as big as it prints. Counting stops
    past ``limit``, so it takes at most about ``limit`` steps whatever the value.
    """
    if isinstance(value, (str, bytes)):
        return len(value)
    if not isinstance(value, Sized):
        return 0
    total = len(value)
    if isinstance(value, Mapping):
        parts: Iterable[Any] = itertools.chain.from_iterable(value.items())
    elif isinstance(value, (list, tuple)):
        parts = value
    else:
        return total  # a range or a set of plain values
    for part in parts:
        if total > limit:
            break
        if isinstance(part, Sized):
            total += size_of(part, limit - total)
    return total


def product_size(a: Any, b: Any, limit: int) -> int:
    """How big ``a * b`` would be (see :func:`size_of`), without building it.

    Raises ValueError when a repeated text or list would grow past ``limit``, or a
    whole number past :data:`MAX_DIGITS` digits.
    """
    if isinstance(b, int) and isinstance(a, _SEQUENCES):
        seq, count = a, b
    elif isinstance(a, int) and isinstance(b, _SEQUENCES):
        seq, count = b, a
    else:
        if (isinstance(a, int) and isinstance(b, int)
                and (a.bit_length() + b.bit_length()) * _LOG10_2 > MAX_DIGITS):
            raise ValueError(_("'*' would build a number of more than {most} digits",
                               most=f"{MAX_DIGITS:,}"))
        return 1
    size = size_of(seq, limit) * count if count > 0 else 0
    if count > 1 and size > limit:
        raise ValueError(_("'*' would build a value longer than {most}", most=f"{limit:,}"))
    return size


def sized_product(a: Any, b: Any, limit: int = MAX_REPEAT) -> Any:
    """``a * b``, refused (ValueError) when it would exhaust memory: see product_size."""
    product_size(a, b, limit)
    return a * b


def _multiply(a: Any, b: Any) -> Any:
    """``*`` in a condition; a float on either side can only make a number."""
    if type(a) is float or type(b) is float:
        return a * b
    return sized_product(a, b)


def _numbers_only(op: Callable[[Any, Any], Any], symbol: str) -> Callable[[Any, Any], Any]:
    """``%`` and ``//`` on numbers only: ``'%s' % x`` would be string formatting."""

    def apply(a: Any, b: Any) -> Any:
        if isinstance(a, str) or isinstance(b, str):
            raise TypeError(_("'{symbol}' needs numbers, not text", symbol=symbol))
        return op(a, b)

    return apply


ARITHMETIC: dict[type[nodes.BinExpr], Callable[[Any, Any], Any]] = {
    nodes.Add: operator.add,
    nodes.Sub: operator.sub,
    nodes.Mul: _multiply,
    nodes.Div: operator.truediv,
    nodes.FloorDiv: _numbers_only(operator.floordiv, "//"),
    nodes.Mod: _numbers_only(operator.mod, "%"),
}
UNARY: dict[type[nodes.UnaryExpr], Callable[[Any], Any]] = {
    nodes.Neg: operator.neg,
    nodes.Pos: operator.pos,
}


def as_text(value: Any) -> str:
    return "" if value is None else str(value)


def _f_lower(value: Any) -> Any:
    return None if value is None else str(value).lower()


def _f_upper(value: Any) -> Any:
    return None if value is None else str(value).upper()


def _f_trim(value: Any) -> Any:
    return None if value is None else str(value).strip()


def _f_length(value: Any) -> int:
    return 0 if value is None else len(value)


def _f_default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """Jinja's signature: ``x|default('-')``, or ``x|default('-', true)`` for any falsy x."""
    if value is None or (boolean and not value):
        return default_value
    return value


_NO_DEFAULT = object()


def _f_int(value: Any, default: Any = _NO_DEFAULT) -> Any:
    """Whole number from a number or numeric text; ``3.7`` gives 3 as in Jinja."""
    if value is None or isinstance(value, int):
        return None if value is None else int(value)
    try:
        if isinstance(value, str):
            text = value.strip().replace(",", "")
            try:
                return int(text)
            except ValueError:
                return int(float(text))
        return int(value)
    except (TypeError, ValueError, OverflowError) as exc:
        if default is _NO_DEFAULT:
            if isinstance(exc, OverflowError):
                raise ValueError(_("int: {value} is too large", value=shown(value))) from None
            raise ValueError(_("int: {value} is not a number", value=shown(value))) from None
        return default


def _f_float(value: Any, default: Any = _NO_DEFAULT) -> Any:
    if value is None:
        return None
    try:
        return float(value.strip().replace(",", "") if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError) as exc:
        if default is _NO_DEFAULT:
            if isinstance(exc, OverflowError):
                raise ValueError(_("float: {value} is too large", value=shown(value))) from None
            raise ValueError(_("float: {value} is not a number", value=shown(value))) from None
        return default


def _f_abs(value: Any) -> Any:
    return None if value is None else abs(value)


def check_round_precision(precision: Any) -> None:
    """``round`` builds ``10**precision``: a whole number of at most MAX_ROUND_DIGITS."""
    if (isinstance(precision, bool) or not isinstance(precision, int)
            or not -MAX_ROUND_DIGITS <= precision <= MAX_ROUND_DIGITS):
        raise ValueError(_("precision must be a whole number from -{most} to {most}, "
                           "not {value}", most=MAX_ROUND_DIGITS, value=shown(precision)))


def _check_round_method(method: Any) -> None:
    if method not in ("common", "ceil", "floor"):
        raise ValueError(_("method must be 'common', 'ceil' or 'floor'"))


def _f_round(value: Any, precision: int = 0, method: str = "common") -> Any:
    """Jinja's ``round(precision=0, method='common'|'ceil'|'floor')``."""
    if value is None:
        return None
    check_round_precision(precision)
    if method == "common":
        return round(value, precision)
    _check_round_method(method)
    scale = 10**precision
    return getattr(math, method)(value * scale) / scale


FILTERS: dict[str, Callable[..., Any]] = {
    "lower": _f_lower,
    "upper": _f_upper,
    "trim": _f_trim,
    "length": _f_length,
    "default": _f_default,
    "int": _f_int,
    "float": _f_float,
    "abs": _f_abs,
    "round": _f_round,
}
#: Literal filter arguments checked at load, as ``compile_expression``'s ``checks``.
FILTER_CHECKS: dict[str, dict[str, ArgumentCheck]] = {
    "round": {"precision": check_round_precision, "method": _check_round_method},
}


def _t_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


TESTS: dict[str, Callable[[Any], bool]] = {
    "none": lambda value: value is None,
    "number": _t_number,
    "string": lambda value: isinstance(value, str),
}
