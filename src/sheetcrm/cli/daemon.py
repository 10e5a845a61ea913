"""The daemon's commands: ``run`` and ``status``.

Both are thin: ``run`` builds a ``daemon.service.Daemon`` from the options and
serves; ``status`` formats ``app.status.status_report`` (read-only: the ledger is
opened read-only and no file is created).
"""

from __future__ import annotations

import json
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from sheetcrm.cli.base import State, cli
from sheetcrm.cli.layout import Col, Kind, labelled, table, word
from sheetcrm.cli.tools import print_test_sends
from sheetcrm.errors import ConfigError, ExitStatus
from sheetcrm.i18n import N_, _

if TYPE_CHECKING:  # the daemon and the use cases are imported when their command runs
    from sheetcrm.app.schedule import Schedule


@cli.command(help=N_("Sync on a schedule until stopped (the daemon; SIGTERM finishes the "
                     "current run)."))
@click.option("--every", metavar="DURATION",
              help=N_("Sync every DURATION (30s, 5m, 1h); overrides [schedule] every."))
@click.option("--cron", metavar="EXPR",
              help=N_('Sync on a crontab expression ("*/5 * * * *") in the config time '
                      'zone.'))
@click.option("--every-seconds", type=float, hidden=True,
              help="Tests: an interval in (fractional) seconds.")
@click.option("--heartbeat", type=click.Path(dir_okay=False, path_type=Path),
              help=N_("Touch this file after each successful run."))
@click.option("--health-port", type=click.IntRange(0, 65535),
              help=N_("Answer GET /health on 127.0.0.1:PORT (0 = any free port, logged)."))
@click.pass_obj
def run(state: State, every: str | None, cron: str | None, every_seconds: float | None,
        heartbeat: Path | None, health_port: int | None) -> ExitStatus:
    from sheetcrm.app.collector import long_running
    from sheetcrm.daemon.logs import setup_logging
    from sheetcrm.daemon.service import Daemon, DaemonOptions

    long_running()  # the daemon collects and freezes what stays alive itself
    config = state.config()
    schedule = _schedule_option(every, cron, every_seconds)
    options = DaemonOptions(
        config_path=Path(state.config_path).absolute(),
        schedule=schedule,
        heartbeat=heartbeat.absolute() if heartbeat else None,
        health_port=health_port,
        start_at=state.now(config) if state.now_text else None,
    )
    daemon = Daemon(options, config=config)
    setup_logging(lambda: daemon.redactor)
    return ExitStatus(daemon.run_forever())


def _schedule_option(every: str | None, cron: str | None,
                     seconds: float | None) -> Schedule | None:
    """The schedule given on the command line, if any (it wins over the config)."""
    from sheetcrm.app.schedule import Schedule

    given = [name for name, v in (("--every", every), ("--cron", cron),
                                  ("--every-seconds", seconds)) if v is not None]
    if len(given) > 1:
        raise click.UsageError(_("use only one of {options}", options=", ".join(given)))
    if not given:
        return None
    try:
        return Schedule.parse(every, cron, seconds, where="option")
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint=given[0]) from None


@cli.command(help=N_("Show the daemon, last runs, next run, sends needing attention and row "
                     "errors."))
@click.option("--runs", default=5, show_default=True, type=click.IntRange(1, 100),
              help=N_("How many recent runs to list."))
@click.pass_obj
def status(state: State, runs: int) -> None:
    from sheetcrm.app.status import status_report

    config = state.config()
    report = status_report(config, state.now(config), runs=runs)
    if state.as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2, default=str))
        return
    _print_status(state.out, report, config.tz, state.wide)


def _print_status(out: Console, report: dict[str, Any], tz: tzinfo, wide: bool) -> None:
    daemon = report["daemon"]
    state = word(daemon["state"])
    line = (_("{state}, pid {pid} · {schedule}", state=state, pid=daemon["pid"],
              schedule=report["schedule"]) if daemon.get("pid") else
            _("{state} · {schedule}", state=state, schedule=report["schedule"]))
    labelled(out, _("daemon"), line, style="bold")
    if daemon.get("consecutive_failures"):
        labelled(out, "", _("{failures} failed run(s) in a row; skipping {ticks} tick(s)",
                            failures=daemon["consecutive_failures"],
                            ticks=daemon.get("backoff_ticks", 0)), style="red")
    labelled(out, _("next run"), _when(report["next_run_at"], tz), style="bold")
    stall = report.get("stalled")
    if stall:
        values = dict(since=_when(stall["since"], tz), duration=stall["for"],
                      runs=stall["runs"], status=word(stall["status"]))
        labelled(out, _("sending"), _(
            "stalled since {since} (for {duration}, {runs} runs): {status}", **values)
            if stall["runs"] > 1 else _("stalled since {since} (for {duration}): {status}",
                                         **values), style="bold red")
        labelled(out, "", stall["reason"], style="red")
    elif report["last_runs"]:
        labelled(out, _("sending"), word("ok"), style="bold")
    _print_alerts(out, report["alerts"], tz)
    _print_rules(out, report.get("rules"), tz)
    _print_runs(out, report["last_runs"], tz, wide)
    _print_sends(out, report["sends"], tz, wide)
    _print_events(out, report["events"], tz)
    _print_deliveries(out, report.get("deliveries"), tz, wide)
    print_test_sends(out, report.get("test_sends"), tz)
    _print_row_errors(out, report["row_errors"], tz, wide)


def _print_alerts(out: Console, incidents: list[dict[str, Any]], tz: tzinfo) -> None:
    """The incidents [alerts] told (or could not tell) the operator about."""
    for i in incidents:
        state = (_("ended {when}, the end not yet told", when=_when(i["ended_at"], tz))
                 if i["ended_at"] else _("since {when}, told to {n} URL(s)",
                                         when=_when(i["since"], tz), n=i["told"]))
        labelled(out, _("alerts") if i is incidents[0] else "", f"{i['incident']}: {state}",
                 style="bold")
        if i["not_delivered"]:
            labelled(out, "", _("not delivered: {why}; tried again at the next run",
                                why=i["not_delivered"]), style="red")


def _print_rules(out: Console, rules: dict[str, Any] | None, tz: tzinfo) -> None:
    """The rule set in force, and an edit of the rule tabs that waits."""
    if not rules:
        return
    counts = _("{tags} tags, {flows} flows, {templates} templates", tags=len(rules["tags"]),
               flows=len(rules["flows"]), templates=len(rules["templates"]))
    where = (_("kept in the tabs {tabs}", tabs=", ".join(rules["tabs"].values()))
             if rules["tabs"] else _("kept in config.toml"))
    labelled(out, _("rules"), _("{hash} since {when} · {counts}, {where}",
                                hash=rules["in_force"], when=_when(rules["accepted_at"], tz),
                                counts=counts, where=where), style="bold")
    labelled(out, "", _("flows: {flows}", flows=", ".join(rules["flows"]) or _("none")))
    pending = rules.get("pending")
    if pending:
        labelled(out, "", _("the edit {hash} waits since {when}: it would newly message "
                            "{count} customers; confirm it in a 상태 cell or with sync "
                            "--allow-blast", hash=pending["hash"],
                            when=_when(pending["since"], tz), count=pending["newly"]),
                 style="yellow")


def _print_runs(out: Console, runs: list[dict[str, Any]], tz: tzinfo, wide: bool) -> None:
    if not runs:
        out.print(_("no runs yet"))
        return
    rows = []
    for r in runs:
        s = r.get("summary") or {}
        held = s.get("held") or {}
        status_text = (word(r["status"]) if r["status"] != "failed"
                       else _("failed: {error}", error=s.get("error", "")))
        rows.append((str(r["id"]), _when(r["started_at"], tz, short=True), status_text,
                     *(str(s.get(k, "")) for k in ("rows_read", "tags_changed", "sent",
                                                   "failed")),
                     str(sum(held.values())) if s else "", str(s.get("row_errors", "")),
                     str(s.get("seconds", "")),
                     ", ".join(_("{n} {reason}", n=n, reason=reason)
                               for reason, n in held.items())))
    number = Kind.NUMBER
    out.print(table(out, _("last runs"), [
        Col(_("run"), number), Col(_("started")), Col(_("status"), Kind.TEXT, least=12),
        Col(_("rows"), number), Col(_("tags"), number, wide=True), Col(_("sent"), number),
        Col(_("failed"), number), Col(_("held"), number), Col(_("row errors"), number),
        Col(_("secs"), number, wide=True),
        Col(_("held back, why"), Kind.TEXT, wide=True),
    ], rows, wide=wide))


def _print_sends(out: Console, sends: dict[str, Any], tz: tzinfo, wide: bool) -> None:
    counts = sends["counts"]
    total = sum(counts.values())
    line = ", ".join(_("{n} {reason}", n=n, reason=word(status))
                     for status, n in counts.items() if n) or _("none")
    out.print(_("sends needing attention: {counts}", counts=line), style="bold")
    if not total:
        return
    out.print(table(out, None, [
        Col(_("key"), Kind.KEY), Col(_("flow step")), Col(_("template"), wide=True),
        Col(_("status")), Col(_("when")), Col(_("detail"), Kind.TEXT),
    ], [(s["key"], f"{s['flow']} {s['step']}", s["template"], word(s["status"]),
         _when(s["finished_at"] or s["created_at"], tz, short=not wide), s["detail"] or "")
        for s in sends["items"]], wide=wide))


def _print_events(out: Console, events: dict[str, Any], tz: tzinfo) -> None:
    """One line per [events.NAME] webhook, and one per reason requests were turned away."""
    for name, stored in events["stored"].items():
        waiting = events["waiting"].get(name, 0)
        why = events["waiting_why"].get(name)
        line = (_("{name}: {stored} stored, {waiting} waiting to be written: {why}",
                  name=name, stored=stored, waiting=waiting, why=why) if waiting and why
                else _("{name}: {stored} stored, {waiting} waiting to be written", name=name,
                       stored=stored, waiting=waiting) if waiting
                else _("{name}: {stored} stored", name=name, stored=stored))
        labelled(out, _("events"), line, style="bold")
    refused = events["refused"]
    if refused:
        total = sum(r["count"] for r in refused)
        out.print(_("events refused or ignored: {n}", n=total), style="bold yellow")
        for r in refused:
            labelled(out, "", _("{name}: {count} × {status} {reason} (last {when})",
                                name=r["name"], count=r["count"], status=r["status"],
                                reason=r["reason"], when=_when(r["last_at"], tz)),
                     style="yellow")


def _print_deliveries(out: Console, deliveries: dict[str, Any] | None, tz: tzinfo,
                      wide: bool) -> None:
    """Text messages (AlimTalk, SMS): accepted, delivered or failed, as reported."""
    counts = (deliveries or {}).get("counts") or {}
    if not any(counts.values()):
        return
    line = ", ".join(_("{n} {reason}", n=n, reason=word(state))
                     for state, n in counts.items() if n)
    out.print(_("text message deliveries: {counts}", counts=line), style="bold")
    if deliveries and deliveries["failed"]:
        out.print(table(out, _("not delivered"), [
            Col(_("key"), Kind.KEY), Col(_("flow step")), Col(_("template"), wide=True),
            Col(_("when")), Col(_("reason"), Kind.TEXT),
        ], [(d["key"], f"{d['flow']} {d['step']}", d["template"],
             _when(d["delivered_at"], tz, short=not wide), d["reason"] or "")
            for d in deliveries["failed"]], wide=wide))


def _print_row_errors(out: Console, errors: dict[str, Any], tz: tzinfo, wide: bool) -> None:
    out.print(_("row errors in the last run: {n}", n=errors["count"]), style="bold")
    if errors["items"]:
        shown = len(errors["items"])
        values = dict(run=errors["run"], when=_when(errors["items_from"], tz), shown=shown)
        title = (_("run {run} ({when}), the first {shown}", **values)
                 if shown < errors["count"] else _("run {run} ({when})", **values))
        out.print(table(out, title, [
            Col(_("row"), Kind.NUMBER), Col(_("key"), Kind.KEY),
            Col(_("error"), Kind.TEXT, least=30),
        ], [(str(e.get("line", "")), str(e.get("key", "")), str(e.get("message", "")))
            for e in errors["items"]], wide=wide))


def _when(text: str | None, tz: tzinfo, *, short: bool = False) -> str:
    """An ISO timestamp in the config's time zone (short: for table cells)."""
    if not text:
        return "—"
    moment = datetime.fromisoformat(text).astimezone(tz)
    return f"{moment:%m-%d %H:%M}" if short else f"{moment:%Y-%m-%d %H:%M:%S %Z}"
