"""The nhn channel: AlimTalk through NHN Cloud (KakaoTalk Bizmessage, API v2.3), with an
SMS/LMS sent in its place when the AlimTalk cannot be delivered.

Why it is built this way:

- **Authenticated by a header,** ``X-Secret-Key``, with the app key in the path
  (``/alimtalk/v2.3/appkeys/{appkey}/messages``); neither appears in any message.
- **The provider refuses a second copy.** Every request carries the ledger's
  idempotency key as ``X-NC-API-IDEMPOTENCY-KEY`` (header-safe: the same percent
  encoding as the webhook channel's ``webhook-id``). NHN Cloud refuses a repeat
  within 10 minutes with ``-1005``: a retry whose first attempt did get through is
  then refused instead of sent twice, and is recorded as uncertain, never re-sent.
  So every 5xx may be retried here, as well as a 429.
- **The substitute is spelt out** in ``resendParameter``: SMS or LMS by the text's
  size, the LMS subject, the text with its variables filled, and the sender number
  registered for SMS. ``fallback = false`` sends none.
- **Accepted is not delivered.** ``resultCode`` 0 means NHN Cloud took the message;
  the outcome comes by webhook or by ``query`` (``texting.reports``). The message id
  is ``requestId:recipientSeq``, what both name.
- **Whose fault.** A refusal of the recipient fails this customer's step; a wrong
  key, sender key, template or SMS sender number takes the channel down with what
  to fix.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

import requests

from sheetcrm.channels.provider import (
    JsonPoster,
    check_recipient,
    json_body,
    refused,
    what_came,
)
from sheetcrm.channels.webhook import webhook_id
from sheetcrm.config.channels import NhnSettings
from sheetcrm.errors import ChannelError
from sheetcrm.http import TRANSIENT_STATUSES
from sheetcrm.i18n import N_, _
from sheetcrm.model import Delivery, DeliveryReport, Message
from sheetcrm.texting import masked, sms_type
from sheetcrm.texting.reports import nhn_message_id, parse_nhn_reports

REPEATED = -1005  # the same idempotency key within 10 minutes

#: NHN Cloud result codes true of every message, and what the operator should do.
CHANNEL_CODES = {
    -1000: N_("the app key is not valid: check app_key"),
    -1001: N_("the secret key is not valid: check secret_key"),
    -1002: N_("the SMS app key for substitutes is not valid: check the SMS service in the "
           "NHN Cloud console"),
    -1003: N_("the sender number is not registered for SMS: register it (NHN Cloud SMS, "
           "발신번호 관리) or fix sender"),
    -1006: N_("the Kakao channel has no sender key: check sender_key"),
    -1027: N_("the Kakao channel is blocked: see the NHN Cloud console"),
    -2017: N_("there is no Kakao channel with this sender key: check sender_key"),
    -2502: N_("SMS substitutes are not set up for the Kakao channel: set them up in the NHN "
           "Cloud console, or set fallback = false"),
    -3003: N_("the AlimTalk template does not exist: check the channel's templates"),
    -3005: N_("the AlimTalk template is not approved yet: wait for Kakao's review"),
    -3010: N_("the template's text differs from the one Kakao approved: make them match"),
}


class NhnChannel:
    """Sends each AlimTalk in its own request, keyed by its idempotency key."""

    redelivery_safe = False

    def __init__(self, name: str, settings: NhnSettings, *,
                 session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 jitter: Callable[[], float] = random.random) -> None:
        self.name = name
        self.settings = settings
        self._poster = JsonPoster("NHN Cloud", settings, retry_statuses=TRANSIENT_STATUSES,
                                  session=session, sleep=sleep, jitter=jitter)
        self._where = self._poster.where
        self._base = f"/alimtalk/v2.3/appkeys/{quote(settings.app_key.get_secret_value(), '')}"

    @classmethod
    def from_settings(cls, name: str, settings: NhnSettings, *, base_dir: Path) -> NhnChannel:
        """The channel for ``[channels.<name>]`` (no file is involved: ``base_dir`` unused)."""
        return cls(name, settings)

    def _headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {"X-Secret-Key": self.settings.secret_key.get_secret_value(),
                   "Content-Type": "application/json;charset=UTF-8"}
        if idempotency_key is not None:
            headers["X-NC-API-IDEMPOTENCY-KEY"] = webhook_id(idempotency_key)
        return headers

    def request_body(self, message: Message) -> dict[str, Any]:
        """The JSON NHN Cloud gets for this message (one recipient)."""
        s = self.settings
        alimtalk = (message.payload or {}).get("alimtalk")
        if not isinstance(alimtalk, dict):
            raise ChannelError(_("{where}: the message has no AlimTalk template",
                                 where=self._where), retryable=False)
        recipient: dict[str, Any] = {
            "recipientNo": check_recipient(message, self._where),
            "templateParameter": {name[2:-1]: value
                                  for name, value in alimtalk["variables"].items()},
        }
        if s.fallback:
            kind = sms_type(message.text)
            resend: dict[str, Any] = {"isResend": True, "resendType": kind,
                                      "resendContent": message.text, "resendSendNo": s.sender}
            if kind == "LMS" and message.subject:
                resend["resendTitle"] = message.subject
            recipient["resendParameter"] = resend
        else:
            recipient["resendParameter"] = {"isResend": False}
        return {"senderKey": s.sender_key, "templateCode": alimtalk["template"],
                "recipientList": [recipient]}

    def send(self, message: Message) -> Delivery:
        body = json.dumps(self.request_body(message), ensure_ascii=False).encode("utf-8")
        response = self._poster.post(f"{self._base}/messages", body,
                                     lambda: self._headers(message.idempotency_key))
        data = json_body(response)
        header = data.get("header") if data is not None else None
        if not isinstance(header, dict):
            raise ChannelError(f"{self._where}: {what_came(response)}{self._poster.after()}",
                               channel_down=True)
        code = _int(header.get("resultCode"))
        words = " ".join(str(header.get("resultMessage") or "").split())
        if not header.get("isSuccessful") or code != 0:
            self._refused_request(code, words, message)
        found = (data.get("message") or {}) if data is not None else {}
        results = found.get("sendResults") or [{}]
        result = results[0] if isinstance(results[0], dict) else {}
        result_code = _int(result.get("resultCode"))
        if result_code != 0:
            reason = " ".join(str(result.get("resultMessage") or "").split())
            raise ChannelError(_("{where} refused the message to {recipient}: {code} {reason}",
                                 where=self._where, recipient=masked(message.recipient),
                                 code=result_code, reason=reason).rstrip(), retryable=False)
        message_id = nhn_message_id(str(found.get("requestId")), result.get("recipientSeq"))
        return Delivery(message_id=message_id, accepted=True,
                        detail=_("accepted by NHN Cloud; delivery report to come"))

    def _refused_request(self, code: int | None, words: str, message: Message) -> NoReturn:
        if code == REPEATED:
            raise ChannelError(_("{where}: the same message was already requested (-1005 "
                                 "{reason}); it may have been sent, so it is not sent again",
                                 where=self._where, reason=words), uncertain=True)
        raise refused(self._where, code, words, message, CHANNEL_CODES.get(code or 0))

    def query(self, message_id: str) -> DeliveryReport | None:
        """The delivery report of one sent message (``requestId:recipientSeq``), asked of
        NHN Cloud's single-message API; None when it has no result yet."""
        request_id, _sep, seq = message_id.rpartition(":")
        response = self._poster.get(f"{self._base}/messages/{quote(request_id, '')}/"
                                    f"{quote(seq, '')}", self._headers())
        data = json_body(response)
        if response.status_code != 200 or data is None:
            raise ChannelError(f"{self._where}: {what_came(response)}", channel_down=True)
        reports = parse_nhn_reports(data)
        return reports[0] if reports else None

    def probe(self) -> str:
        """Look up the Kakao channel by its sender key: proves the keys, sends nothing."""
        path = f"{self._base}/senders/{quote(self.settings.sender_key, '')}"
        response = self._poster.get(path, self._headers())
        data = json_body(response)
        header = data.get("header") if data is not None else None
        if not isinstance(header, dict):
            raise ChannelError(f"{self._where}: {what_came(response)}", channel_down=True)
        code = _int(header.get("resultCode"))
        if header.get("isSuccessful") and code == 0:
            return _("{where} reachable, keys and sender key accepted", where=self._where)
        known = CHANNEL_CODES.get(code or 0)
        fix = _(known) if known else " ".join(str(header.get("resultMessage")).split())
        raise ChannelError(_("{where} refused ({code}): {fix}", where=self._where, code=code,
                             fix=fix), channel_down=True)

    def close(self) -> None:
        self._poster.close()


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
