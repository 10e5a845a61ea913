"""The solapi channel: AlimTalk (with SMS/LMS in its place when it cannot be delivered)
or plain SMS/LMS, through Solapi's message API v4.

Why it is built this way:

- **Signed on every attempt.** Solapi authenticates each request with
  ``Authorization: HMAC-SHA256 apiKey=…, date=…, salt=…, signature=…``, the signature
  being HMAC-SHA256(api_secret, date + salt) in hex. A signature may be used once
  (``DuplicatedSignature``) and the date must be within 15 minutes of Solapi's clock
  (``RequestTimeTooSkewed``), so the header is made anew, with a fresh random salt,
  for each attempt, retries included (``provider.JsonPoster``); the header itself is
  ``texting.signature``'s, shared with the endpoint that looks reports up.
- **One message per request,** to ``POST /messages/v4/send-many/detail`` (what the
  official SDK uses): its answer lists the message as accepted (``messageList``,
  ``statusCode`` 2000) or refused (``failedMessageList``) with Solapi's code.
- **Accepted is not delivered.** 2000 means Solapi took the message; the delivery
  report comes later (``texting.reports``). The send is recorded as ``accepted``
  with Solapi's ``messageId``, which the report names.
- **Whose fault.** A refusal that is about this customer (a blocked number, an 080
  opt-out, a number no phone has) fails this customer's step with Solapi's words; one
  that is true of every message (the key, the clock, this server's IP, the sender
  number, the balance, the Kakao channel or template) takes the channel down with
  what to fix. 429 and 502/503/504 are retried; they say the message was not taken.
- Solapi has no idempotency key: a retry happens only when the answer says the
  message was not taken, and a lost answer makes the send uncertain, never re-sent.

The API key and secret are ``SecretStr`` and appear in no message.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import requests

from sheetcrm.channels.provider import (
    JsonPoster,
    check_recipient,
    json_body,
    refused,
    what_came,
)
from sheetcrm.config.channels import SolapiSettings
from sheetcrm.errors import ChannelError
from sheetcrm.i18n import N_, _
from sheetcrm.model import Delivery, Message
from sheetcrm.texting import sms_type
from sheetcrm.texting.signature import authorization, iso_date

SEND_PATH = "/messages/v4/send-many/detail"
BALANCE_PATH = "/cash/v1/balance"
ACCEPTED = "2000"
#: Answers that say the request was not taken: retried.
RETRY_STATUSES = frozenset({408, 429, 502, 503, 504})

#: Solapi codes true of every message, and what the operator should do about each.
CHANNEL_CODES = {
    "1020": N_("the account or API key is not valid: check api_key and api_secret"),
    "1030": N_("the Solapi balance is too low: top it up"),
    "2230": N_("the Solapi balance is too low: top it up"),
    "1041": N_("the Kakao channel (pf_id) is not valid: check pf_id"),
    "3101": N_("the Kakao channel (pf_id) is not valid: check pf_id"),
    "3106": N_("the Kakao channel (pf_id) is not valid: check pf_id"),
    "1042": N_("the AlimTalk template id is not valid: check the channel's templates"),
    "3105": N_("the AlimTalk template is not registered: check the channel's templates"),
    "1043": N_("the template's text differs from the one Kakao approved: make them match"),
    "3103": N_("the template's text differs from the one Kakao approved: make them match"),
    "1062": N_("the sender number is not registered: register it in Solapi (발신번호 등록) or "
            "fix sender"),
    "2062": N_("the sender number is not registered: register it in Solapi (발신번호 등록) or "
            "fix sender"),
    "2063": N_("the Solapi account is blocked: contact Solapi"),
}

#: Authentication refusals (HTTP 401/403 ``errorCode``) and their fixes.
AUTH_ERRORS = {
    "InvalidAPIKey": N_("api_key is not a valid Solapi API key: check it (Solapi, API Key 관리)"),
    "SignatureDoesNotMatch": N_("api_secret does not belong to api_key: check it"),
    "RequestTimeTooSkewed": N_("this machine's clock is more than 15 minutes off: set it right "
                            "(e.g. timedatectl set-ntp true) and run again"),
    "DuplicatedSignature": N_("Solapi saw this request's signature before: another program may "
                           "be sending with the same key at the same moment; run again"),
}


class SolapiChannel:
    """Sends each message in its own signed request; reports it ``accepted``."""

    redelivery_safe = False

    def __init__(self, name: str, settings: SolapiSettings, *,
                 session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time,
                 jitter: Callable[[], float] = random.random) -> None:
        self.name = name
        self.settings = settings
        self._clock = clock  # wall time, for the signature's date
        self._poster = JsonPoster("Solapi", settings, retry_statuses=RETRY_STATUSES,
                                  session=session, sleep=sleep, jitter=jitter)
        self._where = self._poster.where

    @classmethod
    def from_settings(cls, name: str, settings: SolapiSettings, *, base_dir: Path
                      ) -> SolapiChannel:
        """The channel for ``[channels.<name>]`` (no file is involved: ``base_dir`` unused)."""
        return cls(name, settings)

    def _headers(self) -> dict[str, str]:
        s = self.settings
        auth = authorization(s.api_key.get_secret_value(), s.api_secret.get_secret_value(),
                             iso_date(self._clock()), secrets.token_hex(16))
        return {"Authorization": auth, "Content-Type": "application/json"}

    def request_body(self, message: Message) -> dict[str, Any]:
        """The JSON Solapi gets for this message (one message in ``messages``)."""
        s = self.settings
        item: dict[str, Any] = {"to": check_recipient(message, self._where), "from": s.sender}
        alimtalk = (message.payload or {}).get("alimtalk")
        if s.mode == "alimtalk":
            if not isinstance(alimtalk, dict):
                raise ChannelError(_("{where}: the message has no AlimTalk template",
                                     where=self._where), retryable=False)
            item["type"] = "ATA"
            item["kakaoOptions"] = {"pfId": s.pf_id, "templateId": alimtalk["template"],
                                    "variables": alimtalk["variables"],
                                    "disableSms": not s.fallback}
        else:
            kind = message.meta.get("type") or sms_type(message.text)
            item.update({"type": kind, "text": message.text})
            if kind == "LMS" and message.subject:
                item["subject"] = message.subject
        return {"messages": [item]}

    def send(self, message: Message) -> Delivery:
        body = json.dumps(self.request_body(message), ensure_ascii=False).encode("utf-8")
        response = self._poster.post(SEND_PATH, body, self._headers)
        return self._answer(response, message)

    def _answer(self, response: requests.Response, message: Message) -> Delivery:
        data = json_body(response)
        status = response.status_code
        if 200 <= status <= 299 and data is not None:
            failed = data.get("failedMessageList") or []
            listed = failed or data.get("messageList") or []
            item = listed[0] if listed and isinstance(listed[0], dict) else {}
            code = str(item.get("statusCode") or "")
            words = " ".join(str(item.get("statusMessage") or "").split())
            if not failed and code == ACCEPTED and item.get("messageId"):
                return Delivery(message_id=str(item["messageId"]),
                                detail=_("accepted by Solapi ({code}); delivery report to come",
                                         code=code),
                                accepted=True)
            if not code:
                raise ChannelError(_("{where}: HTTP {status} without a result for the message",
                                     where=self._where, status=status), channel_down=True)
            return self._refused(code, words, message)
        if data is not None and status in (400, 401, 403):
            return self._error(str(data.get("errorCode") or ""),
                               " ".join(str(data.get("errorMessage") or "").split()), status)
        raise ChannelError(f"{self._where}: {what_came(response)}{self._poster.after()}",
                           channel_down=True)

    def _refused(self, code: str, words: str, message: Message) -> NoReturn:
        raise refused(self._where, code, words, message, CHANNEL_CODES.get(code))

    def _error(self, error: str, words: str, status: int) -> NoReturn:
        known = AUTH_ERRORS.get(error)
        fix = _(known) if known else None
        if fix is None and status == 403 and "IP" in words:
            fix = _("this server's IP address is not allowed for the API key: add it in "
                    "Solapi's API key settings (허용 IP), see docs/kakao.md")
        if fix is not None or status in (401, 403):
            raise ChannelError(f"{self._where}: HTTP {status} {error}: "
                               f"{fix or words or _('access refused')}", channel_down=True)
        raise ChannelError(f"{self._where}: HTTP {status} {error}: {words}".rstrip(": "),
                           retryable=False)

    def probe(self) -> str:
        """Read the balance: proves the key, the secret, the clock and this server's IP,
        and sends nothing."""
        response = self._poster.get(BALANCE_PATH, self._headers())
        data = json_body(response)
        if response.status_code == 200 and data is not None:
            return _("{where} reachable, API key accepted", where=self._where)
        if data is not None and response.status_code in (400, 401, 403):
            self._error(str(data.get("errorCode") or ""),
                        " ".join(str(data.get("errorMessage") or "").split()),
                        response.status_code)
        raise ChannelError(f"{self._where}: {what_came(response)}", channel_down=True)

    def close(self) -> None:
        self._poster.close()
