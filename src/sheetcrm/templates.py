"""Message templates: Jinja files in ``templates/``, rendered in the sandbox.

One file per template, ``templates/<name>.j2``, with blocks::

    {% block subject %}{{ name }}님, 결제가 아직 완료되지 않았어요{% endblock %}
    {% block text %}...plain text body...{% endblock %}
    {% block html %}...optional HTML body (autoescaped)...{% endblock %}
    {% block json %}...optional webhook body: JSON, values through |tojson...{% endblock %}

Undefined variables are errors (StrictUndefined), and nothing from a cell is
executed: cells are values in the context, never template source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateNotFound, TemplateSyntaxError
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import TemplateError

SUFFIX = ".j2"


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


def _environment(folder: Path, autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(str(folder)),
        undefined=StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["won"] = _won
    env.filters["datefmt"] = _datefmt
    return env


class Templates:
    """The template folder. Compiles each template once per process."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._plain = _environment(folder, autoescape=False)
        self._html = _environment(folder, autoescape=True)
        self._names: list[str] | None = None

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
        blocks = plain.blocks
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

    def _load(self, env: ImmutableSandboxedEnvironment, name: str) -> Any:
        try:
            return env.get_template(f"{name}{SUFFIX}")
        except TemplateNotFound:
            known = ", ".join(self.names()) or "none"
            raise TemplateError(f"template {name!r} not found (looked for {self._file(name)}; "
                                f"available: {known})") from None
        except TemplateSyntaxError as exc:
            raise TemplateError(f"line {exc.lineno}: {exc.message}",
                                path=self._file(name)) from None

    def _block(self, template: Any, block: str, name: str, context: dict[str, Any]) -> str:
        try:
            ctx = template.new_context(context)
            return "".join(template.blocks[block](ctx))
        except UndefinedError as exc:
            raise TemplateError(f"block {block!r}: {exc.message}", path=self._file(name)) from None
        except SecurityError as exc:
            raise TemplateError(f"block {block!r}: not allowed: {exc}",
                                path=self._file(name)) from None
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise TemplateError(f"block {block!r}: {type(exc).__name__}: {exc}",
                                path=self._file(name)) from None
