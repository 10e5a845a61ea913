"""How big a template's result would be, worked out before it is built, and the work
budget each rendered block is charged.

Every guarded operation (see ``sandbox``) asks here how big its result can get,
refuses past :data:`MAX_TEXT` before building anything, and charges the size to a
per-block budget (:data:`MAX_WORK`) that also counts ``range`` items and calls, so
loops cannot multiply past it. Outside a render (Jinja working out a constant part
while it compiles) a guarded operation refuses to run at all, so it runs only at
render, within the budget. The filters that can build far more than they are given
are wrapped here with the size their result can reach.
"""

from __future__ import annotations

import functools
import math
import re
import string
from collections.abc import Callable, Iterator, Mapping, Sized
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from jinja2 import Environment
from jinja2.nodes import EvalContext
from jinja2.runtime import Context

from sheetcrm.expressions import MAX_DIGITS, check_round_precision, size_of
from sheetcrm.i18n import _

#: Longest text (or list, counting what it holds) a template may build, and the
#: longest a block may render to.
MAX_TEXT = 1_000_000
#: Work one block may do: characters and items built, range() items, calls.
MAX_WORK = 10_000_000


class TooMuch(Exception):
    """A template asked for more than the limits allow; becomes a TemplateError."""


class _Budget:
    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = MAX_WORK


_BUDGET: ContextVar[_Budget | None] = ContextVar("template_budget", default=None)


def charge(units: int) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.left -= units
        if budget.left < 0:
            raise TooMuch(_("the template does too much work (more than {most} steps: "
                            "characters built, loop items, calls)", most=f"{MAX_WORK:,}"))


def sized(what: str, size: int) -> None:
    """Refuse a result of ``size`` before it is built; else charge it.

    Outside a render (Jinja working out a constant part while it compiles) nothing is
    built here at all: Jinja then leaves the part to the render, within the budget.
    """
    if _BUDGET.get() is None:
        raise TooMuch(_("{what} runs only while rendering", what=what))
    if size > MAX_TEXT:
        raise TooMuch(_("{what} would build a value longer than {most}", what=what,
                        most=f"{MAX_TEXT:,}"))
    charge(size)


def length(value: Any) -> int:
    """Size of a text, list or mapping (see size_of); 1 for anything else."""
    return size_of(value, MAX_TEXT) if isinstance(value, Sized) else 1


def _width(value: Any) -> int:
    """An indent given as a number of spaces or as the text itself."""
    return _whole(value) if isinstance(value, int) else length(value)


def _whole(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _widths(numbers: list[str | None], args: Any) -> int:
    """The widths/precisions a format asks for; ``*`` or ``{}`` take them from args."""
    values = args if isinstance(args, (tuple, list)) else [args]
    if isinstance(args, Mapping):
        values = list(args.values())
    taken = max((_whole(v) for v in values), default=0)
    return sum(taken if n in ("*", "{") else int(n) for n in numbers if n)


def printf_size(fmt: str, args: Any) -> int:
    """How long ``fmt % args`` can get: ``'%0999999999d' % 1`` would be 1 GB."""
    numbers = [n for match in _PRINTF.finditer(fmt) for n in match.groups()]
    return len(fmt) + _widths(numbers, args) + length(args)


def _format_size(fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    """How long ``fmt.format(...)`` can get: ``'{:>999999999}'.format(1)`` is 1 GB."""
    numbers: list[str | None] = []
    for _text, field, spec, _conv in string.Formatter().parse(fmt):
        if field is not None and spec:
            numbers += ["{"] if "{" in spec else re.findall(r"\d+", spec)
    return len(fmt) + _widths(numbers, [*args, *kwargs.values()]) + length(args)


def power(base: Any, exponent: Any) -> Any:
    if (isinstance(base, int) and isinstance(exponent, int) and exponent > 0
            and abs(base) > 1 and exponent * math.log10(abs(base)) > MAX_DIGITS):
        raise TooMuch(_("'**' would build a number of more than {most} digits",
                        most=f"{MAX_DIGITS:,}"))
    return base**exponent


def method_size(method: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    """How big a call of a text's (or number's) method can make its result, or 0."""
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    # The sandbox hands out str.format as a wrapper around the bound method.
    fmt = getattr(getattr(method, "__wrapped__", None), "__self__", None)
    if owner is None and isinstance(fmt, str):
        if name == "format":
            return _format_size(fmt, args, kwargs)
        if name == "format_map" and args and isinstance(args[0], Mapping):
            return _format_size(fmt, (), args[0])
    if isinstance(owner, (str, bytes)):
        first = args[0] if args else None
        if name in ("center", "ljust", "rjust", "zfill"):
            return max(len(owner), _whole(first if args else kwargs.get("width")))
        if name == "expandtabs":
            tab = "\t" if isinstance(owner, str) else b"\t"
            tabsize = first if args else kwargs.get("tabsize", 8)
            return len(owner) + owner.count(tab) * _whole(tabsize)  # type: ignore[arg-type]
        if name == "replace" and len(args) >= 2:
            return _replace_size(owner, args[0], args[1], args[2] if len(args) > 2 else -1)
        if name == "translate" and isinstance(first, Mapping):
            longest = max((length(v) for v in first.values()), default=1)
            return len(owner) * max(longest, 1)
        if name == "join" and isinstance(first, (list, tuple)):
            return len(owner) * len(first) + length(first)
    if isinstance(owner, int) and name == "to_bytes":
        return _whole(args[0] if args else kwargs.get("length", 1))
    return 0


def _replace_size(text: Any, old: Any, new: Any, count: Any = None) -> int:
    if not isinstance(text, (str, bytes)) or not isinstance(new, (str, bytes)):
        return length(text)
    try:
        found = len(text) + 1 if not old else text.count(old)
    except TypeError:
        return len(text)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * len(new)


def lipsum_size(n: Any = 5, html: Any = True, min: Any = 20, max: Any = 100) -> int:
    return _whole(n) * _whole(max) * 12  # words of up to about 11 letters and a space


LIPSUM_PARAMETERS = ("n", "html", "min", "max")
JINJA_KEYWORDS = ("_block_vars", "_loop_vars", "caller")  # what Jinja adds to a call


# Filters that can build much more than they are given: parameter names as Jinja
# documents them, and how big the result can get.
def _filter_sizes() -> dict[str, tuple[tuple[str, ...], Callable[[dict[str, Any]], int]]]:
    def value(a: dict[str, Any], key: str = "value") -> int:
        return length(a.get(key))

    return {
        "center": (("value", "width"), lambda a: max(value(a), _whole(a.get("width", 80)))),
        "indent": (("s", "width"), lambda a: value(a, "s") + _width(a.get("width", 4))
                   * (str(a.get("s", "")).count("\n") + 1)),
        "wordwrap": (("s", "width", "break_long_words", "wrapstring"),
                     lambda a: value(a, "s") * (1 + length(a.get("wrapstring") or "\n"))),
        "replace": (("s", "old", "new", "count"),
                    lambda a: _replace_size(a.get("s"), a.get("old"), a.get("new"),
                                            a.get("count"))),
        "batch": (("value", "linecount", "fill_with"),
                  lambda a: _whole(a.get("linecount")) * (1 + length(a.get("fill_with")))
                  if a.get("fill_with") is not None else 0),
        "slice": (("value", "slices", "fill_with"), lambda a: _whole(a.get("slices"))),
        "tojson": (("value", "indent"),  # a line per item, indented once per level
                   lambda a: (value(a) + 2) * (_width(a.get("indent")) + 1) * 4),
        "urlize": (("value", "trim_url_limit", "nofollow", "target", "rel"),
                   lambda a: value(a) + len(str(a.get("value", "")).split())
                   * (60 + length(a.get("target") or "") + length(a.get("rel") or ""))),
    }


def _guard_filter(name: str, function: Callable[..., Any], parameters: tuple[str, ...],
                  size: Callable[[dict[str, Any]], int]) -> Callable[..., Any]:
    """``function`` (a Jinja filter) refusing a result bigger than MAX_TEXT."""

    @functools.wraps(function)  # keeps how Jinja passes it its context
    def guarded(*args: Any, **kwargs: Any) -> Any:
        skip = 1 if args and isinstance(args[0], (EvalContext, Environment, Context)) else 0
        given = dict(zip(parameters, args[skip:], strict=False))
        given.update(kwargs)
        sized(f"|{name}", size(given))
        return function(*args, **kwargs)

    return guarded


def _guard_join(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def join(eval_ctx: Any, value: Any, d: Any = "", attribute: Any = None) -> Any:
        items = list(value)  # a generator's items were counted as they were made
        sized("|join", length(d) * len(items) + sum(length(item) for item in items))
        return function(eval_ctx, items, d, attribute)

    return join


def _guard_sum(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def sum_(environment: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
        items = list(iterable)
        if not isinstance(start, (int, float)):  # adding lists copies them each time
            total = length(start) + sum(length(item) for item in items)
            sized("|sum", total)
            charge(total * len(items))
        return function(environment, items, attribute, start)

    return sum_


def _guard_round(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def round_(value: Any, precision: Any = 0, method: Any = "common") -> Any:
        try:
            check_round_precision(precision)
        except ValueError as exc:
            raise TooMuch(f"|round: {exc}") from None
        return function(value, precision, method)

    return round_


def _guard_format(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def format_(value: Any, *args: Any, **kwargs: Any) -> Any:
        sized("|format", printf_size(str(value), kwargs or args))
        return function(value, *args, **kwargs)

    return format_


def guard_filters(filters: dict[str, Callable[..., Any]]) -> None:
    """Wrap, in place, the filters that can build much more than they are given."""
    for name, (parameters, size) in _filter_sizes().items():
        filters[name] = _guard_filter(name, filters[name], parameters, size)
    filters["join"] = _guard_join(filters["join"])
    filters["sum"] = _guard_sum(filters["sum"])
    filters["round"] = _guard_round(filters["round"])
    filters["format"] = _guard_format(filters["format"])


@contextmanager
def budgeted() -> Iterator[None]:
    """Render one block within a fresh budget of :data:`MAX_WORK`."""
    token = _BUDGET.set(_Budget())
    try:
        yield
    finally:
        _BUDGET.reset(token)


def joined(chunks: Iterator[str]) -> str:
    """The block's output, refused once it grows past MAX_TEXT."""
    parts = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_TEXT:
            raise TooMuch(_("the block renders to more than {most} characters",
                            most=f"{MAX_TEXT:,}"))
        parts.append(chunk)
    return "".join(parts)
