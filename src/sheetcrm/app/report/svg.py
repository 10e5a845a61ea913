"""The report's charts as inline SVG: drawn here, rendered by the reader's own browser.

Why SVG written by hand, and not a chart library: the report is one file that must
open offline, on a phone, years later, in Korean. Inline SVG needs no script, no
font file and no network; its ``<text>`` is real text in the browser's own fonts (so
Hangul renders with whatever Korean font the phone has, stays selectable and is read
out by screen readers), and a ``viewBox`` scales it to any width. A bundled
JavaScript library would add hundreds of kilobytes to every file for four kinds of
chart: horizontal bars (the funnel, what came back), intervals (conversion with its
95% interval, the lift), stacked columns per day (messages, held-back sends) and a
histogram (time to conversion). Each is a few dozen lines below.

Every function returns an ``<svg>`` element (text, escaped) with ``role="img"`` and an
``aria-label``; the page puts the same numbers in a table beside it. The drawing is
340 units wide, so on a phone's 360-pixel screen a 12-unit label stays about 11
pixels high, and on a desktop the page caps its width at 30rem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import NamedTuple

from sheetcrm.stats import Interval

WIDTH = 340
FONT = 12
PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#14b8a6", "#f97316",
           "#64748b", "#db2777", "#84cc16", "#0ea5e9", "#a16207", "#475569")
_INK, _MUTED, _GRID = "#1f2937", "#6b7280", "#e5e7eb"


class Bar(NamedTuple):
    label: str
    value: float
    shown: str  # the value as written beside the bar


class Whisker(NamedTuple):
    label: str
    interval: Interval | None
    shown: str  # estimate and interval as text


def _svg(height: float, label: str, body: list[str]) -> str:
    return (f'<svg viewBox="0 0 {WIDTH} {height:.0f}" width="100%" role="img" '
            f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg" '
            f'font-size="{FONT}" fill="{_INK}">' + "".join(body) + "</svg>")


def _text(x: float, y: float, text: str, *, anchor: str = "start", color: str = _INK,
          size: int = FONT, weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{color}" '
            f'font-size="{size}" font-weight="{weight}">{escape(text)}</text>')


def _rect(x: float, y: float, w: float, h: float, color: str, title: str = "") -> str:
    tip = f"<title>{escape(title)}</title>" if title else ""
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{h:.1f}" '
            f'fill="{color}" rx="2">{tip}</rect>')


def _line(x1: float, y1: float, x2: float, y2: float, color: str, width: float = 1,
          dash: str = "") -> str:
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return (f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'stroke="{color}" stroke-width="{width}"{dashed}/>')


def bars(rows: Sequence[Bar], label: str, *, colors: Sequence[str] = PALETTE[:1],
         maximum: float | None = None) -> str:
    """Horizontal bars, each with its label above and its value at its end (the funnel)."""
    top = max([maximum or 0.0, *(r.value for r in rows)]) or 1.0
    row, bar_h, room = 34, 14, WIDTH - 96
    body = []
    for i, r in enumerate(rows):
        y = i * row
        w = room * (r.value / top)
        body.append(_text(0, y + 12, r.label))
        body.append(_rect(0, y + 16, max(w, 1.5), bar_h, colors[i % len(colors)],
                          f"{r.label}: {r.shown}"))
        body.append(_text(w + 6, y + 27, r.shown, color=_MUTED))
    return _svg(len(rows) * row + 4, label, body)


def intervals(rows: Sequence[Whisker], label: str, *, difference: bool = False) -> str:
    """Each row's estimate as a dot on its 95% interval; rates on 0–100%, differences on
    a scale symmetric around zero (a dashed line: no difference)."""
    if difference:
        reach = max([0.1, *(abs(v) for r in rows if r.interval for v in r.interval[1:])])
        reach = min(1.0, -(-reach * 10 // 1) / 10)  # up to the next 10 points
        lo, hi = -reach, reach
    else:
        lo, hi = 0.0, 1.0
    row, left, right = 38, 8, WIDTH - 8

    def x(v: float) -> float:
        return left + (right - left) * (v - lo) / (hi - lo)

    body = []
    height = len(rows) * row + 22
    for tick in (lo, (lo + hi) / 2, hi) if difference else (0.0, 0.25, 0.5, 0.75, 1.0):
        body.append(_line(x(tick), 0, x(tick), height - 18, _GRID))
        shown = f"{tick * 100:+.0f}" if difference and tick else f"{tick * 100:.0f}"
        anchor = "start" if tick == lo else "end" if tick == hi else "middle"
        body.append(_text(x(tick), height - 4, shown + ("%p" if difference else "%"),
                          anchor=anchor, color=_MUTED, size=10))
    if difference:
        body.append(_line(x(0), 0, x(0), height - 18, _MUTED, 1, "4 3"))
    for i, r in enumerate(rows):
        y = i * row
        body.append(_text(left, y + 12, f"{r.label}  {r.shown}"))
        if r.interval is None:
            continue
        est, low, high = r.interval
        color = PALETTE[i % len(PALETTE)]
        cy = y + 25
        body.append(_line(x(low), cy, x(high), cy, color, 3))
        body.append(_line(x(low), cy - 5, x(low), cy + 5, color, 2))
        body.append(_line(x(high), cy - 5, x(high), cy + 5, color, 2))
        body.append(f'<circle cx="{x(est):.1f}" cy="{cy}" r="5" fill="{color}" '
                    f'stroke="#fff" stroke-width="1.5"><title>{escape(r.shown)}</title></circle>')
    return _svg(height, label, body)


def columns(days: Sequence[str], series: Mapping[str, Sequence[int]], label: str,
            names: Mapping[str, str]) -> str:
    """Stacked columns, one per day (``days`` as shown, ``MM-DD``), one colour per series
    (``names`` gives each its label in the legend)."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    top = float(max(totals, default=0) or 1)
    plot_top, plot_h, left = 10, 150, 28
    width = (WIDTH - left) / max(len(days), 1)
    body = [_line(left, plot_top + plot_h, WIDTH, plot_top + plot_h, _MUTED),
            _text(left - 4, plot_top + 8, f"{top:.0f}", anchor="end", color=_MUTED, size=10),
            _text(left - 4, plot_top + plot_h, "0", anchor="end", color=_MUTED, size=10)]
    for i, day in enumerate(days):
        y = float(plot_top + plot_h)
        for j, (key, values) in enumerate(series.items()):
            n = values[i]
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            body.append(_rect(left + i * width + 0.5, y, max(width - 1, 1), h,
                              PALETTE[j % len(PALETTE)], f"{day} {names.get(key, key)}: {n}"))
    if days:
        marks = sorted({0, len(days) // 2, len(days) - 1})
        for i in marks:
            anchor = "start" if i == 0 else "end" if i == len(days) - 1 and i else "middle"
            cx = left + i * width + (0 if anchor == "start" else width if anchor == "end"
                                     else width / 2)
            body.append(_text(cx, plot_top + plot_h + 14, days[i], anchor=anchor,
                              color=_MUTED, size=10))
    y = plot_top + plot_h + 24.0
    x = 0.0
    for j, key in enumerate(series):
        name = names.get(key, key)
        item = 18 + _width_of(name)
        if x + item > WIDTH:
            x, y = 0.0, y + 18
        body.append(_rect(x, y + 2, 10, 10, PALETTE[j % len(PALETTE)]))
        body.append(_text(x + 14, y + 11, name, size=11))
        x += item + 10
    return _svg(y + 18, label, body)


def _width_of(text: str) -> float:
    """About how wide ``text`` is at 11 units: Hangul and other wide letters are a full
    em, Latin letters about half (room for the legend, not typesetting)."""
    return sum(11.0 if ord(c) > 0x2E80 else 6.2 for c in text)
