"""What the sheet shows: a human-readable projection of the ledger.

Computed fresh every run from the ledger and compared with the cells as read, so
only cells whose text changes are written, and a run that crashed before writing
is reconciled by the next one.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo

from .config import Config
from .ledger import SENT, UNCERTAIN, Enrollment, LedgerState
from .schema import Record
from .table.base import CellUpdate

EXIT_LABELS = {
    "finished": "완료",
    "converted": "전환(목표 달성)",
    "left": "종료(조건 해제)",
    "failed": "실패",
}
HOLDOUT_MARK = " (대조군)"
NEXT = "다음"

# "payment 1/3 · 다음 2026-11-25 10:00" or "payment 3/3 완료 2026-11-27 (대조군)"
_FLOW_PART = re.compile(
    r"^(?P<flow>[\w-]+) (?P<done>\d+)/(?P<n>\d+)"
    r"(?: · 다음 (?P<due>\d{4}-\d{2}-\d{2} \d{2}:\d{2})"
    r"| (?P<label>\S+) (?P<exited>\d{4}-\d{2}-\d{2}))"
    r"(?P<holdout> \(대조군\))?$"
)


def flow_text(e: Enrollment, config: Config) -> str:
    """``payment 1/3 · 다음 2026-11-26 09:00`` or ``payment 1/3 전환(목표 달성) 2026-11-25``."""
    tz = config.tz
    flow = config.flows.get(e.flow)
    n = len(flow.steps) if flow else 0
    mark = HOLDOUT_MARK if e.holdout else ""
    if e.status == "active" and flow is not None:
        due = (e.anchor_at or e.entered_at) + flow.steps[e.next_step].after
        return f"{e.flow} {e.next_step}/{n} · {NEXT} {_local(due, tz):%Y-%m-%d %H:%M}{mark}"
    label = EXIT_LABELS.get(e.status, e.status)
    when = f" {_local(e.exited_at, tz):%Y-%m-%d}" if e.exited_at else ""
    return f"{e.flow} {e.next_step}/{n} {label}{when}{mark}"


def enrollments_from_sheet(key: str, cell: str, config: Config) -> dict[str, Enrollment]:
    """What the flow column shows, as enrollments: how a fresh ledger avoids re-sending.

    A row showing ``payment 2/3 · 다음 …`` has had two steps sent; with an empty
    ledger (lost, or a new machine) those two are not sent again.
    """
    found: dict[str, Enrollment] = {}
    for part in cell.split(" | "):
        m = _FLOW_PART.match(part.strip())
        if not m or m["flow"] not in config.flows:
            continue
        flow = config.flows[m["flow"]]
        done = min(int(m["done"]), len(flow.steps))
        e = Enrollment(key=key, flow=m["flow"], entry=1, entered_at=datetime.min, anchor_at=None,
                       next_step=done, holdout=bool(m["holdout"]), via="sheet")
        if m["due"] and done < len(flow.steps):
            due = datetime.strptime(m["due"], "%Y-%m-%d %H:%M").replace(tzinfo=config.tz)
            e.entered_at = due - flow.steps[done].after
        else:
            status = {v: k for k, v in EXIT_LABELS.items()}.get(m["label"] or "", "finished")
            exited = datetime.strptime(m["exited"] or m["due"][:10], "%Y-%m-%d")
            e.status, e.exited_at = status, exited.replace(tzinfo=config.tz)
            e.entered_at, e.exit_reason = e.exited_at, "restored from the sheet"
        found[e.flow] = e
    return found


def last_sent_text(key: str, state: LedgerState, tz: tzinfo) -> str:
    sends = state.sends_by_key.get(key)
    if not sends:
        return ""
    delivered = [r for r in sends if r.status in (SENT, UNCERTAIN)]
    if not delivered:
        return ""
    last = max(delivered, key=lambda r: r.finished_at or r.created_at)
    when = _local(last.finished_at or last.created_at, tz)
    mark = "" if last.status == SENT else " (확인 필요)"
    return f"{when:%Y-%m-%d %H:%M} {last.template} ({last.channel}){mark}"


def project(records: list[Record], tags: dict[str, list[str]], state: LedgerState,
            config: Config) -> list[CellUpdate]:
    """Cell updates that bring every owned column in line with the ledger."""
    wb = config.writeback
    flow_order = list(config.flows)
    # Most rows share a few flow states (entered in the same run): format each once.
    texts: dict[tuple[object, ...], str] = {}

    def text_of(e: Enrollment) -> str:
        memo_key = (e.flow, e.status, e.next_step, e.entered_at, e.anchor_at, e.exited_at,
                    e.holdout)
        text = texts.get(memo_key)
        if text is None:
            text = texts[memo_key] = flow_text(e, config)
        return text

    updates: list[CellUpdate] = []
    for rec in records:
        wanted: dict[str, str] = {}
        if wb.tags and rec.key in tags:
            wanted[wb.tags] = ", ".join(tags[rec.key])
        if wb.flow:
            parts = [
                text_of(e)
                for name in flow_order
                if (e := state.enrollments.get((rec.key, name))) is not None
            ]
            wanted[wb.flow] = " | ".join(parts)
        if wb.last_sent:
            wanted[wb.last_sent] = last_sent_text(rec.key, state, config.tz)
        if wb.error:
            wanted[wb.error] = "; ".join(rec.errors)
        for column, text in wanted.items():
            if rec.current.get(column, "") != text:
                updates.append(CellUpdate(rec.key, column, text))
    return updates


def _local(dt: datetime | None, tz: tzinfo) -> datetime:
    assert dt is not None
    return dt.astimezone(tz)
