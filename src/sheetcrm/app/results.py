"""What one run of the pipeline gives back, and how its caller follows it.

Kept apart from ``runner`` (which makes them) so the commands and the daemon that read
a run's outcome read a small module of plain records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sheetcrm.app.mailbox import MailboxReport
from sheetcrm.app.rules import RuleChoice
from sheetcrm.model import CellUpdate, Plan, PlannedSend, WriteReport


@dataclass(frozen=True)
class Watch:
    """How the caller follows one sync run and stops it.

    ``stop`` is asked before each send: once it answers True the remaining sends
    wait for the next run, and the run still writes back what was sent (Ctrl-C in
    ``sheetcrm sync``, a signal to the daemon). ``progress(phase, done, total)``
    hears ``reading``, ``sending`` (once before each send and once at the end) and
    ``writing``; ``total`` is 0 where it is not known.
    """

    stop: Callable[[], bool] = lambda: False
    progress: Callable[[str, int, int], None] = lambda phase, done, total: None


@dataclass
class SendOutcome:
    send: PlannedSend
    # sent | retry | failed | error (template) | skipped (already claimed) |
    # exited (goal or trigger changed on re-read) | stopped (stop requested) |
    # channel down (the channel failed as a whole; the send waits for the next run) |
    # uncertain (the channel lost the answer: it may have arrived; never sent again)
    status: str
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
    channels_down: dict[str, str] = field(default_factory=dict)  # channel -> why
    events_applied: int = 0  # outside events written into the sheet by this run
    mailbox: MailboxReport | None = None  # what the mailbox read first brought (sync)
    rules: RuleChoice | None = None  # the rule set in force, and an edit that waits

    @property
    def status(self) -> str:
        """How the run ended, for the run history, the daemon and its health check.

        ``ok`` only when nothing stopped sending: a channel down or a guard that held
        every send (the blast-radius stop) is a stalled run, not a healthy one.
        """
        if self.channels_down:
            return "channel_down"
        if self.plan.stopped:
            return "sending_stopped"
        return "ok"

    def summary(self) -> dict[str, Any]:
        """Counts and reasons only, no customer data: safe for a shared log."""
        plan = self.plan
        held = Counter(h.reason for h in plan.held)
        status = Counter(o.status for o in self.outcomes)
        write = self.write or WriteReport()
        return {
            "now": plan.now.isoformat(),
            "rows_read": plan.rows_read,
            "tags_changed": len(plan.tag_changes),
            "entered": sum(1 for m in plan.moves if m.action == "enter"),
            "exited": sum(1 for m in plan.moves
                          if m.action in ("converted", "replied", "left")),
            "due": len(plan.sends),
            "sent": status["sent"] if self.executed else 0,
            "failed": status["failed"] + status["retry"] + status["error"],
            "uncertain": status["uncertain"],
            "stopped": status["stopped"],
            "sending_stopped": plan.stopped,
            "channels_down": dict(self.channels_down),
            "waiting_for_channel": status["channel down"],
            "held": dict(held),
            "row_errors": len(plan.errors),
            "broken_rules": list(plan.broken_rules),
            "notes": len(plan.notes),
            "cells_written": write.cells_written,
            "keys_missing_at_write": len(write.missing_keys),
            "keys_ambiguous_at_write": len(write.ambiguous_keys),
            "rows_repaired_at_write": len(write.repaired_keys),
            "recovered_interrupted": len(self.recovered),
            "events_applied": self.events_applied,
            "events_waiting": sum(plan.events.waiting.values()),
            "rows_added": len(write.added_keys),
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "mailbox": self.mailbox.summary() if self.mailbox else None,
        }

    def details(self) -> dict[str, Any]:
        """The summary plus the rows behind it (keys, messages): for the local ledger."""
        write = self.write or WriteReport()
        samples = 20
        return {
            **self.summary(),
            "row_error_samples": [
                {"line": e.line, "key": e.key, "message": e.message[:300]}
                for e in self.plan.errors[:samples]
            ],
            "keys_missing_sample": write.missing_keys[:samples],
            "keys_ambiguous_sample": write.ambiguous_keys[:samples],
            "rows_repaired_sample": write.repaired_keys[:samples],
            "events_waiting_why": self.plan.events.reasons,
            "ruleset": self.rules.in_force.hash if self.rules else None,
        }
