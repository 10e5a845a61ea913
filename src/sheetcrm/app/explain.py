"""``sheetcrm preview KEY``: what one customer would receive next, and why.

Runs the same planner as ``plan`` (the ledger opened read-only, nothing written),
then tells, flow by flow, the decision trail: the conditions as they evaluate for
this row, where the customer stands, and the next message rendered in full, or
the reason it is held back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sheetcrm.app.rules import resolved
from sheetcrm.app.runner import prepare
from sheetcrm.config import Config
from sheetcrm.core.evaluate import RowConditions
from sheetcrm.core.messages import build_message, template_name
from sheetcrm.core.projection import flow_text
from sheetcrm.core.rules import RowContext, compile_rules
from sheetcrm.core.steps import next_send
from sheetcrm.errors import SheetcrmError, TemplateError
from sheetcrm.i18n import _
from sheetcrm.ledger import Ledger
from sheetcrm.model import Enrollment, EnrollmentStatus, LedgerState, Plan, PlannedSend, Record
from sheetcrm.table import open_table
from sheetcrm.templates import Templates


@dataclass
class FlowTrail:
    flow: str
    trail: list[str] = field(default_factory=list)
    decision: str = ""
    template: str | None = None
    subject: str | None = None
    text: str | None = None


@dataclass
class RowExplanation:
    key: str
    line: int
    tags: dict[str, bool]
    errors: list[str]
    flows: list[FlowTrail]


def explain(config: Config, now: datetime, key: str, only_flow: str | None = None
            ) -> RowExplanation:
    config, templates = resolved(config)  # [rules]: the flows kept in the sheet
    if only_flow is not None and only_flow not in config.flows:
        raise SheetcrmError(_("unknown flow {flow}; defined: {flows}", flow=repr(only_flow),
                              flows=sorted(config.flows)))
    ledger = Ledger.open_readonly(config.state_path)
    try:
        state = ledger.load_state()
    finally:
        ledger.close()
    rules = compile_rules(config)
    plan = prepare(config, state, now, open_table(config), rules=rules,  # state unchanged
                   templates=templates)
    rec = next((r for r in plan.records if r.key == key), None)
    if rec is None:
        problem = next((e.message for e in plan.errors if e.key == key), None)
        raise SheetcrmError(problem or _("no row has the key {key}", key=repr(key)))

    row = RowConditions(rules, rec, RowContext(now, config.tz, state))
    tags = row.tags() if rec.usable else {}
    explainer = _Explainer(config, plan, state, rec, row)
    explainer.templates = templates
    flows = [explainer.flow(name) for name in config.flows if only_flow in (None, name)]
    return RowExplanation(key, rec.line, tags, rec.errors, flows)


class _Explainer:
    def __init__(self, config: Config, plan: Plan, state: LedgerState, rec: Record,
                 row: RowConditions) -> None:
        self.config, self.now, self.plan, self.state = config, plan.now, plan, state
        self.rec, self.row = rec, row
        self.templates = Templates(config.templates_dir)

    def flow(self, name: str) -> FlowTrail:
        trail = FlowTrail(name)
        if not self.rec.usable:
            trail.decision = _("row has errors: nothing is done until they are fixed")
            return trail
        settings = self.config.flows[name]
        trail.trail.append(_("trigger {rule} is {value}", rule=repr(settings.trigger),
                             value=_known(self.row.triggered(name))))
        if settings.goal:
            trail.trail.append(_("goal {rule} is {value}", rule=repr(settings.goal),
                                 value=_known(self.row.goal_met(name))))
        for m in self.plan.moves:
            if m.key == self.rec.key and m.flow == name:
                trail.trail.append(_("this run: {move} ({detail})", move=m.action,
                                     detail=m.detail) if m.detail
                                   else _("this run: {move}", move=m.action))
        self._decide(trail, name)
        return trail

    def _decide(self, trail: FlowTrail, name: str) -> None:
        key = self.rec.key
        send = next((s for s in self.plan.sends if s.key == key and s.flow == name), None)
        if send is not None:
            trail.decision = _("sends now: step {step}/{steps}, due {due}", step=send.step + 1,
                               steps=send.steps, due=self._t(send.due_at))
            self._render(trail, send)
            return
        held = next((h for h in self.plan.held if h.send.key == key and h.send.flow == name),
                    None)
        if held is not None:
            values = dict(step=held.send.step + 1, steps=held.send.steps, reason=held.reason)
            trail.decision = (_("step {step}/{steps} skipped for good: {reason}", **values)
                              if held.skip else
                              _("step {step}/{steps} held back: {reason}", **values))
            self._render(trail, held.send)
            return
        e = self._latest(name)
        if e is None:
            trail.decision = _("not in this flow")
            return
        trail.trail.append(_("state: {state}", state=flow_text(e, self.config)))
        if e.status != EnrollmentStatus.ACTIVE:
            why = _(e.exit_reason) if e.exit_reason else e.status  # stored in English
            trail.decision = _("exited ({why})", why=why)
            return
        waiting = next_send(e, self.config.flows[name])
        trail.decision = _("waiting: step {step}/{steps} is due {due}", step=waiting.step + 1,
                           steps=waiting.steps, due=self._t(waiting.due_at))
        self._render(trail, waiting)

    def _latest(self, flow: str) -> Enrollment | None:
        for e in reversed(self.plan.enrollments):
            if e.key == self.rec.key and e.flow == flow:
                return e
        return self.state.enrollments.get((self.rec.key, flow))

    def _render(self, trail: FlowTrail, send: PlannedSend) -> None:
        trail.template = template_name(send, self.templates)
        try:
            message = build_message(self.rec, send, self.plan.tags.get(self.rec.key, []),
                                    self.now, self.config, self.templates)
        except TemplateError as exc:
            trail.trail.append(_("template error: {error}", error=exc))
            return
        trail.subject, trail.text = message.subject, message.text

    def _t(self, dt: datetime) -> str:
        return f"{dt.astimezone(self.config.tz):%Y-%m-%d %H:%M}"


def _known(value: bool | None) -> str:
    """True, False, or what a condition reading an unreadable cell is."""
    if value is None:
        return _("unknown (it reads a cell that could not be read)")
    return _("True") if value else _("False")
