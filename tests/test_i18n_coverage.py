"""In the modules that speak the operator's language, no message escapes the catalogs.

Read from the source (``ast``): a string with words in it, given straight to one of
sheetcrm's error classes or to a logging or print call, would reach the operator in
English whatever ``language`` says. In a converted module every such message goes
through ``_()`` (or is marked ``N_()`` and translated where shown). ``CONVERTED`` is
the list of those modules: a module joins it once its messages are wrapped, and this
test keeps it so.

A literal part without words (``f"{where}: {reason}"``, ``"POST {url}"``) is no
message. ``_()`` is given a literal (Babel cannot extract anything else) or a name
marked elsewhere with ``N_()``; and a module that imports ``_`` never binds the name
``_`` itself (``for _ in …`` would hide the function in that scope).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "sheetcrm"

#: The modules whose messages are in the catalogs (paths below src/sheetcrm).
CONVERTED = sorted({
    *(f"table/{p.name}" for p in (SOURCE / "table").glob("*.py")),
    *(f"channels/{p.name}" for p in (SOURCE / "channels").glob("*.py")),
    *(f"server/{p.name}" for p in (SOURCE / "server").glob("*.py")),
    *(f"mailbox/{p.name}" for p in (SOURCE / "mailbox").glob("*.py")),
    *(f"texting/{p.name}" for p in (SOURCE / "texting").glob("*.py")),
    *(f"core/{p.name}" for p in (SOURCE / "core").glob("*.py")),
    *(f"expressions/{p.name}" for p in (SOURCE / "expressions").glob("*.py")),
    "fields.py",
    *(f"templates/{p.name}" for p in (SOURCE / "templates").glob("*.py")),
    *(f"ledger/{p.name}" for p in (SOURCE / "ledger").glob("*.py")),
    "config/load.py", "config/sections.py", "config/table.py", "config/schedule.py",
    "config/report.py", "config/alerts.py", "redact.py",
    "http.py", "fsutil.py", "errors.py", "alerts.py", "app/alerts.py",
    "config/channels.py", "config/hearing.py", "config/explain.py", "config/language.py",
    *(f"cli/{p.name}" for p in (SOURCE / "cli").glob("*.py")),
    *(f"daemon/{p.name}" for p in (SOURCE / "daemon").glob("*.py")),
    *(f"app/{name}.py" for name in (
        "checks", "deliveries", "events", "explain", "history", "mailbox", "reading", "runner",
        "schedule", "serve", "stall", "status", "test_send")),
    # The report's words are in its own catalogs (app/report/words.py, by [report] language).
    *(f"app/report/{p.name}" for p in (SOURCE / "app" / "report").glob("*.py")
      if p.name != "words.py"),
    "app/__init__.py",
})

#: Exceptions the operator reads besides sheetcrm's own classes (found below).
OTHER_ERRORS = {"SettingError", "TextProblem"}
LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical"}
_WORD = re.compile(r"[a-z]{2,}")


def error_classes() -> set[str]:
    """sheetcrm's error classes: those of errors.py and every subclass in the package."""
    bases: dict[str, set[str]] = {}
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases.setdefault(node.name, set()).update(
                    b.id if isinstance(b, ast.Name) else b.attr
                    for b in node.bases if isinstance(b, ast.Name | ast.Attribute))
    found = {"SheetcrmError", "CellError"} | OTHER_ERRORS
    while True:
        more = {name for name, parents in bases.items() if parents & found} - found
        if not more:
            return found
        found |= more


ERRORS = error_classes()


def words(node: ast.expr) -> str:
    """The words of a literal or f-string given as a message ("" when it has none)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        parts = [node.value]
    elif isinstance(node, ast.JoinedStr):
        parts = [v.value for v in node.values if isinstance(v, ast.Constant)]
    else:
        return ""
    return " ".join(_WORD.findall(" ".join(parts)))


def called(node: ast.Call) -> str:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(
        func, ast.Attribute) else ""


def unwrapped(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, words) of each message given to an error, a log or a print untranslated."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = called(node)
        is_log = (name in LOG_METHODS and isinstance(node.func, ast.Attribute)
                  and isinstance(node.func.value, ast.Name)
                  and node.func.value.id in ("log", "logger", "logging"))
        if name in ERRORS or is_log or name in ("print", "echo"):
            messages = [*node.args[:1], *(k.value for k in node.keywords
                                         if k.arg in ("message", "msg"))]
            found += [(node.lineno, words(m)) for m in messages if words(m)]
    return found


def misused_gettext(tree: ast.AST) -> list[int]:
    """Lines where ``_()`` is given something Babel cannot extract (an f-string, a sum)."""
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in ("_", "N_") and node.args
            and not isinstance(node.args[0], ast.Constant | ast.Name | ast.Attribute
                               | ast.Subscript)]


def rebinds_gettext(tree: ast.AST) -> list[int]:
    """Lines that bind the name ``_`` in a module that imports ``_`` from sheetcrm.i18n."""
    imports = any(isinstance(n, ast.ImportFrom) and n.module == "sheetcrm.i18n"
                  and any(a.name == "_" for a in n.names) for n in ast.walk(tree))
    return [n.lineno for n in ast.walk(tree) if imports and isinstance(n, ast.Name)
            and n.id == "_" and isinstance(n.ctx, ast.Store)]


def parsed(module: str) -> ast.AST:
    return ast.parse((SOURCE / module).read_text(encoding="utf-8"))


def test_the_converted_modules_exist_and_the_error_classes_are_found() -> None:
    assert all((SOURCE / m).is_file() for m in CONVERTED)
    assert {"ConfigError", "ChannelError", "BackendError", "AirtableError",
            "MailboxError", "StateFileError"} <= ERRORS


@pytest.mark.parametrize("module", CONVERTED)
def test_no_message_of_a_converted_module_escapes_the_catalogs(module: str) -> None:
    assert unwrapped(parsed(module)) == []


@pytest.mark.parametrize("module", CONVERTED)
def test_gettext_is_given_what_babel_can_extract(module: str) -> None:
    assert misused_gettext(parsed(module)) == []


def test_no_module_that_translates_binds_the_name_of_gettext() -> None:
    found = {str(p.relative_to(SOURCE)): rebinds_gettext(ast.parse(p.read_text("utf-8")))
             for p in SOURCE.rglob("*.py")}
    assert {module: lines for module, lines in found.items() if lines} == {}


def test_the_check_finds_an_untranslated_message() -> None:
    source = '''
from sheetcrm.i18n import _
def f(path, exc):
    raise BackendError(f"{path}: file not found")
def g(path):
    log.warning("the alerts may be repeated at the next run")
def h(path):
    raise BackendError(_("{path}: file not found", path=path))
def i(where, problem):
    raise ChannelError(f"POST {where}: {problem}")
def j(path):
    raise ConfigError(_(f"{path} is wrong"))
def k(rows):
    for _ in rows:
        pass
'''
    tree = ast.parse(source)
    assert unwrapped(tree) == [(4, "file not found"),
                               (6, "the alerts may be repeated at the next run")]
    assert misused_gettext(tree) == [12]
    assert rebinds_gettext(tree) == [14]
