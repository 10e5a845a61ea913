"""A loopback emulator of NHN Cloud's AlimTalk API v2.3, written from its public
documentation (github.com/TOAST-DOCS/Alimtalk).

What it checks on every request: the app key in the path and ``X-Secret-Key``
(``-1000``, ``-1001``), and for a send the ``X-NC-API-IDEMPOTENCY-KEY``: the same key
within 10 minutes of its clock is refused with ``-1005`` and nothing is sent. A send
names a sender key it knows (``-2017``), an approved template (``-3003``) and a value
for each of the template's ``#{변수}`` (``-3004``); an SMS substitute must come from
a number registered for SMS (``-1003``).

What it answers: ``POST /alimtalk/v2.3/appkeys/{appkey}/messages`` (``header`` and
``message.sendResults``), ``GET …/messages/{requestId}/{recipientSeq}`` (the single
message, with ``resultCode`` and the substitute's ``resendStatus``) and ``GET
…/senders/{senderKey}``. ``refuse(number, code, words)`` scripts a refusal of one
recipient; a number in ``not_on_kakao`` gets no AlimTalk (3020) and its SMS/LMS
substitute instead when one was asked for (``RSC04``), else nothing (``RSC01``).
A number in ``sms_on_the_way`` has its substitute still on its way (``RSC03``); one
in ``sms_fails`` cannot be reached by it either (``RSC05``).
``hook(message_id)`` is the ``MESSAGE_RESULT_UPDATE`` webhook NHN Cloud would post
(documented fields only: ``resultCode`` but no substitute's status), and
``post_hook(message_id, url, signature)`` posts it there with the
``X-Toast-Webhook-Signature`` typed in the console. ``received`` lists every accepted
message, for duplicate checks.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import requests

from tests.support.servers import LoopbackServer, Reply, Request, json_reply

IDEMPOTENCY_WINDOW = 10 * 60  # seconds
_PLACEHOLDER = re.compile(r"#\{([^{}]+)\}")
_PATH = re.compile(r"^/alimtalk/v2\.3/appkeys/([^/]+)/(messages|senders)(?:/([^/]+))?"
                   r"(?:/([^/]+))?$")


def _header(code: int, message: str) -> dict[str, Any]:
    return {"resultCode": code, "resultMessage": message, "isSuccessful": code == 0}


@dataclass
class NhnMessage:
    request_id: str
    seq: int
    to: str
    template: str
    text: str
    resend: dict[str, Any] = field(default_factory=dict)
    key: str | None = None  # the X-NC-API-IDEMPOTENCY-KEY it came with

    @property
    def message_id(self) -> str:
        return f"{self.request_id}:{self.seq}"


class NhnEmulator(LoopbackServer):
    """NHN Cloud AlimTalk on 127.0.0.1: ``with NhnEmulator() as nhn: nhn.url``."""

    def __init__(self, *, app_key: str = "AppKeyTest01", secret_key: str = "SecretKeyTest01",
                 sender_keys: tuple[str, ...] = ("a" * 40,), sms_senders: tuple[str, ...] = (
                     "021234567",), templates: dict[str, str] | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.app_key, self.secret_key = app_key, secret_key
        self.sender_keys, self.sms_senders = set(sender_keys), set(sms_senders)
        self.templates = dict(templates or {})
        self.wall = wall
        self.refusals: dict[str, tuple[int, str]] = {}
        self.not_on_kakao: set[str] = set()
        self.sms_on_the_way: set[str] = set()  # numbers whose substitute is not there yet
        self.sms_fails: set[str] = set()  # numbers the substitute SMS cannot reach either
        self.received: list[NhnMessage] = []
        self.keys: dict[str, float] = {}
        self._ids = itertools.count(1)

    def refuse(self, number: str, code: int, words: str) -> None:
        self.refusals[number] = (code, words)

    def _outcome(self, sent: NhnMessage) -> dict[str, Any]:
        if sent.to not in self.not_on_kakao:
            return {"resultCode": "1000", "resultCodeName": "성공", "resendStatus": "RSC01"}
        resend = "RSC04" if sent.resend.get("isResend") else "RSC01"
        outcome = {"resultCode": "3020", "resultCodeName": "카카오톡 유저가 아님"}
        if resend == "RSC04" and sent.to in self.sms_on_the_way:
            resend = "RSC03"
        elif resend == "RSC04" and sent.to in self.sms_fails:
            resend = "RSC05"
            outcome["resendResultCode"] = "3001"  # the SMS result code: 가입자 없음
        return {**outcome, "resendStatus": resend}

    def hook(self, message_id: str) -> dict[str, Any]:
        sent = next(m for m in self.received if m.message_id == message_id)
        outcome = self._outcome(sent)
        hook = {"kakaoMessageType": "ALIMTALK_NORMAL", "requestId": sent.request_id,
                "recipientSeq": sent.seq, "recipientNo": sent.to,
                "resultCode": outcome["resultCode"], "receiveDate": "2026-11-25 10:00:05",
                "hookId": f"H{message_id}"}
        return {"hooksId": f"HS{message_id}", "webhookConfigId": "WC0001",
                "productName": "KakaoTalk Bizmessage", "appKey": self.app_key,
                "event": "MESSAGE_RESULT_UPDATE", "hooks": [hook]}

    def post_hook(self, message_id: str, url: str, signature: str) -> requests.Response:
        """Post the message's ``MESSAGE_RESULT_UPDATE`` to ``url`` as NHN Cloud does."""
        body = json.dumps(self.hook(message_id), ensure_ascii=False).encode("utf-8")
        return requests.post(url, data=body, timeout=30, headers={
            "Content-Type": "application/json;charset=UTF-8",
            "X-Toast-Webhook-Signature": signature})

    def answer(self, request: Request) -> Reply:
        match = _PATH.match(request.path)
        if match is None:
            return json_reply(404, {"header": _header(-9999, "Not found")})
        app_key, what, first, second = (unquote(g) if g else g for g in match.groups())
        if app_key != self.app_key:
            return json_reply(200, {"header": _header(-1000, "Invalid appKey.")})
        if request.headers.get("x-secret-key") != self.secret_key:
            return json_reply(200, {"header": _header(-1001, "Invalid secretKey.")})
        if what == "senders" and request.method == "GET":
            if first not in self.sender_keys:
                return json_reply(200, {"header": _header(-2017, "Not exist plus friend.")})
            return json_reply(200, {"header": _header(0, "SUCCESS"),
                                    "sender": {"senderKey": first, "status": "YSC03"}})
        if what == "messages" and request.method == "GET" and second is not None:
            sent = next((m for m in self.received if m.message_id == f"{first}:{second}"), None)
            if sent is None:
                return json_reply(200, {"header": _header(-9998, "Not found message")})
            message = {"requestId": sent.request_id, "recipientSeq": sent.seq,
                       "recipientNo": sent.to, "templateCode": sent.template,
                       "content": sent.text, "messageStatus": "COMPLETED",
                       "receiveDate": "2026-11-25 10:00:05", **self._outcome(sent)}
            return json_reply(200, {"header": _header(0, "SUCCESS"), "message": message})
        if what == "messages" and request.method == "POST" and first is None:
            return json_reply(200, self._send(request))
        return json_reply(405, {"header": _header(-9997, "Method not allowed")})

    def _send(self, request: Request) -> dict[str, Any]:
        key = request.headers.get("x-nc-api-idempotency-key")
        now = self.wall()
        with self.lock:
            if key is not None:
                self.keys = {k: t for k, t in self.keys.items()
                             if now - t < IDEMPOTENCY_WINDOW}
                if key in self.keys:
                    return {"header": _header(-1005, "The same 'X-NC-API-IDEMPOTENCY-KEY' "
                                                     "was used within the last 10 minute.")}
                self.keys[key] = now
        body = request.json() or {}
        if body.get("senderKey") not in self.sender_keys:
            return {"header": _header(-2017, "Not exist plus friend.")}
        approved = self.templates.get(str(body.get("templateCode")))
        if approved is None:
            return {"header": _header(-3003, "Not exist template.")}
        request_id = f"2026112510000{next(self._ids):07d}"
        results = []
        for seq, recipient in enumerate(body.get("recipientList") or [], start=1):
            to = str(recipient.get("recipientNo") or "")
            params = recipient.get("templateParameter") or {}
            resend = recipient.get("resendParameter") or {}
            code, words = self.refusals.get(to, (0, "SUCCESS"))
            if not code and set(_PLACEHOLDER.findall(approved)) - set(params):
                code, words = -3004, "Invalid template parameter."
            if not code and resend.get("isResend") and resend.get("resendSendNo") not in (
                    None, *self.sms_senders):
                return {"header": _header(-1003, "Invalid Sms Sendno")}
            if not code:
                text = _PLACEHOLDER.sub(lambda m, p=params: str(p[m.group(1)]), approved)
                with self.lock:
                    self.received.append(NhnMessage(request_id, seq, to,
                                                    str(body["templateCode"]), text, resend,
                                                    key))
            results.append({"recipientSeq": seq, "recipientNo": to, "resultCode": code,
                            "resultMessage": words})
        return {"header": _header(0, "SUCCESS"),
                "message": {"requestId": request_id, "sendResults": results}}
