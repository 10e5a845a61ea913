"""The layers are a contract a machine checks (pyproject.toml, [tool.importlinter]).

The contract holds for the package as it is, and it breaks, naming the import, when a
lower layer imports a higher one or two modules import each other. The broken cases
run the checker on a copy of the package with one import added.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(src: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def copy_with(tmp_path: Path, module: str, line: str) -> Path:
    """The package and pyproject.toml in ``tmp_path``, ``line`` added to ``module``."""
    shutil.copytree(ROOT / "src" / "sheetcrm", tmp_path / "src" / "sheetcrm",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / "src" / "sheetcrm" / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    return tmp_path


def test_the_package_keeps_its_layers_and_has_no_cycle() -> None:
    result = lint(ROOT / "src", ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.parametrize("module, line, broken", [
    ("core/engine.py", "import sheetcrm.app.runner", "sheetcrm.core is not allowed to import "
     "sheetcrm.app"),
    ("config/base.py", "import sheetcrm.table", "sheetcrm.config is not allowed to import "
     "sheetcrm.table"),
    ("core/guards.py", "import sqlite3", "sheetcrm.core is not allowed to import sqlite3"),
    ("core/rules.py", "import sheetcrm.core.engine",
     "No import cycles between sibling modules, at any depth BROKEN"),
    ("mailbox/imap.py", "import sheetcrm.ledger", "sheetcrm.mailbox is not allowed to import "
     "sheetcrm.ledger"),
], ids=["planner-imports-a-use-case", "config-imports-an-adapter", "planner-opens-sqlite",
        "a-cycle", "an-adapter-imports-another"])
def test_an_upward_import_or_a_cycle_breaks_the_contract(tmp_path: Path, module: str,
                                                         line: str, broken: str) -> None:
    folder = copy_with(tmp_path, module, line)
    result = lint(folder / "src", folder)
    assert result.returncode == 1, result.stdout + result.stderr
    assert broken in result.stdout
