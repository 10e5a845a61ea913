"""The report's summary as a tab of the operator's own Google spreadsheet.

An operator who lives in Sheets sees the numbers there: the same rates, intervals and
verdicts as the HTML file, as rows of text and numbers, rewritten whole by each
``report --to-sheet`` in one request (``GoogleSheetsTable.write_tab``). Counts are
numbers (sums and charts in the sheet work on them); rates and intervals are text as
the report writes them (``12.5%``), since a number format would need a second kind of
request. Other backends have no tabs: the command refuses before any work.
"""

from __future__ import annotations

from sheetcrm.app.report.html import step_label
from sheetcrm.app.report.model import RELIABLE, Group, Report
from sheetcrm.app.report.sentences import ab_sentence, lift_sentence, warning_sentence
from sheetcrm.app.report.words import Words
from sheetcrm.config import Config
from sheetcrm.errors import ConfigError
from sheetcrm.i18n import _
from sheetcrm.stats import Interval
from sheetcrm.table import open_table

Cell = str | int | float


def _interval(words: Words, interval: Interval | None, points: bool = False) -> str:
    if interval is None:
        return ""
    show = words.points if points else words.pct
    return f"{show(interval.low)} ~ {show(interval.high)}"


def _group(words: Words, flow: str, label: str, g: Group, verdict: str = "") -> list[Cell]:
    return [flow, label, g.entered, g.converted, words.pct(g.rate),
            _interval(words, g.interval), verdict]


def summary_rows(report: Report, words: Words, when: str) -> list[list[Cell]]:
    """The tab's rows: a title, the conversion table with verdicts, what came back."""
    rows: list[list[Cell]] = [[words("title"), words("as_of", when=when)]]
    scope: list[Cell] = [words("scope_since", since=f"{report.since:%Y-%m-%d}")
                         if report.since else words("scope_all")]
    if report.flow:
        scope.append(words("scope_flow", flow=report.flow))
    rows.append(scope)
    rows.append([])
    rows.append([words(f"col.{name}") for name in ("flow", "group", "customers", "converted",
                                                    "rate", "interval", "verdict")])
    for f in report.flows:
        if not f.has_goal:
            rows.append([f.flow, words("messaged"), f.treated.entered, "", "", "",
                         words("no_goal")])
            continue
        rows.append(_group(words, f.flow, words("messaged"), f.treated))
        if f.holdout.entered or f.holdout_share:
            rows.append(_group(words, f.flow, words("holdout"), f.holdout))
            rows.append([f.flow, words("difference"), "", "", words.points(f.lift),
                         _interval(words, f.lift_interval, points=True),
                         lift_sentence(words, f)])
        for test in f.ab_tests:
            verdict = ab_sentence(words, test)
            for name, g in test.variants.items():
                rows.append(_group(words, f.flow, f"{words('ab', step=test.step)}: {name}", g,
                                   verdict))
                verdict = ""
        rows += [[f.flow, "", "", "", "", "", warning_sentence(words, f, w)]
                 for w in f.warnings]
    steps = [(f.flow, label, e) for f in report.flows for label, e in f.steps.items()]
    if steps:
        rows += [[], [words("heard")],
                 [words("col.flow"), words("step"), words("sent"),
                  words("clicked"), words("replied_count"), words("opted_out"),
                  words("bounced")]]
        for flow, label, e in steps:
            rows.append([flow, step_label(words, label), e.sent,
                         *(getattr(e, name) for name in RELIABLE)])
    deliveries = [(f.flow, label, d) for f in report.flows for label, d in f.deliveries.items()]
    if deliveries:
        rows += [[], [words("deliveries")],
                 [words("col.flow"), words("step"), words("delivered"), words("not_delivered"),
                  words("awaiting_report")]]
        rows += [[flow, step_label(words, label), d.delivered, d.failed, d.awaiting]
                 for flow, label, d in deliveries]
    rows += [[], [words("methods")]]
    return rows


def write_to_sheet(config: Config, report: Report, words: Words) -> None:
    """Write the summary into the ``tab`` of the config's Google spreadsheet."""
    table = open_table(config)
    write_tab = getattr(table, "write_tab", None)
    if write_tab is None:
        raise ConfigError(_("report --to-sheet needs a Google spreadsheet; [table] backend is "
                            "{backend}", backend=repr(config.table.backend)),
                          path="table.backend")
    when = f"{report.generated_at.astimezone(config.tz):%Y-%m-%d %H:%M}"
    write_tab(words("tab"), summary_rows(report, words, when))
