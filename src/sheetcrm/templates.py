"""Message templates: Jinja files in ``templates/``, rendered in the sandbox.

One file per template, ``templates/<name>.j2``, with blocks::

    {% block subject %}{{ name }}님, 결제가 아직 완료되지 않았어요{% endblock %}
    {% block text %}...plain text body...{% endblock %}
    {% block html %}...optional HTML body (autoescaped)...{% endblock %}
    {% block json %}...optional webhook body: JSON, values through |tojson...{% endblock %}

Undefined variables are errors (StrictUndefined), and nothing from a cell is
executed: cells are values in the context, never template source.

Jinja's sandbox keeps a template away from Python's internals, not from memory or
time: ``{{ 'x' * 10**9 }}``, ``{{ 9**(9**9) }}`` or ``'x'|center(10**9)`` would take
the machine down before any error. So the sandbox here intercepts ``*``, ``**``,
``%`` and ``+`` (its ``intercepted_binops``), every call (``call``: methods such as
``'x'.ljust(n)``, macros, ``range``, ``lipsum``), attribute lookups and every output
(``finalize``), and the filters that can build far more than they are given are
wrapped. Each works out how big its result would be *before* building it, refuses
past :data:`MAX_TEXT`, and charges it to a per-block budget (:data:`MAX_WORK`) that
also counts ``range`` items and calls, so loops cannot multiply past it. Jinja works
out constant parts of a template while compiling it; the guarded operations refuse to
run there (intercepted operators are never worked out early), so they run only at
render, within the budget. What stays unbounded: Jinja compiles ``~`` and
``{% for %}`` to plain Python with no hook, so a loop over a long list nested in
another, with nothing but literal text in its body, is not counted.

Template files are UTF-8 (a byte-order mark is dropped). A file in another encoding,
typically CP949 from Notepad or Excel on Korean Windows, is refused with the fix
rather than guessed at: a wrong guess would mail garbled text to customers, and a
CP949 decoder accepts many byte sequences that are not Korean at all. A template's
``{% extends %}``, ``{% include %}`` and ``{% import %}`` of a named file are followed
at load: a missing file or a template that reaches itself is an error naming both
files. ``{% extends %}`` works for blocks: a block the template does not define comes
from its parent.
"""

from __future__ import annotations

import functools
import json
import math
import re
import string
import sys
from collections.abc import Callable, Iterator, Mapping, Sized
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    nodes,
)
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.exceptions import TemplateError as JinjaError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from sheetcrm.errors import TemplateError
from sheetcrm.expressions import MAX_DIGITS, check_round_precision, product_size, size_of

SUFFIX = ".j2"
#: Longest text (or list, counting what it holds) a template may build, and the
#: longest a block may render to.
MAX_TEXT = 1_000_000
#: Work one block may do: characters and items built, range() items, calls.
MAX_WORK = 10_000_000


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None
    payload: dict[str, Any] | None


def _won(value: Any) -> str:
    """12000 -> '12,000원'."""
    if value is None or value == "":
        return ""
    return f"{float(value):,.0f}원"


def _datefmt(value: Any, fmt: str = "%Y-%m-%d") -> str:
    if isinstance(value, (date, datetime)):
        return value.strftime(fmt)
    return "" if value is None else str(value)


# --- limits -------------------------------------------------------------------------


class _TooMuch(Exception):
    """A template asked for more than the limits allow; becomes a TemplateError."""


class _Budget:
    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = MAX_WORK


_BUDGET: ContextVar[_Budget | None] = ContextVar("template_budget", default=None)


def _charge(units: int) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.left -= units
        if budget.left < 0:
            raise _TooMuch(f"the template does too much work (more than {MAX_WORK:,} steps: "
                           "characters built, loop items, calls)")


def _sized(what: str, size: int) -> None:
    """Refuse a result of ``size`` before it is built; else charge it.

    Outside a render (Jinja working out a constant part while it compiles) nothing is
    built here at all: Jinja then leaves the part to the render, within the budget.
    """
    if _BUDGET.get() is None:
        raise _TooMuch(f"{what} runs only while rendering")
    if size > MAX_TEXT:
        raise _TooMuch(f"{what} would build a value longer than {MAX_TEXT:,}")
    _charge(size)


def _length(value: Any) -> int:
    """Size of a text, list or mapping (see size_of); 1 for anything else."""
    return size_of(value, MAX_TEXT) if isinstance(value, Sized) else 1


def _width(value: Any) -> int:
    """An indent given as a number of spaces or as the text itself."""
    return _whole(value) if isinstance(value, int) else _length(value)


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


def _printf_size(fmt: str, args: Any) -> int:
    """How long ``fmt % args`` can get: ``'%0999999999d' % 1`` would be 1 GB."""
    numbers = [n for match in _PRINTF.finditer(fmt) for n in match.groups()]
    return len(fmt) + _widths(numbers, args) + _length(args)


def _format_size(fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    """How long ``fmt.format(...)`` can get: ``'{:>999999999}'.format(1)`` is 1 GB."""
    numbers: list[str | None] = []
    for _, field, spec, _ in string.Formatter().parse(fmt):
        if field is not None and spec:
            numbers += ["{"] if "{" in spec else re.findall(r"\d+", spec)
    return len(fmt) + _widths(numbers, [*args, *kwargs.values()]) + _length(args)


def _power(base: Any, exponent: Any) -> Any:
    if (isinstance(base, int) and isinstance(exponent, int) and exponent > 0
            and abs(base) > 1 and exponent * math.log10(abs(base)) > MAX_DIGITS):
        raise _TooMuch(f"'**' would build a number of more than {MAX_DIGITS:,} digits")
    return base**exponent


def _method_size(method: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
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
            longest = max((_length(v) for v in first.values()), default=1)
            return len(owner) * max(longest, 1)
        if name == "join" and isinstance(first, (list, tuple)):
            return len(owner) * len(first) + _length(first)
    if isinstance(owner, int) and name == "to_bytes":
        return _whole(args[0] if args else kwargs.get("length", 1))
    return 0


def _replace_size(text: Any, old: Any, new: Any, count: Any = None) -> int:
    if not isinstance(text, (str, bytes)) or not isinstance(new, (str, bytes)):
        return _length(text)
    try:
        found = len(text) + 1 if not old else text.count(old)
    except TypeError:
        return len(text)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * len(new)


def _lipsum_size(n: Any = 5, html: Any = True, min: Any = 20, max: Any = 100) -> int:
    return _whole(n) * _whole(max) * 12  # words of up to about 11 letters and a space


_LIPSUM_PARAMETERS = ("n", "html", "min", "max")
_JINJA_KEYWORDS = ("_block_vars", "_loop_vars", "caller")  # what Jinja adds to a call


# Filters that can build much more than they are given: parameter names as Jinja
# documents them, and how big the result can get.
def _filter_sizes() -> dict[str, tuple[tuple[str, ...], Callable[[dict[str, Any]], int]]]:
    def value(a: dict[str, Any], key: str = "value") -> int:
        return _length(a.get(key))

    return {
        "center": (("value", "width"), lambda a: max(value(a), _whole(a.get("width", 80)))),
        "indent": (("s", "width"), lambda a: value(a, "s") + _width(a.get("width", 4))
                   * (str(a.get("s", "")).count("\n") + 1)),
        "wordwrap": (("s", "width", "break_long_words", "wrapstring"),
                     lambda a: value(a, "s") * (1 + _length(a.get("wrapstring") or "\n"))),
        "replace": (("s", "old", "new", "count"),
                    lambda a: _replace_size(a.get("s"), a.get("old"), a.get("new"),
                                            a.get("count"))),
        "batch": (("value", "linecount", "fill_with"),
                  lambda a: _whole(a.get("linecount")) * (1 + _length(a.get("fill_with")))
                  if a.get("fill_with") is not None else 0),
        "slice": (("value", "slices", "fill_with"), lambda a: _whole(a.get("slices"))),
        "tojson": (("value", "indent"),  # a line per item, indented once per level
                   lambda a: (value(a) + 2) * (_width(a.get("indent")) + 1) * 4),
        "urlize": (("value", "trim_url_limit", "nofollow", "target", "rel"),
                   lambda a: value(a) + len(str(a.get("value", "")).split())
                   * (60 + _length(a.get("target") or "") + _length(a.get("rel") or ""))),
    }


def _guard_filter(name: str, function: Callable[..., Any], parameters: tuple[str, ...],
                  size: Callable[[dict[str, Any]], int]) -> Callable[..., Any]:
    """``function`` (a Jinja filter) refusing a result bigger than MAX_TEXT."""

    @functools.wraps(function)  # keeps how Jinja passes it its context
    def guarded(*args: Any, **kwargs: Any) -> Any:
        skip = 1 if args and isinstance(args[0], (EvalContext, Environment, Context)) else 0
        given = dict(zip(parameters, args[skip:], strict=False))
        given.update(kwargs)
        _sized(f"|{name}", size(given))
        return function(*args, **kwargs)

    return guarded


def _guard_join(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def join(eval_ctx: Any, value: Any, d: Any = "", attribute: Any = None) -> Any:
        items = list(value)  # a generator's items were counted as they were made
        _sized("|join", _length(d) * len(items) + sum(_length(item) for item in items))
        return function(eval_ctx, items, d, attribute)

    return join


def _guard_sum(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def sum_(environment: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
        items = list(iterable)
        if not isinstance(start, (int, float)):  # adding lists copies them each time
            total = _length(start) + sum(_length(item) for item in items)
            _sized("|sum", total)
            _charge(total * len(items))
        return function(environment, items, attribute, start)

    return sum_


def _guard_round(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def round_(value: Any, precision: Any = 0, method: Any = "common") -> Any:
        try:
            check_round_precision(precision)
        except ValueError as exc:
            raise _TooMuch(f"|round: {exc}") from None
        return function(value, precision, method)

    return round_


def _guard_format(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def format_(value: Any, *args: Any, **kwargs: Any) -> Any:
        _sized("|format", _printf_size(str(value), kwargs or args))
        return function(value, *args, **kwargs)

    return format_


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with the size checks described above."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, folder: Path, autoescape: bool) -> None:
        super().__init__(
            loader=_Loader(folder),
            undefined=StrictUndefined,
            autoescape=autoescape,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
            finalize=_finalize,
        )
        self.filters["won"] = _won
        self.filters["datefmt"] = _datefmt
        for name, (parameters, size) in _filter_sizes().items():
            self.filters[name] = _guard_filter(name, self.filters[name], parameters, size)
        self.filters["join"] = _guard_join(self.filters["join"])
        self.filters["sum"] = _guard_sum(self.filters["sum"])
        self.filters["round"] = _guard_round(self.filters["round"])
        self.filters["format"] = _guard_format(self.filters["format"])
        self._lipsum = self.globals["lipsum"]

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            try:
                _sized("'*'", product_size(left, right, MAX_TEXT))
            except ValueError as exc:
                raise _TooMuch(str(exc)) from None
            return left * right
        if operator == "**":
            return _power(left, right)
        if operator == "%":
            if isinstance(left, str):
                _sized("'%'", _printf_size(left, right))
            return left % right
        if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            _sized("'+'", _length(left) + _length(right))
        return left + right

    def call(__self, __context: Context, __obj: Any, *args: Any,  # noqa: N805
             **kwargs: Any) -> Any:
        _charge(1)
        given = {k: v for k, v in kwargs.items() if k not in _JINJA_KEYWORDS}
        if (getattr(__obj, "__name__", "") == "join" and args
                and isinstance(getattr(__obj, "__self__", None), (str, bytes))
                and not isinstance(args[0], (list, tuple))):
            args = (list(args[0]), *args[1:])  # to know how many parts there are
        for arg in (*args, *given.values()):
            if isinstance(arg, str) and len(arg) > MAX_TEXT:
                raise _TooMuch(f"a value longer than {MAX_TEXT:,} was passed to a call")
        if __obj is __self._lipsum:
            size = _lipsum_size(**dict(zip(_LIPSUM_PARAMETERS, args, strict=False)), **given)
            what = "lipsum"
        else:
            size = _method_size(__obj, args, given)
            what = getattr(__obj, "__name__", "a call")
        if size:
            _sized(f"{what}()", size)
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, range):
            _charge(len(result))  # loops over range() count toward the budget
        elif isinstance(result, str) and len(result) > MAX_TEXT:
            raise _TooMuch(f"a call returned a value longer than {MAX_TEXT:,}")
        return result

    def getattr(self, obj: Any, attribute: str) -> Any:
        return _held(super().getattr(obj, attribute), attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        return _held(super().getitem(obj, argument), argument)


def _held(value: Any, name: Any) -> Any:
    """A value read back from a namespace must not have grown past MAX_TEXT by ``~``."""
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise _TooMuch(f"{name!r} holds a value longer than {MAX_TEXT:,}")
    return value


def _finalize(value: Any) -> Any:
    """Every ``{{ output }}``, also into a ``{% set %}`` block or a macro, is counted."""
    _charge(_length(value) if isinstance(value, (str, list, tuple)) else 1)
    return value


class _Loader(FileSystemLoader):
    """Reads template files as UTF-8; any other encoding is a clear error."""

    def __init__(self, folder: Path) -> None:
        super().__init__(str(folder))
        self.folder = folder

    def get_source(self, environment: Environment, template: str
                   ) -> tuple[str, str, Callable[[], bool]]:
        try:
            source, filename, uptodate = super().get_source(environment, template)
        except UnicodeDecodeError:
            path = self.folder / template
            raise TemplateError(_not_utf8(path), path=str(path)) from None
        return source.removeprefix("\ufeff"), filename, uptodate


def _not_utf8(path: Path) -> str:
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
        start = 0  # changed since it was read
    except UnicodeDecodeError as exc:
        start = exc.start
    line = raw[:start].count(b"\n") + 1
    message = f"not UTF-8 text (byte 0x{raw[start]:02x} on line {line})"
    try:
        raw.decode("cp949")
        message += "; it looks like CP949 (EUC-KR), as Notepad or Excel save on Korean Windows"
    except UnicodeDecodeError:
        pass
    return (f"{message}: save it as UTF-8 (Notepad: Save As, Encoding: UTF-8; "
            "VS Code: Save with Encoding, UTF-8)")


# --- the template folder ------------------------------------------------------------


_REFERENCES = {nodes.Extends: "extends", nodes.Include: "includes",
               nodes.Import: "imports", nodes.FromImport: "imports"}


class Templates:
    """The template folder. Compiles each template once per process."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._plain = _Sandbox(folder, autoescape=False)
        self._html = _Sandbox(folder, autoescape=True)
        self._names: list[str] | None = None
        self._parents: dict[str, list[str]] = {}  # file -> its ancestors, nearest first

    def names(self) -> list[str]:
        """Template names in the folder, listed once per Templates object (one run)."""
        if self._names is None:
            found = self.folder.glob(f"*{SUFFIX}") if self.folder.is_dir() else ()
            self._names = sorted(p.name[: -len(SUFFIX)] for p in found)
        return self._names

    def check(self, name: str) -> None:
        """Load and compile; raises TemplateError with the file and line."""
        self._load(self._plain, name)
        self._load(self._html, name)

    def render(self, name: str, context: dict[str, Any]) -> Rendered:
        plain = self._load(self._plain, name)
        blocks = self._blocks(plain, name)
        if "subject" not in blocks or "text" not in blocks:
            raise TemplateError(f"template {name!r} needs a 'subject' and a 'text' block",
                                path=self._file(name))
        subject = " ".join(self._block(plain, "subject", name, context).split())
        text = self._block(plain, "text", name, context).strip() + "\n"
        html = None
        if "html" in blocks:
            html = self._block(self._load(self._html, name), "html", name, context).strip()
        payload = None
        if "json" in blocks:
            raw = self._block(plain, "json", name, context)
            try:
                payload = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise TemplateError(f"the json block is not valid JSON ({exc}); "
                                    "pass values through |tojson", path=self._file(name)) from None
            if not isinstance(payload, dict):
                raise TemplateError("the json block must be a JSON object",
                                    path=self._file(name))
        return Rendered(subject, text, html, payload)

    def _file(self, name: str) -> str:
        return str(self.folder / f"{name}{SUFFIX}")

    def _load(self, env: _Sandbox, name: str) -> Any:
        file = f"{name}{SUFFIX}"
        try:
            template = env.get_template(file)
        except TemplateNotFound:
            known = ", ".join(self.names()) or "none"
            raise TemplateError(f"template {name!r} not found (looked for {self._file(name)}; "
                                f"available: {known})") from None
        except TemplateSyntaxError as exc:
            raise TemplateError(f"line {exc.lineno}: {exc.message}",
                                path=str(self.folder / (exc.name or file))) from None
        except ValueError:  # Jinja's lexer turning a number of over 4,300 digits into int
            raise TemplateError("a number in the template is too long (at most "
                                f"{sys.get_int_max_str_digits():,} digits)",
                                path=self._file(name)) from None
        except RecursionError:
            raise TemplateError("nested too deeply", path=self._file(name)) from None
        if file not in self._parents:
            self._parents[file] = self._follow(file, ())
        return template

    def _follow(self, file: str, chain: tuple[tuple[str, str, str], ...]) -> list[str]:
        """Check what ``file`` extends, includes and imports; return its ancestors.

        ``chain`` is how the top template reached ``file``, as (file, verb, file) steps.
        A named file must exist, and no file may reach itself again.
        """
        where = str(self.folder / file)
        asked = f" ({_steps(chain[-1:])})" if chain else ""
        try:
            source = self._plain.loader.get_source(self._plain, file)[0]  # type: ignore[union-attr]
            tree = self._plain.parse(source, file)
        except TemplateSyntaxError as exc:
            raise TemplateError(f"line {exc.lineno}: {exc.message}{asked}", path=where) from None
        except ValueError:
            raise TemplateError("a number in the template is too long (at most "
                                f"{sys.get_int_max_str_digits():,} digits){asked}",
                                path=where) from None
        except RecursionError:
            raise TemplateError(f"nested too deeply{asked}", path=where) from None
        seen = {step[0] for step in chain} | {file}
        parents: list[str] = []
        for node in tree.find_all(tuple(_REFERENCES)):
            verb = _REFERENCES[type(node)]
            target = node.template  # type: ignore[attr-defined]
            if isinstance(node, nodes.Extends) and not isinstance(target, nodes.Const):
                raise TemplateError("{% extends %} needs the file name in quotes, like "
                                    "{% extends 'base.j2' %}", path=where)
            listed = [target] if isinstance(target, nodes.Const) else getattr(target, "items", [])
            for name in (n.value for n in listed if isinstance(n, nodes.Const)):
                steps = (*chain, (file, verb, name))
                if name in seen:
                    top = str(self.folder / steps[0][0])
                    raise TemplateError(f"{_steps(steps)}: a template that reaches itself "
                                        "never ends", path=top)
                if not (self.folder / name).is_file():
                    if getattr(node, "ignore_missing", False):
                        continue
                    raise TemplateError(f"{verb} {name!r}, which is not in {self.folder}",
                                        path=where)
                ancestors = self._follow(name, steps)
                if isinstance(node, nodes.Extends):
                    parents = [name, *ancestors]
        return parents

    def _blocks(self, template: Any, name: str) -> dict[str, list[Any]]:
        """The template's blocks, then those its parents add (``{% extends %}``)."""
        env = template.environment
        blocks = {block: [render] for block, render in template.blocks.items()}
        for parent in self._parents.get(f"{name}{SUFFIX}", []):
            for block, render in env.get_template(parent).blocks.items():
                blocks.setdefault(block, []).append(render)
        return blocks

    def _block(self, template: Any, block: str, name: str, context: dict[str, Any]) -> str:
        where = f"block {block!r}"
        token = _BUDGET.set(_Budget())
        try:
            ctx = template.new_context(context)
            ctx.blocks = self._blocks(template, name)
            return _joined(ctx.blocks[block][0](ctx))
        except _TooMuch as exc:
            raise TemplateError(f"{where}: {exc}", path=self._file(name)) from None
        except TemplateNotFound as exc:
            raise TemplateError(f"{where}: {exc.name!r} is not in {self.folder} "
                                "(asked for by this template)", path=self._file(name)) from None
        except TemplateSyntaxError as exc:  # in a file it includes or imports
            raise TemplateError(f"{where}: {exc.name or 'an included file'}, line {exc.lineno}: "
                                f"{exc.message}", path=self._file(name)) from None
        except UndefinedError as exc:
            raise TemplateError(f"{where}: {exc.message}", path=self._file(name)) from None
        except SecurityError as exc:
            raise TemplateError(f"{where}: not allowed: {exc}",
                                path=self._file(name)) from None
        except JinjaError as exc:  # the rest of Jinja's run-time errors
            raise TemplateError(f"{where}: {exc}", path=self._file(name)) from None
        except RecursionError:
            raise TemplateError(f"{where}: a macro or include calls itself without end",
                                path=self._file(name)) from None
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise TemplateError(f"{where}: {type(exc).__name__}: {_clipped(str(exc))}",
                                path=self._file(name)) from None
        finally:
            _BUDGET.reset(token)


def _steps(steps: tuple[tuple[str, str, str], ...]) -> str:
    return ", ".join(f"{file} {verb} {name}" for file, verb, name in steps)


def _clipped(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else f"{text[:limit]}…"


def _joined(chunks: Iterator[str]) -> str:
    """The block's output, refused once it grows past MAX_TEXT."""
    parts = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_TEXT:
            raise _TooMuch(f"the block renders to more than {MAX_TEXT:,} characters")
        parts.append(chunk)
    return "".join(parts)
