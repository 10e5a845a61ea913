"""The planner: ``(records, ledger state, now, config) -> Plan``. Pure: no I/O.

``plan`` prints the Plan; ``sync`` executes it. Both take the same path up to the
side effects. The planner evaluates tags, moves customers into and out of flows
(out on the goal, when the trigger stops holding, or on a reply heard back in a flow
with ``exit_on_reply``), and lists the sends that are due and those held back, each
with its reason.

A row with a cell that could not be read is planned like any other: only what reads
that field waits (``evaluate``). A flow whose trigger, goal or anchor is not known on
the row is left exactly as it is: nobody enters, leaves or gets a message on a guess.
The cell's message in the row's error cell then names what waits for it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sheetcrm.config import Config, FlowSettings, _quote_key
from sheetcrm.core.evaluate import Columns, RowConditions
from sheetcrm.core.guards import Guards, blast_radius_limit
from sheetcrm.core.projection import UnreadableFlowCell, enrollments_from_sheet
from sheetcrm.core.rules import RowContext, Rules
from sheetcrm.core.steps import bucket, next_send, skip_overdue, step_due
from sheetcrm.expressions import ExpressionRuntimeError
from sheetcrm.i18n import _
from sheetcrm.model import (
    DELIVERED,
    GOAL_MET,
    REPLIED,
    TRIGGER_GONE,
    Enrollment,
    EnrollmentStatus,
    EventKind,
    FlowMove,
    HeldSend,
    Hold,
    LedgerState,
    Plan,
    Record,
    RowError,
    TagChange,
)
from sheetcrm.model import TypedRows as Table
from sheetcrm.templates import Templates


@dataclass(frozen=True)
class RunOptions:
    """The operator's explicit decisions for one run (``sync`` / ``plan`` flags)."""

    allow_blast: bool = False  # send more than the blast-radius limit
    allow_flow_change: bool = False  # let a new flow message a removed flow's customers
    restore_from_sheet: bool = False  # take flow state from the sheet for unknown rows


@dataclass
class _Run:
    """What planning each row of one run shares."""

    plan: Plan
    config: Config
    rules: Rules
    state: LedgerState
    guards: Guards

    def __post_init__(self) -> None:
        # Read once: a config property is a call, made for every row and flow otherwise.
        self.flows = self.config.flows
        self.handoffs = self.config.handoffs
        self.flow_column = self.config.writeback.flow or ""
        self._said: dict[str, str] = {}

    def said(self, text: str) -> str:
        """One string for each distinct message of the run: a first run restoring 200k
        rows from the sheet says the same few things 400k times (40 MB as copies)."""
        return self._said.setdefault(text, text)


def make_plan(table: Table, state: LedgerState, now: datetime, config: Config,
              rules: Rules, *, suppressed: frozenset[str] = frozenset(),
              options: RunOptions = RunOptions(), templates: Templates | None = None,
              keep_values: bool = True) -> Plan:
    """Plan one run. ``state`` is not modified: changed enrollments are copies.

    ``options.allow_blast`` lets a run send more than the blast-radius limit, and
    ``options.allow_flow_change`` lets a new flow message customers of a flow removed
    from the config (explicit operator decisions: ``sync --allow-blast``,
    ``--allow-flow-change``). Flow state is taken from the sheet's flow column only
    when the ledger is new or with ``options.restore_from_sheet``
    (``--restore-from-sheet``). ``suppressed`` holds the keys and addresses never to
    advertise to. With ``templates``, a send whose template reads a field not known on
    its row is held until the cell is fixed. Without ``keep_values`` a row's typed values
    are let go once it is planned, unless a message is due to it (``sync``: what is left
    of the others reads their cells as read and the ledger).
    """
    plan = Plan(now=now, rows_read=len(table.records) + len(table.problems),
                records=table.records, tags={})
    for p in table.problems:
        plan.errors.append(RowError(p.line, p.key, p.message))
    run = _Run(plan, config, rules, state, Guards(config, now, state, suppressed, templates))
    ctx = RowContext(now, config.tz, state)
    restoring = bool(config.writeback.flow) and (state.fresh or options.restore_from_sheet)
    known = {key for key, _flow in state.enrollments} if restoring else set()
    failures: Counter[str] = Counter()
    unknown: Counter[str] = Counter()  # rows a condition could not be known on
    evaluated = 0
    tag_lists: dict[tuple[str, ...], list[str]] = {}
    tag_column = config.writeback.tags
    sheet_tags: dict[str, list[str]] = {}  # tag cell -> its tags, each read once
    # Conditions over every row with all cells read at once; the rest row by row.
    columns = Columns(rules, [r.values for r in table.records if r.usable and not r.unknown],
                      ctx)
    slot = 0
    for rec in table.records:
        if not rec.usable:
            plan.errors.extend(RowError(rec.line, rec.key, m) for m in rec.errors)
            continue
        marks = _marks(plan)
        at = len(plan.errors)  # the row's unreadable cells are listed first
        row = RowConditions(rules, rec, ctx, None, columns, -1 if rec.unknown else slot)
        slot += not rec.unknown
        try:
            restored = _restore_from_sheet(run, rec, known) if restoring else {}
            evaluated += 1
            _plan_row(run, rec, row, restored)
        except ExpressionRuntimeError as exc:
            _undo(plan, marks)  # nothing is done for a row that cannot be evaluated
            failures[exc.source] += 1
            plan.row_error(rec, _("rule {problem}", problem=exc), kind="rule")
            continue
        except UnreadableFlowCell as exc:
            _undo(plan, marks)
            rec.keep = (*rec.keep, config.writeback.flow or "")
            plan.row_error(rec, str(exc))
            continue
        finally:
            plan.evaluations += row.evaluations
            if row.unknown_sources:
                unknown.update(row.unknown_sources)
            if rec.unknown:
                _say_what_waits(rec, row.waiting)
                plan.errors[at:at] = [RowError(rec.line, rec.key, m)
                                      for m in rec.unknown.values()]
        before = _tags_in_sheet(rec, tag_column, sheet_tags)
        # Rows share a few sets of tags: one list for each (read-only, as is the plan).
        tags = plan.tags[rec.key] = row.tags_on(before, tag_lists)
        if tag_column and before != tags:
            plan.tag_changes.append(TagChange(rec.key, before, tags))
        if not keep_values and len(plan.sends) == marks[1]:
            rec.forget_values()
    plan.errors.sort(key=lambda e: e.line)
    # Broken: failed on every row it could be worked out on (not where a cell it reads
    # could not be read).
    plan.broken_rules = [_rule_path(source, config) for source, n in failures.items()
                         if n == evaluated - unknown[source]]
    _check_flow_changes(plan, state, config, options.allow_flow_change)
    limit = blast_radius_limit(config, plan.rows_read)
    if limit is not None and len(plan.sends) > limit and not options.allow_blast:
        reason = _("blast-radius stop: {due} sends due, more than the limit of {limit} per "
                   "run; check the rules, then sync --allow-blast to send them",
                   due=len(plan.sends), limit=limit)
        plan.held[:0] = [HeldSend(s, reason) for s in plan.sends]
        plan.sends = []
        plan.stopped = reason
    return plan


def _tags_in_sheet(rec: Record, column: str | None, seen: dict[str, list[str]]) -> list[str]:
    """The tags the row's tag cell (in ``column``) shows (none without a tag column);
    ``seen`` holds the lists of the cells read so far, shared by the rows that show the
    same."""
    cell = rec.current.get(column, "") if column else ""
    tags = seen.get(cell)
    if tags is None:
        tags = seen[cell] = [t.strip() for t in cell.split(",") if t.strip()]
    return tags


def _say_what_waits(rec: Record, waiting: dict[tuple[str, str], str]) -> None:
    """Add to each unreadable cell's message the tags and flows that wait for it."""
    for field, message in list(rec.unknown.items()):
        tags = [repr(name) for (kind, name), f in waiting.items() if kind == "tag" and f == field]
        flows = [repr(name) for (kind, name), f in waiting.items() if kind == "flow" and f == field]
        if not tags and not flows:
            continue
        if tags and flows:
            said = _("{message}; until it is fixed, these wait: tags {tags} and flows {flows}",
                     message=message, tags=", ".join(tags), flows=", ".join(flows))
        elif tags:
            said = _("{message}; until it is fixed, these wait: tags {tags}",
                     message=message, tags=", ".join(tags))
        else:
            said = _("{message}; until it is fixed, these wait: flows {flows}",
                     message=message, flows=", ".join(flows))
        rec.unknown[field] = said
        rec.errors[rec.errors.index(message)] = said


def _marks(plan: Plan) -> tuple[int, int, int, int]:
    return len(plan.moves), len(plan.sends), len(plan.held), len(plan.enrollments)


def _undo(plan: Plan, marks: tuple[int, int, int, int]) -> None:
    """Forget what planning one row added before it failed."""
    moves, sends, held, enrollments = marks
    del plan.moves[moves:], plan.sends[sends:], plan.held[held:]
    del plan.enrollments[enrollments:]


def _rule_path(source: str, config: Config) -> str:
    """Where in the config a failing condition is written, for the operator."""
    for tag, text in config.tags.items():
        if text == source:
            return f"tags.{_quote_key(tag)}"
    for name, flow in config.flows.items():
        if source in (flow.trigger, f"tagged({flow.trigger!r})"):
            return f"flows.{name}.trigger"
        if source == flow.goal:
            return f"flows.{name}.goal"
    return repr(source)


def _check_flow_changes(plan: Plan, state: LedgerState, config: Config,
                        allowed: bool) -> None:
    """Flows removed from the config, and new flows that would message their customers.

    A flow renamed by editing its name looks like a removed flow plus a new one; the
    new one would send its step 1 to every customer the old one already messaged.
    Such sends are held until the operator says what happened: ``renamed_from`` on
    the new flow, or ``--allow-flow-change`` when the new flow is meant to start over.
    """
    configured = set(config.flows)
    plan.flows_seen = sorted(configured)
    before = state.config_flows
    if before is None:  # a new ledger: nothing to compare with
        return
    removed = set(before) - configured - set(config.renames)
    if not removed:
        return
    active = Counter(e.flow for e in state.enrollments.values()
                     if e.flow in removed and e.status == EnrollmentStatus.ACTIVE)
    for flow in sorted(removed):
        if active[flow]:
            plan.notes.append(_(
                "flow {flow} is no longer in the config but {n} customer(s) are still in "
                "it: their remaining steps will not be sent. If it was renamed, add "
                "renamed_from = {flow} to the flow's new name", flow=repr(flow),
                n=active[flow]))
    new = configured - set(before) - set(config.renames.values())
    if not new or allowed:
        plan.retired_flows = sorted(removed)
        return
    messaged = {key for key, sends in state.sends_by_key.items()
                if any(r.flow in removed and r.status in DELIVERED for r in sends)}
    held = [s for s in plan.sends if s.flow in new and s.key in messaged]
    if not held:
        plan.retired_flows = sorted(removed)
        return
    flows = ", ".join(sorted({s.flow for s in held}))
    reason = _("flow change: new flow {flows} would message customers that removed flow "
               "{removed} already messaged. If it is the same flow renamed, add "
               "renamed_from to it; if it is meant to start over, run "
               "sync --allow-flow-change", flows=flows, removed=", ".join(sorted(removed)))
    plan.held.extend(HeldSend(s, reason) for s in held)
    kept = set(map(id, held))
    plan.sends = [s for s in plan.sends if id(s) not in kept]
    # Not entered either: once the operator says it is a rename, the customer carries
    # on where the old flow left them instead of at a step 1 entered meanwhile.
    unentered = {id(s.enrollment) for s in held if s.enrollment.id is None}
    plan.enrollments = [e for e in plan.enrollments if id(e) not in unentered]
    held_pairs = {(s.key, s.flow) for s in held}
    plan.moves = [m for m in plan.moves
                  if not (m.action == "enter" and (m.key, m.flow) in held_pairs)]
    plan.stopped = reason
    plan.flows_seen = None


def _plan_row(run: _Run, rec: Record, row: RowConditions,
              restored: dict[str, Enrollment]) -> None:
    row.tags()
    enrollments, handoffs, key = run.state.enrollments, run.handoffs, rec.key
    for name in run.rules.flows:
        triggered = row.triggered(name)
        current = enrollments.get((key, name)) if enrollments else None  # a new ledger
        if current is None and restored:
            current = restored.get(name)
        if current is None and not triggered and name not in handoffs:
            continue  # not in the flow, not entering it: most rows, most flows
        _plan_flow(run, rec, row, name, current, triggered)


def _plan_flow(run: _Run, rec: Record, row: RowConditions, name: str,
               current: Enrollment | None, triggered: bool | None) -> None:
    """One flow for one row; ``current`` is its enrollment (from the ledger or restored
    from the sheet) and ``triggered`` whether its trigger holds (None: not known)."""
    plan, key, now = run.plan, rec.key, run.plan.now
    flow = run.flows[name]
    active = current is not None and current.status == EnrollmentStatus.ACTIVE
    handoff = (not active and name in run.handoffs
               and _handed_off(key, name, current, run)
               and _may_reenter(current, flow, now))
    if not active and not handoff and (not triggered or not _may_reenter(current, flow, now)):
        return
    if handoff or (active and current is not None and current.via == "handoff"):
        row.trigger_not_needed(name)  # a handed-over customer does not need the trigger
    elif triggered is None:
        return  # not known whether the customer is (still) in this flow's trigger
    if not active and flow.anchor in rec.unknown:
        row.waiting["flow", name] = flow.anchor or ""
        return  # the steps' times count from a date that could not be read
    converted = row.goal_met(name)
    if converted is None:
        return  # the goal may be met: nothing is sent, nothing changes, on a guess

    if active:
        assert current is not None
        # A customer handed over from another flow stays until the goal or the end.
        left = not triggered and current.via != "handoff"
        replied = flow.exit_on_reply and replied_since(run.state, key, current.entered_at)
        if converted or replied or left:
            e = _changeable(current, plan)
            if converted:
                e.exit(EnrollmentStatus.CONVERTED, GOAL_MET, now)
            elif replied:
                e.exit(EnrollmentStatus.REPLIED, REPLIED, now)
            else:
                e.exit(EnrollmentStatus.LEFT, TRIGGER_GONE, now)
            # The ledger keeps the English key; the plan shows it in the operator's words.
            why = _(e.exit_reason) if e.exit_reason else ""
            plan.moves.append(FlowMove(key, name, e.status, why))
            return
        enrollment = current  # copied below only if a step is due
    elif converted:
        return  # the goal is already met: nothing to persuade
    else:
        enrollment = _enter(run, rec, name, current, handoff)
        plan.moves.append(FlowMove(key, name, "enter", _entry_detail(enrollment)))
        # Counted from now (no anchor), no step is overdue: durations are never negative.
        skipped = skip_overdue(enrollment, flow, now) if enrollment.anchor_at else ""
        if skipped:
            plan.moves.append(FlowMove(key, name, "skip", run.said(skipped)))
        plan.enrollments.append(enrollment)
        if enrollment.status != EnrollmentStatus.ACTIVE:
            return

    if step_due(enrollment, flow) > now:
        return
    if enrollment is current:
        enrollment = _changeable(current, plan)
    send = next_send(enrollment, flow)
    if send.idem_key in run.state.sent_keys:
        hold: Hold | None = Hold(_("already recorded in the ledger"))
    else:
        hold = run.guards.check(send, rec)
    if hold is not None:
        plan.held.append(HeldSend(send, hold.reason, hold.skip))
    else:
        run.guards.let_through(send)
        plan.sends.append(send)


def replied_since(state: LedgerState, key: str, since: datetime) -> bool:
    """The customer replied (not an auto-reply) at or after ``since``.

    ``exit_on_reply`` asks it from the entry on: a reply during an earlier pass
    through the flow, or before it, does not end this one.
    """
    return any(e.kind is EventKind.REPLY and not e.machine and e.at >= since
               for e in state.events_for(key))


def _changeable(e: Enrollment, plan: Plan) -> Enrollment:
    """An enrollment this plan may change: the ledger's state is never touched.

    One made during this plan (entered, or restored from the sheet) has no id yet
    and is already listed; one from the ledger is copied and listed.
    """
    if e.id is None:
        return e
    copy = e.clone()
    plan.enrollments.append(copy)
    return copy


def _restore_from_sheet(run: _Run, rec: Record, known: set[str]) -> dict[str, Enrollment]:
    """The ledger knows nothing of this row, but its flow cell shows flows: take the
    sheet's word (invariant 7: a fresh ledger does not re-send what the sheet shows).

    Only on a new ledger or when asked: on a ledger in use, a row it does not know is
    a new customer, even one copied from another row with its flow cell. Steps that
    fell due longer ago than the flow's ``grace`` are skipped, as at any entry.
    Raises UnreadableFlowCell when the cell cannot be read.
    """
    plan, config = run.plan, run.config
    cell = rec.current.get(run.flow_column)
    if not cell or rec.key in known:
        return {}
    restored = enrollments_from_sheet(rec.key, cell, config)
    for flow, e in restored.items():
        plan.enrollments.append(e)
        plan.moves.append(FlowMove(rec.key, flow, "restored", run.said(
            _("from the sheet: {n} step(s) already sent", n=e.next_step))))
        if e.status == EnrollmentStatus.ACTIVE:
            skipped = skip_overdue(e, run.flows[flow], plan.now)
            if skipped:
                plan.moves.append(FlowMove(rec.key, flow, "skip", run.said(skipped)))
    return restored


def _may_reenter(current: Enrollment | None, flow: FlowSettings, now: datetime) -> bool:
    """First entry always; after an exit only with a re-entry gap that has passed."""
    if current is None:
        return True
    if flow.reentry is None or current.exited_at is None:
        return False
    return now - current.exited_at >= flow.reentry


def _handed_off(key: str, flow: str, current: Enrollment | None, run: _Run) -> bool:
    """A flow with ``then = <this flow>`` finished for this key since its last entry here."""
    for source in run.handoffs.get(flow, ()):
        done = run.state.enrollments.get((key, source))
        if done is None or done.status != "finished" or done.exited_at is None:
            continue
        if current is None or current.entered_at < done.exited_at:
            return True
    return False


def _enter(run: _Run, rec: Record, name: str, previous: Enrollment | None,
           handoff: bool) -> Enrollment:
    flow = run.flows[name]
    anchor_at = None
    if flow.anchor:
        anchor_at = _as_datetime(rec.values.get(flow.anchor), run.config)
    holdout = flow.holdout > 0 and bucket(rec.key, name, "holdout") < flow.holdout
    # Every field in order (key, flow, entry, entered_at, anchor_at, next_step, status,
    # exited_at, exit_reason, id, holdout, via): twice as fast as by name, per entry.
    return Enrollment(rec.key, name, previous.entry + 1 if previous else 1, run.plan.now,
                      anchor_at, 0, EnrollmentStatus.ACTIVE, None, None, None, holdout,
                      "handoff" if handoff else "trigger")


def _entry_detail(e: Enrollment) -> str:
    parts = []
    if e.via == "handoff":
        parts.append(_("handed over"))
    if e.entry > 1:
        parts.append(_("re-entry {n}", n=e.entry))
    if e.holdout:
        parts.append(_("holdout (no messages)"))
    return ", ".join(parts)


def _as_datetime(value: Any, config: Config) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time(), tzinfo=config.tz)
    return None
