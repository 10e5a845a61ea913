"""Run the pipeline: read -> type -> plan -> send -> write back.

``preview`` (what ``sheetcrm plan`` prints) and ``sync`` share every step up to the
side effects. ``preview`` opens the ledger read-only and touches no file.
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from . import faults
from .channels import make_channel
from .channels.base import Channel, Message
from .config import Config
from .engine import Plan, PlannedSend, RowError, make_plan
from .errors import ChannelError, TemplateError
from .ledger import FAILED, RETRY, SENT, UNCERTAIN, Ledger, LedgerState, SendRecord
from .lock import RunLock
from .projection import project
from .rules import compile_rules
from .schema import Record, read_records
from .table import CellUpdate, Table, WriteReport, open_table
from .templates import Templates


@dataclass
class SendOutcome:
    send: PlannedSend
    status: str  # sent | retry | failed | skipped (already claimed) | error (template)
    detail: str = ""


@dataclass
class RunResult:
    plan: Plan
    updates: list[CellUpdate]
    outcomes: list[SendOutcome] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)  # interrupted sends found at start
    write: WriteReport | None = None
    executed: bool = False
    seconds: float = 0.0
    requests: int = 0  # backend API requests (0 for a local CSV)

    def summary(self) -> dict[str, Any]:
        plan = self.plan
        held = Counter(h.reason for h in plan.held)
        status = Counter(o.status for o in self.outcomes)
        return {
            "now": plan.now.isoformat(),
            "rows_read": plan.rows_read,
            "tags_changed": len(plan.tag_changes),
            "entered": sum(1 for m in plan.moves if m.action == "enter"),
            "exited": sum(1 for m in plan.moves if m.action in ("converted", "left")),
            "due": len(plan.sends),
            "sent": status["sent"] if self.executed else 0,
            "failed": status["failed"] + status["retry"] + status["error"],
            "stopped": status["stopped"],
            "held": dict(held),
            "row_errors": len(plan.errors),
            "cells_written": self.write.cells_written if self.write else 0,
            "recovered_interrupted": len(self.recovered),
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
        }


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while whole tables are built.

    Reading and typing 100k rows allocates millions of small containers; CPython's
    collector would re-scan them many times over (a third of the run time) although
    none of them is part of a cycle. Reference counting still frees everything.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def context_for(rec: Record, send: PlannedSend, tags: list[str], now: datetime,
                config: Config) -> dict[str, Any]:
    """Template variables: every field by name, plus where the customer is."""
    return {
        **rec.values,
        "key": rec.key,
        "tags": tags,
        "flow": send.flow,
        "step": send.step + 1,
        "steps": send.steps,
        "now": now.astimezone(config.tz),
    }


def build_message(rec: Record, send: PlannedSend, tags: list[str], now: datetime,
                  config: Config, templates: Templates) -> Message:
    rendered = templates.render(send.template, context_for(rec, send, tags, now, config))
    settings = config.channels[send.channel]
    to_field = getattr(settings, "to", None)
    recipient = str(rec.values.get(to_field) or "") if to_field else rec.key
    return Message(
        idempotency_key=send.idem_key,
        recipient=recipient,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        kind=send.kind,
        payload=rendered.payload,
        meta={"key": rec.key, "flow": send.flow, "step": str(send.step + 1),
              "template": send.template, "date": format_datetime(now)},
    )


def prepare(config: Config, state: LedgerState, now: datetime, table: Table) -> Plan:
    """Read the table and plan: the shared path of plan and sync."""
    rules = compile_rules(config)
    snapshot = table.read()
    faults.checkpoint("after-read")
    table = read_records(snapshot, config)
    return make_plan(table, state, now, config, rules)


def preview(config: Config, now: datetime, table: Table | None = None) -> RunResult:
    """Everything ``sync`` would do, without doing any of it."""
    table = table if table is not None else open_table(config)
    started = time.perf_counter()
    ledger = Ledger.open_readonly(config.state_path)
    try:
        state = ledger.load_state()
    finally:
        ledger.close()
    with gc_paused():
        plan = prepare(config, state, now, table)
        _apply_to_state(plan, state)
        for send in plan.sends:  # assume every due send succeeds
            send.advance(now)
            state.sends_by_key[send.key].append(_record(send, SENT, now))
        updates = project(plan.records, plan.tags, state, config)
    return RunResult(plan, updates, seconds=time.perf_counter() - started)


def lock_path(config: Config) -> Path:
    return config.state_path.with_name("sync.lock")


def sync(
    config: Config,
    now: datetime,
    channels: dict[str, Channel] | None = None,
    *,
    table: Table | None = None,
    stop: Callable[[], bool] | None = None,
) -> RunResult:
    """Execute one run under the run lock.

    ``channels`` and ``table`` may be injected (tests; a daemon keeps its table
    between runs). ``stop`` is asked before each send: when it answers True the
    remaining sends wait for the next run, and the run still writes back.
    """
    with RunLock(lock_path(config)):
        ledger = Ledger.open(config.state_path)
        try:
            return _sync_locked(config, now, ledger, channels,
                                table if table is not None else open_table(config), stop)
        finally:
            ledger.close()


def _sync_locked(config: Config, now: datetime, ledger: Ledger,
                 channels: dict[str, Channel] | None, table: Table,
                 stop: Callable[[], bool] | None) -> RunResult:
    started = time.perf_counter()
    run_id = ledger.start_run("sync", now)
    opened = channels if channels is not None else {}
    own_channels = channels is None
    try:
        recovered = _recover_interrupted(config, ledger, now, opened, own_channels)
        with gc_paused():
            state = ledger.load_state()
            plan = prepare(config, state, now, table)
        ledger.save_enrollments(plan.enrollments)
        _apply_to_state(plan, state)
        faults.checkpoint("after-enroll")
        outcomes = _send_all(plan, config, ledger, state, now, run_id, opened, own_channels,
                             stop)
        with gc_paused():
            updates = project(plan.records, plan.tags, state, config)
        faults.checkpoint("before-write")
        report = table.write(config.key_column, updates) if updates else None
        faults.checkpoint("after-write")
        result = RunResult(plan, updates, outcomes, recovered, report, executed=True)
        result.seconds = time.perf_counter() - started
        result.requests = int(getattr(table, "requests", 0))
        ledger.finish_run(run_id, now, "ok", result.summary())
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
            raise ChannelError(f"channel {name!r} was not provided")
        opened[name] = make_channel(name, config.channels[name], base_dir=config.base_dir)
    return opened[name]


def _recover_interrupted(config: Config, ledger: Ledger, now: datetime,
                         opened: dict[str, Channel], own: bool) -> list[str]:
    """Sends claimed by a run that died before marking them.

    On a channel where delivering twice cannot make a second copy (the outbox),
    the claim is dropped and the step is planned again. Elsewhere the message may
    or may not have left: it is marked ``uncertain`` and never sent again.
    """
    pending = ledger.pending_sends()
    if not pending:
        return []
    state = ledger.load_state()
    notes = []
    for rec in pending:
        channel_ok = rec.channel in config.channels
        if channel_ok and _channel(rec.channel, config, opened, own).redelivery_safe:
            ledger.forget_pending(rec.idem_key)
            notes.append(f"{rec.key} {rec.flow} step {rec.step + 1}: re-sent (safe channel)")
            continue
        e = state.enrollments.get((rec.key, rec.flow))
        if e is not None and e.entry == rec.entry and e.next_step == rec.step:
            flow = config.flows.get(rec.flow)
            e.next_step = rec.step + 1
            if flow is not None and e.next_step >= len(flow.steps):
                e.status, e.exited_at, e.exit_reason = "finished", now, "last step sent"
        else:
            e = None
        ledger.finish_send(rec.idem_key, UNCERTAIN, now, enrollment=e,
                           detail="interrupted by a crash; not re-sent")
        notes.append(f"{rec.key} {rec.flow} step {rec.step + 1}: uncertain, not re-sent")
    return notes


def _send_all(plan: Plan, config: Config, ledger: Ledger, state: LedgerState, now: datetime,
              run_id: int, opened: dict[str, Channel], own: bool,
              stop: Callable[[], bool] | None) -> list[SendOutcome]:
    templates = Templates(config.templates_dir)
    by_key = {r.key: r for r in plan.records}
    outcomes = []
    for send in plan.sends:
        if stop is not None and stop():
            outcomes.append(SendOutcome(send, "stopped", "stop requested; next run"))
            continue
        rec = by_key[send.key]
        try:
            message = build_message(rec, send, plan.tags.get(send.key, []), now, config,
                                    templates)
        except TemplateError as exc:
            _row_error(plan, rec, f"template {send.template}: {exc}")
            outcomes.append(SendOutcome(send, "error", str(exc)))
            continue
        claim = _record(send, "pending", now)
        if not ledger.claim_send(claim, run_id):
            outcomes.append(SendOutcome(send, "skipped", "already claimed"))
            continue
        faults.checkpoint("after-claim")
        try:
            delivery = _channel(send.channel, config, opened, own).send(message)
        except ChannelError as exc:
            outcomes.append(_failed(send, exc, plan, rec, ledger, now))
            continue
        faults.checkpoint("after-send")
        send.advance(now)
        ledger.finish_send(send.idem_key, SENT, now, enrollment=send.enrollment,
                           message_id=delivery.message_id, detail=delivery.detail)
        state.sends_by_key[send.key].append(_record(send, SENT, now))
        outcomes.append(SendOutcome(send, "sent", delivery.detail))
    return outcomes


def _failed(send: PlannedSend, exc: ChannelError, plan: Plan, rec: Record, ledger: Ledger,
            now: datetime) -> SendOutcome:
    if exc.retryable:
        ledger.finish_send(send.idem_key, RETRY, now, detail=str(exc))
        _row_error(plan, rec, f"send {send.label} failed, will retry: {exc}")
        return SendOutcome(send, "retry", str(exc))
    e = send.enrollment
    e.status, e.exited_at, e.exit_reason = "failed", now, f"send failed: {exc}"[:200]
    ledger.finish_send(send.idem_key, FAILED, now, enrollment=e, detail=str(exc))
    _row_error(plan, rec, f"send {send.label} failed: {exc}")
    return SendOutcome(send, "failed", str(exc))


def _row_error(plan: Plan, rec: Record, message: str) -> None:
    rec.errors.append(message)
    plan.errors.append(RowError(rec.line, rec.key, message))


def _record(send: PlannedSend, status: str, now: datetime) -> SendRecord:
    return SendRecord(
        idem_key=send.idem_key, key=send.key, flow=send.flow, entry=send.enrollment.entry,
        step=send.step, channel=send.channel, template=send.template, kind=send.kind,
        status=status, created_at=now, finished_at=now,
    )


def _apply_to_state(plan: Plan, state: LedgerState) -> None:
    """Make the in-memory state reflect the plan's enrollments (same objects)."""
    for e in plan.enrollments:
        state.enrollments[(e.key, e.flow)] = e
