"""The report as one self-contained HTML file: readable offline, on a phone, in Korean.

No script, no font, no stylesheet or image from anywhere: the styles are inline, the
charts inline SVG (``svg.py``) drawn in the browser's own fonts, and a Content
Security Policy forbids every fetch, so opening the file never makes a request even
if a name in it (a flow, a variant) looked like a URL. Every value is escaped. The
page is one column that fits a 360-pixel screen and caps its width on a desktop;
each chart has the same numbers beside it as text.
"""

from __future__ import annotations

import re
from datetime import date, tzinfo
from html import escape
from pathlib import Path

from sheetcrm.app.report import svg
from sheetcrm.app.report.model import RELIABLE, FlowReport, Report
from sheetcrm.app.report.sentences import (
    ab_sentence,
    lift_sentence,
    sizes_sentence,
    warning_sentence,
)
from sheetcrm.app.report.words import Words
from sheetcrm.fsutil import atomic_write
from sheetcrm.stats import Interval

#: Days to conversion are shown one column a day up to this, then one for the rest.
DAYS_SHOWN = 14
_STEP = re.compile(r"^step (\d+)(?:: (.*))?$")
_OUTCOMES = ("converted", "replied", "left", "finished", "failed", "active")

STYLE = """
:root { color-scheme: light; }
body { margin: 0; background: #f3f4f6; color: #1f2937;
  font: 16px/1.5 system-ui, -apple-system, "Apple SD Gothic Neo", "Noto Sans KR",
  "Malgun Gothic", sans-serif; word-break: keep-all; overflow-wrap: anywhere; }
main { max-width: 44rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: .5rem 0 0; }
h2 { font-size: 1.25rem; margin: 0 0 .5rem; }
h3 { font-size: 1rem; margin: 1.25rem 0 .25rem; }
section { background: #fff; border-radius: .75rem; padding: 1rem; margin: 1rem 0;
  box-shadow: 0 1px 2px rgba(0,0,0,.06); }
figure { margin: .5rem 0; }
figcaption { font-size: .875rem; color: #6b7280; }
svg { display: block; width: 100%; max-width: 30rem; height: auto; }
.meta, .note { color: #6b7280; font-size: .875rem; }
.verdict { font-weight: 600; }
.warning { background: #fef3c7; border-radius: .5rem; padding: .5rem .75rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .875rem; width: 100%; }
th, td { text-align: right; padding: .25rem .4rem; border-bottom: 1px solid #e5e7eb;
  white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
"""


def render_html(report: Report, words: Words, tz: tzinfo) -> str:
    """The whole page."""
    scope = [words("scope_since", since=f"{report.since.astimezone(tz):%Y-%m-%d}")
             if report.since else words("scope_all")]
    if report.flow:
        scope.append(words("scope_flow", flow=report.flow))
    when = f"{report.generated_at.astimezone(tz):%Y-%m-%d %H:%M}"
    parts = [f"<header><h1>{escape(words('title'))}</h1>"
             f"<p class=\"meta\">{escape(words('as_of', when=when))} · "
             f"{escape(' · '.join(scope))}</p></header>"]
    if not report.flows:
        parts.append(f"<section><p>{escape(words('nothing'))}</p></section>")
    parts += [_flow(words, f, report.value_field or "") for f in report.flows]
    parts.append(_daily(words, report))
    parts.append(_held(words, report))
    parts.append(f"<p class=\"note\">{escape(words('methods'))}</p>")
    return ("<!doctype html>\n"
            f"<html lang=\"{words.language}\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "style-src 'unsafe-inline'\">"
            f"<title>{escape(words('title'))}</title><style>{STYLE}</style></head>"
            f"<body><main>{''.join(parts)}</main></body></html>\n")


def write_html(report: Report, path: Path, words: Words, tz: tzinfo) -> None:
    """Write the page to ``path`` (whole or not at all), readable by others."""
    atomic_write(path, render_html(report, words, tz).encode("utf-8"), mode=0o644)


def step_label(words: Words, label: str) -> str:
    """``step 2: reviews`` in the report's language (``2단계: reviews``)."""
    m = _STEP.match(label)
    if not m:
        return label
    shown = words("step_sent", n=m[1]).removesuffix(" sent").removesuffix(" 발송")
    return f"{shown}: {m[2]}" if m[2] else shown


def _figure(kind: str, caption: str, chart: str) -> str:
    shown = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f"<figure data-chart=\"{kind}\">{chart}{shown}</figure>"


def _table(head: list[str], rows: list[list[str]]) -> str:
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<div class=\"scroll\"><table><tr>{cells}</tr>{body}</table></div>"


def _p(text: str, css: str = "") -> str:
    return f"<p class=\"{css}\">{escape(text)}</p>" if css else f"<p>{escape(text)}</p>"


def _rate(words: Words, interval: Interval | None) -> str:
    if interval is None:
        return "–"
    low, high = words.pct(interval.low), words.pct(interval.high)
    return f"{words.pct(interval.estimate)} ({low} ~ {high})"


def _flow(words: Words, f: FlowReport, value_field: str) -> str:
    heading = escape(words("flow", flow=f.flow))
    parts = [f"<section data-flow=\"{escape(f.flow)}\"><h2>{heading}</h2>"]
    parts += [_p(warning_sentence(words, f, w), "warning") for w in f.warnings]
    parts.append(_funnel(words, f))
    if not f.has_goal:
        parts.append(_p(words("no_goal"), "note"))
    else:
        parts.append(_time(words, f))
    if f.has_goal and f.treated.entered and (f.holdout.entered or f.holdout_share):
        parts.append(_lift(words, f))
    for test in f.ab_tests if f.has_goal else []:
        rows = [svg.Whisker(name, g.interval, f"{_rate(words, g.interval)} · "
                            + words("of_converted", customers=g.entered, converted=g.converted))
                for name, g in test.variants.items()]
        title = words("ab", step=test.step)
        parts.append(f"<h3>{escape(title)}</h3>")
        parts.append(_figure("ab", "", svg.intervals(rows, title)))
        parts.append(_p(ab_sentence(words, test), "verdict"))
    parts.append(_heard(words, f))
    parts.append(_deliveries(words, f))
    if f.revenue is not None:
        parts.append(_revenue(words, f, value_field))
    parts.append("</section>")
    return "".join(parts)


def _funnel(words: Words, f: FlowReport) -> str:
    entered = f.treated.entered

    def bar(label: str, n: int) -> svg.Bar:
        share = f" ({words.pct(n / entered)})" if entered else ""
        return svg.Bar(label, n, words("customers", n=n) + share)

    rows = [bar(words("entered"), entered)]
    rows += [bar(words("step_sent", n=i + 1), n) for i, n in enumerate(f.reached)]
    rows += [bar(words(status), f.outcomes.get(status, 0)) for status in _OUTCOMES
             if (status == "converted" and f.has_goal) or f.outcomes.get(status)]
    title = words("funnel")
    colors = ["#2563eb"] * (1 + len(f.reached)) + ["#10b981", "#8b5cf6", "#f59e0b",
                                                   "#64748b", "#ef4444", "#0ea5e9"]
    return (f"<h3>{escape(title)}</h3>"
            + _figure("funnel", "", svg.bars(rows, title, colors=colors, maximum=entered)))


def _time(words: Words, f: FlowReport) -> str:
    title = words("time_to_convert")
    if not f.days_to_convert:
        return f"<h3>{escape(title)}</h3>" + _p(words("no_conversion"), "note")
    counts = [0] * (DAYS_SHOWN + 1)
    for days in f.days_to_convert:
        counts[min(int(days), DAYS_SHOWN)] += 1
    labels = [words("days", n=i) for i in range(DAYS_SHOWN)] + [words("days_more", n=DAYS_SHOWN)]
    median = f.median_days_to_convert or 0.0
    caption = words("median_days", days=f"{median:.1f}", n=len(f.days_to_convert))
    chart = svg.columns(labels, {"converted": counts}, title, {"converted": words("converted")})
    return f"<h3>{escape(title)}</h3>" + _figure("time", caption, chart)


def _lift(words: Words, f: FlowReport) -> str:
    title = words("lift")
    rows = [svg.Whisker(words("messaged"), f.treated.interval, _rate(words, f.treated.interval)),
            svg.Whisker(words("holdout"), f.holdout.interval, _rate(words, f.holdout.interval))]
    diff = f.lift_interval
    parts = [f"<h3>{escape(title)}</h3>", _figure("lift", "", svg.intervals(rows, title))]
    if diff is not None:
        shown = (f"{words.points(diff.estimate)} ({words.points(diff.low)} ~ "
                 f"{words.points(diff.high)})")
        chart = svg.intervals([svg.Whisker(words("difference"), diff, shown)], title,
                              difference=True)
        parts.append(_figure("lift", words("difference"), chart))
    parts.append(_p(lift_sentence(words, f), "verdict"))
    parts.append(_p(sizes_sentence(words, f), "note"))
    return "".join(parts)


def _heard(words: Words, f: FlowReport) -> str:
    if not f.steps:
        return ""
    title = words("heard")
    names = {"clicked": words("clicked"), "replied": words("replied_count"),
             "opted_out": words("opted_out"), "bounced": words("bounced")}
    bars, rows, opens = [], [], []
    for label, e in f.steps.items():
        step = step_label(words, label)
        row = [step, str(e.sent)]
        for name in RELIABLE:
            interval = e.interval(name)
            bars.append(svg.Bar(f"{step} · {names[name]}", interval.estimate if interval else 0,
                                f"{getattr(e, name)} ({words.pct(interval.estimate)})"
                                if interval else "–"))
            row.append(_share(words, getattr(e, name), interval))
        rows.append([*row, str(e.automatic)])
        opens.append([step, str(e.sent), str(e.opened)])
    top = max((b.value for b in bars), default=0.0)
    chart = (_figure("heard", "", svg.bars(bars, title, colors=svg.PALETTE[:4], maximum=top))
             if top else _p(words("nothing_heard"), "note"))
    parts = [f"<h3>{escape(title)}</h3>", chart,
             _table([words("step"), words("sent"), *names.values(), words("automatic")], rows)]
    if any(e.opened for e in f.steps.values()):
        parts += [f"<h3>{escape(words('opens'))}</h3>", _p(words("opens_note"), "warning"),
                  _table([words("step"), words("sent"), words("opened")], opens)]
    return "".join(parts)


def _deliveries(words: Words, f: FlowReport) -> str:
    """Text messages per step: delivered, not delivered, no final report yet."""
    if not f.deliveries:
        return ""
    rows = [[step_label(words, label), str(d.delivered), str(d.failed), str(d.awaiting)]
            for label, d in f.deliveries.items()]
    return (f"<h3>{escape(words('deliveries'))}</h3>"
            + _table([words("step"), words("delivered"), words("not_delivered"),
                      words("awaiting_report")], rows))


def _share(words: Words, count: int, interval: Interval | None) -> str:
    """``1 (25%; 5~70%)``: a count, its share of the messages and the share's interval."""
    if not count or interval is None:
        return str(count)
    low, high = words.pct(interval.low), words.pct(interval.high)
    return f"{count} ({words.pct(interval.estimate)}; {low}~{high})"


def _revenue(words: Words, f: FlowReport, value_field: str) -> str:
    r = f.revenue
    assert r is not None
    per = r.as_dict(f)
    rows = [[words("revenue_converted"), words.money(r.converted_total)],
            [words("revenue_per_messaged"), words.money(per["per_messaged_customer"])]]
    if f.holdout.entered:
        rows.append([words("revenue_per_holdout"), words.money(per["per_holdout_customer"])])
    return (f"<h3>{escape(words('revenue', field=value_field))}</h3>"
            + _table(["", ""], rows) + _p(words("revenue_note"), "note"))


def _days(days: list[date]) -> list[str]:
    return [f"{d:%m-%d}" for d in days]


def _daily(words: Words, report: Report) -> str:
    title = words("daily")
    if not report.daily:
        return f"<section><h2>{escape(title)}</h2>{_p(words('no_chart_data'), 'note')}</section>"
    days = _span(list(report.daily))
    keys = sorted({k for v in report.daily.values() for k in v})
    series = {k: [report.daily.get(d, {}).get(k, 0) for d in days] for k in keys}
    names = {}
    for k in keys:
        channel, _, kind = k.partition(" · ")
        known = f"kind.{kind}" in words.catalog
        names[k] = f"{channel} · {words(f'kind.{kind}') if known else kind}"
    chart = svg.columns(_days(days), series, title, names)
    total = sum(sum(v) for v in series.values())
    return (f"<section><h2>{escape(title)}</h2>"
            + _figure("daily", f"{words('sent')} {total}", chart) + "</section>")


def _held(words: Words, report: Report) -> str:
    title = words("held")
    note = words("held_note_flow") if report.flow else words("held_note")
    if not report.held:
        return (f"<section><h2>{escape(title)}</h2>{_p(words('no_chart_data'), 'note')}"
                "</section>")
    days = _span(list(report.held))
    keys = sorted({k for v in report.held.values() for k in v})
    series = {k: [report.held.get(d, {}).get(k, 0) for d in days] for k in keys}
    names = {k: words(f"held.{k}") for k in keys}
    chart = svg.columns(_days(days), series, title, names)
    return (f"<section><h2>{escape(title)}</h2>" + _figure("held", note, chart)
            + "</section>")


def _span(days: list[date]) -> list[date]:
    """Every day from the first to the last (days without activity show as gaps)."""
    first, last = min(days), max(days)
    return [date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1)]
