"""The daemon behind ``sheetcrm run``: sync on a schedule, for months, unattended.

Why it is built this way:

- APScheduler 3.x fires one job. ``max_instances=1`` and ``coalesce=True`` mean a
  slow run is never overlapped by the next tick and the ticks it missed collapse
  into one. Across processes ``runner.sync`` takes the file lock a manual ``sync``
  takes: a tick that finds it held is skipped and logged, never queued. A
  ``cron`` schedule is read as crontab reads it (``config.crontab_trigger``:
  weekday 0 and 7 are Sunday), not as APScheduler numbers weekdays.
- A signal only sets a flag. The run in progress sees it before its next send
  (``stop`` in ``runner.sync``), still writes back, and the process exits 0. A
  second signal exits at once: the ledger records every send before it leaves, so
  the next start never sends a copy.
- A failing run never ends the daemon. It is logged and the next ticks are skipped
  in a growing, capped number (back-off), so a dead backend is not hammered.
- Only an ``ok`` run is a good run. A run that failed, found a channel down or was
  stopped by the blast-radius guard has stalled sending: the heartbeat is not
  touched, ``/health`` answers 503 saying why and since when, and so does
  ``sheetcrm status`` (from the ledger's run history, which survives restarts).
- The config file is re-read when its content changes, before the next run. The new
  version is adopted only if a run could use it (the file, its schedule, every rule
  and every template a flow sends compile); otherwise it is logged and the previous
  config kept.
- One JSON line per run on stderr (journald keeps it, and logs get shared), the
  ``/health`` body and the status file hold counts and reasons, never customer data
  (row keys, addresses, cell values), and every secret the config holds is masked.
  The rows behind the counts stay in the ledger, where ``sheetcrm status`` reads
  them.
- A status file beside the ledger (``daemon.json``, replaced atomically) tells
  ``sheetcrm status`` whether the daemon is alive and when it runs next.
- ``/health`` listens on 127.0.0.1 and answers only requests addressed to a loopback
  name (``Host: localhost``, ``127.0.0.1``, ``[::1]``): a web page that rebinds its
  own DNS name to 127.0.0.1 gets 403, not the daemon's state.
- Every file it writes beside the ledger is created 0600 and never through a
  symbolic link (``lock.open_private``).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import os
import re
import select
import signal
import sqlite3
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor  # type: ignore[import-untyped]
from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.base import BaseTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]
from pydantic import BaseModel, SecretStr

from sheetcrm.app.runner import RunResult, lock_path, sync
from sheetcrm.config import Config, crontab_trigger, load_config, parse_duration
from sheetcrm.core.rules import compile_rules
from sheetcrm.errors import ConfigError, LockedError, SheetcrmError, TemplateError
from sheetcrm.fsutil import (
    WAIT_ENV,
    RunLock,
    atomic_write,
    lock_held,
    open_private,
    probe,
    refuse_link,
)
from sheetcrm.ledger import RUN_INTERRUPTED, RUN_RUNNING, Ledger
from sheetcrm.model import SendStatus
from sheetcrm.table import Table, open_table
from sheetcrm.templates import Templates

DEFAULT_EVERY = "5m"
JOB_ID = "sync"
MAX_SKIPPED_TICKS = 11  # back-off cap: at every 5m a dead backend is tried about hourly
MISFIRE_GRACE_SECONDS = 900  # a tick that starts late (busy or suspended VPS) still runs
# Send statuses an operator should see.
ATTENTION = (SendStatus.PENDING, SendStatus.UNCERTAIN, SendStatus.RETRY, SendStatus.FAILED)

log = logging.getLogger("sheetcrm.daemon")


# -- schedule ------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """When the daemon syncs: every fixed interval, or on a crontab expression."""

    every: timedelta | None = None
    cron: str | None = None

    @classmethod
    def parse(cls, every: str | None = None, cron: str | None = None,
              seconds: float | None = None, *, where: str = "schedule") -> Schedule:
        """Validate and build; mistakes are ConfigErrors naming ``where``."""
        if cron:
            try:
                crontab_trigger(cron)
            except ValueError as exc:
                raise ConfigError(f"{cron!r} is not a crontab expression like "
                                  f"'*/5 * * * *': {exc}", path=f"{where}.cron") from None
            return cls(cron=cron.strip())
        if seconds is not None:
            interval = timedelta(seconds=seconds)
        else:
            try:
                interval = parse_duration(every or DEFAULT_EVERY)
            except ValueError as exc:
                raise ConfigError(str(exc), path=f"{where}.every") from None
        if interval <= timedelta(0):
            raise ConfigError("the interval must be longer than 0, like 30s, 5m or 1h",
                              path=f"{where}.every")
        return cls(every=interval)

    @classmethod
    def from_config(cls, config: Config) -> Schedule:
        settings = config.model.schedule
        return cls.parse(settings.every, settings.cron)

    def trigger(self, tz: tzinfo) -> BaseTrigger:
        if self.cron:
            return crontab_trigger(self.cron, tz)
        assert self.every is not None
        return IntervalTrigger(seconds=self.every.total_seconds(), timezone=tz)

    def describe(self) -> str:
        if self.cron:
            return f"cron {self.cron}"
        assert self.every is not None
        return f"every {human_duration(self.every)}"

    def next_run(self, last_started: datetime | None, now: datetime, tz: tzinfo) -> datetime:
        """The next run of a daemon whose last run started at ``last_started``.

        For ``status`` when no daemon says: an interval counts from the last run (the
        result may be in the past: the daemon is overdue or not running).
        """
        if self.cron:
            return self.trigger(tz).get_next_fire_time(None, now)
        assert self.every is not None
        return now if last_started is None else last_started + self.every


def human_duration(delta: timedelta) -> str:
    """``timedelta(minutes=90)`` -> ``"1h30m"``; fractions of a second as ``"0.5s"``."""
    total = delta.total_seconds()
    if total != int(total) or total < 1:
        return f"{total:g}s"
    parts, rest = [], int(total)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


def backoff_ticks(failures: int) -> int:
    """Ticks to skip after ``failures`` failed runs in a row: 0, 1, 3, 7, 11, 11, ...

    The first failure is retried on the next tick (a blip); a lasting outage is
    tried ever less often, but at least every MAX_SKIPPED_TICKS + 1 ticks.
    """
    return min(2 ** min(failures - 1, 8) - 1, MAX_SKIPPED_TICKS) if failures > 0 else 0


# -- logging -------------------------------------------------------------------

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s:]+:[^/@\s]+@")


class Redactor:
    """Masks the config's secrets in text about to leave the process (logs, status).

    Secrets are the values of SecretStr settings and of every ``${ENV}`` the config
    file references (a webhook URL from the environment may carry a token), plus
    passwords written into URLs.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    @classmethod
    def for_config(cls, config: Config, env: Mapping[str, str]) -> Redactor:
        found = list(_secret_values(config.model))
        for settings in config.channels.values():
            found.extend(_secret_values(settings))
        with contextlib.suppress(OSError, UnicodeDecodeError):
            text = config.path.read_text(encoding="utf-8")
            found.extend(env[name] for name in _ENV_REF.findall(text) if name in env)
        return cls(found)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return _URL_USERINFO.sub("***@", text)

    def deep(self, value: Any) -> Any:
        """Redact every string inside dicts and lists."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.deep(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.deep(v) for v in value]
        return value


def _secret_values(value: Any) -> Iterator[str]:
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _secret_values(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _secret_values(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _secret_values(item)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, event, message and the record's fields."""

    def __init__(self, redact: Callable[[], Redactor]) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", record.name),
        }
        message = record.getMessage()
        if message:
            data["message"] = message
        data.update(getattr(record, "fields", {}))
        if record.exc_info:
            data["trace"] = self.formatException(record.exc_info)
        return json.dumps(self.redact().deep(data), ensure_ascii=False, default=str)


def setup_logging(redact: Callable[[], Redactor], stream: Any = None) -> logging.Handler:
    """Send sheetcrm's and APScheduler's records to stderr as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(redact))
    for name, level in (("sheetcrm", logging.INFO), ("apscheduler", logging.WARNING)):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    return handler


def emit(event: str, level: int = logging.INFO, message: str = "", **fields: Any) -> None:
    """Log one structured event."""
    log.log(level, message, extra={"event": event, "fields": fields})


# -- files beside the ledger ------------------------------------------------------


def status_path(config: Config) -> Path:
    return config.state_path.with_name("daemon.json")


def daemon_lock_path(config: Config) -> Path:
    return config.state_path.with_name("daemon.lock")


def file_digest(path: Path) -> str | None:
    """sha256 of a file's bytes (None when unreadable): the config's identity."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically, so a reader never sees half a file.

    The file is 0600; a symbolic link at ``path`` (or at the temporary file) is
    refused with StateFileError, never replaced nor written through.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    refuse_link(path)
    text = json.dumps(data, ensure_ascii=False, indent=1, default=str) + "\n"
    atomic_write(path, text.encode("utf-8"))


def read_json(path: Path) -> dict[str, Any] | None:
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


def check_config(config: Config) -> None:
    """What a run needs beyond a valid file: every rule and every template compiles.

    Raises ConfigError naming the key path (and the template file and line).
    """
    compile_rules(config)
    templates = Templates(config.templates_dir)
    checked: set[str] = set()
    for flow_name, flow in config.flows.items():
        for i, step in enumerate(flow.steps):
            variants = [f"{step.template}.{v}" for v in step.variants or ()]
            for name in [step.template, *(v for v in variants if v in templates.names())]:
                if name in checked:
                    continue
                try:
                    templates.check(name)
                except TemplateError as exc:
                    raise ConfigError(str(exc), path=f"flows.{flow_name}.steps[{i}]."
                                      "template") from None
                checked.add(name)


# -- stalled sending ---------------------------------------------------------------


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


class StopFlag:
    """The stop request, set from a signal handler.

    Not a threading.Event: Event.set() takes a lock that the main thread holds for
    a moment inside Event.wait(); a signal arriving then runs the handler on that
    same thread, which waits for the lock forever. A plain attribute has no lock.
    """

    def __init__(self) -> None:
        self._set = False
        # A pipe wakes wait() at once: writing a byte takes no lock either.
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)

    def set(self) -> None:
        self._set = True
        with contextlib.suppress(OSError):
            os.write(self._write, b"!")

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds, returning early when set; True once set."""
        if not self._set:
            select.select([self._read], [], [], timeout)
        return self._set


# -- health endpoint -----------------------------------------------------------------


_LOOPBACK_HOST = re.compile(r"(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?", re.IGNORECASE)


def loopback_host(host: str | None) -> bool:
    """Whether a Host header names this machine's loopback (with or without a port).

    A browser tricked by DNS rebinding sends its own site's name here: refused.
    """
    return bool(host and _LOOPBACK_HOST.fullmatch(host.strip()))


class HealthServer:
    """``GET /health`` on 127.0.0.1: 200 after a good run, 503 while sending is stalled."""

    def __init__(self, port: int, snapshot: Callable[[], dict[str, Any]]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if not loopback_host(self.headers.get("Host")):
                    status, data = 403, {"error": "ask for http://127.0.0.1:PORT/health "
                                         "(only a loopback Host header is answered)"}
                else:
                    data = snapshot()
                    status = 200 if data.get("healthy") else 503
                body = json.dumps(data, ensure_ascii=False, default=str).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # monitors poll often; the run lines are the log

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.2}, daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- the daemon ------------------------------------------------------------------


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
        self._seen_digest = file_digest(options.config_path)
        self._scheduled = (self.schedule, self.config.tz)  # what the scheduler has
        self._clock_origin = time.monotonic()
        self.started_at = datetime.now(UTC)
        self.health: HealthServer | None = None
        self.scheduler = BackgroundScheduler(
            timezone=self.config.tz,
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"max_instances": 1, "coalesce": True,
                          "misfire_grace_time": MISFIRE_GRACE_SECONDS},
        )

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
            self._start_health()
            self.scheduler.add_job(self.tick, self.schedule.trigger(self.config.tz), id=JOB_ID,
                                   next_run_time=datetime.now(self.config.tz))
            self.scheduler.start()
            emit("start", pid=os.getpid(), config=str(self.options.config_path),
                 schedule=self.schedule.describe(), heartbeat=self._heartbeat_path(),
                 health_port=self.health.port if self.health else None)
            self._write_status("running")
            while not self.stop.wait(0.2):
                self._follow_schedule()
            return self._shutdown()

    def _shutdown(self) -> int:
        began = time.monotonic()
        emit("stopping", in_run=self.in_run,
             message="finishing the current send and writing back" if self.in_run else "")
        self.scheduler.shutdown(wait=True)  # waits for the run in progress
        if self.health is not None:
            self.health.stop()
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
                "message": "second signal: exiting without waiting for the run"}
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
            raise ConfigError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}",
                              path="schedule.health_port") from None
        self.health.start()

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
                 message="another run holds the lock; skipped this tick")
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
            self.table = open_table(config)
        return sync(config, now, table=self.table, stop=self.stop.is_set)

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
        trigger = self.schedule.trigger(self.config.tz)
        now = datetime.now(self.config.tz)
        fire = trigger.get_next_fire_time(self._fired_at, now) if self._fired_at else None
        if fire is None or fire < now:  # the run outlasted the interval: coalesced
            fire = trigger.get_next_fire_time(None, now)
        for _ in range(self.skip):
            if fire is None:
                break
            fire = trigger.get_next_fire_time(fire, fire)
        return fire

    # -- config reload ---------------------------------------------------------------

    def _reload_if_changed(self) -> None:
        """Adopt the config file's new content, or keep the old config and say why."""
        path = self.options.config_path
        digest = file_digest(path)
        if digest == self._seen_digest:
            return
        self._seen_digest = digest  # judge each version once, not at every tick
        if digest is None:
            emit("config_rejected", logging.ERROR, error=f"{path} cannot be read",
                 message="keeping the loaded config")
            return
        try:
            config = load_config(path, self.env)
            check_config(config)
            schedule = self.options.schedule or Schedule.from_config(config)
        except Exception as exc:  # ConfigError, or the file vanished mid-read
            error = str(exc) if isinstance(exc, SheetcrmError) else f"{type(exc).__name__}: {exc}"
            emit("config_rejected", logging.ERROR, error=error,
                 message="keeping the loaded config")
            return
        self.config, self.table = config, None  # table settings may have changed
        gc.unfreeze()  # let the old config's objects be collected; frozen again after a run
        self._frozen = False
        self.redactor = Redactor.for_config(config, self.env)
        self.schedule = schedule  # the main thread reschedules if it changed
        emit("config_reloaded", schedule=schedule.describe())

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


# -- sheetcrm status ---------------------------------------------------------------


def attention_sends(ledger: Ledger, limit: int = 20) -> dict[str, Any]:
    """Sends an operator should look at: in flight, uncertain, to retry, failed."""
    marks = ",".join("?" * len(ATTENTION))
    counts = dict(ledger.conn.execute(
        f"SELECT status, COUNT(*) FROM sends WHERE status IN ({marks}) GROUP BY status",
        ATTENTION,
    ).fetchall())
    rows = ledger.conn.execute(
        "SELECT key, flow, step, channel, template, status, attempts, created_at,"
        f" finished_at, detail FROM sends WHERE status IN ({marks})"
        " ORDER BY COALESCE(finished_at, created_at) DESC LIMIT ?", (*ATTENTION, limit),
    ).fetchall()
    names = ("key", "flow", "step", "channel", "template", "status", "attempts",
             "created_at", "finished_at", "detail")
    items = [dict(zip(names, r, strict=True)) for r in rows]
    for item in items:
        item["step"] += 1  # steps are shown 1-based everywhere else
    return {"counts": {s: counts.get(s, 0) for s in ATTENTION}, "items": items}


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
            recent = ledger.last_runs(max(runs, RUNS_SEARCHED))
            stall = Stall.from_ledger(ledger.stalled_runs())
            sends = attention_sends(ledger)
        finally:
            ledger.close()
    if not run_in_progress:
        for run in recent:
            if run["status"] == RUN_RUNNING:
                run["status"] = RUN_INTERRUPTED
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
        "last_runs": recent[:runs],
        "sends": sends,
        "row_errors": _row_errors(recent),
    })


RUNS_SEARCHED = 20  # runs looked through for the last one that read the sheet


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
