"""The Jinja environment templates render in: the immutable sandbox, made safe for
memory and time.

Jinja's sandbox keeps a template away from Python's internals, not from memory or
time: ``{{ 'x' * 10**9 }}``, ``{{ 9**(9**9) }}`` or ``'x'|center(10**9)`` would take
the machine down before any error. So the sandbox here intercepts ``*``, ``**``,
``%`` and ``+`` (its ``intercepted_binops``), every call (``call``: methods such as
``'x'.ljust(n)``, macros, ``range``, ``lipsum``), attribute lookups and every output
(``finalize``), and the filters that can build far more than they are given are
wrapped. Each works out how big its result would be *before* building it, refuses
past ``MAX_TEXT``, and charges it to a per-block budget (``MAX_WORK``) that
also counts ``range`` items and calls, so loops cannot multiply past it (``limits``).
Jinja works out constant parts of a template while compiling it; the guarded
operations refuse to run there (intercepted operators are never worked out early),
so they run only at render, within the budget. What stays unbounded: Jinja compiles
``~`` and ``{% for %}`` to plain Python with no hook, so a loop over a long list
nested in another, with nothing but literal text in its body, is not counted.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from jinja2 import BaseLoader, StrictUndefined
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from sheetcrm.expressions import product_size
from sheetcrm.i18n import _
from sheetcrm.templates.korean import josa, kdate, won
from sheetcrm.templates.limits import (
    JINJA_KEYWORDS,
    LIPSUM_PARAMETERS,
    MAX_TEXT,
    TooMuch,
    charge,
    guard_filters,
    length,
    lipsum_size,
    method_size,
    power,
    printf_size,
    sized,
)


def _datefmt(value: Any, fmt: str = "%Y-%m-%d") -> str:
    if isinstance(value, (date, datetime)):
        return value.strftime(fmt)
    return "" if value is None else str(value)


class Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with the size checks described at the top."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, loader: BaseLoader, autoescape: bool) -> None:
        super().__init__(
            loader=loader,
            undefined=StrictUndefined,
            autoescape=autoescape,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
            finalize=_finalize,
        )
        self.filters["won"] = won
        self.filters["datefmt"] = _datefmt
        self.filters["kdate"] = kdate
        self.filters["josa"] = josa
        guard_filters(self.filters)
        self._lipsum = self.globals["lipsum"]

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            try:
                sized("'*'", product_size(left, right, MAX_TEXT))
            except ValueError as exc:
                raise TooMuch(str(exc)) from None
            return left * right
        if operator == "**":
            return power(left, right)
        if operator == "%":
            if isinstance(left, str):
                sized("'%'", printf_size(left, right))
            return left % right
        if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            sized("'+'", length(left) + length(right))
        return left + right

    def call(__self, __context: Context, __obj: Any, *args: Any,  # noqa: N805
             **kwargs: Any) -> Any:
        charge(1)
        given = {k: v for k, v in kwargs.items() if k not in JINJA_KEYWORDS}
        if (getattr(__obj, "__name__", "") == "join" and args
                and isinstance(getattr(__obj, "__self__", None), (str, bytes))
                and not isinstance(args[0], (list, tuple))):
            args = (list(args[0]), *args[1:])  # to know how many parts there are
        for arg in (*args, *given.values()):
            if isinstance(arg, str) and len(arg) > MAX_TEXT:
                raise TooMuch(_("a value longer than {most} was passed to a call",
                                most=f"{MAX_TEXT:,}"))
        if __obj is __self._lipsum:
            size = lipsum_size(**dict(zip(LIPSUM_PARAMETERS, args, strict=False)), **given)
            what = "lipsum"
        else:
            size = method_size(__obj, args, given)
            what = getattr(__obj, "__name__", "a call")
        if size:
            sized(f"{what}()", size)
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, range):
            charge(len(result))  # loops over range() count toward the budget
        elif isinstance(result, str) and len(result) > MAX_TEXT:
            raise TooMuch(_("a call returned a value longer than {most}", most=f"{MAX_TEXT:,}"))
        return result

    def getattr(self, obj: Any, attribute: str) -> Any:
        return _held(super().getattr(obj, attribute), attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        return _held(super().getitem(obj, argument), argument)


def _held(value: Any, name: Any) -> Any:
    """A value read back from a namespace must not have grown past MAX_TEXT by ``~``."""
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise TooMuch(_("{name} holds a value longer than {most}", name=repr(name),
                        most=f"{MAX_TEXT:,}"))
    return value


def _finalize(value: Any) -> Any:
    """Every ``{{ output }}``, also into a ``{% set %}`` block or a macro, is counted."""
    charge(length(value) if isinstance(value, (str, list, tuple)) else 1)
    return value

