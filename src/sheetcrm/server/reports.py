"""Delivery reports of text messages at ``POST /e/NAME`` (``source = "solapi"`` / ``"nhn"``).

Solapi and NHN Cloud answer a send with "accepted" and post the outcome later. A
report turns the send's ``accepted`` into ``delivered`` or ``failed`` in the ledger
(``Ledger.apply_delivery``, once), and the next run writes a failure into the
customer's error cell. Why it is built this way:

- **Proved as each provider allows.** Solapi does not sign its webhooks: the URL
  given to Solapi carries a secret the operator made up (``/e/NAME?secret=…``),
  compared in constant time; and a report is only a hint of which message to look
  up: the outcome applied is what Solapi's message list (``GET /messages/v4/list``,
  signed with the channel's API key) says of it, so an altered or forged report
  cannot make a failure a delivery or the reverse. NHN Cloud sends the value typed in
  its console in ``X-Toast-Webhook-Signature``, compared in constant time too; what
  it reports delivered (``1000``) is applied, and what it does not settle (an AlimTalk
  not delivered whose SMS substitute's fate the webhook does not carry) is left to
  the next ``sync``, which asks NHN Cloud (``app.deliveries``).
- **Applied once.** A report repeated (a provider's retry, a replay) or arriving after
  the send was settled changes nothing and is answered 200, counted like a repeated
  event. A report naming a message that is not one of the channel's sends awaiting a
  report is answered 200 and counted: the provider must not retry it forever.
- **Bounded.** Messages already settled, or unknown, are never looked up; the lookups
  of one request share ``DEADLINE`` seconds, with the shared retry policy and a fresh
  signature on every attempt. When Solapi cannot be asked, or its list does not show
  yet what its webhook says, the answer is 503: Solapi posts the report again later,
  and what was applied meanwhile is not applied twice.

Only counts and fixed reasons are kept (``status``), never the request's content.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlencode

import requests

from sheetcrm.config import Config
from sheetcrm.config.channels import SolapiSettings
from sheetcrm.config.hearing import EventSettings, report_channel
from sheetcrm.http import RetryPolicy
from sheetcrm.i18n import N_
from sheetcrm.model import DeliveryReport, DeliveryState
from sheetcrm.server.sources import DUPLICATE, Refused
from sheetcrm.texting import parse_nhn_reports, parse_solapi_reports
from sheetcrm.texting.signature import authorization, iso_date

SIGNATURE_HEADER = "x-toast-webhook-signature"
NHN_RESULTS = "MESSAGE_RESULT_UPDATE"
TIMEOUT = (3.05, 5.0)  # seconds: connect, read (one lookup)
DEADLINE = 8.0  # seconds for all the lookups of one request, retries included
LIST_PATH = "/messages/v4/list"
UNKNOWN_MESSAGE = N_("ignored: not a message of this channel awaiting a report")
NOT_AT_PROVIDER = N_("ignored: message not found at the provider")
NOT_A_REPORT = N_("ignored: not a message result")


class DeliveryStore(Protocol):
    """What taking reports needs of the ledger (``sheetcrm.ledger.Ledger`` is one: its
    ``apply_delivery`` answers ``applied``, ``repeated``, ``pending`` or ``unknown``)."""

    def delivery_of(self, message_id: str) -> tuple[str, str | None] | None: ...

    def apply_delivery(self, report: DeliveryReport, now: datetime) -> str: ...


@dataclass
class Taken:
    """What one request's reports came to, for the answer and the counts."""

    applied: int = 0
    pending: int = 0
    ignored: dict[str, int] = field(default_factory=dict)  # reason -> reports

    def ignore(self, reason: str) -> None:
        self.ignored[reason] = self.ignored.get(reason, 0) + 1

    def answer(self) -> str:
        """``2 stored, 1 not final yet`` (or ``nothing stored``)."""
        parts = [f"{self.applied} stored"] if self.applied else []
        if self.pending:
            parts.append(f"{self.pending} not final yet")
        parts += [f"{n} {reason}" for reason, n in self.ignored.items()]
        return ", ".join(parts) or "nothing stored"


def take(settings: EventSettings, raw: bytes, headers: Mapping[str, str],
         query: Mapping[str, str], store: DeliveryStore, config: Config, now: datetime) -> Taken:
    """Prove, read and apply the delivery reports of one request; Refused if it fails.

    ``headers`` are keyed by lower-case names; ``query`` is the URL's query.
    """
    channel = report_channel(settings, config.channels)
    if settings.source == "solapi":
        _same(query.get("secret", ""), settings, "secret missing or wrong",
              N_("the webhook URL given to Solapi must end in ?secret=… (the secret in [events])"))
        return _solapi(_json(raw), channel, config, store, now)
    _same(headers.get(SIGNATURE_HEADER, ""), settings, "signature does not match",
          N_("X-Toast-Webhook-Signature must be the signature typed in NHN Cloud's console"))
    return _nhn(_json(raw), channel, store, now)


def _same(given: str, settings: EventSettings, reason: str, detail: str) -> None:
    assert settings.secret is not None  # required for report sources (config)
    expected = settings.secret.get_secret_value().encode("utf-8")
    if not given or not hmac.compare_digest(expected, given.strip().encode("utf-8")):
        raise Refused(401, reason, detail)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested thousands deep
        raise Refused(400, N_("body is not JSON")) from None


def _solapi(payload: Any, channel: str, config: Config, store: DeliveryStore,
            now: datetime) -> Taken:
    if not isinstance(payload, list | dict):
        raise Refused(400, N_("no delivery report in the body"))
    reports = parse_solapi_reports(payload)
    if not reports:
        raise Refused(400, N_("no delivery report in the body"),
                      "expected Solapi's list of {eventDataId, data: {messageId, statusCode}}")
    taken = Taken()
    settings = config.channels[channel]
    assert isinstance(settings, SolapiSettings)  # report_channel checked its type
    lookup = _SolapiLookup(settings)
    lagging = False
    try:
        for hint in reports:
            if not _awaited(hint, channel, store, taken):
                continue
            if hint.state is None:  # not final by the webhook's own word: nothing to ask
                taken.pending += 1
                continue
            confirmed = lookup.report(hint.message_id)
            if confirmed is None:
                taken.ignore(NOT_AT_PROVIDER)
            elif confirmed.state is None:
                lagging = True  # the list does not show it yet: Solapi will post it again
            else:
                _apply(confirmed, store, taken, now)
    finally:
        lookup.close()
    if lagging:
        raise Refused(503, N_("report not final at the provider yet"),
                      "Solapi's message list does not show it yet; post it again later")
    return taken


def _nhn(payload: Any, channel: str, store: DeliveryStore, now: datetime) -> Taken:
    if not isinstance(payload, dict):
        raise Refused(400, N_("body is not a JSON object"))
    if payload.get("event") != NHN_RESULTS:
        taken = Taken()
        taken.ignore(NOT_A_REPORT)  # NHN Cloud posts template reviews to the same URL
        return taken
    reports = parse_nhn_reports(payload.get("hooks"))
    if not reports:
        raise Refused(400, N_("no delivery report in the body"),
                      "expected hooks[] with requestId, recipientSeq and resultCode")
    taken = Taken()
    for report in reports:
        if not _awaited(report, channel, store, taken):
            continue
        if report.state is None:
            taken.pending += 1  # the next sync asks NHN Cloud what became of it
        else:
            _apply(report, store, taken, now)
    return taken


def _awaited(report: DeliveryReport, channel: str, store: DeliveryStore, taken: Taken) -> bool:
    """Whether the report is about one of the channel's sends still awaiting a report;
    otherwise counted (already settled: a repeat; else unknown) and passed over."""
    found = store.delivery_of(report.message_id)
    if found is None or found[0] != channel or found[1] is None:
        taken.ignore(UNKNOWN_MESSAGE)
        return False
    if found[1] != DeliveryState.ACCEPTED:
        taken.ignore(DUPLICATE)
        return False
    return True


def _apply(report: DeliveryReport, store: DeliveryStore, taken: Taken, now: datetime) -> None:
    if store.apply_delivery(report, now) == "applied":
        taken.applied += 1
    else:  # settled meanwhile by another request (a concurrent retry)
        taken.ignore(DUPLICATE)


class _SolapiLookup:
    """Solapi's message list, asked about one message at a time with the channel's key."""

    def __init__(self, settings: SolapiSettings) -> None:
        self.settings = settings
        self.session = requests.Session()
        self.started = time.monotonic()

    def report(self, message_id: str) -> DeliveryReport | None:
        """The message's report as Solapi's list shows it; None when Solapi does not
        know the message. Refused(503) when Solapi cannot be asked in time."""
        left = DEADLINE - (time.monotonic() - self.started)
        if left <= 0:
            raise Refused(503, N_("provider unreachable"),
                          "no time left to ask Solapi; it will post the report again")
        query = urlencode({"criteria": "messageId", "cond": "eq", "value": message_id,
                           "limit": 1})
        url = f"{self.settings.endpoint}{LIST_PATH}?{query}"
        policy = RetryPolicy(attempts=3, base_delay=0.5, max_wait=2.0, deadline=left)
        try:
            response = policy.run(lambda: self.session.get(
                url, headers=self._headers(), timeout=TIMEOUT, allow_redirects=False))
        except requests.RequestException:
            raise Refused(503, N_("provider unreachable"),
                          "could not reach Solapi's API; it will post the report again") from None
        listed = _listed(response)
        found = [r for r in parse_solapi_reports(listed) if r.message_id == message_id]
        return found[0] if found else None

    def _headers(self) -> dict[str, str]:
        """Signed anew for every attempt: Solapi refuses a signature it has seen."""
        s = self.settings
        return {"Authorization": authorization(
            s.api_key.get_secret_value(), s.api_secret.get_secret_value(),
            iso_date(time.time()), secrets.token_hex(16))}

    def close(self) -> None:
        self.session.close()


def _listed(response: requests.Response) -> list[dict[str, Any]]:
    """The messages of a message-list answer (``messageList`` maps ids to messages)."""
    if response.status_code in (401, 403):
        raise Refused(503, N_("provider refused our api_key"),
                      "Solapi refused the channel's api_key; check it")
    try:
        answer = response.json() if response.status_code == 200 else None
    except ValueError:
        answer = None
    listed = answer.get("messageList") if isinstance(answer, dict) else None
    if not isinstance(listed, dict):
        raise Refused(503, N_("provider unreachable"),
                      f"Solapi's API answered {response.status_code} without a message list")
    return [m for m in listed.values() if isinstance(m, dict)]
