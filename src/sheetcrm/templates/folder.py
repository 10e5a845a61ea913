"""The template folder: files read as UTF-8, references followed at load, blocks
rendered in the sandbox.

Template files are UTF-8 (a byte-order mark is dropped). A file in another encoding,
typically CP949 from Notepad or Excel on Korean Windows, is refused with the fix
rather than guessed at: a wrong guess would mail garbled text to customers, and a
CP949 decoder accepts many byte sequences that are not Korean at all. A template's
``{% extends %}``, ``{% include %}`` and ``{% import %}`` of a named file are followed
at load: a missing file or a template that reaches itself is an error naming both
files. ``{% extends %}`` works for blocks: a block the template does not define comes
from its parent.

``reads`` tells which variables a template (with every file it reaches by name)
looks up, so a customer whose cell for one of them could not be read is not sent a
message with a hole in it, while every other template still goes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    DictLoader,
    Environment,
    FileSystemLoader,
    TemplateNotFound,
    TemplateSyntaxError,
    meta,
    nodes,
)
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.exceptions import TemplateError as JinjaError

from sheetcrm.errors import TemplateError
from sheetcrm.i18n import _
from sheetcrm.templates.limits import TooMuch, budgeted, joined
from sheetcrm.templates.sandbox import Sandbox

SUFFIX = ".j2"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None
    payload: dict[str, Any] | None


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


_REFERENCES = {nodes.Extends: "extends", nodes.Include: "includes",
               nodes.Import: "imports", nodes.FromImport: "imports"}


class Templates:
    """The template folder. Compiles each template once per process."""

    def __init__(self, folder: Path, sources: dict[str, str] | None = None) -> None:
        self.folder = folder
        self._sources = None if sources is None else {
            f"{name}{SUFFIX}": source for name, source in sources.items()}
        self._plain = Sandbox(self._loader(), autoescape=False)
        self._html = Sandbox(self._loader(), autoescape=True)
        self._names: list[str] | None = None
        self._parents: dict[str, list[str]] = {}  # file -> its ancestors, nearest first
        self._reads: dict[str, frozenset[str]] = {}  # template -> the variables it reads

    @classmethod
    def from_sources(cls, sources: dict[str, str], where: str) -> Templates:
        """Templates given as name -> Jinja source (the sheet's 템플릿 tab, named
        ``where`` in messages), in the same sandbox, with the same filters and checks
        as files; ``{% include 'x.j2' %}`` finds the template named ``x``."""
        return cls(Path(where), sources)

    def _loader(self) -> BaseLoader:
        if self._sources is not None:
            return DictLoader(self._sources)
        return _Loader(self.folder)

    def _exists(self, file: str) -> bool:
        if self._sources is not None:
            return file in self._sources
        return (self.folder / file).is_file()

    def names(self) -> list[str]:
        """Template names in the folder, listed once per Templates object (one run)."""
        if self._sources is not None:
            return sorted(name[: -len(SUFFIX)] for name in self._sources)
        if self._names is None:
            found = self.folder.glob(f"*{SUFFIX}") if self.folder.is_dir() else ()
            self._names = sorted(p.name[: -len(SUFFIX)] for p in found)
        return self._names

    def check(self, name: str) -> None:
        """Load and compile; raises TemplateError with the file and line."""
        self._load(self._plain, name)
        self._load(self._html, name)

    def reads(self, name: str) -> frozenset[str]:
        """The variables template ``name`` looks up, in it and every file it reaches.

        A file reached only through a name worked out at render time cannot be
        followed; its variables are not listed. Raises TemplateError as ``check``.
        """
        found = self._reads.get(name)
        if found is None:
            self._load(self._plain, name)  # a missing or broken file is its clean error
            file = f"{name}{SUFFIX}"
            try:
                found = frozenset(self._variables(file, {file}))
            except (JinjaError, RecursionError, ValueError) as exc:  # in a file it reaches
                raise TemplateError(_("cannot be read through: {problem}", problem=exc),
                                    path=self._file(name)) from None
            self._reads[name] = found
        return found

    def _variables(self, file: str, seen: set[str]) -> set[str]:
        source = self._plain.loader.get_source(self._plain, file)[0]  # type: ignore[union-attr]
        tree = self._plain.parse(source, file)
        names = set(meta.find_undeclared_variables(tree))
        for other in meta.find_referenced_templates(tree):
            if other is not None and other not in seen and self._exists(other):
                seen.add(other)
                names |= self._variables(other, seen)
        return names

    def render(self, name: str, context: dict[str, Any]) -> Rendered:
        plain = self._load(self._plain, name)
        blocks = self._blocks(plain, name)
        if "subject" not in blocks or "text" not in blocks:
            raise TemplateError(_("template {name} needs a 'subject' and a 'text' block",
                                  name=repr(name)),
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
                raise TemplateError(_("the json block is not valid JSON ({problem}); pass "
                                      "values through |tojson", problem=exc),
                                    path=self._file(name)) from None
            if not isinstance(payload, dict):
                raise TemplateError(_("the json block must be a JSON object"),
                                    path=self._file(name))
        return Rendered(subject, text, html, payload)

    def _file(self, name: str) -> str:
        return self._where(f"{name}{SUFFIX}")

    def _where(self, file: str) -> str:
        """A file for messages: its path, or for sources ``<tab>: <name>``."""
        if self._sources is not None:
            return f"{self.folder}: {file.removesuffix(SUFFIX)}"
        return str(self.folder / file)

    def _load(self, env: Sandbox, name: str) -> Any:
        file = f"{name}{SUFFIX}"
        try:
            template = env.get_template(file)
        except TemplateNotFound:
            known = ", ".join(self.names()) or _("none")
            raise TemplateError(_("template {name} not found (looked for {file}; available: "
                                  "{known})", name=repr(name), file=self._file(name),
                                  known=known)) from None
        except TemplateSyntaxError as exc:
            raise TemplateError(_("line {line}: {problem}", line=exc.lineno, problem=exc.message),
                                path=self._where(exc.name or file)) from None
        except ValueError:  # Jinja's lexer turning a number of over 4,300 digits into int
            raise TemplateError(_("a number in the template is too long (at most {most} "
                                  "digits)", most=f"{sys.get_int_max_str_digits():,}"),
                                path=self._file(name)) from None
        except RecursionError:
            raise TemplateError(_("nested too deeply"), path=self._file(name)) from None
        if file not in self._parents:
            self._parents[file] = self._follow(file, ())
        return template

    def _follow(self, file: str, chain: tuple[tuple[str, str, str], ...]) -> list[str]:
        """Check what ``file`` extends, includes and imports; return its ancestors.

        ``chain`` is how the top template reached ``file``, as (file, verb, file) steps.
        A named file must exist, and no file may reach itself again.
        """
        where = self._where(file)
        asked = f" ({_steps(chain[-1:])})" if chain else ""
        try:
            source = self._plain.loader.get_source(self._plain, file)[0]  # type: ignore[union-attr]
            tree = self._plain.parse(source, file)
        except TemplateSyntaxError as exc:
            raise TemplateError(_("line {line}: {problem}", line=exc.lineno,
                                  problem=exc.message) + asked, path=where) from None
        except ValueError:
            raise TemplateError(_("a number in the template is too long (at most {most} "
                                  "digits)", most=f"{sys.get_int_max_str_digits():,}") + asked,
                                path=where) from None
        except RecursionError:
            raise TemplateError(_("nested too deeply") + asked, path=where) from None
        seen = {step[0] for step in chain} | {file}
        parents: list[str] = []
        for node in tree.find_all(tuple(_REFERENCES)):
            verb = _REFERENCES[type(node)]
            target = node.template  # type: ignore[attr-defined]
            if isinstance(node, nodes.Extends) and not isinstance(target, nodes.Const):
                raise TemplateError(_("{% extends %} needs the file name in quotes, like "
                                      "{% extends 'base.j2' %}"), path=where)
            listed = [target] if isinstance(target, nodes.Const) else getattr(target, "items", [])
            for name in (n.value for n in listed if isinstance(n, nodes.Const)):
                steps = (*chain, (file, verb, name))
                if name in seen:
                    top = self._where(steps[0][0])
                    raise TemplateError(_("{steps}: a template that reaches itself never ends",
                                          steps=_steps(steps)), path=top)
                if not self._exists(name):
                    if getattr(node, "ignore_missing", False):
                        continue
                    raise TemplateError(_("{verb} {name}, which is not in {folder}", verb=verb,
                                          name=repr(name), folder=self.folder), path=where)
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
        where = _("block {name}", name=repr(block))
        try:
            with budgeted():
                ctx = template.new_context(context)
                ctx.blocks = self._blocks(template, name)
                return joined(ctx.blocks[block][0](ctx))
        except TooMuch as exc:
            raise TemplateError(f"{where}: {exc}", path=self._file(name)) from None
        except TemplateNotFound as exc:
            raise TemplateError(_("{where}: {name} is not in {folder} (asked for by this "
                                  "template)", where=where, name=repr(exc.name),
                                  folder=self.folder), path=self._file(name)) from None
        except TemplateSyntaxError as exc:  # in a file it includes or imports
            raise TemplateError(_("{where}: {file}, line {line}: {problem}", where=where,
                                  file=exc.name or _("an included file"), line=exc.lineno,
                                  problem=exc.message), path=self._file(name)) from None
        except UndefinedError as exc:
            raise TemplateError(f"{where}: {exc.message}", path=self._file(name)) from None
        except SecurityError as exc:
            raise TemplateError(_("{where}: not allowed: {problem}", where=where, problem=exc),
                                path=self._file(name)) from None
        except JinjaError as exc:  # the rest of Jinja's run-time errors
            raise TemplateError(f"{where}: {exc}", path=self._file(name)) from None
        except RecursionError:
            raise TemplateError(_("{where}: a macro or include calls itself without end",
                                  where=where),
                                path=self._file(name)) from None
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise TemplateError(f"{where}: {type(exc).__name__}: {_clipped(str(exc))}",
                                path=self._file(name)) from None


def _steps(steps: tuple[tuple[str, str, str], ...]) -> str:
    return ", ".join(f"{file} {verb} {name}" for file, verb, name in steps)


def _clipped(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else f"{text[:limit]}…"

