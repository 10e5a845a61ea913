"""Whom to believe: each provider's way of proving a webhook is its own.

Every check runs over the raw bytes, before any parsing:

- **standard** (Standard Webhooks, PortOne V2 and many others): ``webhook-id``,
  ``webhook-timestamp`` (within 5 minutes), ``webhook-signature`` (``v1,<base64>``,
  several during a key rotation), signed as the ``standardwebhooks`` package (the
  scheme's reference implementation) signs; the timestamp is judged by the endpoint's
  clock. The event id is ``webhook-id``.
- **tally**: ``Tally-Signature`` is base64(HMAC-SHA256(secret, body)); no timestamp,
  so a replay is caught by the event id alone: ``data.responseId``.
- **stripe**: ``Stripe-Signature: t=…,v1=…`` (several v1 while a secret rolls),
  HMAC-SHA256 over ``"{t}.{body}"`` with the secret as given, ``t`` within 300
  seconds. Written here (a dozen lines) rather than pulling in Stripe's SDK. The
  event id is the event's ``id``.
- **toss** and **portone** (V1) do not sign: the webhook only says which payment to
  look up, and the payment as the provider's API returns it is what counts
  (``payments``). Its key and values are read from that answer, never from the
  request, which anybody could have sent.

A request that fails is ``Refused`` with the status to answer and a reason from a
fixed set of words (counted for ``status``, so never the request's own content).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from standardwebhooks.webhooks import Webhook

from sheetcrm.config.hearing import EventSettings
from sheetcrm.i18n import N_

TOLERANCE = 300  # seconds a signed timestamp may be off (Standard Webhooks, Stripe)
MAX_ID = 200  # characters of an event id
DUPLICATE = N_("already stored (a retry or a replay)")  # counted, answered 200


class Refused(Exception):
    """A webhook not taken: answer ``status``; ``reason`` is counted, ``detail`` shown."""

    def __init__(self, status: int, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.status, self.reason, self.detail = status, reason, detail


@dataclass(frozen=True)
class Heard:
    """A webhook that proved itself: its provider's event id, and what paths read."""

    event_id: str
    payload: dict[str, Any]


def verify(settings: EventSettings, raw: bytes, headers: Mapping[str, str], now: datetime
           ) -> Heard:
    """Check ``raw`` as a signed ``settings.source`` signs it; raise Refused if it fails.

    ``headers`` are keyed by lower-case names.
    """
    if settings.source == "standard":
        return _standard(settings, raw, headers, now)
    if settings.source == "tally":
        return _tally(settings, raw, headers)
    assert settings.source == "stripe"
    return _stripe(settings, raw, headers, now)


def _secret(settings: EventSettings) -> str:
    assert settings.secret is not None  # required for signed sources (config)
    return settings.secret.get_secret_value()


def _standard(settings: EventSettings, raw: bytes, headers: Mapping[str, str],
              now: datetime) -> Heard:
    wanted = ("webhook-id", "webhook-timestamp", "webhook-signature")
    given = {name: headers.get(name, "") for name in wanted}
    if not all(given.values()):
        raise Refused(401, N_("signature headers missing"),
                      "expected webhook-id, webhook-timestamp and webhook-signature")
    seconds = _fresh(given["webhook-timestamp"], now)
    # The package's sign() is the scheme's reference; its verify() would judge the
    # timestamp by the machine's clock, not the endpoint's, so the freshness check
    # above and the comparison below are done here.
    try:
        text = raw.decode("utf-8")
        expected = Webhook(_secret(settings)).sign(
            given["webhook-id"], datetime.fromtimestamp(seconds, UTC), text)
    except (ValueError, binascii.Error):
        raise Refused(401, N_("signature does not match")) from None
    offered = [sig.partition(",") for sig in given["webhook-signature"].split()]
    if not any(version == "v1" and hmac.compare_digest(
            expected.encode("ascii"), f"v1,{sig}".encode()) for version, _, sig in offered):
        raise Refused(401, N_("signature does not match"))
    return Heard(event_id(given["webhook-id"]), json_body(raw))


def _tally(settings: EventSettings, raw: bytes, headers: Mapping[str, str]) -> Heard:
    given = headers.get("tally-signature", "")
    if not given:
        raise Refused(401, N_("signature headers missing"), "expected Tally-Signature")
    expected = base64.b64encode(_hmac(_secret(settings), raw)).decode("ascii")
    if not hmac.compare_digest(expected.encode("ascii"), given.strip().encode("utf-8")):
        raise Refused(401, N_("signature does not match"))
    payload = json_body(raw)
    data = payload.get("data")
    response_id = data.get("responseId") if isinstance(data, dict) else None
    return Heard(event_id(response_id), payload)


def _stripe(settings: EventSettings, raw: bytes, headers: Mapping[str, str],
            now: datetime) -> Heard:
    parts: dict[str, list[str]] = {}
    for item in headers.get("stripe-signature", "").split(","):
        name, _, value = item.strip().partition("=")
        parts.setdefault(name, []).append(value)
    timestamp, signatures = parts.get("t", [""])[0], parts.get("v1", [])
    if not timestamp or not signatures:
        raise Refused(401, N_("signature headers missing"), "expected Stripe-Signature t=…,v1=…")
    _fresh(timestamp, now)
    expected = _hmac(_secret(settings), timestamp.encode("utf-8") + b"." + raw).hex()
    if not any(hmac.compare_digest(expected.encode("ascii"), s.encode("utf-8"))
               for s in signatures):
        raise Refused(401, N_("signature does not match"))
    payload = json_body(raw)
    return Heard(event_id(payload.get("id")), payload)


def _hmac(secret: str, data: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), data, hashlib.sha256).digest()


def _fresh(timestamp: str, now: datetime) -> int:
    """A signed timestamp (whole seconds) within ``TOLERANCE`` of now, by the endpoint's
    clock: an old request replayed is refused."""
    text = timestamp.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 12):
        raise Refused(401, N_("timestamp is not a number"))
    seconds = int(text)
    if abs(now.timestamp() - seconds) > TOLERANCE:
        raise Refused(401, N_("timestamp too old or too new"),
                      f"more than {TOLERANCE} s off; is this machine's clock right?")
    return seconds


def json_body(raw: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested thousands deep
        raise Refused(400, N_("body is not JSON")) from None
    if not isinstance(payload, dict):
        raise Refused(400, N_("body is not a JSON object"))
    return payload


def form_or_json(raw: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    """JSON, or a form (``imp_uid=…&status=paid``, as older 아임포트 notifications post)."""
    if "application/x-www-form-urlencoded" in headers.get("content-type", ""):
        try:
            form = parse_qs(raw.decode("utf-8"), strict_parsing=True)
        except (ValueError, UnicodeDecodeError):
            raise Refused(400, N_("body is not a form")) from None
        return {name: values[-1] for name, values in form.items()}
    return json_body(raw)


def event_id(value: Any) -> str:
    """The provider's event id as text; missing or absurd ones are refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise Refused(400, N_("no event id"), "the provider's event id is missing")
    if len(value) > MAX_ID:
        raise Refused(400, N_("event id too long"))
    return value.strip()
