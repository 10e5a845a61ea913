"""Loopback emulators of the two payment APIs sheetcrm asks before a payment counts.

Neither provider signs its payment webhooks, so the endpoint looks each payment up.
These speak the lookups as the providers' public docs describe them, so the real
``requests`` code of ``sheetcrm.server.payments`` runs against them unchanged:

- ``TossEmulator`` (Toss Payments, docs.tosspayments.com): ``GET /v1/payments/{paymentKey}``
  with ``Authorization: Basic base64("{secretKey}:")``. A wrong key answers 401
  ``{"code": "UNAUTHORIZED_KEY", "message": …}``; an unknown payment 404
  ``{"code": "NOT_FOUND_PAYMENT", "message": …}``; a known one 200 and the Payment
  object (``paymentKey``, ``orderId``, ``status`` READY/IN_PROGRESS/DONE/CANCELED/…,
  ``totalAmount``, ``balanceAmount``, ``metadata``, …). ``webhook(paymentKey)`` is the
  ``PAYMENT_STATUS_CHANGED`` body Toss posts (``{eventType, createdAt, data: Payment}``).
- ``PortOneEmulator`` (PortOne V1 / 아임포트, developers.portone.io): ``POST
  /users/getToken`` with ``{imp_key, imp_secret}`` (JSON or a form) gives ``{code: 0,
  response: {access_token, now, expired_at}}``, or 401 ``{code: -1, message, response:
  null}``; ``GET /payments/{imp_uid}`` with ``Authorization: Bearer <token>`` (a bare
  token is accepted too) answers ``{code: 0, message: null, response: Payment}``
  (``imp_uid``, ``merchant_uid``, ``amount``, ``cancel_amount``, ``status``
  ready/paid/cancelled/failed, ``buyer_email``, …), 404 ``{code: -1, message:
  "존재하지 않는 결제정보입니다.", response: null}`` for an unknown one, 401 without a
  valid token. ``webhook(imp_uid)`` is the notification body ``{imp_uid,
  merchant_uid, status}``.

Both log every request (``LoopbackServer.requests``) and take scripted faults.
"""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, unquote

from tests.support.servers import HttpError, LoopbackServer, Reply, Request, json_reply


def _segments(path: str) -> list[str]:
    return [unquote(s) for s in path.split("/") if s]


class TossEmulator(LoopbackServer):
    """Toss Payments' payment lookup."""

    def __init__(self, secret_key: str = "test_sk_sheetcrm_toss") -> None:
        super().__init__()
        self.secret_key = secret_key
        self.payments: dict[str, dict[str, Any]] = {}

    def add_payment(self, payment_key: str, *, amount: int, status: str = "DONE",
                    order_id: str = "", metadata: dict[str, str] | None = None
                    ) -> dict[str, Any]:
        """A payment as the Payment object shows it (the fields a merchant reads)."""
        payment = {
            "mId": "tvivarepublica", "version": "2022-11-16", "paymentKey": payment_key,
            "orderId": order_id or f"order-{payment_key}", "orderName": "수강권",
            "status": status, "type": "NORMAL", "method": "카드", "currency": "KRW",
            "country": "KR", "totalAmount": amount, "balanceAmount": amount,
            "suppliedAmount": round(amount / 1.1), "vat": amount - round(amount / 1.1),
            "taxFreeAmount": 0, "taxExemptionAmount": 0, "useEscrow": False,
            "cultureExpense": False, "isPartialCancelable": True,
            "requestedAt": "2026-11-28T10:00:00+09:00",
            "approvedAt": "2026-11-28T10:00:30+09:00" if status == "DONE" else None,
            "lastTransactionKey": f"txrd_{payment_key}", "metadata": metadata,
            "cancels": None, "failure": None, "receipt": None, "checkout": None,
        }
        self.payments[payment_key] = payment
        return payment

    def webhook(self, payment_key: str, **changes: Any) -> dict[str, Any]:
        """The PAYMENT_STATUS_CHANGED body Toss would post for this payment."""
        data = {**self.payments.get(payment_key, {"paymentKey": payment_key}), **changes}
        return {"eventType": "PAYMENT_STATUS_CHANGED",
                "createdAt": "2026-11-28T10:00:31.000000", "data": data}

    def answer(self, request: Request) -> Reply:
        segments = _segments(request.path)
        if request.method != "GET" or segments[:2] != ["v1", "payments"] or len(segments) != 3:
            raise HttpError(404, {"code": "NOT_FOUND", "message": "요청한 리소스를 찾을 수 "
                                                                  "없습니다."})
        expected = base64.b64encode(f"{self.secret_key}:".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            raise HttpError(401, {"code": "UNAUTHORIZED_KEY",
                                  "message": "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다."})
        payment = self.payments.get(segments[2])
        if payment is None:
            raise HttpError(404, {"code": "NOT_FOUND_PAYMENT",
                                  "message": "존재하지 않는 결제 정보 입니다."})
        return json_reply(200, payment)


class PortOneEmulator(LoopbackServer):
    """PortOne V1 (아임포트): the access token and the payment lookup."""

    def __init__(self, imp_key: str = "1234567890123456",
                 imp_secret: str = "portone-test-secret-of-the-shop") -> None:
        super().__init__()
        self.imp_key, self.imp_secret = imp_key, imp_secret
        self.tokens: dict[str, float] = {}  # access token -> expires at (epoch seconds)
        self.payments: dict[str, dict[str, Any]] = {}

    def add_payment(self, imp_uid: str, *, amount: int, status: str = "paid",
                    merchant_uid: str = "", buyer_email: str = "") -> dict[str, Any]:
        payment = {
            "imp_uid": imp_uid, "merchant_uid": merchant_uid or f"order-{imp_uid}",
            "pay_method": "card", "channel": "pc", "pg_provider": "html5_inicis",
            "amount": amount, "cancel_amount": 0, "currency": "KRW", "name": "수강권",
            "status": status, "buyer_email": buyer_email, "buyer_name": "홍길동",
            "paid_at": 1795830030 if status == "paid" else 0, "custom_data": None,
        }
        self.payments[imp_uid] = payment
        return payment

    def webhook(self, imp_uid: str, status: str = "paid") -> dict[str, Any]:
        payment = self.payments.get(imp_uid, {"merchant_uid": "order-unknown"})
        return {"imp_uid": imp_uid, "merchant_uid": payment["merchant_uid"], "status": status}

    def answer(self, request: Request) -> Reply:
        segments = _segments(request.path)
        if request.method == "POST" and segments == ["users", "getToken"]:
            return self._token(request)
        if request.method == "GET" and segments[:1] == ["payments"] and len(segments) == 2:
            return self._payment(request, segments[1])
        raise HttpError(404, {"code": -1, "message": "Not Found", "response": None})

    def _token(self, request: Request) -> Reply:
        if "json" in request.headers.get("content-type", ""):
            given = request.json() or {}
        else:
            given = {k: v[-1] for k, v in parse_qs(request.body.decode()).items()}
        if given.get("imp_key") != self.imp_key or given.get("imp_secret") != self.imp_secret:
            raise HttpError(401, {"code": -1, "message": "imp_key 또는 imp_secret 이 올바르지 "
                                                         "않습니다.", "response": None})
        now = int(time.time())
        token = secrets.token_hex(20)
        self.tokens[token] = now + 1800
        return json_reply(200, {"code": 0, "message": None,
                                "response": {"access_token": token, "now": now,
                                             "expired_at": now + 1800}})

    def _payment(self, request: Request, imp_uid: str) -> Reply:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if self.tokens.get(token, 0) < time.time():
            raise HttpError(401, {"code": -1, "message": "Unauthorized", "response": None})
        payment = self.payments.get(imp_uid)
        if payment is None:
            raise HttpError(404, {"code": -1, "message": "존재하지 않는 결제정보입니다.",
                                  "response": None})
        return json_reply(200, {"code": 0, "message": None, "response": payment})
