"""The README documents every command, option and config key (it can't drift silently)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sheetcrm.cli import cli
from sheetcrm.config import (
    TABLE_SETTINGS,
    ConfigModel,
    FlowSettings,
    SendingSettings,
    StepSettings,
    WritebackSettings,
)

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_is_in_the_cli_reference(command: str) -> None:
    assert f"| `{command}` |" in README
    assert cli.commands[command].help, f"{command} has no help text"


@pytest.mark.parametrize("option", [p.opts[0] for p in cli.params if p.opts[0].startswith("--")])
def test_every_global_option_is_documented(option: str) -> None:
    assert f"`{option}`" in README


KEYS = (
    [f"`{k}`" for k in ConfigModel.model_fields if k not in ("table", "fields", "writeback",
                                                               "tags", "channels", "flows",
                                                               "sending")]
    + [f"`[sending] {k}`" for k in SendingSettings.model_fields]
    + [f"`[flows.NAME] {k}`" for k in FlowSettings.model_fields]
    + [f"`{k}`" for k in StepSettings.model_fields]
    + [k for k in WritebackSettings.model_fields]
)


@pytest.mark.parametrize("key", KEYS)
def test_every_config_key_is_in_the_config_reference(key: str) -> None:
    assert key in README


def config_rows(section: str) -> list[str]:
    """First cells of the config reference rows for ``[section]``."""
    return [line.split("|")[1] for line in README.splitlines()
            if line.startswith(f"| `[{section}] ")]


@pytest.mark.parametrize("key", sorted({key for settings in TABLE_SETTINGS.values()
                                        for key in settings.model_fields}))
def test_every_table_key_is_in_the_config_reference(key: str) -> None:
    rows = config_rows("table")
    assert any(f"`[table] {key}`" in r or f"`{key}`" in r for r in rows)
