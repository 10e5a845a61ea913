"""What every command shares: the ``sheetcrm`` group and its global options, the
per-invocation ``State`` and a console that prints data as text, never as markup.

Help texts are English in the code, marked ``N_()``, and translated when help is
printed (``Translated``): click reads them at import time, before any language is
chosen. ``sheetcrm --help`` follows the environment (no config is read before it is
printed); a command's ``--help`` speaks the language of ``--config`` when it can be
read (``_help_language``). Click's own headings (``Usage:``, ``Options``) go through the
same catalogs (``TranslatedFormatter``), and so do click's usage errors (``No such
option``, ``Missing argument``: ``show_usage_error`` says them again from sheetcrm's
catalog, where click's English forms are listed, as core.wording says sheetcrm's own
messages again), and the name of an error's kind (``sheetcrm: 설정 오류: …``).

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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.cells import cell_len
from rich.console import Console

from sheetcrm import __version__
from sheetcrm.core.wording import said_in
from sheetcrm.errors import ExitStatus
from sheetcrm.i18n import (
    N_,
    _,
    current_language,
    language_from_env,
    ngettext,
    set_language,
)

if TYPE_CHECKING:  # the config (pydantic) is imported when a command reads it, not for --help
    from sheetcrm.config import Config

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
        from sheetcrm.config import load_config, use_language_of

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
                _("{value} is not an ISO timestamp like 2025-06-01T09:00",
                  value=repr(self.now_text)),
                param_hint="--now") from None
        return value if value.tzinfo else value.replace(tzinfo=config.tz)


#: The global options: flag, the State attribute it sets, and its click settings.
GLOBAL_OPTIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("--config", "config_path", {"metavar": "PATH",
                                 "help": N_("Path to the config file.")}),
    ("--now", "now_text", {"metavar": "ISO", "help": N_(
        "Pretend the time is this (ISO timestamp; the config time zone if naive).")}),
    ("--json", "as_json", {"is_flag": True, "help": N_("Print machine-readable JSON.")}),
    ("--wide", "wide", {"is_flag": True, "help": N_(
        "Show every column in full, however wide the lines get (without it, output fits "
        "the terminal).")}),
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


#: Click's own words in a help page, for the catalogs (click looks them up in its own
#: domain, which sheetcrm does not ship; ``Translated`` and the formatter translate them).
CLICK_TEXTS = (
    N_("Usage:"), N_("Options"), N_("Commands"), N_("Show this message and exit."),
    N_("Show the version and exit."),
)


#: Click's usage errors as click writes them in English (``{name!r}`` gives the quotes),
#: for the catalogs: ``show_usage_error`` finds the form and says it in the operator's
#: language. A message not listed is shown as click wrote it.
CLICK_ERRORS = (
    N_("No such option {name}."), N_("No such command {name}."),
    N_("Missing argument {name}."), N_("Missing option {name}."),
    N_("Missing parameter {name}."), N_("Missing argument."), N_("Missing option."),
    N_("Option {name} requires an argument."),
    N_("Option {name} requires {nargs} arguments."),
    N_("Got unexpected extra argument ({args})"),
    N_("Got unexpected extra arguments ({args})"),
    N_("Invalid value for {name}: {message}"), N_("Invalid value: {message}"),
    N_("{value} is not a valid integer."), N_("{value} is not a valid float."),
    N_("{value} is not one of {choices}."), N_("Option {name} does not take a value."),
)
#: The kind of each of sheetcrm's errors, as ``sheetcrm: KIND: message`` names it (the
#: class name in English, plain words in Korean); an error not listed shows its class.
ERROR_KINDS = (
    N_("ConfigError"), N_("RuleError"), N_("TemplateError"), N_("BackendError"),
    N_("ChannelError"), N_("LockedError"), N_("AirtableError"), N_("AirtableWriteError"),
    N_("LedgerError"), N_("MailboxError"), N_("StateFileError"), N_("TrialError"),
    N_("UnknownKeyError"),
)


def error_line(exc: BaseException) -> str:
    """``sheetcrm: ConfigError: …`` (``sheetcrm: 설정 오류: …`` in Korean), printable."""
    kind = type(exc).__name__
    return printable(_("sheetcrm: {kind}: {message}", kind=_(kind), message=str(exc)))


def _click_words(text: str) -> str:
    """One of click's English messages in the operator's language (as it is if unknown)."""
    language = current_language()
    return said_in(text, "en", language) or text if language != "en" else text


def usage_error_text(exc: click.ClickException) -> str:
    """What click says of a usage error, in the operator's language."""
    if isinstance(exc, click.NoSuchOption | click.exceptions.NoSuchCommand):
        message = _click_words(exc.message)
        if exc.possibilities:
            shown = ", ".join(repr(p) for p in sorted(exc.possibilities))
            message += " " + ngettext("Did you mean {options}?",
                                      "(Did you mean one of: {options}?)",
                                      len(exc.possibilities), options=shown)
        return message
    return _click_words(exc.format_message())


def show_usage_error(exc: click.ClickException) -> None:
    """Click's ``exc.show()``, every word through sheetcrm's catalogs: the usage line,
    the hint to ``--help``, and the error, in the language of the config the command
    would read (the environment's when there is none)."""
    ctx: click.Context | None = getattr(exc, "ctx", None)
    if ctx is not None:
        state = ctx.find_object(State)
        path = state.config_path if state is not None else (
            ctx.params.get("config_path") or os.environ.get("SHEETCRM_CONFIG", "config.toml"))
        from sheetcrm.config import use_language_of

        use_language_of(path, os.environ)
        hint = ""
        if ctx.command.get_help_option(ctx) is not None:
            option = max(ctx.command.get_help_option_names(ctx), key=len)
            hint = _("Try '{command} {option}' for help.", command=ctx.command_path,
                     option=option) + "\n"
        click.echo(f"{ctx.get_usage()}\n{hint}", err=True)
    click.echo(printable(_("Error: {message}", message=usage_error_text(exc))), err=True)


def wrap_cells(text: str, width: int, indent: str = "") -> list[str]:
    """``text`` wrapped at spaces to ``width`` terminal cells, each line after ``indent``.

    Click wraps help by characters, and a Hangul character takes two cells: Korean
    help wrapped by click runs past the terminal's edge. Otherwise it wraps as click
    does: paragraphs (blank lines) stay apart, the spaces between words are kept (two
    before ``[default: …]``), a word longer than a line stays whole on its own line.
    """
    lines: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        if lines:
            lines.append("")
        line = ""
        for word in re.findall(r"\s*\S+", " ".join(p.strip() for p in paragraph.splitlines())):
            candidate = line + word if line else word.lstrip()
            if line and cell_len(indent + candidate) > width:
                lines.append(indent + line)
                candidate = word.lstrip()
            line = candidate
        lines.append(indent + line)
    return lines


class TranslatedFormatter(click.HelpFormatter):
    """Click's headings (``Usage:``, ``Options``, ``Commands``) in the operator's language,
    and help text wrapped by the cells it takes on the terminal (``wrap_cells``)."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, prefix if prefix is not None
                            else _("Usage:") + " ")

    def write_heading(self, heading: str) -> None:
        super().write_heading(_(heading))

    def write_text(self, text: str) -> None:
        self.write("\n".join(wrap_cells(text, self.width, " " * self.current_indent)))
        self.write("\n")

    def write_dl(self, rows: Iterable[tuple[str, str]], col_max: int = 30,
                 col_spacing: int = 2) -> None:
        rows = list(rows)
        first_col = min(max((cell_len(term) for term, _text in rows), default=0),
                        col_max) + col_spacing
        text_width = max(self.width - first_col - 2, 10)
        for term, text in rows:
            self.write(" " * self.current_indent + term)
            if not text:
                self.write("\n")
                continue
            if cell_len(term) <= first_col - col_spacing:
                self.write(" " * (first_col - cell_len(term)))
            else:
                self.write("\n" + " " * (first_col + self.current_indent))
            lines = wrap_cells(text, text_width)
            self.write(lines[0] + "\n")
            for line in lines[1:]:
                self.write((" " * (first_col + self.current_indent) + line).rstrip() + "\n")


class TranslatedContext(click.Context):
    formatter_class = TranslatedFormatter


@contextmanager
def _translated(command: click.Command, ctx: click.Context | None = None) -> Iterator[None]:
    """While help is printed, the command's help texts are in the current language
    (with ``ctx``, its options' too, ``--help`` included).

    The texts are put back afterwards: they are the msgids, looked up again next time.
    """
    given = command.get_params(ctx) if ctx is not None else []
    params = [p for p in given if isinstance(p, click.Option) and p.help]
    saved = (command.help, command.short_help, command.epilog, [p.help for p in params])
    try:
        command.help = _(command.help) if command.help else command.help
        command.short_help = _(command.short_help) if command.short_help else None
        command.epilog = _(command.epilog) if command.epilog else command.epilog
        for p in params:
            p.help = _(p.help) if p.help else p.help
        yield
    finally:
        command.help, command.short_help, command.epilog, helps = saved
        for p, text in zip(params, helps, strict=True):
            p.help = text


def _help_language(ctx: click.Context) -> None:
    """A command's help speaks its config's language (the one ``--config`` names before
    the command, else config.toml); the environment's when there is none. ``sheetcrm
    --help`` is printed before any config is read: the environment's language."""
    state = ctx.find_object(State)
    if state is not None:
        from sheetcrm.config import use_language_of

        use_language_of(state.config_path, os.environ)
    else:
        set_language(language_from_env(os.environ))


class Translated(click.Command):
    """A command whose help (page, options, one-line summary) is translated when shown."""

    context_class = TranslatedContext

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        _help_language(ctx)
        with _translated(self, ctx):
            super().format_help(ctx, formatter)

    def get_short_help_str(self, limit: int = 45) -> str:
        with _translated(self):
            return super().get_short_help_str(limit)


class SheetcrmGroup(click.Group):
    """The ``sheetcrm`` group: every command also takes the global options, and every
    help text is translated when shown."""

    context_class = TranslatedContext
    command_class = Translated

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        _help_language(ctx)
        with _translated(self, ctx):
            super().format_help(ctx, formatter)

    def invoke(self, ctx: click.Context) -> Any:
        """The command, and one line in the operator's words if Ctrl-C stops it (sync
        handles its own Ctrl-C: cli.running)."""
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            from sheetcrm.cli.running import say_interrupted  # the progress bar's module

            say_interrupted(ctx.invoked_subcommand)
            raise click.exceptions.Exit(ExitStatus.INTERRUPTED) from None

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        own = {opt for param in cmd.params for opt in param.opts}
        cmd.params.extend(_after_command(flag, attribute, settings)
                          for flag, attribute, settings in GLOBAL_OPTIONS if flag not in own)
        super().add_command(cmd, name)


@click.group(cls=SheetcrmGroup, context_settings={"help_option_names": ["-h", "--help"]},
             help=N_("Turn a customer spreadsheet into an automated CRM.\n\n"
                     "The options above may also follow the command: sheetcrm plan --json."))
@_global_options
@click.version_option(__version__, prog_name="sheetcrm", help=N_("Show the version and exit."))
@click.pass_context
def cli(ctx: click.Context, config_path: str, now_text: str | None, as_json: bool,
        wide: bool) -> None:
    # The help text is above (translated when printed); ``sheetcrm --help`` is printed
    # before this runs, so it speaks the environment's language.
    from sheetcrm.config import use_language_of

    use_language_of(config_path, os.environ)  # before the config is read: its errors too
    ctx.obj = State(config_path, now_text, as_json, wide)


def print_json(state: State, data: dict[str, Any]) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


