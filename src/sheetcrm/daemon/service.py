"""The daemon itself: ``sync`` on a schedule until a signal, for months, unattended.

Why it is built this way (the package docstring has the whole picture):

- A signal only sets a flag (``StopFlag``). The run in progress sees it before its
  next send, still writes back, and the process exits 0. A second signal exits at
  once: the ledger records every send before it leaves, so the next start never
  sends a copy.
- A failing run never ends the daemon. It is logged and the next ticks are skipped
  in a growing, capped number (``scheduler.backoff_ticks``).
- Only an ``ok`` run is a good run: the heartbeat is touched after it alone, and a
  run that failed, found a channel down or was stopped by the blast-radius guard
  starts or extends a ``Stall``, which ``/health`` and the status file report.
- The config is re-read when its file changes (``reload.ConfigFile``), and the job
  rescheduled from the main thread if the schedule or time zone changed.
- After the first run what is alive is frozen out of the garbage collector's sight,
  so memory and collection time stay flat however many runs follow.
- With ``[server]`` the endpoint (``app.serve.Served``) answers on threads of its own
  in the same process, so one systemd unit does everything; it binds before the
  first run (a taken port stops the start with exit 2) and stops after the last.
- With ``[alerts]`` the operator hears of each incident once (``app.alerts``): the
  runs tell theirs (``runner.sync``); the daemon adds a config change it rejected,
  and the end of that incident when a version (or the file it started on) is in
  use. Each is observed on the job's thread, one after the other.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import sqlite3
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from sheetcrm.app.alerts import alert_config, alert_failed_run
from sheetcrm.app.runner import RunResult, Watch, sync
from sheetcrm.app.schedule import Schedule
from sheetcrm.app.serve import Served
from sheetcrm.app.stall import Stall, stall_reason
from sheetcrm.app.status import daemon_lock_path, status_path
from sheetcrm.config import Config, load_config
from sheetcrm.daemon.health import HealthServer
from sheetcrm.daemon.logs import emit, log
from sheetcrm.daemon.reload import ConfigFile, check_config
from sheetcrm.daemon.scheduler import JOB_ID, backoff_ticks, new_scheduler, next_fire
from sheetcrm.daemon.statusfile import write_json
from sheetcrm.daemon.stopflag import StopFlag
from sheetcrm.errors import ConfigError, LockedError, SheetcrmError
from sheetcrm.fsutil import WAIT_ENV, RunLock, open_private
from sheetcrm.i18n import _
from sheetcrm.ledger import Ledger
from sheetcrm.redact import Redactor
from sheetcrm.table import Table, open_table


@dataclass
class DaemonOptions:
    config_path: Path
    schedule: Schedule | None = None  # from the command line; None: the config's [schedule]
    heartbeat: Path | None = None  # overrides [schedule] heartbeat
    health_port: int | None = None  # overrides [schedule] health_port
    start_at: datetime | None = None  # --now: a clock that starts here, then runs in real time


class Daemon:
    """Runs ``sync`` on a schedule until a signal; see the module docstring for why."""

    def __init__(self, options: DaemonOptions, *, config: Config | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.options = options
        self.env = env if env is not None else os.environ
        self.config = config or load_config(options.config_path, self.env)
        check_config(self.config)  # a broken rule or template: exit 2, not failed runs
        self.schedule = options.schedule or Schedule.from_config(self.config)
        self.redactor = Redactor.for_config(self.config, self.env)
        self.stop = StopFlag()
        self.table: Table | None = None  # kept across runs (a Sheets client, a cached tab)
        self.failures = 0  # failed runs in a row
        self.skip = 0  # ticks still to skip (back-off)
        self.ticks = self.runs = 0
        self.in_run = False
        self._frozen = False
        self.last: dict[str, Any] = {}  # the last run: status, time, counts (never rows)
        self.stall: Stall | None = None  # runs not ok since the last ok one
        self.last_ok_at: datetime | None = None
        self.next_run: datetime | None = None
        self._fired_at: datetime | None = None  # when the current or last tick began
        self.config_file = ConfigFile(options.config_path, self.env)
        self._config_judged = False  # alerts: the config in use not yet observed as such
        self._scheduled = (self.schedule, self.config.tz)  # what the scheduler has
        self._clock_origin = time.monotonic()
        self.started_at = datetime.now(UTC)
        self.health: HealthServer | None = None
        self.served: Served | None = None  # the endpoint, with [server]
        self.scheduler = new_scheduler(self.config.tz)

    # -- lifecycle ---------------------------------------------------------------

    def run_forever(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the exit code (0 after a clean stop).

        A second daemon on the same config is refused (LockedError, exit 5): two
        would only take turns at the run lock.
        """
        lock = RunLock(daemon_lock_path(self.config), wait=1.0, what="sheetcrm daemon")
        with lock:
            # A tick never waits for the run lock (beyond a moment): it skips, so a
            # stop request is never stuck behind a manual sync.
            os.environ.pop(WAIT_ENV, None)
            self._recall_stall()
            self._install_signal_handlers()
            self._start_endpoint()
            self._start_health()
            self.scheduler.add_job(self.tick, self.schedule.trigger(self.config.tz), id=JOB_ID,
                                   next_run_time=datetime.now(self.config.tz))
            self.scheduler.start()
            emit("start", pid=os.getpid(), config=str(self.options.config_path),
                 schedule=self.schedule.describe(), heartbeat=self._heartbeat_path(),
                 health_port=self.health.port if self.health else None,
                 endpoint=self.served.listen if self.served else None)
            self._write_status("running")
            while not self.stop.wait(0.2):
                self._follow_schedule()
            return self._shutdown()

    def _shutdown(self) -> int:
        began = time.monotonic()
        emit("stopping", in_run=self.in_run,
             message=_("finishing the current send and writing back") if self.in_run else "")
        self.scheduler.shutdown(wait=True)  # waits for the run in progress
        if self.health is not None:
            self.health.stop()
        if self.served is not None:
            self.served.stop()
            emit("endpoint_stopped", answered=self.served.answered())
        self.next_run = None
        self._write_status("stopped")
        emit("stopped", runs=self.runs, seconds=round(time.monotonic() - began, 3))
        return 0

    def _install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """First signal: ask for a graceful stop. Second: leave now (the ledger is safe).

        Only sets a flag (logging here could interleave with a line being written);
        the exit-now line is one raw write.
        """
        if not self.stop.is_set():
            self.stop.set()
            return
        line = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "level": "warning", "event": "exit_now", "signal": signal.Signals(signum).name,
                "message": _("second signal: exiting without waiting for the run")}
        os.write(2, (json.dumps(line) + "\n").encode())
        os._exit(128 + signum)

    def _start_health(self) -> None:
        port = self.options.health_port
        if port is None:
            port = self.config.model.schedule.health_port
        if port is None:
            return
        try:
            self.health = HealthServer(port, self.snapshot)
        except OSError as exc:
            raise ConfigError(_("cannot listen on 127.0.0.1:{port}: {problem}", port=port,
                                problem=exc.strerror or exc),
                              path="schedule.health_port") from None
        self.health.start()

    def _start_endpoint(self) -> None:
        """With [server]: answer unsubscribe links (and the other routes) beside the runs."""
        if self.config.server is None:
            return
        self.served = Served(self.config, self.now)  # a taken port: ConfigError, exit 2
        self.served.start()

    def _follow_schedule(self) -> None:
        """Reschedule after a reload changed the schedule or the time zone.

        Done from the main thread: the job must not call into the scheduler, whose
        shutdown holds its locks while waiting for the job to end.
        """
        wanted = (self.schedule, self.config.tz)
        if wanted != self._scheduled:
            self.scheduler.reschedule_job(JOB_ID, trigger=wanted[0].trigger(wanted[1]))
            self._scheduled = wanted

    # -- one tick ------------------------------------------------------------------

    def tick(self) -> None:
        """One scheduled run. Never raises: no failure may end the scheduler's job."""
        if self.stop.is_set():
            return
        self.ticks += 1
        self._fired_at = datetime.now(self.config.tz)
        try:
            if self.skip:
                self.skip -= 1
                emit("backoff", ticks_left=self.skip, consecutive_failures=self.failures)
            else:
                self._run_once()
            self.next_run = self._next_fire()
            self._write_status("running")
        except Exception:  # a bug in the bookkeeping itself: say so, keep serving
            log.exception("", extra={"event": "tick_error", "fields": {}})

    def _recall_stall(self) -> None:
        """After a restart, a stall that began before it still counts from its start."""
        try:
            ledger = Ledger.open_readonly(self.config.state_path)
            try:
                self.stall = Stall.from_ledger(ledger.stalled_runs())
            finally:
                ledger.close()
        except (SheetcrmError, sqlite3.Error) as exc:  # the first run will say more
            emit("ledger_unreadable", logging.WARNING, error=self.redactor(str(exc)))

    def _run_once(self) -> None:
        self._reload_if_changed()
        self.in_run = True
        started = time.monotonic()
        now = self.now()
        try:
            result = self._sync(now)
        except LockedError as exc:
            emit("run", logging.WARNING, status="busy", error=str(exc),
                 message=_("another run holds the lock; skipped this tick"))
        except Exception as exc:  # any failure: log, back off, keep serving
            self._failed(exc, now, time.monotonic() - started)
        else:
            self._finished(result, time.monotonic() - started)
        finally:
            self.in_run = False
            self.runs += 1
            self._collect_garbage()

    def _collect_garbage(self) -> None:
        """Free each run's cyclic garbage (compiled rules, templates) before the next.

        After the first run, what is alive (modules, caches, the daemon) is moved out
        of the collector's sight with ``gc.freeze``: a full collection then costs
        0.1 ms instead of 25 ms, and memory stays flat however many runs follow.
        """
        gc.collect()
        if not self._frozen:
            gc.freeze()
            self._frozen = True

    def _sync(self, now: datetime) -> RunResult:
        config = self.config
        if self.table is None:
            try:
                self.table = open_table(config)
            except Exception as exc:  # a failed run, though sync never started
                alert_failed_run(config, now, exc, env=self.env)
                raise
        return sync(config, now, table=self.table, watch=Watch(stop=self.stop.is_set))

    def now(self) -> datetime:
        """The real clock, or with ``--now`` a clock that started there."""
        if self.options.start_at is None:
            return datetime.now(self.config.tz)
        return self.options.start_at + timedelta(seconds=time.monotonic() - self._clock_origin)

    def _finished(self, result: RunResult, seconds: float) -> None:
        """A run that went through: ``ok``, or stalled (a channel down, sending stopped)."""
        summary, status, now = result.summary(), result.status, result.plan.now
        self.last = {"status": status, "at": _utc_now(), "summary": summary}
        if status == "ok":
            self.failures = 0
            self.stall = None
            self.last_ok_at = now
            emit("run", status=status, duration=round(seconds, 3), **summary)
            self._touch_heartbeat()
            return
        fields: dict[str, Any] = {}
        if status == "channel_down":
            # The run worked but could not deliver (login refused, server down): back
            # off like a failed run rather than knock on a closed door every tick.
            self.failures += 1
            self.skip = backoff_ticks(self.failures)
            fields = {"consecutive_failures": self.failures, "backoff_ticks": self.skip}
        else:
            # The blast-radius guard held every send: each run re-plans (tags still
            # update) and holds them again until the operator decides.
            self.failures = 0
        stall = self._stalled(status, stall_reason(status, summary), now)
        emit("run", logging.ERROR, status=status, duration=round(seconds, 3),
             reason=stall.reason, stalled_since=stall.report(now)["since"], **fields,
             **summary)

    def _failed(self, exc: Exception, now: datetime, seconds: float) -> None:
        self.failures += 1
        self.skip = backoff_ticks(self.failures)
        self.table = None  # reopen next time: a cached client may be what broke
        error = self.redactor(f"{type(exc).__name__}: {exc}")
        stall = self._stalled("failed", error, now)
        fields: dict[str, Any] = {"status": "failed", "error": error,
                                  "consecutive_failures": self.failures,
                                  "backoff_ticks": self.skip, "duration": round(seconds, 3),
                                  "stalled_since": stall.report(now)["since"]}
        if not isinstance(exc, SheetcrmError):  # a bug: say where
            fields["trace"] = "".join(traceback.format_exception(exc)[-4:])
        emit("run", logging.ERROR, **fields)
        self.last = {"status": "failed", "at": _utc_now(), "error": error}

    def _stalled(self, status: str, reason: str, now: datetime) -> Stall:
        """One more run that was not ok: the stall starts here or goes on."""
        if self.stall is None:
            self.stall = Stall(status, reason, now)
        else:
            self.stall.status, self.stall.reason = status, reason
            self.stall.runs += 1
        return self.stall

    def _next_fire(self) -> datetime | None:
        """When the next run will start, back-off included (for status and /health)."""
        return next_fire(self.schedule.trigger(self.config.tz), self._fired_at, self.skip,
                         datetime.now(self.config.tz))

    # -- config reload ---------------------------------------------------------------

    def _reload_if_changed(self) -> None:
        """Adopt the config file's new content, or keep the old config (logged why)."""
        new = self.config_file.new_version(self.options.schedule)
        rejection = self.config_file.rejection
        if new is not None or rejection or not self._config_judged:
            self._config_judged = True
            alert_config(new[0] if new else self.config, self.now(), rejection, env=self.env)
        if new is None:
            return
        config, schedule = new
        self.config, self.table = config, None  # table settings may have changed
        gc.unfreeze()  # let the old config's objects be collected; frozen again after a run
        self._frozen = False
        self.redactor = Redactor.for_config(config, self.env)
        self.schedule = schedule  # the main thread reschedules if it changed
        emit("config_reloaded", schedule=schedule.describe())
        if (self.served is not None or config.server is not None) and (
                self.served is None or not self.served.follow(config)):
            emit("endpoint_restart_needed", logging.WARNING,
                 message=_("[server] listen, rate_limit or state changed (or [server] was "
                           "added or removed): restart sheetcrm run to apply it"))

    # -- files and health ------------------------------------------------------------

    def _heartbeat_path(self) -> Path | None:
        if self.options.heartbeat is not None:
            return self.options.heartbeat
        name = self.config.model.schedule.heartbeat
        return self.config.resolve(name) if name else None

    def _touch_heartbeat(self) -> None:
        """After an ok run only: the file's modification time is the last good run."""
        path = self._heartbeat_path()
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with os.fdopen(open_private(path, os.O_WRONLY | os.O_TRUNC), "w",
                           encoding="utf-8") as f:
                f.write(_utc_now() + "\n")
        except (OSError, SheetcrmError) as exc:
            emit("heartbeat_failed", logging.WARNING, error=str(exc))

    def snapshot(self, state: str = "running") -> dict[str, Any]:
        """What the status file and /health report: counts and reasons, no rows."""
        now = self.now()
        return {
            "pid": os.getpid(),
            "state": state,
            "config": str(self.options.config_path),
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "updated_at": _utc_now(),
            "schedule": self.schedule.describe(),
            "next_run_at": self.next_run.isoformat(timespec="seconds") if self.next_run else None,
            "ticks": self.ticks,
            "runs": self.runs,
            "consecutive_failures": self.failures,
            "backoff_ticks": self.skip,
            "healthy": self.failures == 0 and self.stall is None,
            "stalled": self.redactor.deep(self.stall.report(now)) if self.stall else None,
            "last_ok_at": self.last_ok_at.isoformat(timespec="seconds")
            if self.last_ok_at else None,
            "last": self.redactor.deep(self.last),
        }

    def _write_status(self, state: str) -> None:
        try:
            write_json(status_path(self.config), self.snapshot(state))
        except (OSError, SheetcrmError) as exc:
            emit("status_file_failed", logging.WARNING, error=str(exc))


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
