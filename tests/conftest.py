"""Shared fixtures: a copy of the shipped sample in a temporary folder, and an
in-process CLI runner (the real ``main``, its exit code and output)."""

from __future__ import annotations

import functools
import hashlib
import multiprocessing
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/servers.py


SAMPLE_CSV = "sample_sheets/customers.csv"


@functools.cache
def shipped_sample_csv() -> bytes:
    """The sample sheet as committed.

    The quick start's ``sheetcrm sync`` writes tags and flow state into the
    checkout's sample CSV (that is what it is for), so the tests take the committed
    bytes from git; outside a git checkout, the file as it is.
    """
    try:
        return subprocess.run(["git", "-C", str(ROOT), "show", f"HEAD:{SAMPLE_CSV}"],
                              capture_output=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return (ROOT / SAMPLE_CSV).read_bytes()


def copy_sample(folder: Path) -> Path:
    """The shipped config.toml, sample_sheets/ and templates/ into ``folder``."""
    shutil.copy(ROOT / "config.toml", folder / "config.toml")
    shutil.copytree(ROOT / "templates", folder / "templates")
    (folder / "sample_sheets").mkdir()
    (folder / SAMPLE_CSV).write_bytes(shipped_sample_csv())
    return folder


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A copy of the shipped sample in a temporary folder."""
    return copy_sample(tmp_path)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run ``sheetcrm ARGS`` in-process from ``cwd``; returns exit code and output."""
    from sheetcrm.cli import main

    def run(cwd: Path, *args: str) -> CliResult:
        monkeypatch.chdir(cwd)
        monkeypatch.setenv("COLUMNS", "200")
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` with the sha256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def env_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}


@pytest.fixture
def within() -> Callable[..., Any]:
    """``within(call, seconds)``: ``call()``'s result or exception, or the test fails.

    For what must be refused at once instead of taking forever or gigabytes. The call
    runs in a forked child that is killed after ``seconds``: a thread would not do,
    since a big-number computation holds the interpreter lock until it ends.
    """

    def run(call: Callable[[], Any], seconds: float = 20.0) -> Any:
        fork = multiprocessing.get_context("fork")
        reader, writer = fork.Pipe(duplex=False)

        def child() -> None:
            try:
                writer.send(("value", call()))
            except BaseException as exc:  # rebuilt and raised in the test below
                try:
                    writer.send(("error", (type(exc), exc.args, vars(exc))))
                except Exception:
                    writer.send(("error", (RuntimeError, (f"{type(exc).__name__}: {exc}",), {})))

        process = fork.Process(target=child, daemon=True)
        process.start()
        try:
            if not reader.poll(seconds):
                pytest.fail(f"still running after {seconds} s")
            kind, payload = reader.recv()
        finally:
            process.kill()
            process.join()
        if kind == "value":
            return payload
        cls, args, attributes = payload
        error = cls.__new__(cls, *args)
        error.args = args
        vars(error).update(attributes)
        raise error

    return run
