"""What every command shares: the ``sheetcrm`` group and its global options, the
per-invocation ``State`` and a console that prints data as text, never as markup."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from sheetcrm import __version__
from sheetcrm.config import Config, load_config, use_language_of

MAX_ROWS = 40


# Control characters (ESC starts terminal sequences) and the bidi overrides that can
# make text read backwards; newline and tab keep their layout.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """Text as the terminal shows it: control characters spelled out (``\\x1b``)."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


class SafeConsole(Console):
    """A console on which every string is data: no markup, no emoji codes, no control
    characters. Cells are data and must never become terminal markup (``[/x]`` in a
    cell once crashed the output); emphasis is given with ``style=``, never inline."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(markup=False, emoji=False, highlight=False, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Any:
        kwargs.update(markup=False, emoji=False, highlight=False)
        return super().render_str(printable(text), **kwargs)


class State:
    def __init__(self, config_path: str, now: str | None, as_json: bool) -> None:
        self.config_path = config_path
        self.now_text = now
        self.as_json = as_json
        self.out = SafeConsole(soft_wrap=True)

    def config(self) -> Config:
        return load_config(Path(self.config_path), os.environ)

    def now(self, config: Config) -> datetime:
        if self.now_text is None:
            return datetime.now(config.tz)
        try:
            value = datetime.fromisoformat(self.now_text)
        except ValueError:
            raise click.BadParameter(
                f"{self.now_text!r} is not an ISO timestamp like 2025-06-01T09:00",
                param_hint="--now") from None
        return value if value.tzinfo else value.replace(tzinfo=config.tz)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", default="config.toml", show_default=True,
              envvar="SHEETCRM_CONFIG", help="Path to the config file.")
@click.option("--now", default=None, metavar="ISO",
              help="Pretend the time is this (ISO timestamp; the config time zone if naive).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.version_option(__version__, prog_name="sheetcrm")
@click.pass_context
def cli(ctx: click.Context, config_path: str, now: str | None, as_json: bool) -> None:
    """Turn a customer spreadsheet into an automated CRM."""
    use_language_of(config_path, os.environ)  # before the config is read: its errors too
    ctx.obj = State(config_path, now, as_json)


def print_json(state: State, data: dict[str, Any]) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


