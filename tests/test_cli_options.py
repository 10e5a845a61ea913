"""The global options work where people type them: ``sheetcrm plan --json`` as well as
``sheetcrm --json plan``, for every command, including commands added later."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
import pytest

from sheetcrm.cli import cli
from tests.support.sample import DAY0

# The parts of a JSON answer that differ between two runs of the same command.
CLOCKS = {"seconds", "generated_at", "updated_at", "started_at", "finished_at"}


def steady(value):
    """``value`` without timings, so two runs can be compared."""
    if isinstance(value, dict):
        return {k: steady(v) for k, v in value.items() if k not in CLOCKS}
    if isinstance(value, list):
        return [steady(v) for v in value]
    return value


def required(command: click.Command) -> list[str]:
    """Stand-ins for what ``command`` requires, so that it gets as far as the config."""
    values = []
    for param in command.params:
        if not param.required:
            continue
        number = isinstance(param.type, click.types.IntParamType | click.types.FloatParamType)
        value = (param.type.choices[0] if isinstance(param.type, click.Choice)
                 else "1" if number else "x")
        values += [value] if isinstance(param, click.Argument) else [param.opts[0], value]
    return values


# ``init`` writes the config --config names instead of reading it (test_init.py).
@pytest.mark.parametrize("command", sorted(set(cli.commands) - {"init"}))
def test_config_is_taken_before_and_after_every_command(tmp_path: Path, run_cli,
                                                        command: str) -> None:
    args = required(cli.commands[command])
    before = run_cli(tmp_path, "--config", "elsewhere.toml", command, *args)
    after = run_cli(tmp_path, command, *args, "--config", "elsewhere.toml")
    assert before.code == after.code == 2
    assert "'elsewhere.toml' not found" in before.err
    assert after.err == before.err


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_lists_the_global_options_in_its_help(run_cli, tmp_path: Path,
                                                            command: str) -> None:
    shown = run_cli(tmp_path, command, "--help")
    assert shown.code == 0
    for option in ("--config", "--now", "--json", "--wide"):
        assert option in shown.out


ASKED = [("check",), ("plan",), ("preview", "minjun.choi@example.com"), ("status",),
         ("report",)]


@pytest.mark.parametrize("args", ASKED, ids=[a[0] for a in ASKED])
def test_json_and_now_work_on_both_sides_of_the_command(sample: Path, run_cli,
                                                        args: tuple[str, ...]) -> None:
    before = run_cli(sample, "--json", "--now", DAY0, *args)
    after = run_cli(sample, *args, "--json", "--now", DAY0)
    mixed = run_cli(sample, "--now", DAY0, *args, "--json")
    assert before.code == after.code == mixed.code, after.err
    assert before.code in (0, 1)  # check finds the sample's bad rows on purpose
    expected = steady(json.loads(before.out))
    assert steady(json.loads(after.out)) == expected
    assert steady(json.loads(mixed.out)) == expected


def test_sync_takes_its_options_after_the_command(sample: Path, tmp_path: Path,
                                                  run_cli) -> None:
    twin = tmp_path / "twin"
    shutil.copytree(sample, twin)
    before = run_cli(sample, "--now", DAY0, "--json", "sync")
    after = run_cli(twin, "sync", "--now", DAY0, "--json")
    assert before.code == after.code == 0, after.err
    summary = steady(json.loads(after.out)["summary"])
    assert summary == steady(json.loads(before.out)["summary"])
    assert summary["now"].startswith("2026-11-23T10:00") and summary["sent"] > 0


def test_wide_is_the_same_on_both_sides_of_the_command(sample: Path, run_cli) -> None:
    before = run_cli(sample, "--wide", "--now", DAY0, "plan")
    after = run_cli(sample, "plan", "--now", DAY0, "--wide")
    assert before.code == after.code == 0
    assert after.out == before.out
