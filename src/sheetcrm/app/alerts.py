"""Alerts to the operator: each incident told once when it starts, and once when it ends.

The incidents, and where each is found:

- ``run``: a run failed (``runner.sync`` raised, or the daemon could not open the
  table). The next run that finishes ends it.
- ``channel:NAME``: a channel was down as a whole; ``sending``: the blast-radius
  guard (or a flow change) held a run's sends. Both come from a finished run's
  summary (``app.stall.run_incidents``); a finished run without them ends them.
- ``config``: the daemon rejected a changed config file (``daemon.reload``);
  adopting a later version, or starting on the file, ends it.
- ``events:NAME``: outside events of ``[events.NAME]`` that match no row (a sync
  hands them to ``alert_finished_run``; ``alert_unmatched`` tells them alone).

Why it is built this way:

- The memory is the ledger's (``Ledger.incidents``): an incident, when it began and
  which URLs heard of it survive a restart, and a manual ``sync`` shares them with
  the daemon. So an incident is told when it starts, not at every tick, and once
  more when it ends, to the URLs that heard it start.
- Each URL is remembered by a fingerprint (a hash: the ledger never holds a URL). A
  URL that did not take an alert is tried again at the next observation (the next
  run or tick) while the others are not told twice. An incident that ends before
  anyone heard of it is forgotten quietly.
- Nothing here raises and nothing holds a run for long: a delivery is bounded by
  ``[alerts] timeout``, and one that fails is logged and left for the next
  observation. The ledger is read, the alerts sent, then what was delivered is
  merged in one short transaction: no lock is held while a service answers. (Two
  processes observing one incident at the same instant may both tell it: at least
  once, rather than lost.) When the ledger cannot be written the alerts still go,
  and may then repeat at the next run.
- Every word an alert says is in ``TEXTS`` (marked for the catalogs, translated when
  the alert is written: ``sheetcrm.i18n``), and every
  text passes through the config's ``Redactor`` before it leaves, as does every
  reason a delivery failed. A URL is named by its place (``alerts.urls[1]``).
- Without ``[alerts]`` nothing here opens the ledger or loads apprise.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sheetcrm.alerts import Delivery, deliver, service_name, url_problem
from sheetcrm.app.stall import run_incidents
from sheetcrm.config import Config
from sheetcrm.errors import SheetcrmError
from sheetcrm.i18n import N_, _
from sheetcrm.ledger import Ledger
from sheetcrm.redact import Redactor

log = logging.getLogger("sheetcrm.alerts")

#: What each alert says, by kind of incident: (title, body) when it starts and when it
#: ends. ``{name}`` is the channel or the events' source, ``{reason}`` why, ``{since}``
#: when it began. Every word an alert sends is in this table or in ``FOOTER``.
TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "run": {
        "start": (N_("a run failed"),
                  N_("{reason}\n\nNothing is sent or written back until a run works; it is "
                     "tried again at the next run.")),
        "end": (N_("runs work again"), N_("Runs had failed since {since}.")),
    },
    "channel": {
        "start": (N_("channel {name} is down"),
                  N_("{reason}\n\nIts sends wait for a run that reaches it; no customer is "
                     "failed for it.")),
        "end": (N_("channel {name} works again"),
                N_("It was down since {since}; its waiting sends go out.")),
    },
    "sending": {
        "start": (N_("sending stopped"), "{reason}"),
        "end": (N_("sending resumed"), N_("Sending had stopped since {since}.")),
    },
    "config": {
        "start": (N_("config change rejected"),
                  N_("{reason}\n\nThe daemon goes on with the config it had.")),
        "end": (N_("config accepted"), N_("The config file is in use again (a change had "
                                          "been rejected since {since}).")),
    },
    "events": {
        "start": (N_("events from [events.{name}] match no row"), "{reason}"),
        "end": (N_("events from [events.{name}] are written again"),
                N_("Events had waited for a row since {since}.")),
    },
}
TITLE = "sheetcrm: {title}"
FOOTER = "\n\n— {config}, {at}"

MAX_REASON = 1500  # characters of a reason an alert carries


@dataclass
class AlertReport:
    """What one observation told: alerts delivered, and those that were not (masked)."""

    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


# -- the hooks -----------------------------------------------------------------------


def alert_failed_run(config: Config, now: datetime, error: BaseException, *,
                     env: Mapping[str, str] | None = None) -> AlertReport | None:
    """A run failed: the ``run`` incident starts (or goes on). Never raises."""
    reason = str(error) if isinstance(error, SheetcrmError) else f"{type(error).__name__}: {error}"
    return _observe(config, now, {"run": reason}, lambda key: False, env=env)


def alert_finished_run(config: Config, now: datetime, summary: Mapping[str, Any], *,
                       unmatched: Mapping[str, str] | None = None,
                       env: Mapping[str, str] | None = None) -> AlertReport | None:
    """A run finished: its channels down and its stopped sending start or go on; a failed
    run, a channel or a stop it no longer shows has ended. ``unmatched``: the outside
    events that wait for a row, as ``alert_unmatched`` takes them (a sync's are told in
    this same observation, so an alert owed is tried once per run). Never raises."""
    found = {**run_incidents(summary),
             **{f"events:{name}": why for name, why in (unmatched or {}).items()}}
    return _observe(config, now, found,
                    lambda key: (key in ("run", "sending") or key.startswith("channel:")
                                 or (key.startswith("events:") and unmatched is not None)),
                    env=env)


def alert_config(config: Config, now: datetime, rejected: str | None = None, *,
                 env: Mapping[str, str] | None = None) -> AlertReport | None:
    """The daemon judged its config file: ``rejected`` says why it refused a change
    (``config`` is then the config it keeps), None that ``config`` is in use. Never
    raises."""
    return _observe(config, now, {"config": rejected} if rejected else {},
                    lambda key: key == "config", env=env)


def alert_unmatched(config: Config, now: datetime, waiting: Mapping[str, str], *,
                    env: Mapping[str, str] | None = None,
                    ledger: Ledger | None = None) -> AlertReport | None:
    """Outside events that match no row: one incident per ``[events.NAME]`` source.

    ``waiting`` maps each source whose events wait for a row to why, in words that
    leave the machine (counts and reasons, never a row key), e.g.
    ``{"pay": "3 event(s) wait: their keys are on no row"}``. Call it once per run
    with every source (an empty mapping when none waits): a source it no longer
    names has ended its incident. ``ledger``: an open ledger to use (the run's).
    Never raises.
    """
    found = {f"events:{name}": why for name, why in waiting.items()}
    return _observe(config, now, found, lambda key: key.startswith("events:"), env=env,
                    ledger=ledger)


def check_urls(config: Config) -> list[tuple[str, str, str]]:
    """``check``: (level, where, message) for each alert URL: the service apprise reaches
    with it, or why apprise cannot use it (its scheme named, never the rest)."""
    settings = config.model.alerts
    found = []
    for i, url in enumerate(settings.url_values() if settings else []):
        name = service_name(url)
        found.append(("info", f"alerts.urls[{i}]",
                      _("alerts go to {name} (through apprise)", name=name))
                     if name else ("error", f"alerts.urls[{i}]", url_problem(url)))
    return found


def open_incidents(ledger: Ledger) -> list[dict[str, Any]]:
    """The incidents kept (for ``status``): why, since when, how many URLs heard of it,
    and why the last alert was not delivered."""
    shown = []
    for key, data in sorted(ledger.incidents().items()):
        incident = _Incident.load(data)
        if incident is not None:
            shown.append({"incident": key, "reason": incident.reason, "since": incident.since,
                          "ended_at": incident.ended, "told": len(incident.told),
                          "not_delivered": incident.error})
    return shown


# -- the incidents -------------------------------------------------------------------


@dataclass
class _Incident:
    reason: str
    since: str  # ISO, the run clock
    told: list[str]  # fingerprints of the URLs that heard it start (and not yet end)
    ended: str | None = None  # ISO, when it ended; then ``told`` are owed the end
    error: str = ""  # why the last alerts about it were not delivered (masked)

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> _Incident | None:
        try:
            datetime.fromisoformat(data["since"])
            return cls(str(data["reason"]), data["since"], [str(f) for f in data["told"]],
                       data.get("ended"), str(data.get("error") or ""))
        except (KeyError, TypeError, ValueError):
            return None  # unreadable: as if it had never been told

    def dump(self) -> dict[str, Any]:
        return {"reason": self.reason, "since": self.since, "told": self.told,
                "ended": self.ended, "error": self.error}


def fingerprint(url: str) -> str:
    """How the ledger remembers a URL without holding it."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def _advance(book: dict[str, _Incident], found: Mapping[str, str],
             ends: Callable[[str], bool], at: str) -> None:
    """Start or go on with each incident found; end those in scope that were not."""
    for key, reason in found.items():
        incident = book.get(key)
        if incident is None:
            book[key] = _Incident(reason[:MAX_REASON], at, [])
        else:  # an incident that ended and is back: whoever heard the end hears it again
            incident.reason, incident.ended = reason[:MAX_REASON], None
    for key, incident in list(book.items()):
        if key not in found and ends(key) and incident.ended is None:
            incident.ended = at
            if not incident.told:
                del book[key]


@dataclass(frozen=True)
class _Due:
    key: str
    starting: bool
    index: int  # the URL's place in [alerts] urls
    mark: str  # its fingerprint


def _due(book: Mapping[str, _Incident], prints: list[str]) -> list[_Due]:
    """The alerts owed: a start to each URL that has not heard it, an end to each that did."""
    places: dict[str, int] = {}
    for i, mark in enumerate(prints):
        places.setdefault(mark, i)  # a URL listed twice is told once
    due = []
    for key, incident in book.items():
        starting = incident.ended is None
        due += [_Due(key, starting, i, mark) for mark, i in places.items()
                if (mark in incident.told) != starting]
    return due


# -- one observation -----------------------------------------------------------------


def _observe(config: Config, now: datetime, found: Mapping[str, str],
             ends: Callable[[str], bool], *, env: Mapping[str, str] | None = None,
             ledger: Ledger | None = None) -> AlertReport | None:
    """Advance the incidents in scope, tell what is owed, keep what was told."""
    if config.model.alerts is None:
        return None
    redact = Redactor.for_config(config, env if env is not None else os.environ)
    try:
        return _tell(config, now, found, ends, redact, ledger)
    except Exception as exc:  # a fault in the alerts themselves must not fail the run
        error = redact(f"{type(exc).__name__}: {exc}")
        log.error(_("the alerts could not be worked out: {error}", error=error),
                  extra={"event": "alert_error", "fields": {"error": error}})
        return AlertReport(failed=[error])


def _tell(config: Config, now: datetime, found: Mapping[str, str],
          ends: Callable[[str], bool], redact: Redactor, ledger: Ledger | None
          ) -> AlertReport:
    settings = config.model.alerts
    assert settings is not None
    urls = settings.url_values()
    prints = [fingerprint(url) for url in urls]
    at = now.isoformat(timespec="seconds")
    with _Store(config, ledger) as store:
        book = store.read()
        _advance(book, found, ends, at)
        report, results = AlertReport(), []
        for due in _due(book, prints):
            title, body = _text(config, due.key, book[due.key], due.starting, now)
            delivery = deliver(urls[due.index], redact(title), redact(body),
                               failure=due.starting, timeout=settings.timeout)
            label = f"alerts.urls[{due.index}]"
            name = service_name(urls[due.index])
            label += f" ({name})" if name else ""
            what = redact(repr(title.removeprefix(TITLE.format(title=""))))
            fields = {"incident": due.key, "alert": "start" if due.starting else "end"}
            if delivery.ok:
                report.sent.append(_("{alert} to {to}", alert=what, to=label))
                log.info(_("alert {alert} sent to {to}", alert=what, to=label), extra={
                    "event": "alert_sent", "fields": {**fields, "to": label}})
            else:
                delivery = Delivery(False, redact(f"{label}: {delivery.error}"))
                report.failed.append(_("{alert} not delivered to {to}", alert=what,
                                       to=delivery.error))
                log.warning(_("alert {alert} not delivered to {to}; tried again at the next "
                              "run", alert=what, to=delivery.error),
                            extra={"event": "alert_not_delivered",
                                   "fields": {**fields, "error": delivery.error}})
            results.append((due, delivery))
        store.merge(found, ends, at, results, prints)
    return report


def _text(config: Config, key: str, incident: _Incident, starting: bool, now: datetime
          ) -> tuple[str, str]:
    """The title and body of an alert, from ``TEXTS``."""
    kind, _colon, name = key.partition(":")
    title, body = TEXTS.get(kind, TEXTS["run"])["start" if starting else "end"]
    since = datetime.fromisoformat(incident.since).astimezone(config.tz)
    values = {"name": name, "reason": incident.reason, "since": f"{since:%Y-%m-%d %H:%M %Z}"}
    footer = FOOTER.format(config=config.path, at=f"{now.astimezone(config.tz):%Y-%m-%d %H:%M %Z}")
    return TITLE.format(title=_(title, **values)), _(body, **values) + footer


class _Store:
    """The incidents in the ledger (the run's own, or opened here), or, when it cannot
    be opened, in memory for this observation only."""

    def __init__(self, config: Config, ledger: Ledger | None) -> None:
        self.config, self.given, self.ledger = config, ledger, ledger
        self.problem = ""

    def __enter__(self) -> _Store:
        if self.ledger is None:
            try:
                self.ledger = Ledger.open(self.config.state_path)
            except (SheetcrmError, sqlite3.Error, OSError) as exc:
                self.problem = str(exc)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.ledger is not None and self.given is None:
            with suppress(sqlite3.Error):
                self.ledger.close()

    def read(self) -> dict[str, _Incident]:
        if self.ledger is None:
            return {}
        try:
            return _book(self.ledger.incidents())
        except sqlite3.Error as exc:
            self.problem = str(exc)
            return {}

    def merge(self, found: Mapping[str, str], ends: Callable[[str], bool], at: str,
              results: list[tuple[_Due, Delivery]], prints: list[str]) -> None:
        """Record what this observation changed, on the incidents as they are now."""
        if self.ledger is None or self.problem:
            log.warning(_("the alerts' memory cannot be kept ({reason}): the alerts may be "
                          "repeated at the next run", reason=self.problem or _("no ledger")),
                        extra={"event": "alert_state_lost", "fields": {}})
            return
        try:
            with self.ledger.transaction():
                before = self.ledger.incidents()
                book = _book(before)
                _advance(book, found, ends, at)
                _record(book, results, prints)
                after = {key: incident.dump() for key, incident in book.items()}
                self.ledger.save_incidents({key: after.get(key) for key in before.keys() | after
                                            if before.get(key) != after.get(key)})
        except sqlite3.Error as exc:
            log.warning(_("the alerts' memory cannot be kept ({reason}): the alerts may be "
                          "repeated at the next run", reason=exc),
                        extra={"event": "alert_state_lost", "fields": {}})


def _book(stored: Mapping[str, Any]) -> dict[str, _Incident]:
    book = {}
    for key, data in stored.items():
        incident = _Incident.load(data)
        if incident is not None:
            book[key] = incident
    return book


def _record(book: dict[str, _Incident], results: list[tuple[_Due, Delivery]],
            prints: list[str]) -> None:
    """Mark who heard what; an ended incident every current URL heard the end of goes."""
    errors: dict[str, list[str]] = {}
    for due, delivery in results:
        incident = book.get(due.key)
        if incident is None or (incident.ended is None) != due.starting:
            continue  # it changed meanwhile: the next observation sees to it
        if not delivery.ok:
            errors.setdefault(due.key, []).append(delivery.error)
        elif due.starting and due.mark not in incident.told:
            incident.told.append(due.mark)
        elif not due.starting and due.mark in incident.told:
            incident.told.remove(due.mark)
    for key, incident in list(book.items()):
        incident.error = "; ".join(errors.get(key, []))
        if incident.ended is not None:
            incident.told = [p for p in incident.told if p in prints]
            if not incident.told:
                del book[key]
