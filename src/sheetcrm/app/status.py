"""What ``sheetcrm status`` shows: the daemon, the last runs, the next run, the
incidents alerted about, the rule set in force (with ``[rules]``, the one kept in the
sheet's tabs that a run last accepted, and an edit waiting for a confirmation), the
sends that need attention, the outside events waiting or turned away, the operator's
test sends (apart from customers' counts), and the last run's row errors.

Read without changing any file: the ledger is opened read-only, the daemon's lock
only probed, its status file only read. The daemon (``sheetcrm.daemon``) writes the
files beside the ledger; they are named here, below it, because this report reads
them. The rows behind the counts come from the ledger, never from the daemon's
status file or log, which hold counts and reasons only. Every secret the config
holds is masked in the report.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sheetcrm.app.alerts import open_incidents
from sheetcrm.app.runner import lock_path
from sheetcrm.app.schedule import Schedule
from sheetcrm.app.stall import Stall
from sheetcrm.config import Config
from sheetcrm.fsutil import lock_held, probe
from sheetcrm.ledger import Ledger
from sheetcrm.model import DeliveryState, EventKind, SendStatus
from sheetcrm.redact import Redactor

# Send statuses an operator should see.
ATTENTION = (SendStatus.PENDING, SendStatus.UNCERTAIN, SendStatus.RETRY, SendStatus.FAILED)
RUNS_SEARCHED = 20  # runs looked through for the last one that read the sheet


# -- the daemon's files beside the ledger -------------------------------------------


def status_path(config: Config) -> Path:
    """``daemon.json``: what the daemon last said about itself (replaced atomically)."""
    return config.state_path.with_name("daemon.json")


def daemon_lock_path(config: Config) -> Path:
    """Held by a running ``sheetcrm run`` for as long as it lives."""
    return config.state_path.with_name("daemon.lock")


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object file, or None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def daemon_alive(config: Config) -> bool:
    """Whether a ``sheetcrm run`` holds this config's daemon lock right now.

    Probing the lock (not a pid) cannot be fooled by a reused pid. The file is only
    opened for reading, never created, so ``status`` stays read-only.
    """
    return lock_held(daemon_lock_path(config))


# -- the report ------------------------------------------------------------------------


def attention_sends(ledger: Ledger, limit: int = 20) -> dict[str, Any]:
    """Sends an operator should look at: in flight, uncertain, to retry, failed."""
    items = [send._asdict() for send in ledger.latest_sends(ATTENTION, limit)]
    for item in items:
        item["step"] += 1  # steps are shown 1-based everywhere else
    return {"counts": ledger.count_sends(ATTENTION), "items": items}


def outside_events(ledger: Ledger, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """``[events.NAME]`` webhooks: stored and waiting per name, why they wait (as the
    last run that read the sheet found), and what was turned away or ignored.

    Counts and reasons only: never a key or anything a request held.
    """
    counts = ledger.event_counts(EventKind.EXTERNAL)
    waiting = {name: left for name, (_, left) in counts.items() if left}
    why: dict[str, str] = next((run["summary"]["events_waiting_why"] for run in runs
                                if "events_waiting_why" in (run.get("summary") or {})), {})
    return {"stored": {name: total for name, (total, _) in counts.items()},
            "waiting": waiting,
            "waiting_why": {name: text for name, text in why.items() if name in waiting},
            "refused": ledger.refusals()}


def delivery_section(ledger: Ledger, limit: int = 20) -> dict[str, Any]:
    """Text messages' delivery as the providers reported it: counts, the latest failures."""
    items = [d._asdict() for d in ledger.latest_deliveries(DeliveryState.FAILED, limit)]
    for item in items:
        item["step"] += 1
    return {"counts": {str(k): n for k, n in ledger.count_deliveries().items()},
            "failed": items}


def sent_tests(ledger: Ledger, limit: int = 5) -> dict[str, Any]:
    """The operator's test sends (``test-send``): counts by outcome and the latest ones."""
    items = [t._asdict() for t in ledger.latest_test_sends(limit)]
    for item in items:
        item["step"] += 1
    return {"counts": ledger.count_test_sends(), "items": items}


def rules_section(config: Config, ledger: Ledger) -> dict[str, Any] | None:
    """The rule set in force as the ledger recorded it when a run accepted it (its
    tags, flows and templates by name), the tabs holding it with ``[rules]``, and an
    edit that waits for a confirmation; None before the first run."""
    accepted = ledger.rules_in_force()
    if accepted is None:
        return None
    body = json.loads(accepted.body)
    pending = ledger.pending_rules()
    return {"in_force": accepted.hash, "accepted_at": accepted.accepted_at,
            "tabs": {str(kind): tab for kind, tab in config.rule_tabs.items()},
            **{kind: sorted(body.get(kind) or {}) for kind in ("tags", "flows", "templates")},
            "pending": pending._asdict() if pending else None}


def status_report(config: Config, now: datetime, *, runs: int = 5,
                  env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Everything ``sheetcrm status`` shows, read without changing any file.

    A run the ledger still calls ``running`` while no process holds the run lock was
    killed mid-way: it is shown ``interrupted`` (the next run records it so). The
    lock is probed around the reading, so a run cannot start or end unseen meanwhile.
    """
    with probe(lock_path(config)) as run_in_progress:
        ledger = Ledger.open_readonly(config.state_path)
        try:
            recent = ledger.last_runs(max(runs, RUNS_SEARCHED),
                                      none_in_progress=not run_in_progress)
            stall = Stall.from_ledger(ledger.stalled_runs())
            alerts = open_incidents(ledger)
            sends = attention_sends(ledger)
            events = outside_events(ledger, recent)
            deliveries = delivery_section(ledger)
            tests = sent_tests(ledger)
            rules = rules_section(config, ledger)
        finally:
            ledger.close()
    recorded = read_json(status_path(config)) or {}
    daemon = _daemon_section(config, recorded)
    last = recent[0] if recent else None
    return Redactor.for_config(config, env if env is not None else os.environ).deep({
        "config": str(config.path),
        "state": str(config.state_path),
        "daemon": daemon,
        "schedule": daemon.get("schedule") or Schedule.from_config(config).describe(),
        "next_run_at": _next_run(config, daemon, last, now),
        "stalled": stall.report(now) if stall else None,
        "alerts": alerts,
        "rules": rules,
        "last_runs": recent[:runs],
        "sends": sends,
        "events": events,
        "deliveries": deliveries,
        "test_sends": tests,
        "row_errors": _row_errors(recent),
    })


def _daemon_section(config: Config, recorded: dict[str, Any]) -> dict[str, Any]:
    """Whether the daemon runs, and what its status file last said."""
    alive = daemon_alive(config)
    if alive:
        state = "running"
    elif recorded:
        state = "stopped" if recorded.get("state") == "stopped" else "not running (died)"
    else:
        state = "never started"
    keys = ("pid", "started_at", "updated_at", "schedule", "next_run_at",
            "consecutive_failures", "backoff_ticks", "last_ok_at")
    section = {"state": state, **{k: recorded[k] for k in keys if k in recorded}}
    last = recorded.get("last") or {}
    if last:
        section["last"] = {k: last[k] for k in ("status", "at", "error") if k in last}
    return section


def _next_run(config: Config, daemon: dict[str, Any], last: dict[str, Any] | None,
              now: datetime) -> str | None:
    if daemon["state"] == "running":
        return daemon.get("next_run_at")
    started = datetime.fromisoformat(last["started_at"]) if last else None
    return Schedule.from_config(config).next_run(started, now, config.tz).isoformat(
        timespec="seconds")


def _row_errors(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The row errors of the last run that read the sheet, as the ledger keeps them.

    The ledger holds a sample (the first ``RunResult.details`` keeps) with each row's
    key and message; the log, /health and the status file only ever hold the count.
    """
    for run in runs:
        summary = run.get("summary") or {}
        if "row_errors" in summary:
            return {"count": summary["row_errors"],
                    "items": summary.get("row_error_samples", []),
                    "items_from": run["started_at"], "run": run["id"]}
    return {"count": 0, "items": [], "items_from": None, "run": None}
