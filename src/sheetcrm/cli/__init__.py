"""The command line: parses flags, calls the library, formats the result.

Every error funnels through ``main`` into a message and an exit status
(``errors.ExitStatus``):

    0  success
    1  the run finished but something failed (a send, a check)
    2  configuration or usage error
    3  the table backend or the state file failed
    4  a channel failed as a whole (login refused, server unreachable): its sends wait
    5  another sheetcrm run holds the lock
"""

from __future__ import annotations

import sys

import click

from sheetcrm.app.collector import one_shot
from sheetcrm.cli import commands, daemon, init, report, serve, tools  # noqa: F401  (the commands register on ``cli``)
from sheetcrm.cli.base import cli, error_line, printable, show_usage_error
from sheetcrm.errors import ExitStatus, SheetcrmError
from sheetcrm.i18n import _

__all__ = ["cli", "main", "printable"]


def main(argv: list[str] | None = None) -> None:
    """Entry point: the one place where results and errors become exit statuses."""
    try:
        with one_shot():  # ``run`` and ``serve`` say they are not
            status = cli.main(args=argv, prog_name="sheetcrm", standalone_mode=False)
    except click.exceptions.Exit as exc:
        status = exc.exit_code
    except click.ClickException as exc:
        show_usage_error(exc)
        status = ExitStatus.USAGE
    except click.exceptions.Abort:
        click.echo(_("aborted"), err=True)
        status = ExitStatus.INTERRUPTED
    except SheetcrmError as exc:
        click.echo(error_line(exc), err=True)
        status = exc.exit_code
    except KeyboardInterrupt:
        click.echo(_("interrupted"), err=True)
        status = ExitStatus.INTERRUPTED
    sys.exit(int(status or 0))
