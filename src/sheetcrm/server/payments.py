"""Payments from providers that do not sign their webhooks, confirmed with their API.

A Toss Payments or PortOne (V1, 아임포트) webhook is a request anybody could send: it
is only taken as a hint of which payment to look up. The payment counts when the
provider's API, asked with the operator's secret key, answers that it exists, is
paid (Toss ``status = "DONE"``, PortOne ``status = "paid"``) and, when ``amount`` is
set, has one of those amounts (a payment whose amount the buyer's browser changed is
the classic attack on client-side checkout). The key and the ``from`` values are read
from the payment as the API returns it.

- Toss: ``GET /v1/payments/{paymentKey}``, HTTP Basic with the secret key and an
  empty password. The event id is the ``paymentKey``: one payment is one event,
  however many status webhooks it sends.
- PortOne V1: ``POST /users/getToken`` with ``imp_key``/``imp_secret`` (``api_key =
  "KEY:SECRET"``), then ``GET /payments/{imp_uid}`` with ``Authorization: Bearer``.
  Answers are ``{code, message, response}``; code 0 is success. The event id is the
  ``imp_uid``.

A payment the provider does not know is refused 401 (counted: someone is guessing).
A real payment that is not paid, or not at an expected amount, is answered 200 and
not stored: the provider has nothing to retry, and ``status`` counts it as ignored.
When the provider cannot be asked (down, or refusing the operator's key) the
answer is 503, so the provider retries later; each lookup is bounded (a few tries
within ``DEADLINE`` seconds, as Toss waits about ten for an answer).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from sheetcrm.config.hearing import EventSettings
from sheetcrm.http import RetryAdapter, RetryPolicy
from sheetcrm.i18n import N_
from sheetcrm.server.sources import Heard, Refused, event_id

TOSS_API = "https://api.tosspayments.com"
PORTONE_API = "https://api.iamport.kr"
TIMEOUT = (3.05, 5.0)  # seconds: connect, read
DEADLINE = 8.0  # seconds for a lookup, retries included
RETRY = RetryPolicy(attempts=3, base_delay=0.5, max_wait=2.0, deadline=DEADLINE)


def confirm_toss(settings: EventSettings, body: dict[str, Any]) -> Heard:
    """The Toss payment the webhook names, as Toss's API confirms it."""
    data = body.get("data")
    payment_key = event_id(data.get("paymentKey") if isinstance(data, dict) else None)
    url = f"{_base(settings, TOSS_API)}/v1/payments/{quote(payment_key, safe='')}"
    with _session() as session:
        response = _call(session, "toss", "GET", url, auth=(_key(settings), ""))
        if response.status_code == 404:
            raise Refused(401, N_("payment not found at the provider"))
        payment = _answer(response, "toss")
    if payment.get("paymentKey") != payment_key:
        raise Refused(401, N_("payment not found at the provider"))
    _counts(settings, payment.get("status") == "DONE", payment.get("totalAmount"))
    return Heard(payment_key, payment)


def confirm_portone(settings: EventSettings, body: dict[str, Any]) -> Heard:
    """The PortOne V1 payment the webhook names, as PortOne's API confirms it."""
    imp_uid = event_id(body.get("imp_uid"))
    base = _base(settings, PORTONE_API)
    imp_key, _, imp_secret = _key(settings).partition(":")
    with _session() as session:
        login = _call(session, "portone", "POST", f"{base}/users/getToken",
                      json={"imp_key": imp_key, "imp_secret": imp_secret})
        refused = Refused(503, N_("provider refused our api_key"),
                          "portone refused the api_key in [events]; check it")
        token = _portone(_answer(login, "portone"), refused).get("access_token")
        if not isinstance(token, str) or not token:
            raise refused
        response = _call(session, "portone", "GET",
                         f"{base}/payments/{quote(imp_uid, safe='')}",
                         headers={"Authorization": f"Bearer {token}"})
        if response.status_code == 404:
            raise Refused(401, N_("payment not found at the provider"))
        payment = _portone(_answer(response, "portone"),
                           Refused(401, N_("payment not found at the provider")))
    if payment.get("imp_uid") != imp_uid:
        raise Refused(401, N_("payment not found at the provider"))
    _counts(settings, payment.get("status") == "paid", payment.get("amount"))
    return Heard(imp_uid, payment)


def _counts(settings: EventSettings, paid: bool, amount: Any) -> None:
    """A confirmed payment counts when it is paid, at an expected amount if any is set."""
    if not paid:
        raise Refused(200, N_("ignored: payment not completed"))
    if settings.amount is not None and amount not in settings.amount:
        raise Refused(200, N_("ignored: amount not expected"),
                      f"amount is not one of {settings.amount}")


def _base(settings: EventSettings, public: str) -> str:
    return (settings.api_url or public).rstrip("/")


def _key(settings: EventSettings) -> str:
    assert settings.api_key is not None  # required for these sources (config)
    return settings.api_key.get_secret_value()


def _session() -> requests.Session:
    session = requests.Session()
    adapter = RetryAdapter(RETRY)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _call(session: requests.Session, provider: str, method: str, url: str,
          **kwargs: Any) -> requests.Response:
    try:
        return session.request(method, url, timeout=TIMEOUT, allow_redirects=False, **kwargs)
    except requests.RequestException:
        raise Refused(503, N_("provider unreachable"),
                      f"could not reach {provider}'s API; it will retry") from None


def _answer(response: requests.Response, provider: str) -> dict[str, Any]:
    """The JSON object of a 200, or the 503 that makes the provider try again later."""
    if response.status_code in (401, 403):
        raise Refused(503, N_("provider refused our api_key"),
                      f"{provider} refused the api_key in [events]; check it")
    if response.status_code != 200:
        raise Refused(503, N_("provider unreachable"),
                      f"{provider}'s API answered {response.status_code}")
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise Refused(503, N_("provider unreachable"), f"{provider}'s API answered no JSON")
    return payload


def _portone(answer: dict[str, Any], otherwise: Refused) -> dict[str, Any]:
    """``response`` of a PortOne answer whose ``code`` is 0; else ``otherwise`` is raised."""
    inner = answer.get("response")
    if answer.get("code") != 0 or not isinstance(inner, dict):
        raise otherwise
    return inner
