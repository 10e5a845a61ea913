"""Stalled sending: the runs since the last ``ok`` one, and why they sent nothing.

Only an ``ok`` run is a good run. A run that failed, found a channel down or was
stopped by the blast-radius guard has stalled sending, and the stall counts from
the first such run. The daemon keeps one while it runs; ``sheetcrm status`` and a
restarted daemon rebuild it from the ledger's run history, so it survives restarts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sheetcrm.app.schedule import human_duration


def stall_reason(status: str, summary: Mapping[str, Any]) -> str:
    """Why a run that was not ``ok`` sent nothing (or not all): from its summary."""
    if status == "sending_stopped":
        return str(summary.get("sending_stopped") or "sending stopped")
    if status == "channel_down":
        down = summary.get("channels_down") or {}
        return "; ".join(f"channel {name} down: {why}" for name, why in down.items()) \
            or "a channel is down"
    return str(summary.get("error") or status)


@dataclass
class Stall:
    """Sending has stalled: since the first run of a streak that was not ``ok``."""

    status: str  # the latest run's: failed | channel_down | sending_stopped
    reason: str
    since: datetime  # the run clock (``--now`` moves it), as the ledger's started_at
    runs: int = 1

    @classmethod
    def from_ledger(cls, found: Mapping[str, Any] | None) -> Stall | None:
        """From ``Ledger.stalled_runs``: None when the last finished run was ok."""
        if not found:
            return None
        return cls(found["status"], stall_reason(found["status"], found["summary"]),
                   datetime.fromisoformat(found["since"]), found["runs"])

    def report(self, now: datetime) -> dict[str, Any]:
        lasted = max(timedelta(0), now - self.since)
        lasted -= timedelta(microseconds=lasted.microseconds)
        return {"status": self.status, "reason": self.reason,
                "since": self.since.isoformat(timespec="seconds"),
                "for": human_duration(lasted),
                "for_seconds": int(lasted.total_seconds()), "runs": self.runs}
