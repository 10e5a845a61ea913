"""The commands that run the pipeline: ``check``, ``plan``, ``sync``, ``preview``
(``report`` is in ``report.py``).

Each parses its options, calls the library and formats the result; it returns an
ExitStatus and never exits by itself (``main`` does, in one place).

A command imports the use cases it calls inside its function: every command is
registered on ``cli`` at start, and ``sheetcrm --help`` or ``check`` should not pay
for importing the planner, the channels and the ledger they do not use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import click

from sheetcrm.cli.base import MAX_ROWS, State, cli, print_json
from sheetcrm.cli.streaming import Rows, write_json
from sheetcrm.errors import ExitStatus
from sheetcrm.i18n import N_, _

if TYPE_CHECKING:
    from sheetcrm.app.runner import RunOptions, RunResult


@cli.command(help=N_("Check config, rules, templates, columns, keys and cells; render "
                     "every template."))
@click.option("--connect", is_flag=True,
              help=N_("Also reach every channel (SMTP login, webhook host) without sending, "
                      "and log in to the [mailbox] without reading."))
@click.pass_obj
def check(state: State, connect: bool) -> ExitStatus:
    from sheetcrm.app.checks import run_checks
    from sheetcrm.cli.layout import Col, Kind, table, word

    config = state.config()
    findings = run_checks(config, state.now(config), connect=connect)
    errors = sum(1 for f in findings if f.level == "error")
    if state.as_json:
        print_json(state, {"ok": errors == 0, "findings": [f.__dict__ for f in findings]})
    else:
        if findings:
            state.out.print(table(state.out, "sheetcrm check", [
                Col(_("level")), Col(_("where"), Kind.TEXT, least=16),
                Col(_("problem"), Kind.TEXT, least=30),
            ], [(word(f.level), f.where, f.message) for f in findings], wide=state.wide))
        warnings = sum(1 for f in findings if f.level == "warning")
        if errors:
            state.out.print(_("{errors} error(s), {warnings} warning(s)",
                              errors=errors, warnings=warnings))
        else:
            state.out.print(_("{errors} error(s), {warnings} warning(s) — ready to sync",
                              errors=errors, warnings=warnings))
    return ExitStatus.FAILED if errors else ExitStatus.OK


def run_options(function: Any) -> Any:
    """The operator's explicit decisions, shared by ``plan`` and ``sync``."""
    for option in reversed([
        click.option("--allow-blast", is_flag=True,
                     help=N_("Send even when more sends are due than [sending] "
                             "max_sends_per_run allows.")),
        click.option("--allow-flow-change", is_flag=True,
                     help=N_("Let a new flow message customers of a flow removed from the "
                             "config (when it is not that flow renamed: see renamed_from).")),
        click.option("--restore-from-sheet", is_flag=True,
                     help=N_("Take flow state from the sheet's flow column for rows the "
                             "ledger does not know (automatic on a new ledger).")),
    ]):
        function = option(function)
    return function


def _options(allow_blast: bool, allow_flow_change: bool, restore_from_sheet: bool
             ) -> RunOptions:
    from sheetcrm.app.runner import RunOptions

    return RunOptions(allow_blast=allow_blast, allow_flow_change=allow_flow_change,
                      restore_from_sheet=restore_from_sheet)


@cli.command(help=N_("Show what sync would do, changing nothing: no send, no write, no "
                     "ledger change."))
@click.option("--all", "show_all", is_flag=True, help=N_("List every row, not the first 40."))
@run_options
@click.pass_obj
def plan(state: State, show_all: bool, **flags: bool) -> None:
    from sheetcrm.app.runner import preview

    config = state.config()
    result = preview(config, state.now(config), options=_options(**flags))
    _report(state, result, "plan", show_all)


@cli.command(name="sync", help=N_(
    "Recompute tags, send what is due, write state back into the sheet.\n\n"
    "Ctrl-C stops sending; what was sent is still written back."))
@click.option("--all", "show_all", is_flag=True, help=N_("List every row, not the first 40."))
@run_options
@click.pass_obj
def sync_command(state: State, show_all: bool, **flags: bool) -> ExitStatus:
    from sheetcrm.app.runner import Watch, sync
    from sheetcrm.cli.running import RunProgress, ctrl_c_stops, say_left_at_once, say_stopped

    config = state.config()
    now = state.now(config)
    with ctrl_c_stops() as stop:
        try:
            with RunProgress(stop=stop) as progress:
                result = sync(config, now, watch=Watch(stop.is_set, progress),
                              options=_options(**flags))
        except KeyboardInterrupt:
            say_left_at_once()
            return ExitStatus.INTERRUPTED
    _report(state, result, "sync", show_all)
    if stop.is_set():
        summary = result.summary()
        say_stopped(summary["sent"], summary["stopped"])
        return ExitStatus.INTERRUPTED
    if result.channels_down:
        return ExitStatus.CHANNEL_DOWN
    summary = result.summary()
    failed = summary["failed"] or summary["uncertain"] or summary["broken_rules"]
    return ExitStatus.FAILED if failed else ExitStatus.OK


@cli.command(name="preview", help=N_(
    "Show what the row KEY would receive next, with the decision trail. Changes nothing."))
@click.argument("key")
@click.option("--flow", default=None, help=N_("Only this flow."))
@click.pass_obj
def preview_command(state: State, key: str, flow: str | None) -> None:
    from sheetcrm.app.explain import explain
    from sheetcrm.cli.layout import indented

    config = state.config()
    result = explain(config, state.now(config), key, flow)
    if state.as_json:
        print_json(state, {"key": result.key, "row": result.line, "tags": result.tags,
                            "errors": result.errors,
                            "flows": [f.__dict__ for f in result.flows]})
        return
    out = state.out
    on = [t for t, v in result.tags.items() if v]
    out.print(_("{key} (row {row}) tags: {tags}", key=result.key, row=result.line,
                tags=", ".join(on) or _("none")), style="bold")
    for e in result.errors:
        out.print("  " + _("error: {error}", error=e), style="red")
    for f in result.flows:
        out.print()
        out.print(f"{f.flow}: {f.decision}", style="bold")
        for line in f.trail:
            indented(out, f"· {line}")
        if f.subject is not None:
            out.print("  " + _("template {template}", template=f.template))
            out.print("  " + _("Subject: {subject}", subject=f.subject))
            for line in (f.text or "").splitlines():
                out.print(f"  | {line}")


def _report(state: State, result: RunResult, verb: str, show_all: bool) -> None:
    from sheetcrm.app.rules import rules_lines

    if state.as_json:
        write_json(_result_json(result, verb))
        return
    out, plan = state.out, result.plan
    limit = None if show_all else MAX_ROWS
    for line in rules_lines(result.rules):  # a rules tab edit that waits or fails
        out.print(line, style="yellow")
    _tables(state, result, limit)
    if plan.stopped:
        out.print(plan.stopped, style="bold red")
    for note in plan.notes:
        out.print(_("note: {note}", note=note), style="yellow")
    for rule in plan.broken_rules:
        out.print(_("{rule} failed on every row: no customer was acted on by it; see the row "
                    "errors or run sheetcrm check", rule=rule), style="bold red")
    for channel, why in result.channels_down.items():
        waiting = sum(1 for o in result.outcomes
                      if o.status == "channel down" and o.send.channel == channel)
        out.print(_("channel {channel} is down: {why}. {waiting} send(s) wait for the next "
                    "run; no customer was failed for it.", channel=channel, why=why,
                    waiting=waiting), style="bold red")
    write = result.write
    if write is not None and (write.missing_keys or write.ambiguous_keys):
        out.print(_("not written: {missing} row(s) whose key vanished from the sheet during "
                    "the run, {twice} whose key now appears twice; the next run writes them",
                    missing=len(write.missing_keys), twice=len(write.ambiguous_keys)),
                  style="yellow")
    if write is not None and write.repaired_keys:
        out.print(_("{n} row(s) moved in the sheet while sheetcrm wrote; they were found by "
                    "key and written again", n=len(write.repaired_keys)), style="yellow")
    for note in result.recovered:
        out.print(_("recovered: {note}", note=note), style="yellow")
    _mailbox_line(state, result)
    out.print(_summary_line(result, verb))
    hidden = max(len(plan.sends), len(plan.held), len(plan.errors), len(plan.tag_changes),
                 len(plan.moves))
    if limit is not None and hidden > limit:
        out.print(_("(lists cut at {limit} rows; --all shows every row)", limit=limit))


def _mailbox_line(state: State, result: RunResult) -> None:
    heard = result.mailbox
    if heard is not None and heard.error:
        state.out.print(_("mailbox not read: {error}; the run went on without it",
                          error=heard.error), style="yellow")
    elif heard is not None:
        counts = dict(read=heard.read, bounces=heard.bounces, replies=heard.replies,
                      stop=heard.opt_outs)
        line = (_("mailbox: {read} new mail(s), {bounces} bounce(s), {replies} repl(ies) "
                  "heard, {stop} asking to stop", **counts) if heard.opt_outs else
                _("mailbox: {read} new mail(s), {bounces} bounce(s), {replies} repl(ies) "
                  "heard", **counts))
        state.out.print(_("{line}; more next run", line=line) if heard.more else line)


def _summary_line(result: RunResult, verb: str) -> str:
    """The last line of ``plan`` and ``sync``: what the run did (or would do), in counts."""
    summary, plan = result.summary(), result.plan
    held = ", ".join(_("{n} {reason}", n=n, reason=r) for r, n in summary["held"].items()
                     ) or _("none")
    counts = dict(when=f"{plan.now:%Y-%m-%d %H:%M %Z}", rows=summary["rows_read"],
                  tags=summary["tags_changed"], entered=summary["entered"],
                  exited=summary["exited"], failed=summary["failed"], held=held,
                  errors=summary["row_errors"])
    if result.executed:
        return _("sync at {when}: {rows} rows read, {tags} tag changes, {entered} entered, "
                 "{exited} exited, {sent} sent, {failed} failed, held back: {held}, "
                 "{errors} row errors, {cells} cells written.", sent=summary["sent"],
                 cells=summary["cells_written"], **counts)
    return _("{verb} at {when}: {rows} rows read, {tags} tag changes, {entered} entered, "
             "{exited} exited, {due} would be sent, {failed} failed, held back: {held}, "
             "{errors} row errors, {cells} cells would be written.", verb=verb,
             due=summary["due"], cells=len(result.updates), **counts)


def _tables(state: State, result: RunResult, limit: int | None) -> None:
    """The tag changes, flow moves, sends, held-back sends and row errors of a run."""
    from sheetcrm.cli.layout import Col, Kind, table, word

    out, plan, wide = state.out, result.plan, state.wide
    if plan.tag_changes:
        out.print(table(out, _("tag changes"), [
            Col(_("key"), Kind.KEY), Col(_("before"), Kind.TEXT, least=12),
            Col(_("after"), Kind.TEXT, least=12),
        ], [(c.key, ", ".join(c.before), ", ".join(c.after))
            for c in plan.tag_changes[:limit]], wide=wide))
    if plan.moves:
        out.print(table(out, _("flow moves"), [
            Col(_("key"), Kind.KEY), Col(_("flow")), Col(_("move")),
            Col(_("detail"), Kind.TEXT),
        ], [(m.key, m.flow, word(m.action), m.detail) for m in plan.moves[:limit]],
            wide=wide))
    outcome = {id(o.send): o for o in result.outcomes}
    if plan.sends:
        done = result.executed
        out.print(table(out, _("sends") if done else _("sends due (would go now)"), [
            Col(_("key"), Kind.KEY), Col(_("flow step")), Col(_("template")),
            Col(_("channel"), wide=True), Col(_("due"), wide=done),
            Col(_("result"), wide=not done), Col(_("detail"), Kind.TEXT, wide=True),
        ], [(s.key, s.label, s.template, s.channel,
             f"{s.due_at.astimezone(plan.now.tzinfo):%m-%d %H:%M}",
             word(o.status) if (o := outcome.get(id(s))) else _("would send"),
             o.detail if o else "")
            for s in plan.sends[:limit]], wide=wide))
    if plan.held:
        out.print(table(out, _("held back"), [
            Col(_("key"), Kind.KEY), Col(_("flow step")), Col(_("template"), wide=True),
            Col(_("reason"), Kind.TEXT),
        ], [(h.send.key, h.send.label, h.send.template,
             _("{reason} — step skipped", reason=h.reason) if h.skip else h.reason)
            for h in plan.held[:limit]],
            wide=wide))
    if plan.errors:
        out.print(table(out, _("row errors"), [
            Col(_("row"), Kind.NUMBER), Col(_("key"), Kind.KEY),
            Col(_("error"), Kind.TEXT, least=30),
        ], [(str(e.line), e.key, e.message) for e in plan.errors[:limit]], wide=wide))


def _result_json(result: RunResult, verb: str) -> Iterator[tuple[str, Any]]:
    """The members of ``plan --json`` / ``sync --json``; the long lists are made as they
    are written (``streaming``)."""
    from sheetcrm.app.rules import rules_json

    plan = result.plan
    status = {id(o.send): o.status for o in result.outcomes}
    yield "command", verb
    yield "summary", result.summary()
    yield "tag_changes", Rows({"key": c.key, "before": c.before, "after": c.after}
                              for c in plan.tag_changes)
    yield "moves", Rows(_flat(plan.moves))
    yield "sends", Rows(
        {"key": s.key, "flow": s.flow, "step": s.step + 1, "template": s.template,
         "channel": s.channel, "kind": s.kind, "due_at": s.due_at.isoformat(),
         "idempotency_key": s.idem_key,
         "result": status.get(id(s), "would send" if not result.executed else "")}
        for s in plan.sends)
    yield "held", Rows({"key": h.send.key, "flow": h.send.flow, "step": h.send.step + 1,
                        "template": h.send.template, "reason": h.reason, "skip": h.skip}
                       for h in plan.held)
    yield "errors", Rows(_flat(plan.errors))
    yield "writes", Rows(_flat(result.updates))
    yield "recovered", result.recovered
    yield "rules", rules_json(result.rules)


def _flat(items: list[Any]) -> Iterator[dict[str, Any]]:
    """``dataclasses.asdict`` of flat dataclasses, without its deep copy of each item."""
    if not items:
        return
    names = [f.name for f in dataclasses.fields(items[0])]
    if len(names) == 1:  # attrgetter of one name gives the value, not a tuple
        yield from ({names[0]: getattr(item, names[0])} for item in items)
        return
    values = attrgetter(*names)
    for item in items:
        yield dict(zip(names, values(item), strict=True))
