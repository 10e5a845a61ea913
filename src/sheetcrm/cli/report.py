"""``sheetcrm report``: the terminal tables, ``--json``, and the flags that write the
HTML file (``--html``) and the Google Sheets tab (``--to-sheet``).

The numbers come from one ``Report`` (``app.report``); this module only formats them,
in the language every command speaks in the terminal (the report's own words, from
``app.report.words``, in that language too), and parses the filters. What it uses of
``app.report`` and of the table layout is imported when the command runs.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sheetcrm.cli.base import State, cli, print_json
from sheetcrm.errors import ConfigError
from sheetcrm.i18n import N_, _, current_language

if TYPE_CHECKING:
    from sheetcrm.app.report import FlowReport, Report
    from sheetcrm.app.report.words import Words
    from sheetcrm.stats import Interval

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@cli.command(name="report", help=N_(
    "Conversion per flow and A/B variant with 95% intervals and plain verdicts, the lift "
    "over the holdout, the funnel, clicks, replies, opt-outs and bounces per step and "
    "variant (opens apart: unreliable), messages and held-back sends per day."))
@click.option("--since", default=None, metavar="DATE|AGE",
              help=N_("Only customers who entered a flow since this date (2026-11-01) or "
                      "this long ago (30d); the charts over time start there too."))
@click.option("--flow", default=None, help=N_("Only this flow."))
@click.option("--html", "html_path", default=None, metavar="FILE", type=click.Path(),
              help=N_("Also write the report as one self-contained HTML file with charts."))
@click.option("--to-sheet", is_flag=True,
              help=N_("Also write the summary into a 'sheetcrm 리포트' tab of the Google "
                      "spreadsheet (backend gsheets), in one request."))
@click.pass_obj
def report_command(state: State, since: str | None, flow: str | None, html_path: str | None,
                   to_sheet: bool) -> None:
    from sheetcrm.app.report import Scope, flows_in_force, read_report
    from sheetcrm.app.report.html import write_html
    from sheetcrm.app.report.sheet import write_to_sheet
    from sheetcrm.app.report.words import Words

    config = state.config()
    now = state.now(config)
    scope = Scope(since=_since(since, now, config.tz), flow=flow)
    if flow is not None:
        flows = flows_in_force(config)
        if flow not in flows:
            raise click.BadParameter(_("{flow} is not a flow of the config; its flows are "
                                       "{flows}", flow=repr(flow),
                                       flows=", ".join(flows) or _("none")),
                                     param_hint="--flow")
    if to_sheet and config.table.backend != "gsheets":
        raise ConfigError(
            _("report --to-sheet writes a tab of a Google spreadsheet, and the backend is "
              "{backend}; use report --html FILE for a report file instead",
              backend=repr(config.table.backend)),
            path="table.backend")
    report = read_report(config, now, scope)
    language = config.model.report.language
    if html_path is not None:
        write_html(report, Path(html_path), Words(language), config.tz)
    if to_sheet:
        write_to_sheet(config, report, Words(language))
    if state.as_json:
        print_json(state, report.as_dict())
        return
    _print(state, report)
    if html_path is not None:
        state.out.print(_("report written to {path}", path=html_path))
    if to_sheet:
        state.out.print(_("summary written to the {tab} tab", tab=repr(Words(language)("tab"))))


def _since(text: str | None, now: datetime, tz: object) -> datetime | None:
    from sheetcrm.config import parse_duration

    if text is None:
        return None
    text = text.strip()
    if _DATE.fullmatch(text):
        try:
            return datetime.fromisoformat(text).replace(tzinfo=tz)  # type: ignore[arg-type]
        except ValueError:
            pass
    else:
        try:
            return now - parse_duration(text)
        except ValueError:
            pass
    raise click.BadParameter(_("{value} is neither a date like 2026-11-01 nor an age like "
                               "30d or 2w", value=repr(text)), param_hint="--since")


def _interval(words: Words, interval: Interval | None, points: bool = False) -> str:
    if interval is None:
        return ""
    show = words.points if points else words.pct
    return _("{low} to {high}", low=show(interval.low), high=show(interval.high))


def _print(state: State, report: Report) -> None:
    from sheetcrm.app.report.words import Words
    from sheetcrm.cli.layout import Col, Kind, table

    words, out = Words(current_language()), state.out
    if not report.flows:
        out.print(words("nothing"))
        return
    rows = []
    for r in report.flows:
        if not r.has_goal:
            rows.append((r.flow, _("messaged"), str(r.treated.entered), _("no goal"), "", ""))
            continue
        groups = [(_("messaged"), r.treated), (_("holdout"), r.holdout), *r.variants.items()]
        for label, g in groups:
            if g.entered:
                rows.append((r.flow, label, str(g.entered), str(g.converted),
                             f"{g.rate:.1%}" if g.rate is not None else "",
                             _interval(words, g.interval)))
        if r.lift is not None:
            rows.append((r.flow, _("lift over holdout"), "", "", words.points(r.lift),
                         _interval(words, r.lift_interval, points=True)))
    number = Kind.NUMBER
    out.print(table(out, _("conversion"), [
        Col(_("flow")), Col(_("group"), Kind.TEXT, least=10), Col(_("customers"), number),
        Col(_("converted"), number), Col(_("rate"), number),
        Col(_("95% interval"), Kind.TEXT, least=10),
    ], rows, wide=state.wide))
    for r in report.flows:
        _verdicts(state, words, r)
    _engagement_tables(state, report.flows)
    out.print(words("methods"), style="dim")


def _verdicts(state: State, words: Words, r: FlowReport) -> None:
    from sheetcrm.app.report.sentences import (
        ab_sentence,
        lift_sentence,
        sizes_sentence,
        warning_sentence,
    )
    from sheetcrm.cli.layout import indented

    out = state.out
    lines: list[tuple[str, str | None]] = []
    if r.has_goal and r.treated.entered and (r.holdout.entered or r.holdout_share):
        lines.append((_("lift: {lift}; {sizes}", lift=lift_sentence(words, r),
                        sizes=sizes_sentence(words, r)), None))
    for test in r.ab_tests:
        lines.append((_("A/B step {step}: {verdict}", step=test.step,
                        verdict=ab_sentence(words, test)), None))
    for warning in r.warnings:
        lines.append((_("warning: {warning}", warning=warning_sentence(words, r, warning)),
                      "yellow"))
    if r.days_to_convert:
        median = r.median_days_to_convert or 0.0
        lines.append((f"{words('time_to_convert')}: "
                      f"{words('median_days', days=f'{median:.1f}', n=len(r.days_to_convert))}",
                      None))
    if r.revenue is not None:
        lines.append((_("revenue: {converted} {total} ({n} customers)",
                        converted=words("revenue_converted"),
                        total=words.money(r.revenue.converted_total),
                        n=r.revenue.converted_with_value), None))
    if lines:
        out.print(r.flow, style="bold")
        for line, style in lines:
            indented(out, line, style=style)


def _engagement_tables(state: State, reports: list[FlowReport]) -> None:
    """What each step's messages heard back; opens in a table of their own."""
    from sheetcrm.app.report import RELIABLE
    from sheetcrm.app.report.words import Words
    from sheetcrm.cli.layout import Col, Kind, table

    words, out, wide = Words(current_language()), state.out, state.wide
    steps = [(r.flow, label, e) for r in reports for label, e in r.steps.items()]
    if not steps:
        return
    number = Kind.NUMBER
    out.print(table(out, words("heard"), [
        Col(_("flow")), Col(_("step"), Kind.TEXT, least=8), Col(_("sent"), number),
        Col(_("clicked"), number), Col(_("replied"), number), Col(_("opted out"), number),
        Col(_("bounced"), number),
        Col(_("automatic hits (not counted)"), number, wide=True),
    ], [(flow, label, str(e.sent),
         *(_share(getattr(e, name), e.sent, e.interval(name)) for name in RELIABLE),
         str(e.automatic)) for flow, label, e in steps], wide=wide))
    if any(e.opened for _flow, _label, e in steps):
        out.print(table(out, words("opens"), [
            Col(_("flow")), Col(_("step"), Kind.TEXT, least=8), Col(_("sent"), number),
            Col(_("opened"), number),
        ], [(flow, label, str(e.sent), _share(e.opened, e.sent, None))
            for flow, label, e in steps], wide=wide))


def _share(count: int, of: int, interval: Interval | None) -> str:
    """``1 (25%)``, and under it the 95% interval of the share."""
    if not (count and of):
        return str(count)
    shown = f"{count} ({count / of:.0%})"
    if interval is not None:
        shown += f"\n{interval.low:.0%}–{interval.high:.0%}"
    return shown

