"""A loopback emulator of Solapi's message API v4, written from its public documentation.

What it checks on every request, as Solapi does: the ``Authorization`` header
(``HMAC-SHA256 apiKey=…, date=…, salt=…, signature=…``, names in either spelling:
``apiKey``/``date`` as the docs write them, ``ApiKey``/``Date`` as the official SDK
does), the salt's length (12 to 64), the signature (HMAC-SHA256 of date + salt with
the secret, in hex), the date within 15 minutes of its own clock
(``RequestTimeTooSkewed``), a signature used once only within 15 minutes
(``DuplicatedSignature``), and, when ``allowed_ips`` is set, the caller's address.

What it answers: ``POST /messages/v4/send`` (``{"message": {...}}``) and ``POST
/messages/v4/send-many/detail`` (``{"messages": [...]}``, what the SDK sends, answered
with ``groupInfo``, ``failedMessageList`` and ``messageList``), ``GET
/cash/v1/balance``. Each message is accepted (2000) or refused with the code Solapi
gives: an unregistered sender (1062), a text over its type's size (1031), a subject
on an SMS (1013), characters outside EUC-KR (1029), an unknown Kakao channel (1041)
or template (1042), variables that do not fill the template (1043), and whatever
``refuse(number, code, words)`` scripts for a recipient.

Delivery comes later, as on Solapi: ``report(message_id)`` is the webhook payload
Solapi would post (4000 delivered; an AlimTalk to a number in ``not_on_kakao`` is
delivered as an SMS/LMS substitute, or fails with 3104 when ``disableSms`` is true),
and ``post_report(message_id, url)`` posts it there as Solapi's webhook does (a JSON
list, unsigned). Until its report is made a message is on its way (3000); after, the
message list says the same as the report: ``GET /messages/v4/list`` (the documented
``criteria=messageId&cond=eq&value=…``) and ``GET /messages/v4/list-old`` (the
official SDK's ``messageId=…``) answer ``{startKey, nextKey, limit, messageList:
{messageId: message}}``. ``received`` lists every accepted message, for duplicate
checks. 429s and 5xx pages are scripted with the shared ``Fault``s.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.support.servers import HttpError, LoopbackServer, Reply, Request, json_reply

SKEW = 15 * 60  # seconds
_AUTH = re.compile(r"^(HMAC-SHA256)\s+(.*)$")
_PLACEHOLDER = re.compile(r"#\{([^{}]+)\}")
_STATUS = {"1013": "제목은 문자 타입이 'SMS'일 경우 사용이 불가능합니다.",
           "1029": "문자메시지의 경우 EUC-KR(완성형 한글) 범위 안에 있는 문자만 사용 합니다.",
           "1031": "SMS는 90byte LMS, MMS는 2000byte 까지 사용 가능 합니다.",
           "1041": "유효한 플러스 친구 값이 아닙니다.", "1042": "유효한 템플릿 아이디가 아닙니다.",
           "1043": "등록한 템플릿과 내용이 다릅니다.", "1062": "발신번호 미등록",
           "2000": "정상 접수(이통사로 접수 예정)"}


def _bytes(text: str) -> int:
    return sum(1 if c < "\x80" else 2 for c in text)


class SolapiError(HttpError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, {"errorCode": code, "errorMessage": message}, code)


@dataclass
class Accepted:
    """A message Solapi took: what it will deliver (and report on) later."""

    message_id: str
    to: str
    sender: str
    type: str
    text: str
    subject: str | None = None
    kakao: dict[str, Any] = field(default_factory=dict)
    group: str = ""


class SolapiEmulator(LoopbackServer):
    """Solapi on 127.0.0.1: ``with SolapiEmulator() as solapi: solapi.url``."""

    def __init__(self, *, api_key: str = "NCSTESTKEY0001", api_secret: str = "SECRET" * 6,
                 senders: tuple[str, ...] = ("021234567",),
                 pf_ids: tuple[str, ...] = ("KA01PF0000000001",),
                 templates: dict[str, str] | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.api_key, self.api_secret = api_key, api_secret
        self.senders, self.pf_ids = set(senders), set(pf_ids)
        self.templates = dict(templates or {})  # templateId -> approved text
        self.wall = wall  # Solapi's clock; a test moves it to play clock skew
        self.allowed_ips: set[str] | None = None
        self.refusals: dict[str, tuple[str, str]] = {}  # number -> (code, words)
        self.not_on_kakao: set[str] = set()
        self.received: list[Accepted] = []
        self.settled: set[str] = set()  # message ids whose delivery report was made
        self._signatures: dict[str, float] = {}
        self._ids = itertools.count(1)

    # -- what a test scripts ------------------------------------------------------

    def refuse(self, number: str, code: str, words: str) -> None:
        """Messages to ``number`` are refused with Solapi's ``code`` (e.g. 1060)."""
        self.refusals[number] = (code, words)

    def report(self, message_id: str) -> list[dict[str, Any]]:
        """The delivery report Solapi would post for a message it accepted; from now on
        the message list shows the message settled the same way."""
        sent = next(m for m in self.received if m.message_id == message_id)
        with self.lock:
            self.settled.add(message_id)
        data = self._message(sent)
        keep = ("messageId", "groupId", "to", "from", "type", "statusCode", "statusMessage",
                "dateProcessed", "dateReported", "dateReceived", "networkCode", "replacement",
                "kakaoOptions", "customFields")
        return [{"eventDataId": f"E{sent.message_id}",
                 "data": {k: data[k] for k in keep if k in data}, "retryCount": 0}]

    def post_report(self, message_id: str, url: str) -> requests.Response:
        """Post the message's report to ``url`` as Solapi's webhook does: unsigned JSON."""
        body = json.dumps(self.report(message_id), ensure_ascii=False).encode("utf-8")
        return requests.post(url, data=body, timeout=30,
                             headers={"Content-Type": "application/json",
                                      "User-Agent": "SOLAPI-Webhook"})

    def _message(self, sent: Accepted) -> dict[str, Any]:
        """The message as the message list shows it: on its way until reported, then
        delivered (4000, perhaps as an SMS/LMS substitute) or failed (3104)."""
        data: dict[str, Any] = {
            "_id": sent.message_id, "messageId": sent.message_id, "groupId": sent.group,
            "to": sent.to, "from": sent.sender, "type": sent.type, "text": sent.text,
            "country": "82", "accountId": "12925149", "subject": sent.subject,
            "kakaoOptions": sent.kakao or None, "replacement": False, "autoTypeDetect": False,
            "statusCode": "3000", "statusMessage": "이통사로 접수 완료", "networkName": "SKT",
            "networkCode": "SKT", "log": [], "customFields": {},
            "dateCreated": "2026-11-25T01:00:00.000Z", "dateUpdated": "2026-11-25T01:00:00.000Z",
            "dateProcessed": "2026-11-25T01:00:01.000Z", "dateReported": None,
            "dateReceived": None}
        if sent.message_id not in self.settled:
            return data
        data.update(statusCode="4000", statusMessage="수신완료",
                    dateReported="2026-11-25T01:00:05.000Z",
                    dateReceived="2026-11-25T01:00:05.000Z")
        if sent.type == "ATA" and sent.to in self.not_on_kakao:
            if sent.kakao.get("disableSms"):
                data.update(statusCode="3104", statusMessage="카카오톡 미사용자",
                            dateReceived=None)
            else:
                data.update(type="LMS" if _bytes(sent.text) > 90 else "SMS", replacement=True)
        return data

    def _list(self, request: Request) -> dict[str, Any]:
        """``GET /messages/v4/list`` (criteria/cond/value) or ``/list-old`` (messageId)."""
        query = {k: v[-1] for k, v in request.query.items()}
        wanted: str | None = query.get("messageId")
        criteria, conds = query.get("criteria", "").split(","), query.get("cond", "").split(",")
        values = query.get("value", "").split(",")
        for criterion, cond, value in zip(criteria, conds, values, strict=False):
            if criterion == "messageId":
                if cond != "eq":
                    raise SolapiError(400, "ValidationError", "messageId는 eq만 지원합니다.")
                wanted = value
        try:
            limit = max(1, min(int(query.get("limit") or 20), 500))
        except ValueError:
            raise SolapiError(400, "ValidationError", "limit은 숫자여야 합니다.") from None
        with self.lock:
            found = [m for m in self.received if wanted is None or m.message_id == wanted]
        listed = {m.message_id: self._message(m) for m in found[:limit]}
        return {"startKey": query.get("startKey"), "nextKey": None, "limit": limit,
                "messageList": listed}

    # -- the API ----------------------------------------------------------------------

    def answer(self, request: Request) -> Reply:
        self._authenticate(request)
        path = request.path
        if request.method == "GET" and path == "/cash/v1/balance":
            return json_reply(200, {"balance": 10000, "point": 0, "deposit": 0})
        if request.method == "GET" and path in ("/messages/v4/list", "/messages/v4/list-old"):
            return json_reply(200, self._list(request))
        if request.method == "POST" and path == "/messages/v4/send":
            body = request.json() or {}
            return json_reply(200, self._take(body.get("message") or {}, "G0"))
        if request.method == "POST" and path == "/messages/v4/send-many/detail":
            return json_reply(200, self._many((request.json() or {}).get("messages") or []))
        raise SolapiError(404, "NotFound", f"{request.method} {path}")

    def _authenticate(self, request: Request) -> None:
        if self.allowed_ips is not None and "127.0.0.1" not in self.allowed_ips:
            raise SolapiError(403, "Forbidden", "허용되지 않은 IP로 접근하고 있습니다.")
        match = _AUTH.match(request.headers.get("authorization", ""))
        if match is None:
            raise SolapiError(401, "InvalidAuthType", "HMAC-SHA256 인증 방식만 지원합니다.")
        parts = {k.strip().lower(): v.strip() for k, _, v in
                 (p.partition("=") for p in match.group(2).split(","))}
        key, date, salt, signature = (parts.get(n, "") for n in
                                      ("apikey", "date", "salt", "signature"))
        if key != self.api_key:
            raise SolapiError(403, "InvalidAPIKey", "유효하지 않은 API Key 입니다.")
        if not 12 <= len(salt) <= 64:
            raise SolapiError(400, "ValidationError", "salt는 12~64 바이트여야 합니다.")
        expected = hmac.new(self.api_secret.encode(), (date + salt).encode(),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise SolapiError(403, "SignatureDoesNotMatch", "Signature가 일치하지 않습니다.")
        try:
            when = dt.datetime.fromisoformat(date.replace("Z", "+00:00"))
        except ValueError:
            raise SolapiError(400, "ValidationError",
                              "date는 ISO 8601 형식이어야 합니다.") from None
        if when.tzinfo is None or abs(when.timestamp() - self.wall()) > SKEW:
            raise SolapiError(403, "RequestTimeTooSkewed", "요청 시간이 서버 시간과 15분 이상 "
                              "차이납니다.")
        now = self.wall()
        with self.lock:
            self._signatures = {s: t for s, t in self._signatures.items() if now - t < SKEW}
            if signature in self._signatures:
                raise SolapiError(403, "DuplicatedSignature", "15분 안에 동일한 signature "
                                  "값이 사용되었습니다.")
            self._signatures[signature] = now

    def _many(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        group = f"G4V{next(self._ids):020d}"
        results = [self._take(m, group) for m in messages]
        failed = [r for r in results if r["statusCode"] != "2000"]
        ok = [{"messageId": r["messageId"], "statusCode": r["statusCode"],
               "statusMessage": r["statusMessage"]} for r in results if r not in failed]
        count = {"total": len(results), "sentTotal": 0, "sentFailed": 0, "sentSuccess": 0,
                 "sentPending": 0, "sentReplacement": 0, "refund": 0,
                 "registeredFailed": len(failed), "registeredSuccess": len(ok)}
        cash = {"requested": 0, "replacement": 0, "refund": 0, "sum": 0}
        info = {"count": count, "countForCharge": {}, "balance": cash, "point": cash,
                "app": {"profit": {}, "appId": None}, "log": [], "status": "SENDING",
                "allowDuplicates": False, "isRefunded": False, "accountId": "12925149",
                "masterAccountId": None, "apiVersion": "4", "groupId": group, "price": {},
                "dateCreated": "2026-11-25T01:00:00.000Z",
                "dateUpdated": "2026-11-25T01:00:00.000Z"}
        return {"groupInfo": info, "failedMessageList": failed, "messageList": ok}

    def _take(self, message: dict[str, Any], group: str) -> dict[str, Any]:
        message_id = f"M4V{next(self._ids):020d}"
        to, sender = str(message.get("to") or ""), str(message.get("from") or "")
        kind = str(message.get("type") or "").upper()
        if not kind:  # autoTypeDetect, as the SDK leaves it
            size = _bytes(str(message.get("text") or ""))
            kind = "ATA" if message.get("kakaoOptions") else "SMS" if size <= 90 else "LMS"
        code = self._check(message, kind, sender, to)
        result = {"messageId": message_id, "groupId": group, "to": to, "from": sender,
                  "type": kind, "country": "82", "accountId": "12925149",
                  "statusCode": code, "statusMessage": _STATUS.get(code, "")}
        if code in self.refusals.get(to, ("",)):
            result["statusMessage"] = self.refusals[to][1]
        if code == "2000":
            kakao = dict(message.get("kakaoOptions") or {})
            text = str(message.get("text") or "")
            if kind == "ATA":
                approved = self.templates[kakao["templateId"]]
                text = _PLACEHOLDER.sub(lambda m: kakao["variables"][f"#{{{m.group(1)}}}"],
                                        approved)
            with self.lock:
                self.received.append(Accepted(message_id, to, sender, kind, text,
                                              message.get("subject"), kakao, group))
        return result

    def _check(self, message: dict[str, Any], kind: str, sender: str, to: str) -> str:
        if to in self.refusals:
            return self.refusals[to][0]
        if sender not in self.senders:
            return "1062"
        text = str(message.get("text") or "")
        if kind == "ATA":
            kakao = message.get("kakaoOptions") or {}
            if kakao.get("pfId") not in self.pf_ids:
                return "1041"
            approved = self.templates.get(str(kakao.get("templateId")))
            if approved is None:
                return "1042"
            variables = kakao.get("variables") or {}
            if {f"#{{{v}}}" for v in _PLACEHOLDER.findall(approved)} - set(variables):
                return "1043"
            return "2000"
        try:  # KS X 1001 only: Python writes other Hangul as an 8-byte make-up sequence
            if any(len(c.encode("euc-kr")) > 2 for c in text):
                return "1029"
        except UnicodeEncodeError:
            return "1029"
        if kind == "SMS" and message.get("subject"):
            return "1013"
        if _bytes(text) > (90 if kind == "SMS" else 2000):
            return "1031"
        return "2000"
