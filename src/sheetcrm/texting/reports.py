"""Delivery reports from Solapi and NHN Cloud, read into ``DeliveryReport``.

Both providers answer a send with "accepted" and tell the outcome later. Only the
reading is here (no I/O): the endpoint that receives a webhook, or a query of the
provider's API, hands the parsed JSON to ``parse_reports`` and applies each report
to the ledger (``Ledger.apply_delivery``).

- **Solapi** posts a list of ``{eventDataId, data: {messageId, statusCode,
  statusMessage, type, dateReceived, …}}`` (the message-list API returns the same
  message objects). ``4000`` is delivered; ``2000`` and ``3000`` are still on the
  way; any other code is a failure with its code and words.
- **NHN Cloud** posts ``{event: "MESSAGE_RESULT_UPDATE", hooks: [{requestId,
  recipientSeq, resultCode, …}]}``; the single-message query answers ``{message:
  {requestId, recipientSeq, resultCode, resultCodeName, resendStatus, …}}``.
  ``1000`` is delivered. Otherwise the SMS substitute decides: ``RSC04`` delivered,
  ``RSC05`` failed, ``RSC02``/``RSC03`` still on the way; a hook without the
  substitute's status is not final (query the message: ``NhnChannel.query``), and
  ``RSC01`` (no substitute) is a failure.

A message id is Solapi's ``messageId``, and NHN's ``requestId:recipientSeq``.
Anything that does not look like a report is skipped, never an error: a provider
may post other events to the same URL.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sheetcrm.i18n import _
from sheetcrm.model import DeliveryReport, DeliveryState

SOLAPI_DELIVERED = "4000"
SOLAPI_ON_THE_WAY = frozenset({"2000", "3000"})
NHN_DELIVERED = "1000"
KST = ZoneInfo("Asia/Seoul")
NHN_SUBSTITUTE = {"RSC04": DeliveryState.DELIVERED, "RSC05": DeliveryState.FAILED,
                  "RSC02": None, "RSC03": None}


def nhn_message_id(request_id: str, recipient_seq: Any) -> str:
    return f"{request_id}:{recipient_seq}"


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _items(payload: Any, *keys: str) -> Iterable[dict[str, Any]]:
    """The objects of a payload: itself, a list of them, or the list under one of ``keys``."""
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, dict)]
    if isinstance(payload, dict):
        for key in keys:
            inner = payload.get(key)
            if isinstance(inner, list):
                return [p for p in inner if isinstance(p, dict)]
            if isinstance(inner, dict):
                return [inner]
        return [payload]
    return []


def _reason(code: str, words: Any) -> str:
    text = " ".join(str(words or "").split())
    return f"{code} {text}".strip()[:200]


def parse_solapi_reports(payload: Any) -> list[DeliveryReport]:
    reports = []
    for item in _items(payload, "messageList"):
        data: dict[str, Any] = item["data"] if isinstance(item.get("data"), dict) else item
        message_id, code = data.get("messageId"), str(data.get("statusCode") or "")
        if not isinstance(message_id, str) or not message_id or not code:
            continue
        state: DeliveryState | None
        if code == SOLAPI_DELIVERED:
            state = DeliveryState.DELIVERED
        elif code in SOLAPI_ON_THE_WAY:
            state = None
        else:
            state = DeliveryState.FAILED
        reason = _reason(code, data.get("statusMessage"))
        if state is DeliveryState.DELIVERED and data.get("replacement"):
            reason += " " + _("(as {kind}, substituted for the AlimTalk)",
                              kind=data.get("type") or "SMS")
        at = _when(data.get("dateReceived")) or _when(data.get("dateProcessed"))
        reports.append(DeliveryReport("solapi", message_id, state, reason, at))
    return reports


def parse_nhn_reports(payload: Any) -> list[DeliveryReport]:
    reports = []
    for item in _items(payload, "hooks", "message"):
        request_id, seq = item.get("requestId"), item.get("recipientSeq")
        code = str(item.get("resultCode") or "")
        if not isinstance(request_id, str) or not request_id or seq is None or not code:
            continue
        reason = _reason(code, item.get("resultCodeName"))
        state: DeliveryState | None
        if code == NHN_DELIVERED:
            state = DeliveryState.DELIVERED
        elif "resendStatus" not in item:
            state, reason = None, _("AlimTalk not delivered ({reason}); the SMS substitute's "
                                    "outcome is not in this report", reason=reason)
        else:
            resend = str(item.get("resendStatus") or "RSC01")
            state = NHN_SUBSTITUTE.get(resend, DeliveryState.FAILED)
            if resend == "RSC04":
                reason = _("AlimTalk not delivered ({reason}); delivered by SMS/LMS instead",
                           reason=reason)
            elif resend == "RSC05":
                sms = str(item.get("resendResultCode") or "")
                reason = _("AlimTalk not delivered ({reason}); the SMS substitute failed too",
                           reason=reason) + (f" ({sms})" if sms else "")
        at = _when(str(item.get("receiveDate") or "").replace(" ", "T"))
        if at is not None and at.tzinfo is None:  # NHN Cloud writes Korean time, no offset
            at = at.replace(tzinfo=KST)
        reports.append(DeliveryReport("nhn", nhn_message_id(request_id, seq), state, reason,
                                      at))
    return reports


PARSERS = {"solapi": parse_solapi_reports, "nhn": parse_nhn_reports}


def parse_reports(provider: str, payload: Any) -> list[DeliveryReport]:
    """The reports in a provider's payload (``provider``: ``solapi`` or ``nhn``)."""
    try:
        parse = PARSERS[provider]
    except KeyError:
        raise ValueError(_("unknown provider {provider!r}; expected one of {names}",
                           provider=provider, names=", ".join(PARSERS))) from None
    return parse(payload)
