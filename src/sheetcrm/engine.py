"""The planner: ``(records, ledger state, now, config) -> Plan``. Pure: no I/O.

``plan`` prints the Plan; ``sync`` executes it. Both take the same path up to the
side effects. The planner evaluates tags, moves customers into and out of flows,
and lists the sends that are due and those held back, each with its reason.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from .config import Config, FlowSettings
from .expressions import ExpressionRuntimeError
from .ledger import ACTIVE, Enrollment, LedgerState
from .rules import FlowRules, RowContext, Rules
from .schema import Record, RowProblem, Table


def idempotency_key(key: str, flow: str, entry: int, step: int) -> str:
    """Unique per (row key, flow, entry, step); safe in file names and headers."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]
    return f"sc-{flow}-e{entry}-s{step + 1}-{digest}"


@dataclass
class PlannedSend:
    key: str
    flow: str
    step: int  # 0-based
    steps: int
    channel: str
    template: str
    kind: str
    due_at: datetime
    enrollment: Enrollment
    idem_key: str

    @property
    def label(self) -> str:
        return f"{self.flow} {self.step + 1}/{self.steps}"

    def advance(self, now: datetime) -> None:
        """Move the enrollment past this step (after a send, or a send given up)."""
        e = self.enrollment
        e.next_step = self.step + 1
        if e.next_step >= self.steps:
            e.status, e.exited_at, e.exit_reason = "finished", now, "last step sent"


@dataclass
class HeldSend:
    send: PlannedSend
    reason: str


@dataclass
class FlowMove:
    key: str
    flow: str
    action: str  # enter | converted | left | skip
    detail: str = ""


@dataclass
class TagChange:
    key: str
    before: list[str]
    after: list[str]


@dataclass
class RowError:
    line: int
    key: str
    message: str


@dataclass
class Plan:
    now: datetime
    rows_read: int
    records: list[Record]
    tags: dict[str, list[str]]  # key -> tags now (rows that evaluated cleanly)
    tag_changes: list[TagChange] = field(default_factory=list)
    moves: list[FlowMove] = field(default_factory=list)
    sends: list[PlannedSend] = field(default_factory=list)
    held: list[HeldSend] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    enrollments: list[Enrollment] = field(default_factory=list)  # new or changed, to save
    missing_writeback: list[str] = field(default_factory=list)
    evaluations: int = 0


def make_plan(table: Table, state: LedgerState, now: datetime, config: Config,
              rules: Rules) -> Plan:
    """Plan one run. ``state`` is not modified: changed enrollments are copies."""
    plan = Plan(now=now, rows_read=len(table.records) + len(table.problems),
                records=table.records, tags={}, missing_writeback=table.missing_writeback)
    for p in table.problems:
        plan.errors.append(_problem_error(p))
    ctx = RowContext(now, config.tz, state)
    for rec in table.records:
        if not rec.ok:
            plan.errors.extend(RowError(rec.line, rec.key, m) for m in rec.errors)
            continue
        ctx.key = rec.key
        ctx.tags = set()
        try:
            _plan_row(rec, ctx, plan, config, rules)
        except ExpressionRuntimeError as exc:
            rec.errors.append(f"rule {exc}")
            plan.errors.append(RowError(rec.line, rec.key, f"rule {exc}"))
            continue
        tags = [t for t, _ in rules.tags if t in ctx.tags]
        plan.tags[rec.key] = tags
        if config.writeback.tags:
            before_cell = rec.current.get(config.writeback.tags, "")
            before = [t.strip() for t in before_cell.split(",") if t.strip()]
            if before != tags:
                plan.tag_changes.append(TagChange(rec.key, before, tags))
    plan.errors.sort(key=lambda e: e.line)
    return plan


def _plan_row(rec: Record, ctx: RowContext, plan: Plan, config: Config, rules: Rules) -> None:
    values = rec.values
    for tag, expr in rules.tags:
        plan.evaluations += 1
        if expr(values, ctx):
            ctx.tags.add(tag)
    for name, flow_rules in rules.flows.items():
        _plan_flow(rec, ctx, plan, config, config.flows[name], flow_rules)


def _plan_flow(rec: Record, ctx: RowContext, plan: Plan, config: Config,
               flow: FlowSettings, fr: FlowRules) -> None:
    values, key, now = rec.values, rec.key, plan.now
    current = ctx.state.enrollments.get((key, fr.name))
    active = current is not None and current.status == ACTIVE
    if fr.trigger_tag is not None:
        triggered = fr.trigger_tag in ctx.tags
    else:
        plan.evaluations += 1
        triggered = bool(fr.trigger(values, ctx))
    if not active and (not triggered or current is not None):
        return  # not in the flow and not entering it (re-entry: never)
    converted = False
    if fr.goal is not None:
        plan.evaluations += 1
        converted = bool(fr.goal(values, ctx))

    if active:
        assert current is not None
        if converted or not triggered:
            e = current.clone()
            e.status = "converted" if converted else "left"
            e.exited_at = now
            e.exit_reason = "goal met" if converted else "trigger no longer true"
            plan.enrollments.append(e)
            plan.moves.append(FlowMove(key, fr.name, e.status, e.exit_reason))
            return
        enrollment = current  # copied below only if a step is due
        changed = False
    elif not converted:
        enrollment = _enter(rec, flow, fr.name, now, config)
        plan.moves.append(FlowMove(key, fr.name, "enter"))
        changed = True
        skipped = _skip_overdue(enrollment, flow, now)
        if skipped:
            plan.moves.append(FlowMove(key, fr.name, "skip", skipped))
        if enrollment.status != ACTIVE:
            plan.enrollments.append(enrollment)
            return
    else:
        return

    step_i = enrollment.next_step
    step = flow.steps[step_i]
    due = _base(enrollment) + step.after
    if due <= now:
        if enrollment is current:
            enrollment = current.clone()
        send = PlannedSend(
            key=key, flow=fr.name, step=step_i, steps=len(flow.steps), channel=step.channel,
            template=step.template, kind=step.kind, due_at=due, enrollment=enrollment,
            idem_key=idempotency_key(key, fr.name, enrollment.entry, step_i),
        )
        reason = _hold_reason(send, rec, ctx, config)
        if reason:
            plan.held.append(HeldSend(send, reason))
        else:
            plan.sends.append(send)
        changed = True  # the enrollment object is shared with the send and may advance
    if changed:
        plan.enrollments.append(enrollment)


def _enter(rec: Record, flow: FlowSettings, name: str, now: datetime,
           config: Config) -> Enrollment:
    anchor_at = None
    if flow.anchor:
        anchor_at = _as_datetime(rec.values.get(flow.anchor), config)
    return Enrollment(key=rec.key, flow=name, entry=1, entered_at=now, anchor_at=anchor_at)


def _skip_overdue(e: Enrollment, flow: FlowSettings, now: datetime) -> str:
    """Skip steps overdue by more than the grace at entry: no blast over an old list."""
    skipped = []
    while e.next_step < len(flow.steps):
        due = _base(e) + flow.steps[e.next_step].after
        if now - due <= flow.grace:
            break
        skipped.append(str(e.next_step + 1))
        e.next_step += 1
    if e.next_step >= len(flow.steps):
        e.status, e.exited_at, e.exit_reason = "finished", now, "all steps overdue at entry"
    if not skipped:
        return ""
    return f"step {', '.join(skipped)} overdue by more than {_fmt_td(flow.grace)} at entry"


def _hold_reason(send: PlannedSend, rec: Record, ctx: RowContext, config: Config) -> str:
    """Why this due send must not go now ('' when it may)."""
    if send.idem_key in ctx.state.sent_keys:
        return "already recorded in the ledger"
    if config.sending.paused:
        return "paused (sending.paused = true)"
    consent = config.sending.consent
    if send.kind == "ad" and consent and not rec.values.get(consent):
        return f"no consent to advertising ({consent} is not true)"
    to_field = getattr(config.channels[send.channel], "to", None)
    if to_field and not rec.values.get(to_field):
        return f"no recipient: field {to_field!r} is blank"
    return ""


def _base(e: Enrollment) -> datetime:
    return e.anchor_at or e.entered_at


def _as_datetime(value: Any, config: Config) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time(), tzinfo=config.tz)
    return None


def _fmt_td(td: timedelta) -> str:
    hours = td.total_seconds() / 3600
    return f"{hours / 24:g}d" if hours % 24 == 0 else f"{hours:g}h"


def _problem_error(p: RowProblem) -> RowError:
    return RowError(p.line, p.key, p.message)
