"""Run tests as Windows would import sheetcrm: its modules cannot import what only
POSIX systems have (``fcntl``, ``termios``, ``pwd``, ``grp``, ``resource``, ...).

As a pytest plugin, installed before any conftest imports sheetcrm::

    python -m pytest -p tests.support.without_posix tests/test_cli_options.py ...

``.ci/run`` runs the command-line tests this way, so a POSIX-only import reached by
any command but the daemon fails CI on Linux, where it would fail every command on
an operator's Windows PC.

How: ``builtins.__import__`` is wrapped, and an import whose importer is a sheetcrm
module and whose target is POSIX-only raises ``ModuleNotFoundError``, exactly what
Windows raises. Looking at the importer rather than hiding the modules matters
twice: a library sheetcrm uses imports its own POSIX branch on Linux (portalocker
imports ``fcntl`` here and ``msvcrt`` on Windows), and once any library has imported
``fcntl`` it sits in ``sys.modules``, where a ``sys.meta_path`` finder is never
asked again. ``importlib.import_module`` is wrapped the same way.

The plugin also sets ``SHEETCRM_WITHOUT_POSIX=1`` and puts ``without_posix_site`` on
PYTHONPATH: its ``sitecustomize`` installs the same refusal in every Python a test
starts (``python -m sheetcrm.cli sync`` in the Ctrl-C test), before sheetcrm loads.
"""

from __future__ import annotations

import builtins
import importlib
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

#: Standard modules that exist on POSIX systems only.
POSIX_ONLY = frozenset({
    "fcntl", "termios", "tty", "pty", "pwd", "grp", "resource", "syslog", "posix",
    "crypt", "spwd", "nis", "_posixsubprocess", "posixpath", "readline", "curses",
})

_real_import = builtins.__import__
_real_import_module = importlib.import_module


def refused(name: str, importer: str) -> bool:
    """Whether Windows would fail ``import name`` in the module named ``importer``."""
    return name.partition(".")[0] in POSIX_ONLY and (
        importer == "sheetcrm" or importer.startswith("sheetcrm."))


def _missing(name: str) -> ModuleNotFoundError:
    return ModuleNotFoundError(f"No module named {name!r} (POSIX only: not on Windows)",
                               name=name)


def _import(name: str, globals: Mapping[str, Any] | None = None,  # noqa: A002
            locals: Mapping[str, Any] | None = None,  # noqa: A002
            fromlist: tuple[str, ...] | list[str] = (), level: int = 0) -> Any:
    if level == 0 and refused(name, (globals or {}).get("__name__") or ""):
        raise _missing(name)
    return _real_import(name, globals, locals, fromlist, level)


def _import_module(name: str, package: str | None = None) -> Any:
    caller = sys._getframe(1).f_globals.get("__name__") or ""
    if not name.startswith(".") and refused(name, caller):
        raise _missing(name)
    return _real_import_module(name, package)


def install() -> None:
    """Refuse POSIX-only imports to sheetcrm from now on (before it is imported)."""
    loaded = sorted(m for m in sys.modules if m == "sheetcrm" or m.startswith("sheetcrm."))
    if loaded:
        raise RuntimeError(f"install() must come before sheetcrm is imported; loaded: "
                           f"{', '.join(loaded[:5])}")
    builtins.__import__ = _import
    importlib.import_module = _import_module  # type: ignore[assignment]


def uninstall() -> None:
    builtins.__import__ = _real_import
    importlib.import_module = _real_import_module


def installed() -> bool:
    return builtins.__import__ is _import


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: Any, parser: Any, args: Any) -> None:
    """As a plugin (``-p tests.support.without_posix``): install before the conftest
    files are imported (they import sheetcrm)."""
    if not installed():
        install()
    here = Path(__file__).resolve()
    paths = [str(here.parent / "without_posix_site"), str(here.parents[2])]
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    os.environ["SHEETCRM_WITHOUT_POSIX"] = "1"


def pytest_report_header(config: Any) -> str:
    return f"sheetcrm may not import: {', '.join(sorted(POSIX_ONLY))} (as on Windows)"


def run_as_on_windows(call: Callable[[], Any]) -> Any:
    """``call()`` with the refusal in place (for a fresh interpreter: ``python -c``)."""
    install()
    try:
        return call()
    finally:
        uninstall()
