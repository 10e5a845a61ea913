"""``sheetcrm init``: set up sheetcrm for an existing sheet.

Only the terminal lives here: the options, the two questions the values cannot
answer (which column is the key; the order of a date like ``6/1/2026`` when no cell
proves it), and the summary. The work is ``sheetcrm.app.setup``. ``--yes`` takes
every default and never reads standard input; a question without a default then
stops with a message that says which option answers it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sheetcrm.cli.base import State, cli, print_json
from sheetcrm.cli.layout import Col, Kind, indented, table
from sheetcrm.errors import ExitStatus
from sheetcrm.fields import DATE_ORDERS
from sheetcrm.i18n import N_, _

if TYPE_CHECKING:  # the use case (pydantic, the table backends) loads when init runs
    from sheetcrm.app.setup import Prepared
    from sheetcrm.app.setup.infer import Column

_TEXT = "text"


@cli.command(name="init", help=N_(
    "Set up sheetcrm for an existing sheet: TARGET is a CSV file, a Google spreadsheet's "
    "URL or key, or an Airtable table (appXXXXXXXXXXXXXX/TABLE or its URL; the token from "
    "AIRTABLE_TOKEN). Reads the header and rows, proposes the fields with their "
    "types, asks only what it cannot tell (the key column), and writes config.toml and "
    "the rule tabs (태그, 흐름, 템플릿) with a starter set. Overwrites nothing without "
    "--force (an Airtable table is never replaced: its API cannot delete one)."))
@click.argument("target")
@click.option("--worksheet", metavar="TITLE", default=None,
              help=N_("Google Sheets: the tab holding the customers (default: the first)."))
@click.option("--credentials", metavar="PATH", default=None,
              help=N_("Google Sheets: the service account's JSON key file (default: the "
                      "GOOGLE_APPLICATION_CREDENTIALS environment variable)."))
@click.option("--endpoint", metavar="URL", default=None,
              help=N_("Google Sheets and Airtable: another API host, such as a proxy."))
@click.option("--key", "key", metavar="COLUMN", default=None,
              help=N_("The column that identifies a row (default: the email column when "
                      "its values are unique, else the phone column)."))
@click.option("--timezone", metavar="ZONE", default="Asia/Seoul", show_default=True,
              help=N_("The time zone dates in the sheet are in."))
@click.option("--config", "config_path", metavar="PATH", default=None,
              help=N_("Where to write config.toml (default: beside the CSV file, else "
                      "in the current folder)."))
@click.option("--yes", "-y", "yes", is_flag=True,
              help=N_("Take every default without asking; stop if something has none."))
@click.option("--force", is_flag=True,
              help=N_("Replace an existing config.toml and rule tabs."))
@click.pass_context
def init_command(ctx: click.Context, target: str, key: str | None, yes: bool,
                 config_path: str | None, **options: Any) -> ExitStatus:
    """``options``: worksheet, credentials, endpoint, timezone and force, as InitRequest
    names them."""
    state: State = ctx.obj
    from sheetcrm.app.setup import Choices, InitRequest, prepare, write_setup

    request = InitRequest(target, _config_option(ctx, config_path), **options)
    prepared = prepare(request, os.environ, Path.cwd())
    found = prepared.survey
    if not found.rows:
        raise click.UsageError(_("{source} has a header but no rows: init infers each "
                                 "column's type from its values; add a few customers first",
                                 source=found.snapshot.source))
    _settle_dates(state, found.columns, yes)
    found.refresh_rules()
    chosen = _key(state, prepared, key, yes)
    if not state.as_json:
        _summary(state, prepared, chosen)
    written = write_setup(prepared, Choices(key=chosen.field, timezone=request.timezone))
    if state.as_json:
        print_json(state, _as_json(prepared, chosen, written))
        return ExitStatus.OK
    state.out.print(_("Written:"), style="bold")
    for where in written:
        indented(state.out, where)
    state.out.print(_("Next: fill in the sender in config.toml ([sending] sender_name, "
                      "sender_contact; [channels.email] from), then run sheetcrm check and "
                      "sheetcrm plan."))
    return ExitStatus.OK


def _config_option(ctx: click.Context, own: str | None) -> Path | None:
    """``--config`` after the command, else before it when given there (the group's
    default, config.toml in the current folder, does not count)."""
    if own is not None:
        return Path(own)
    parent = ctx.parent
    if parent is not None and parent.get_parameter_source("config_path") not in (
            None, click.core.ParameterSource.DEFAULT):
        return Path(parent.params["config_path"])
    return None


def _settle_dates(state: State, columns: list[Column], yes: bool) -> None:
    """Columns of dates like 6/1/2026 that no cell settles: asked, or left as text."""
    for column in columns:
        if not column.orders:
            continue
        if yes:
            state.out.print(_("{column}: dates like 6/1/2026 could be month or day first and "
                              "no cell tells; left as text. Set date_order in config.toml "
                              "([fields]) to read them as dates", column=column.name),
                            style="yellow")
            continue
        answer = click.prompt(
            _("{column}: are dates like 6/1/2026 month first (M/D/YYYY) or day first "
              "(D/M/YYYY)? 'text' leaves them as text", column=column.name),
            type=click.Choice([*column.orders, _TEXT]), default=_TEXT)
        if answer in DATE_ORDERS:
            column.type, column.date_order = "date", answer
        column.orders = ()


def _key(state: State, prepared: Prepared, given: str | None, yes: bool) -> Column:
    found = prepared.survey
    names = [c.name for c in found.columns]
    if given is not None:
        column = found.column(given)
        if column is None:
            raise click.BadParameter(_("{value!r} is not a column of the sheet; expected one "
                                       "of {names}", value=given, names=", ".join(names)),
                                     param_hint="--key")
        return column
    default = found.key
    if yes:
        if default is None:
            raise click.UsageError(_(
                "no email or phone column identifies every row by itself, so the key cannot "
                "be taken by default; name it with --key COLUMN (one of {names})",
                names=", ".join(names)))
        return default
    answer = click.prompt(_("Which column identifies a row (the key)?"),
                          type=click.Choice(names),
                          default=default.name if default is not None else None)
    column = found.column(answer)
    assert column is not None  # click.Choice
    return column


def _summary(state: State, prepared: Prepared, key: Column) -> None:
    out, found = state.out, prepared.survey
    out.print(table(out, _("{source}: {rows} rows", source=found.snapshot.source,
                           rows=found.rows), [
        Col(_("column")), Col(_("field")), Col(_("type")), Col(_("role")),
        Col(_("note"), Kind.TEXT, least=24),
    ], [(c.name, c.field, c.type + (f" ({c.date_order})" if c.date_order else ""),
         c.role or "", _note(c)) for c in found.columns], wide=state.wide))
    out.print(_("key: {column} (field {field})", column=key.name, field=key.field))
    twice = found.repeats.get(key.field)
    if twice:
        out.print(_("{n} value(s) of {column} appear on more than one row ({values}); check "
                    "and sync show those rows as errors until they are fixed", n=len(twice),
                    column=key.name, values=", ".join(twice[:3])), style="yellow")
    tabs = found.tabs
    out.print(_("starter rules: {tags} tag(s), {flows} flow(s), {templates} message(s)",
                tags=len(tabs.tags) - 1, flows=len(tabs.flow_names),
                templates=len(tabs.templates) - 1))
    for tag, missing in tabs.left_out:
        out.print(_("left out: the tag {tag} (no column for {roles})", tag=tag,
                    roles=", ".join(missing)), style="yellow")


def _note(column: Column) -> str:
    if column.unread_count:
        cells = ", ".join(_("row {row} {cell!r}", row=row, cell=cell)
                          for row, cell in column.unread)
        return _("{n} cell(s) are not {type}: {cells}; fix them or they show as row errors",
                 n=column.unread_count, type=column.type, cells=cells)
    if not column.filled:
        return _("empty: taken as text")
    return ""


def _as_json(prepared: Prepared, key: Column, written: list[str]) -> dict[str, Any]:
    found = prepared.survey
    return {
        "source": found.snapshot.source, "rows": found.rows, "key": key.field,
        "fields": {c.field: {"column": c.name, "type": c.type, "date_order": c.date_order,
                             "role": c.role, "unread": c.unread_count} for c in found.columns},
        "writeback": found.writeback,
        "rules": {"tags": found.tabs.tag_names, "flows": found.tabs.flow_names,
                  "templates": [row[0] for row in found.tabs.templates[1:]]},
        "written": written,
    }
