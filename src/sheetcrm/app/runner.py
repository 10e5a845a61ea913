"""Run the pipeline: read -> type -> plan -> send -> write back.

``preview`` (what ``sheetcrm plan`` prints) and ``sync`` share every step up to the
side effects. ``preview`` opens the ledger read-only and touches no file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from sheetcrm import faults
from sheetcrm.app import rules as sheet_rules
from sheetcrm.app.alerts import alert_failed_run, alert_finished_run
from sheetcrm.app.deliveries import follow_up_deliveries
from sheetcrm.app.events import mark_applied, write_batch
from sheetcrm.app.mailbox import hear_mailbox
from sheetcrm.app.reading import FreshCheck, gc_paused
from sheetcrm.app.results import RunResult, SendOutcome, Watch
from sheetcrm.channels import make_channel, message_id_of
from sheetcrm.channels.base import Channel
from sheetcrm.config import Config
from sheetcrm.core.engine import RunOptions, make_plan
from sheetcrm.core.events import event_writes
from sheetcrm.core.guards import load_suppression
from sheetcrm.core.messages import build_message
from sheetcrm.core.projection import column_ownership, project
from sheetcrm.core.rules import Rules, compile_rules
from sheetcrm.core.schema import read_records
from sheetcrm.errors import ChannelError, ConfigError, TemplateError
from sheetcrm.fsutil import RunLock
from sheetcrm.i18n import _
from sheetcrm.ledger import Ledger, TagSnapshot, history_scope
from sheetcrm.model import (
    EnrollmentStatus,
    FlowMove,
    LedgerState,
    Plan,
    PlannedSend,
    Record,
    SendRecord,
    SendStatus,
    Snapshot,
)
from sheetcrm.table import Table, open_table
from sheetcrm.table.base import can_add_rows
from sheetcrm.templates import Templates


def prepare(config: Config, state: LedgerState, now: datetime, table: Table,
            options: RunOptions = RunOptions(), rules: Rules | None = None,
            templates: Templates | None = None, *, snapshot: Snapshot | None = None,
            keep_values: bool = True) -> Plan:
    """Read the table (unless ``snapshot`` holds it read) and plan: the shared path of
    plan and sync.

    A ``snapshot`` handed in is this plan's own: its rows are let go once typed (its
    header and tabs stay), since a large sheet's cells as read weigh more than the
    plan made of them.

    Refuses (ConfigError) to go on when a writeback column holds the operator's values.
    ``keep_values``: as ``make_plan``'s.
    """
    rules = rules if rules is not None else compile_rules(config)
    templates = templates or Templates(config.templates_dir)
    sheet_rules.require_templates(config, templates)
    suppressed = load_suppression(config)
    snapshot = snapshot if snapshot is not None else table.read()
    faults.checkpoint("after-read")
    records = read_records(snapshot, config, let_go=True)  # the records hold what it needs
    heard = event_writes(records, state, config, adds_rows=can_add_rows(table))
    plan = make_plan(records, state, now, config, rules, suppressed=suppressed,
                     options=options, templates=templates, keep_values=keep_values)
    plan.events = heard
    plan.notes.extend(heard.notes)
    plan.owned_columns, foreign = column_ownership(snapshot.header, plan.records, config,
                                                   state.owned_columns)
    if foreign:
        raise ConfigError("\n".join(f.message() for f in foreign))
    return plan


def preview(config: Config, now: datetime, table: Table | None = None,
            options: RunOptions = RunOptions()) -> RunResult:
    """Everything ``sync`` would do, without doing any of it."""
    table = table if table is not None else open_table(config)
    started = time.perf_counter()
    ledger = Ledger.open_readonly(config.state_path)
    try:
        snapshot, choice, state = _read(config, ledger, table, now, options,
                                          before=sheet_rules.last_accepted(config, ledger),
                                          record=False)
    finally:
        ledger.close()
    ruleset = choice.in_force
    config = ruleset.config
    with gc_paused():
        plan = prepare(config, state, now, table, options, ruleset.rules, ruleset.templates,
                       snapshot=snapshot)
        _apply_to_state(plan, state)
        for held in plan.held:
            if held.skip:
                held.send.advance(now)
        for send in plan.sends:  # assume every due send succeeds
            send.advance(now)
            state.sends_by_key[send.key].append(_record(send, SendStatus.SENT, now))
        updates = project(plan.records, plan.tags, state, config) + plan.events.updates
    return RunResult(plan, updates, seconds=time.perf_counter() - started, rules=choice)


def _read(config: Config, ledger: Ledger, table: Table, now: datetime, options: RunOptions,
          *, before: sheet_rules.RuleSet | None, record: bool
          ) -> tuple[Snapshot, sheet_rules.RuleChoice, LedgerState]:
    """The ledger, then the sheet, then the rule set in force (``record``: sync;
    ``before``: the last accepted set, ``rules.last_accepted``).

    The ledger is read first, as always (an event stored after it is the next run's),
    over the sends the last accepted rule set can look at; when the sheet's tabs bring
    a rule set that looks elsewhere, the ledger is read again for it. The whole history
    is read only to weigh an edit's blast radius (``rules.due_keys``).
    """
    file_renames = config.renames if not record else {}  # sync renamed them in the file
    scope = history_scope(before.config if before else config, now)
    state = ledger.load_state(file_renames, scope=scope)
    snapshot = table.read()
    choice = sheet_rules.choose(
        config, snapshot, ledger, now, before=before, record=record,
        allow_blast=options.allow_blast,
        due=sheet_rules.due_keys(
            snapshot, lambda renames: ledger.load_state({**file_renames, **renames}), now,
            options))
    chosen = choice.in_force.config
    moved = sheet_rules.tab_renames(chosen)
    if record and moved:
        ledger.rename_flows(moved)
    wanted = history_scope(chosen, now)
    if wanted != scope or any(flow in moved for _key, flow in state.enrollments):
        renames = file_renames if record else {**file_renames, **moved}
        state = ledger.load_state(renames, scope=wanted)
    return snapshot, choice, state


def lock_path(config: Config) -> Path:
    return config.state_path.with_name("sync.lock")


def sync(
    config: Config,
    now: datetime,
    channels: dict[str, Channel] | None = None,
    *,
    table: Table | None = None,
    watch: Watch | None = None,
    options: RunOptions = RunOptions(),
) -> RunResult:
    """Execute one run under the run lock.

    ``channels`` and ``table`` may be injected (tests; a daemon keeps its table
    between runs). ``watch`` follows the run and may stop its sending (``Watch``).
    With ``[alerts]`` the operator hears of a failed or stalled run (``app.alerts``).
    """
    with RunLock(lock_path(config)):
        try:
            ledger = Ledger.open(config.state_path)
            try:
                result = _sync_locked(config, now, ledger, channels,
                                      table if table is not None else open_table(config),
                                      watch or Watch(), options)
            finally:
                ledger.close()
        except Exception as exc:
            alert_failed_run(config, now, exc)
            raise
        events = result.plan.events
        alert_finished_run(config, now, result.summary(), unmatched={
            name: _("{count} event(s) wait: {why}", count=count, why=events.reasons[name])
            for name, count in events.waiting.items() if count})
        return result


def _sync_locked(config: Config, now: datetime, ledger: Ledger,
                 channels: dict[str, Channel] | None, table: Table,
                 watch: Watch, options: RunOptions) -> RunResult:
    started = time.perf_counter()
    requests_before = int(getattr(table, "requests", 0))  # a daemon's table counts across runs
    run_id = ledger.start_run("sync", now)
    opened = channels if channels is not None else {}
    own_channels = channels is None
    try:
        if config.renames:
            ledger.rename_flows(config.renames)
        before = sheet_rules.last_accepted(config, ledger)  # flows of interrupted sends
        recovered = _recover_interrupted(before.config if before else config, ledger, now,
                                         opened, own_channels)
        heard = hear_mailbox(config, ledger, now)  # bounces and replies count in this run
        follow_up_deliveries(config, ledger, now)  # NHN Cloud's outcomes, shown in this run
        watch.progress("reading", 0, 0)
        with gc_paused():
            snapshot, choice, state = _read(config, ledger, table, now, options, before=before,
                                              record=True)
            config, rules = choice.in_force.config, choice.in_force.rules
            templates = choice.in_force.templates
            if choice.confirmed:  # the operator confirmed this edit's sends in the sheet
                options = replace(options, allow_blast=True)
            plan = prepare(config, state, now, table, options, rules, templates,
                           snapshot=snapshot, keep_values=False)
        read_at = time.monotonic()
        with gc_paused():  # the run's tags go with its flow moves, for `history`
            ledger.save_enrollments(plan.enrollments, tags=TagSnapshot(plan.tags, now, run_id))
        # Before anything is written: a crash after the write must not leave columns
        # sheetcrm filled looking like the operator's to the next run.
        ledger.remember_columns(plan.owned_columns, now)
        _apply_to_state(plan, state)
        faults.checkpoint("after-enroll")
        _record_skips(plan, ledger, now, run_id)
        sending = _Sending(config, ledger, now, run_id, templates, opened, own_channels, watch,
                           FreshCheck(config, rules, table, state, now, read_at))
        outcomes = _send_all(sending, plan, state)
        ledger.stamp_sends(run_id, choice.in_force.hash)
        with gc_paused():
            updates = project(plan.records, plan.tags, state, config)
        updates += plan.events.updates
        # The rows, their tags and the enrollments are saved and projected: the write
        # needs only the updates, so at 200k rows it does not hold them too.
        down = sending.down
        del sending, state
        plan.records, plan.tags, plan.enrollments = [], {}, []
        watch.progress("writing", 0, 0)
        faults.checkpoint("before-write")
        sheet_rules.stage_statuses(table, choice, snapshot)  # with the writeback's batchUpdate
        report = write_batch(table, config.key_column, updates, plan.events)
        sheet_rules.finish_statuses(table, choice)
        faults.checkpoint("after-write")
        applied = mark_applied(ledger, plan.events, report, now)
        if plan.flows_seen is not None:
            ledger.record_flows(plan.flows_seen, plan.retired_flows, now)
        result = RunResult(plan, updates, outcomes, recovered, report, executed=True,
                           channels_down=down, mailbox=heard,
                           events_applied=applied, rules=choice)
        result.seconds = time.perf_counter() - started
        result.requests = int(getattr(table, "requests", 0)) - requests_before
        ledger.prune(config, now)  # [ledger] keep: history older than the window goes
        ledger.finish_run(run_id, now, result.status, result.details())
        return result
    except BaseException as exc:
        ledger.finish_run(run_id, now, "failed", {"error": str(exc)[:500]})
        raise
    finally:
        if own_channels:
            for ch in opened.values():
                ch.close()


def _channel(name: str, config: Config, opened: dict[str, Channel], own: bool) -> Channel:
    if name not in opened:
        if not own:
            raise ChannelError(_("channel {name} was not provided", name=repr(name)))
        opened[name] = make_channel(name, config.channels[name], base_dir=config.base_dir)
    return opened[name]


def _recover_interrupted(config: Config, ledger: Ledger, now: datetime,
                         opened: dict[str, Channel], own: bool) -> list[str]:
    """Sends claimed by a run that died before marking them.

    On a channel where delivering twice cannot make a second copy (the outbox),
    the claim is dropped and the step is planned again. Elsewhere the message may
    or may not have left: it is marked ``uncertain`` and never sent again.

    Every send of a run that died (or failed) before naming its rule set, these and
    the ones it finished, is named with the set in force when it was claimed: the
    last one accepted, since that run accepted its set before claiming and no run has
    accepted one since (this runs before the run chooses its own). A send claimed
    before that set was accepted (a ledger from before rule sets were kept) cannot be
    told apart and stays unnamed.
    """
    accepted = ledger.rules_in_force()
    if accepted is not None:
        ledger.stamp_unnamed(accepted.hash, accepted.accepted_at)
    pending = ledger.pending_sends()
    if not pending:
        return []
    state = ledger.load_state()
    notes = []
    for rec in pending:
        channel_ok = rec.channel in config.channels
        if channel_ok and _channel(rec.channel, config, opened, own).redelivery_safe:
            ledger.forget_pending(rec.idem_key)
            notes.append(_("{key} {flow} step {step}: re-sent (safe channel)", key=rec.key,
                           flow=rec.flow, step=rec.step + 1))
            continue
        e = state.enrollments.get((rec.key, rec.flow))
        if e is not None and e.entry == rec.entry and e.next_step == rec.step:
            flow = config.flows.get(rec.flow)
            e.next_step = rec.step + 1
            if flow is not None and e.next_step >= len(flow.steps):
                e.exit(EnrollmentStatus.FINISHED, "last step done", now)
        else:
            e = None
        settings = config.channels.get(rec.channel)
        ledger.finish_send(rec.idem_key, SendStatus.UNCERTAIN, now, enrollment=e,
                           message_id=message_id_of(settings, rec.idem_key) if settings else None,
                           detail=_("interrupted by a crash; not re-sent"))
        notes.append(_("{key} {flow} step {step}: uncertain, not re-sent", key=rec.key,
                       flow=rec.flow, step=rec.step + 1))
    return notes


@dataclass
class _Sending:
    """What sending the due messages of one sync run needs."""

    config: Config
    ledger: Ledger
    now: datetime
    run_id: int
    templates: Templates
    opened: dict[str, Channel]  # channels by name, opened so far or injected
    own: bool  # the run opens (and closes) its own channels
    watch: Watch
    fresh: FreshCheck
    down: dict[str, str] = field(default_factory=dict)  # channel -> why it is down

    def channel(self, name: str) -> Channel:
        return _channel(name, self.config, self.opened, self.own)


def _send_all(run: _Sending, plan: Plan, state: LedgerState) -> list[SendOutcome]:
    config, ledger, now = run.config, run.ledger, run.now
    stop, progress, fresh, down = run.watch.stop, run.watch.progress, run.fresh, run.down
    due = {send.key for send in plan.sends}  # most runs send to a few of the rows
    by_key = {r.key: r for r in plan.records if r.key in due}
    outcomes: list[SendOutcome] = []
    for send in plan.sends:
        progress("sending", len(outcomes), len(plan.sends))
        if stop():
            outcomes.append(SendOutcome(send, "stopped", _("stop requested; next run")))
            continue
        if send.channel in down:
            outcomes.append(SendOutcome(send, "channel down", down[send.channel]))
            continue
        exit_reason = fresh.exit_reason(send)
        if exit_reason:
            _exit_before_send(send, exit_reason, plan, ledger, now)
            outcomes.append(SendOutcome(send, "exited", _(exit_reason)))
            continue
        rec = fresh.record(send.key) or by_key[send.key]
        try:
            message = build_message(rec, send, plan.tags.get(send.key, []), now, config,
                                    run.templates)
        except TemplateError as exc:
            plan.row_error(rec, _("template {template}: {error}", template=send.template,
                                  error=exc))
            outcomes.append(SendOutcome(send, "error", str(exc)))
            continue
        claim = _record(send, SendStatus.PENDING, now)
        # Durable before the message leaves, unless a second delivery makes no copy
        # (known once the channel is open: until then the claim is durable anyway).
        opened = run.opened.get(send.channel)
        safe = opened is not None and opened.redelivery_safe
        if not ledger.claim_send(claim, run.run_id, durable=not safe):
            outcomes.append(SendOutcome(send, "skipped", _("already claimed")))
            continue
        faults.checkpoint("after-claim")
        try:
            delivery = run.channel(send.channel).send(message)
        except ChannelError as exc:
            if exc.uncertain:
                # The message may have arrived: treated exactly like a crash right
                # after sending. The step counts as done and is never sent again.
                send.advance(now)
                ledger.finish_send(send.idem_key, SendStatus.UNCERTAIN, now,
                                   enrollment=send.enrollment, detail=str(exc),
                                   message_id=message_id_of(config.channels[send.channel],
                                                            send.idem_key))
                state.sends_by_key[send.key].append(_record(send, SendStatus.UNCERTAIN, now))
                outcomes.append(SendOutcome(send, "uncertain", str(exc)))
            elif exc.channel_down:
                # Not this customer's fault: nothing is failed, the step waits.
                ledger.finish_send(send.idem_key, SendStatus.RETRY, now, detail=str(exc))
                down[send.channel] = str(exc)
                outcomes.append(SendOutcome(send, "channel down", str(exc)))
            else:
                outcomes.append(_failed(send, exc, plan, rec, ledger, now))
            continue
        faults.checkpoint("after-send")
        send.advance(now)
        # Fsynced with the next claim: lost only to a power cut, which leaves this
        # send's claim pending, settled by the next run without a second send. Where a
        # second delivery makes no copy, written with the next claim too (one commit).
        ledger.finish_send(send.idem_key, SendStatus.SENT, now, enrollment=send.enrollment,
                           message_id=delivery.message_id, detail=delivery.detail,
                           accepted=delivery.accepted, durable=False,
                           deferred=run.opened[send.channel].redelivery_safe)
        state.sends_by_key[send.key].append(_record(send, SendStatus.SENT, now))
        outcomes.append(SendOutcome(send, "sent", delivery.detail))
    ledger.flush()
    progress("sending", len(outcomes), len(plan.sends))
    return outcomes


def _record_skips(plan: Plan, ledger: Ledger, now: datetime, run_id: int) -> None:
    """Steps passed over for good: recorded, and the flow moves on."""
    for held in plan.held:
        if held.skip:
            held.send.advance(now)
            ledger.record_skip(_record(held.send, SendStatus.SKIPPED, now), run_id, held.reason,
                               held.send.enrollment)


def _exit_before_send(send: PlannedSend, reason: str, plan: Plan, ledger: Ledger,
                      now: datetime) -> None:
    """The re-read row meets the goal or no longer the trigger: exit, send nothing."""
    e = send.enrollment
    status = EnrollmentStatus.CONVERTED if reason == "goal met" else EnrollmentStatus.LEFT
    e.exit(status, _("{reason} (re-checked before sending)", reason=_(reason)), now)
    ledger.save_enrollments([e])
    plan.moves.append(FlowMove(send.key, send.flow, e.status, e.exit_reason or ""))


def _failed(send: PlannedSend, exc: ChannelError, plan: Plan, rec: Record, ledger: Ledger,
            now: datetime) -> SendOutcome:
    if exc.retryable:
        ledger.finish_send(send.idem_key, SendStatus.RETRY, now, detail=str(exc))
        plan.row_error(rec, _("send {step} failed, will retry: {error}", step=send.label,
                              error=exc))
        return SendOutcome(send, "retry", str(exc))
    e = send.enrollment
    e.exit(EnrollmentStatus.FAILED, _("send failed: {error}", error=exc), now)
    ledger.finish_send(send.idem_key, SendStatus.FAILED, now, enrollment=e, detail=str(exc))
    plan.row_error(rec, _("send {step} failed: {error}", step=send.label, error=exc))
    return SendOutcome(send, "failed", str(exc))


def _record(send: PlannedSend, status: SendStatus, now: datetime) -> SendRecord:
    return SendRecord(
        idem_key=send.idem_key, key=send.key, flow=send.flow, entry=send.enrollment.entry,
        step=send.step, channel=send.channel, template=send.template, kind=send.kind,
        status=status, created_at=now, finished_at=now, variant=send.variant,
    )


def _apply_to_state(plan: Plan, state: LedgerState) -> None:
    """Make the in-memory state reflect the plan's enrollments (same objects)."""
    for e in plan.enrollments:
        state.enrollments[(e.key, e.flow)] = e
