"""What every command shares: the ``sheetcrm`` group and its global options, the
per-invocation ``State`` and a console that prints data as text, never as markup.

The global options (``--config``, ``--now``, ``--json``, ``--wide``) are declared once,
in ``GLOBAL_OPTIONS``, and accepted on both sides of the command name: people type
``sheetcrm plan --json`` as often as ``sheetcrm --json plan``. The group adds them to
each command as it is registered (``SheetcrmGroup.add_command``), so a new command
takes them without a line of its own; after the command they set the same ``State``.
"""

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
WIDE = 100_000  # --wide: a console this wide never wraps a line


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
    """What one invocation was told: the global options, and the console to print on."""

    def __init__(self, config_path: str, now: str | None, as_json: bool,
                 wide: bool = False) -> None:
        self.config_path = config_path
        self.now_text = now
        self.as_json = as_json
        self.wide = wide
        self._out: SafeConsole | None = None

    @property
    def out(self) -> SafeConsole:
        """The console, made on first use (``--wide`` may come after the command).

        Text wraps at the terminal's width (COLUMNS, else 80 when not a terminal);
        with ``--wide`` nothing wraps and tables take the width their cells need.
        """
        if self._out is None:
            self._out = SafeConsole(width=WIDE if self.wide else None)
        return self._out

    def config(self) -> Config:
        # --config may have come after the command: speak that config's language.
        use_language_of(self.config_path, os.environ)
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


#: The global options: flag, the State attribute it sets, and its click settings.
GLOBAL_OPTIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("--config", "config_path", {"metavar": "PATH", "help": "Path to the config file."}),
    ("--now", "now_text", {"metavar": "ISO", "help": "Pretend the time is this (ISO "
                           "timestamp; the config time zone if naive)."}),
    ("--json", "as_json", {"is_flag": True, "help": "Print machine-readable JSON."}),
    ("--wide", "wide", {"is_flag": True, "help": "Show every column in full, however "
                        "wide the lines get (without it, output fits the terminal)."}),
]
_GROUP_DEFAULTS: dict[str, dict[str, Any]] = {
    "--config": {"default": "config.toml", "show_default": True,
                 "envvar": "SHEETCRM_CONFIG"},
}


def _after_command(flag: str, attribute: str, settings: dict[str, Any]) -> click.Option:
    """``flag`` as a command's own option: given after the command, it sets the State."""

    def remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value not in (None, False):
            setattr(ctx.ensure_object(State), attribute, value)

    return click.Option([flag], expose_value=False, callback=remember, **settings)


def _global_options(function: Any) -> Any:
    """The group's own copies of GLOBAL_OPTIONS (before the command name)."""
    for flag, attribute, settings in reversed(GLOBAL_OPTIONS):
        function = click.option(flag, attribute, **settings,
                                **_GROUP_DEFAULTS.get(flag, {}))(function)
    return function


class SheetcrmGroup(click.Group):
    """The ``sheetcrm`` group: every command also takes the global options."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        own = {opt for param in cmd.params for opt in param.opts}
        cmd.params.extend(_after_command(flag, attribute, settings)
                          for flag, attribute, settings in GLOBAL_OPTIONS if flag not in own)
        super().add_command(cmd, name)


@click.group(cls=SheetcrmGroup, context_settings={"help_option_names": ["-h", "--help"]})
@_global_options
@click.version_option(__version__, prog_name="sheetcrm")
@click.pass_context
def cli(ctx: click.Context, config_path: str, now_text: str | None, as_json: bool,
        wide: bool) -> None:
    """Turn a customer spreadsheet into an automated CRM.

    The options above may also follow the command: sheetcrm plan --json.
    """
    use_language_of(config_path, os.environ)  # before the config is read: its errors too
    ctx.obj = State(config_path, now_text, as_json, wide)


def print_json(state: State, data: dict[str, Any]) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


