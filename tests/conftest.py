"""Shared fixtures: a copy of the shipped sample in a temporary folder, an in-process
CLI runner (the real ``main``, its exit code and output) and a deadline for a call.

Only fixtures live here; the helpers tests import are in ``tests.support``."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.sample import copy_sample


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
