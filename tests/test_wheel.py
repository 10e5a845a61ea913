"""The wheel pip installs carries the compiled catalogs: without them sheetcrm speaks
English whatever ``language`` says (gettext falls back to the msgids in silence).

The wheel is built offline from a copy of the project (pyproject.toml, README.md,
src/), by the build backend pyproject.toml names, as ``pip wheel`` would build it,
once for the module (a build takes a few seconds).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sheetcrm.i18n import LANGUAGES

ROOT = Path(__file__).resolve().parents[1]
BUILD = ("import sys\n"
         "from setuptools import build_meta\n"
         "print(build_meta.build_wheel(sys.argv[1]))\n")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("project")
    dist = tmp_path_factory.mktemp("dist")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, project / name)
    shutil.copytree(ROOT / "src", project / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    built = subprocess.run([sys.executable, "-c", BUILD, str(dist)], cwd=project,
                           capture_output=True, text=True, timeout=300,
                           stdin=subprocess.DEVNULL)
    assert built.returncode == 0, built.stderr[-3000:]
    return dist / built.stdout.strip().splitlines()[-1]


def test_the_wheel_carries_the_compiled_catalog_of_every_language(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for language in LANGUAGES:
            mo = f"sheetcrm/locale/{language}/LC_MESSAGES/sheetcrm.mo"
            assert mo in names, f"{wheel.name} has no {mo}"
            shipped = ROOT / "src" / mo
            assert archive.read(mo) == shipped.read_bytes(), f"{mo} differs from src/"

