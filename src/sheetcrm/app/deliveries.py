"""Asking NHN Cloud what became of the AlimTalks it has not reported on for good.

NHN Cloud's delivery webhook carries the AlimTalk's result code but not what became
of the SMS/LMS sent in its place, so an AlimTalk that did not arrive stays
``accepted`` after its webhook (and stays so when no webhook is set up at all). Each
``sync`` asks NHN Cloud's single-message API (``NhnChannel.query``) about those sends
before it reads the ledger, so the run that asks also writes a failure into the
customer's error cell. Why it is bounded the way it is:

- **Not too soon:** only sends older than ``SETTLE_AFTER`` (the provider needs a few
  minutes, a substitute SMS longer); **not forever:** none older than
  ``GIVE_UP_AFTER`` (a message NHN Cloud cannot settle in a day is left ``accepted``,
  and ``status`` shows it so); **not too many:** at most ``LIMIT`` per channel and run,
  the oldest first, so a backlog costs a few runs, not one long one.
- **Through the shared retry:** each query goes through ``sheetcrm.http``'s
  ``RetryAdapter`` (429 and 5xx retried with the channel's ``backoff``, up to
  ``ATTEMPTS`` tries within its ``timeout``: a query is a GET, safe to repeat). A
  channel that still fails is left for the next run, and the sync goes on: the
  reports are a view of what happened, never a reason to stop sending.
- Applied through ``Ledger.apply_delivery``, the one way a report changes a send: a
  report the webhook already brought changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sheetcrm.config import Config
from sheetcrm.config.channels import NhnSettings
from sheetcrm.errors import ChannelError
from sheetcrm.ledger import Applied, Ledger

log = logging.getLogger("sheetcrm.deliveries")
LIMIT = 50  # messages asked about per channel and run
SETTLE_AFTER = timedelta(minutes=5)
GIVE_UP_AFTER = timedelta(days=1)
ATTEMPTS = 3  # per query: a GET, safe to repeat (the channel's retries are about sends)


@dataclass
class FollowUp:
    """What asking one channel came to."""

    asked: int = 0
    applied: int = 0  # accepted -> delivered or failed
    pending: int = 0  # no final outcome yet: asked again by a later run
    stopped: str = ""  # why the channel was not asked further this run


def follow_up_deliveries(config: Config, ledger: Ledger, now: datetime) -> dict[str, FollowUp]:
    """Ask each NHN Cloud channel about its sends still awaiting a final report."""
    results: dict[str, FollowUp] = {}
    for name, settings in config.channels.items():
        if not isinstance(settings, NhnSettings):
            continue
        waiting = list(ledger.awaiting_report(name, LIMIT, sent_after=now - GIVE_UP_AFTER,
                                              sent_before=now - SETTLE_AFTER))
        if waiting:
            results[name] = _ask(name, settings, waiting, ledger, now)
            log.info("", extra={"event": "delivery_follow_up",
                                "fields": {"channel": name, **vars(results[name])}})
    return results


def _ask(name: str, settings: NhnSettings, message_ids: list[str], ledger: Ledger,
         now: datetime) -> FollowUp:
    # Imported here: every sync asks whether there is anything to follow up, and
    # requests is 4 MB and 50 ms a run with no NHN channel does not need.
    import requests

    from sheetcrm.channels.nhn import NhnChannel
    from sheetcrm.http import RetryAdapter, RetryPolicy

    result = FollowUp()
    session = requests.Session()
    # Mounted on the API's own address, so it is the adapter chosen over the channel's
    # (a longer prefix wins): every query goes through the shared retry policy.
    session.mount(settings.endpoint, RetryAdapter(RetryPolicy(
        attempts=ATTEMPTS, base_delay=settings.backoff, max_wait=settings.timeout,
        deadline=settings.timeout)))
    channel = NhnChannel(name, settings, session=session)
    try:
        for message_id in message_ids:
            result.asked += 1
            try:
                report = channel.query(message_id)
            except ChannelError as exc:
                result.stopped = str(exc)
                break
            if report is None or report.state is None:
                result.pending += 1
            elif ledger.apply_delivery(report, now) is Applied.APPLIED:
                result.applied += 1
    finally:
        channel.close()
        session.close()
    return result
