"""``sheetcrm test-send`` and ``sheetcrm history``: trying a step on yourself before a
customer gets it, and everything that happened to one customer.

Both only format what ``app.test_send`` and ``app.history`` return. Long sentences
(reasons, providers' words) wrap at word boundaries to the terminal's width, never
cut, so both read at 80 columns. ``print_test_sends`` is the part of ``status`` that
lists the latest test sends.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

import click
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from sheetcrm.cli.base import State, cli, print_json
from sheetcrm.errors import ExitStatus
from sheetcrm.i18n import N_, _
from sheetcrm.model import SendStatus

if TYPE_CHECKING:  # the use cases are imported when their command runs
    from sheetcrm.app.history import History
    from sheetcrm.app.test_send import TrialResult

HISTORY_LIMIT = 50


@cli.command(name="test-send", help=N_(
    "Send step STEP (its number or template) of FLOW, rendered for one customer, to your "
    "own address only, through the step's real channel. Recorded apart from customers' "
    "sends; [sending] paused stops it too."))
@click.argument("flow")
@click.argument("step")
@click.option("--to", "to", required=True, metavar="ADDRESS",
              help=N_("Your own email address (email channels), mobile number (AlimTalk, "
                      "SMS) or name (webhooks): the test goes there and nowhere else."))
@click.option("--row", default=None, metavar="KEY",
              help=N_("Render the step for the customer with this key (default: the first "
                      "row that could receive it)."))
@click.option("--variant", default=None, metavar="V",
              help=N_("Render this A/B variant (default: the customer's own)."))
@click.pass_obj
def try_step(state: State, flow: str, step: str, to: str, row: str | None,
             variant: str | None) -> ExitStatus:
    from sheetcrm.app.test_send import TrialOrder, send_test

    config = state.config()
    result = send_test(config, state.now(config), TrialOrder(flow, step, to, row, variant))
    if state.as_json:
        print_json(state, result.as_dict())
    else:
        _print_test(state.out, result)
    return result.exit_code


def _print_test(out: Console, r: TrialResult) -> None:
    template = (_("{template}, variant {variant}", template=r.template, variant=r.variant)
                if r.variant else r.template)
    values = dict(label=r.label, template=template, to=r.to, channel=r.channel,
                  detail=r.detail)
    if r.status == SendStatus.SENT:
        head = _("Sent a test of {label} ({template}) to {to} through the channel {channel} "
                 "({type}).", type=r.channel_type, **values)
    elif r.status == SendStatus.UNCERTAIN:
        head = _("The test of {label} ({template}) to {to} through the channel {channel} may "
                 "or may not have arrived: {detail}", **values)
    else:
        head = _("The test of {label} ({template}) to {to} through the channel {channel} was "
                 "not sent: {detail}", **values)
    out.print(head, style="bold" if r.status == SendStatus.SENT else "bold red",
              soft_wrap=False)
    rendered = {
        "given": N_("It was rendered for row {row} ({key}), as asked."),
        "in flow": N_("It was rendered for row {row} ({key}), the first row in this flow or "
                      "meeting its trigger."),
        "any": N_("It was rendered for row {row} ({key}), the first row that can receive "
                  "this step: no row is in this flow or meets its trigger."),
    }[r.chosen]
    out.print(_(rendered, row=r.line, key=r.key), soft_wrap=False)
    if r.status == SendStatus.SENT and r.detail:
        out.print(_("The channel answered: {detail}", detail=r.detail), soft_wrap=False)
    if not r.text_marked:
        out.print(_("An AlimTalk must match its approved template word for word, so its text "
                    "carries no test mark; the ledger records it as a test."), soft_wrap=False)
    if r.subject:
        out.print(_("Subject: {subject}", subject=r.subject), soft_wrap=False)
    for line in r.text.rstrip("\n").splitlines():
        _hanging(out, "  | ", line)


@cli.command(name="history", help=N_(
    "Everything that happened to the customer KEY, newest first: tag changes, flow moves, "
    "messages and their outcomes, what came back, test sends. Changes nothing."))
@click.argument("key")
@click.option("--limit", default=HISTORY_LIMIT, show_default=True,
              type=click.IntRange(1, None),
              help=N_("Show at most this many items, the newest."))
@click.pass_obj
def history_command(state: State, key: str, limit: int) -> None:
    from sheetcrm.app.history import customer_history

    config = state.config()
    history = customer_history(config, key, limit)
    if state.as_json:
        print_json(state, history.as_dict())
        return
    _print_history(state.out, history)


def _print_history(out: Console, history: History) -> None:
    from sheetcrm.cli.layout import word

    if not history.total:
        out.print(_("No history yet for {key}: sheetcrm has recorded nothing about this "
                    "customer.", key=history.key), soft_wrap=False)
        return
    out.print(_("History of {key}, newest first, times in {timezone}:", key=history.key,
                timezone=history.timezone), style="bold", soft_wrap=False)
    kinds = [word(item.kind) for item in history.items]
    pad = max((cell_len(k) for k in kinds), default=0)
    for item, kind in zip(history.items, kinds, strict=True):
        _hanging(out, f"{item.at:%Y-%m-%d %H:%M}  {kind}{' ' * (max(pad, 7) - cell_len(kind))}  ",
                 item.text)
    hidden = history.total - len(history.items)
    if hidden:
        out.print(_("{hidden} older item(s) are not shown; --limit {total} shows all.",
                    hidden=hidden, total=history.total), soft_wrap=False)


def print_test_sends(out: Console, section: dict[str, Any] | None, tz: tzinfo) -> None:
    """``status``: how many test sends there were, and the latest ones."""
    from sheetcrm.cli.layout import word

    counts = (section or {}).get("counts") or {}
    if not section or not counts:
        return
    total = sum(counts.values())
    out.print(_("Test sends: {total}, to the operator only; customers' counts leave them "
                "out.", total=total), style="bold", soft_wrap=False)
    for t in section["items"]:
        when = datetime.fromisoformat(t["finished_at"] or t["created_at"]).astimezone(tz)
        status = word(t["status"])
        _hanging(out, f"  {when:%Y-%m-%d %H:%M}  {status}"
                      f"{' ' * max(9 - cell_len(status), 0)}  ",
                 _("{flow} {step} ({template}) for {key}, to {recipient}", flow=t["flow"],
                   step=t["step"], template=t["template"], key=t["key"],
                   recipient=t["recipient"]))


def _hanging(out: Console, prefix: str, text: str) -> None:
    """``prefix`` then ``text`` wrapped at word boundaries (a word longer than a line is
    folded, never cut) to the console's width, each further line under the first."""
    indent = cell_len(prefix)
    width = max(out.width - indent, 20)
    lines = Text(text).wrap(out, width, overflow="fold") or [Text("")]
    for i, line in enumerate(lines):
        out.print((prefix if i == 0 else " " * indent) + line.plain.rstrip(), soft_wrap=True)
