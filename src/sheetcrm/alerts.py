"""Alerts to the operator, delivered through apprise: one URL, one message, one answer.

apprise (a well-kept library) speaks Slack, Discord, Telegram, email, a plain JSON
POST and a hundred more services, each behind a URL; sheetcrm never writes a
service's protocol itself. This adapter only delivers: what counts as an incident,
whom it was told to and what it says are the use case's (``sheetcrm.app.alerts``).

Why it is built this way:

- One apprise object per URL, so the caller learns which URL took the alert and
  which did not, and tells each exactly once.
- A URL nearly always holds its service's token, so nothing here returns one: a URL
  is named by its place in the config and apprise's name for its service
  (``alerts.urls[1] (Slack)``). The reason a delivery failed is the last warning
  apprise gave for it; the caller masks it with the config's secrets before it goes
  anywhere.
- apprise's own log lines never leave the process (its logger does not propagate):
  the reasons are taken from the result of each call instead, and masked.
- ``timeout`` bounds one delivery, connect to answer, so an alert service that
  does not answer cannot hold a run for long; a delivery never raises.
- apprise is imported on first use: commands that send no alert do not load it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sheetcrm.config.alerts import url_scheme
from sheetcrm.i18n import _

_QUIET = False


def _apprise() -> Any:
    """The apprise module, its logger kept inside the process."""
    global _QUIET
    import apprise

    if not _QUIET:
        logging.getLogger("apprise").propagate = False
        _QUIET = True
    return apprise


def service_name(url: str) -> str:
    """apprise's name for the service behind ``url`` (``Slack``), or "" if it has none."""
    plugin = _apprise().Apprise.instantiate(url)
    return str(getattr(plugin, "service_name", "") or "") if plugin is not None else ""


def url_problem(url: str) -> str:
    """Why apprise cannot use ``url`` ("" when it can), naming its scheme, never the rest."""
    if service_name(url):
        return ""
    scheme = url_scheme(url)
    if not scheme:
        return _("this is not a URL apprise reads (it needs a scheme, like slack://)")
    return _("apprise does not understand this {scheme}:// URL: the scheme is unknown, or the "
             "URL misses a part its service needs (see the service's page in the apprise "
             "wiki, github.com/caronc/apprise/wiki)", scheme=scheme)


@dataclass(frozen=True)
class Delivery:
    """What became of one alert to one URL."""

    ok: bool
    error: str = ""  # apprise's reason, unmasked: the caller masks it


def deliver(url: str, title: str, body: str, *, failure: bool, timeout: float) -> Delivery:
    """Send one alert to one URL. Never raises.

    ``failure`` marks an incident (apprise colours it as one where the service can);
    otherwise the alert says that one ended.
    """
    apprise = _apprise()
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return Delivery(False, url_problem(url))
    kind = apprise.NotifyType.FAILURE if failure else apprise.NotifyType.SUCCESS
    notifier = apprise.Apprise()
    notifier.add(plugin)
    try:
        result = notifier.notify(body=body, title=title, notify_type=kind, timeout=timeout)
    except Exception as exc:  # apprise handles its services' errors; this is a last guard
        return Delivery(False, f"{type(exc).__name__}: {exc}")
    if result:
        return Delivery(True)
    return Delivery(False, _reason(result))


def _reason(result: Any) -> str:
    """The last warning apprise logged for the one service of a call, or its status."""
    messages: list[str] = []
    for service in getattr(result, "results", ()):
        messages.extend(entry.message for entry in service.logs()
                        if entry.level in ("WARNING", "ERROR", "CRITICAL"))
    if messages:
        return messages[-1].strip().rstrip(".")
    status = getattr(getattr(result, "status", None), "name", "")
    if status:
        return _("not delivered ({status})", status=status.lower())
    return _("not delivered")
