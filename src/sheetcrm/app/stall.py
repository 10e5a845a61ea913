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
from sheetcrm.i18n import _


def stall_reason(status: str, summary: Mapping[str, Any]) -> str:
    """Why a run that was not ``ok`` sent nothing (or not all): from its summary."""
    if status == "sending_stopped":
        return str(summary.get("sending_stopped") or _("sending stopped"))
    if status == "channel_down":
        down = [why for key, why in run_incidents(summary).items() if key.startswith("channel:")]
        return "; ".join(down) or _("a channel is down")
    return str(summary.get("error") or status)


def run_incidents(summary: Mapping[str, Any]) -> dict[str, str]:
    """What a finished run found stalling sending, each on its own, with why.

    ``channel:NAME`` for each channel down, ``sending`` when the blast-radius guard
    (or a flow change) held the run's sends. The alerts (``app.alerts``) tell each
    of them once; a finished run that no longer shows one has ended it.
    """
    found = {f"channel:{name}": _("channel {name} down: {why}", name=name, why=why)
             for name, why in (summary.get("channels_down") or {}).items()}
    if summary.get("sending_stopped"):
        found["sending"] = str(summary["sending_stopped"])
    return found


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
