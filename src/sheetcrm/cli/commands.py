"""The commands that run the pipeline: ``check``, ``plan``, ``sync``, ``preview``
(``report`` is in ``report.py``).

Each parses its options, calls the library and formats the result; it returns an
ExitStatus and never exits by itself (``main`` does, in one place).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from sheetcrm.app.checks import run_checks
from sheetcrm.app.explain import explain
from sheetcrm.app.runner import RunOptions, RunResult, Watch, preview, sync
from sheetcrm.cli.base import MAX_ROWS, State, cli, print_json
from sheetcrm.cli.layout import Col, Kind, indented, table
from sheetcrm.cli.running import RunProgress, ctrl_c_stops, say_left_at_once, say_stopped
from sheetcrm.errors import ExitStatus


@cli.command()
@click.option("--connect", is_flag=True,
              help="Also reach every channel (SMTP login, webhook host) without sending, "
                   "and log in to the [mailbox] without reading.")
@click.pass_obj
def check(state: State, connect: bool) -> ExitStatus:
    """Check config, rules, templates, columns, keys and cells; render every template."""
    config = state.config()
    findings = run_checks(config, state.now(config), connect=connect)
    errors = sum(1 for f in findings if f.level == "error")
    if state.as_json:
        print_json(state, {"ok": errors == 0, "findings": [f.__dict__ for f in findings]})
    else:
        if findings:
            state.out.print(table(state.out, "sheetcrm check", [
                Col("level"), Col("where", Kind.TEXT, least=16),
                Col("problem", Kind.TEXT, least=30),
            ], [(f.level, f.where, f.message) for f in findings], wide=state.wide))
        state.out.print(f"{errors} error(s), "
                        f"{sum(1 for f in findings if f.level == 'warning')} warning(s)"
                        + ("" if errors else " — ready to sync"))
    return ExitStatus.FAILED if errors else ExitStatus.OK


def run_options(function: Any) -> Any:
    """The operator's explicit decisions, shared by ``plan`` and ``sync``."""
    for option in reversed([
        click.option("--allow-blast", is_flag=True,
                     help="Send even when more sends are due than [sending] "
                          "max_sends_per_run allows."),
        click.option("--allow-flow-change", is_flag=True,
                     help="Let a new flow message customers of a flow removed from the "
                          "config (when it is not that flow renamed: see renamed_from)."),
        click.option("--restore-from-sheet", is_flag=True,
                     help="Take flow state from the sheet's flow column for rows the "
                          "ledger does not know (automatic on a new ledger)."),
    ]):
        function = option(function)
    return function


def _options(allow_blast: bool, allow_flow_change: bool, restore_from_sheet: bool
             ) -> RunOptions:
    return RunOptions(allow_blast=allow_blast, allow_flow_change=allow_flow_change,
                      restore_from_sheet=restore_from_sheet)


@cli.command()
@click.option("--all", "show_all", is_flag=True, help="List every row, not the first 40.")
@run_options
@click.pass_obj
def plan(state: State, show_all: bool, **flags: bool) -> None:
    """Show what sync would do, changing nothing: no send, no write, no ledger change."""
    config = state.config()
    result = preview(config, state.now(config), options=_options(**flags))
    _report(state, result, "plan", show_all)


@cli.command(name="sync")
@click.option("--all", "show_all", is_flag=True, help="List every row, not the first 40.")
@run_options
@click.pass_obj
def sync_command(state: State, show_all: bool, **flags: bool) -> ExitStatus:
    """Recompute tags, send what is due, write state back into the sheet.

    Ctrl-C stops sending; what was sent is still written back."""
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


@cli.command(name="preview")
@click.argument("key")
@click.option("--flow", default=None, help="Only this flow.")
@click.pass_obj
def preview_command(state: State, key: str, flow: str | None) -> None:
    """Show what the row KEY would receive next, with the decision trail. Changes nothing."""
    config = state.config()
    result = explain(config, state.now(config), key, flow)
    if state.as_json:
        print_json(state, {"key": result.key, "row": result.line, "tags": result.tags,
                            "errors": result.errors,
                            "flows": [f.__dict__ for f in result.flows]})
        return
    out = state.out
    on = [t for t, v in result.tags.items() if v]
    out.print(f"{result.key} (row {result.line}) tags: {', '.join(on) or 'none'}",
              style="bold")
    for e in result.errors:
        out.print(f"  error: {e}", style="red")
    for f in result.flows:
        out.print()
        out.print(f"{f.flow}: {f.decision}", style="bold")
        for line in f.trail:
            indented(out, f"· {line}")
        if f.subject is not None:
            out.print(f"  template {f.template}")
            out.print(f"  Subject: {f.subject}")
            for line in (f.text or "").splitlines():
                out.print(f"  | {line}")


def _report(state: State, result: RunResult, verb: str, show_all: bool) -> None:
    summary = result.summary()
    if state.as_json:
        print_json(state, _result_json(result, verb))
        return
    out, plan = state.out, result.plan
    limit = None if show_all else MAX_ROWS
    _tables(state, result, limit)
    if plan.stopped:
        out.print(plan.stopped, style="bold red")
    for note in plan.notes:
        out.print(f"note: {note}", style="yellow")
    for rule in plan.broken_rules:
        out.print(f"{rule} failed on every row: no customer was acted on by it; "
                  "see the row errors or run sheetcrm check", style="bold red")
    for channel, why in result.channels_down.items():
        waiting = sum(1 for o in result.outcomes
                      if o.status == "channel down" and o.send.channel == channel)
        out.print(f"channel {channel} is down: {why}. {waiting} send(s) wait "
                  "for the next run; no customer was failed for it.", style="bold red")
    write = result.write
    if write is not None and (write.missing_keys or write.ambiguous_keys):
        out.print(f"not written: {len(write.missing_keys)} row(s) whose key vanished from the "
                  f"sheet during the run, {len(write.ambiguous_keys)} whose key now appears "
                  "twice; the next run writes them", style="yellow")
    if write is not None and write.repaired_keys:
        out.print(f"{len(write.repaired_keys)} row(s) moved in the sheet while sheetcrm wrote; "
                  "they were found by key and written again", style="yellow")
    for note in result.recovered:
        out.print(f"recovered: {note}", style="yellow")
    heard = result.mailbox
    if heard is not None and heard.error:
        out.print(f"mailbox not read: {heard.error}; the run went on without it",
                  style="yellow")
    elif heard is not None:
        out.print(f"mailbox: {heard.read} new mail(s), {heard.bounces} bounce(s), "
                  f"{heard.replies} repl(ies) heard"
                  + (f", {heard.opt_outs} asking to stop" if heard.opt_outs else "")
                  + ("; more next run" if heard.more else ""))
    held = ", ".join(f"{n} {r}" for r, n in summary["held"].items()) or "none"
    writes = (f"{summary['cells_written']} cells written" if result.executed
              else f"{len(result.updates)} cells would be written")
    sent = f"{summary['sent']} sent" if result.executed else f"{summary['due']} would be sent"
    out.print(
        f"{verb} at {plan.now:%Y-%m-%d %H:%M %Z}: {summary['rows_read']} rows read, "
        f"{summary['tags_changed']} tag changes, {summary['entered']} entered, "
        f"{summary['exited']} exited, {sent}, {summary['failed']} failed, held back: {held}, "
        f"{summary['row_errors']} row errors, {writes}."
    )
    hidden = max(len(plan.sends), len(plan.held), len(plan.errors), len(plan.tag_changes),
                 len(plan.moves))
    if limit is not None and hidden > limit:
        out.print(f"(lists cut at {limit} rows; --all shows every row)")


def _tables(state: State, result: RunResult, limit: int | None) -> None:
    """The tag changes, flow moves, sends, held-back sends and row errors of a run."""
    out, plan, wide = state.out, result.plan, state.wide
    if plan.tag_changes:
        out.print(table(out, "tag changes", [
            Col("key", Kind.KEY), Col("before", Kind.TEXT, least=12),
            Col("after", Kind.TEXT, least=12),
        ], [(c.key, ", ".join(c.before), ", ".join(c.after))
            for c in plan.tag_changes[:limit]], wide=wide))
    if plan.moves:
        out.print(table(out, "flow moves", [
            Col("key", Kind.KEY), Col("flow"), Col("move"), Col("detail", Kind.TEXT),
        ], [(m.key, m.flow, m.action, m.detail) for m in plan.moves[:limit]], wide=wide))
    outcome = {id(o.send): o for o in result.outcomes}
    if plan.sends:
        done = result.executed
        out.print(table(out, "sends" if done else "sends due (would go now)", [
            Col("key", Kind.KEY), Col("flow step"), Col("template"),
            Col("channel", wide=True), Col("due", wide=done), Col("result", wide=not done),
            Col("detail", Kind.TEXT, wide=True),
        ], [(s.key, s.label, s.template, s.channel,
             f"{s.due_at.astimezone(plan.now.tzinfo):%m-%d %H:%M}",
             o.status if (o := outcome.get(id(s))) else "would send", o.detail if o else "")
            for s in plan.sends[:limit]], wide=wide))
    if plan.held:
        out.print(table(out, "held back", [
            Col("key", Kind.KEY), Col("flow step"), Col("template", wide=True),
            Col("reason", Kind.TEXT),
        ], [(h.send.key, h.send.label, h.send.template,
             h.reason + (" — step skipped" if h.skip else "")) for h in plan.held[:limit]],
            wide=wide))
    if plan.errors:
        out.print(table(out, "row errors", [
            Col("row", Kind.NUMBER), Col("key", Kind.KEY), Col("error", Kind.TEXT, least=30),
        ], [(str(e.line), e.key, e.message) for e in plan.errors[:limit]], wide=wide))


def _result_json(result: RunResult, verb: str) -> dict[str, Any]:
    plan = result.plan
    status = {id(o.send): o.status for o in result.outcomes}
    return {
        "command": verb,
        "summary": result.summary(),
        "tag_changes": [{"key": c.key, "before": c.before, "after": c.after}
                        for c in plan.tag_changes],
        "moves": [dataclasses.asdict(m) for m in plan.moves],
        "sends": [
            {"key": s.key, "flow": s.flow, "step": s.step + 1, "template": s.template,
             "channel": s.channel, "kind": s.kind, "due_at": s.due_at.isoformat(),
             "idempotency_key": s.idem_key,
             "result": status.get(id(s), "would send" if not result.executed else "")}
            for s in plan.sends
        ],
        "held": [{"key": h.send.key, "flow": h.send.flow, "step": h.send.step + 1,
                  "template": h.send.template, "reason": h.reason, "skip": h.skip}
                 for h in plan.held],
        "errors": [dataclasses.asdict(e) for e in plan.errors],
        "writes": [u.__dict__ for u in result.updates],
        "recovered": result.recovered,
    }


