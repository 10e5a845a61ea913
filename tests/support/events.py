"""Outside events for tests: the endpoint on loopback, and webhooks signed as providers do.

``Listening`` serves ``make_app(ctx, [events])`` with the real waitress ``Endpoint`` on
127.0.0.1 and posts to it with ``requests``. The signers follow each provider's
public description: Standard Webhooks through the ``standardwebhooks`` package's own
``sign`` (the reference implementation), Tally's ``Tally-Signature`` (base64 HMAC-SHA256
of the body) and Stripe's ``Stripe-Signature`` (``t=…,v1=<hex HMAC-SHA256 of
"t.body">``) by hand. The payload builders give the shapes those providers post.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import requests
from standardwebhooks import Webhook

from sheetcrm.config import Config
from sheetcrm.ledger import Ledger
from sheetcrm.server import events
from sheetcrm.server.app import ServerContext, make_app
from sheetcrm.server.serve import Endpoint
from tests.support.journeys import World

STANDARD_SECRET = "whsec_" + base64.b64encode(b"the shop's standard webhook key").decode()
ROTATED_SECRET = "whsec_" + base64.b64encode(b"the key before the rotation").decode()
TALLY_SECRET = "tally signing secret of the form"
STRIPE_SECRET = "whsec_stripe_endpoint_secret_for_tests"
TOSS_KEY = "test_sk_sheetcrm_toss"
PORTONE_KEY = "1234567890123456:portone-test-secret-of-the-shop"
MAX_BODY = 8192

SERVER = """
[server]
public_url = "https://crm.example.com"
secret = "a secret of at least sixteen characters"
rate_limit = "100000/1m"
max_body = {max_body}
"""

EVENTS = """
[events.paid]
source = "stripe"
secret = "{stripe}"
key = "data.object.customer_details.email"
set = {{ paid = true }}

[events.order]
source = "standard"
secret = "{standard}"
key = "data.customer.email"
set = {{ paid = "O", last_login = {{ from = "data.paid_at" }} }}

[events.signup]
source = "tally"
secret = "{tally}"
key = "data.fields.이메일"
append = true

[events.signup.set]
applied_at = {{ from = "data.createdAt" }}
consent = {{ from = "data.fields.수신 동의" }}
"""

PAYMENTS = """
[events.toss]
source = "toss"
api_key = "{toss_key}"
api_url = "{toss_url}"
key = "metadata.email"
set = {{ paid = true }}
amount = [50000, 90000]

[events.portone]
source = "portone"
api_key = "{portone_key}"
api_url = "{portone_url}"
key = "buyer_email"
set = {{ paid = true }}
amount = 50000
"""


def event_sections(*, toss_url: str = "", portone_url: str = "",
                   max_body: int = MAX_BODY) -> str:
    """``[server]`` and the ``[events.*]`` of the tests (the payment ones given their APIs)."""
    text = SERVER.format(max_body=max_body) + EVENTS.format(
        stripe=STRIPE_SECRET, standard=STANDARD_SECRET, tally=TALLY_SECRET)
    if toss_url or portone_url:
        text += PAYMENTS.format(toss_key=TOSS_KEY, toss_url=toss_url,
                                portone_key=PORTONE_KEY, portone_url=portone_url)
    return text


def make_world(folder: Path, customers: dict[str, dict[str, str]], *, sending: str = ""
               ) -> World:
    """The journeys' world (a CSV sheet of ``customers``) with the events of the tests;
    ``sending``: lines for its ``[sending]`` table."""
    w = World.create(folder, customers, sending=sending)
    with open(folder / "config.toml", "a", encoding="utf-8") as f:
        f.write(event_sections())
    return w


class Listening:
    """The endpoint with the events routes, served on 127.0.0.1 (a free port); its clock
    is the real one unless ``now`` is given."""

    def __init__(self, config: Config, now: Callable[[], datetime] | None = None) -> None:
        self.config = config
        ctx = ServerContext(config, lambda: Ledger.open(config.state_path),
                            now or (lambda: datetime.now(UTC)))
        self.endpoint = Endpoint(make_app(ctx, [events]), "127.0.0.1", 0)
        self.session = requests.Session()
        # One connection per request: Endpoint.stop() waits (up to 10 s) for a kept-alive
        # connection the server still holds open.
        self.session.headers["Connection"] = "close"
        self.session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.endpoint.port}"

    def post(self, name: str, body: bytes, headers: dict[str, str] | None = None
             ) -> requests.Response:
        return self.session.post(f"{self.url}/e/{name}", data=body, headers=headers or {},
                                 timeout=30)

    def __enter__(self) -> Self:
        self.endpoint.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.session.close()
        self.endpoint.stop()


# -- signing, as each provider does -------------------------------------------------------


def body_of(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def standard_headers(body: bytes, msg_id: str, *, secret: str = STANDARD_SECRET,
                     at: float | None = None, also: tuple[str, ...] = ()) -> dict[str, str]:
    """Standard Webhooks headers; ``also``: more secrets to sign with (a key rotation)."""
    moment = datetime.fromtimestamp(time.time() if at is None else at, tz=UTC)
    signatures = [Webhook(s).sign(msg_id, moment, body.decode("utf-8"))
                  for s in (*also, secret)]
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": " ".join(signatures), "content-type": "application/json"}


def tally_headers(body: bytes, *, secret: str = TALLY_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {"tally-signature": base64.b64encode(digest).decode(),
            "content-type": "application/json"}


def stripe_headers(body: bytes, *, secret: str = STRIPE_SECRET, at: float | None = None,
                   also: tuple[str, ...] = ()) -> dict[str, str]:
    """Stripe-Signature; ``also``: secrets signed with besides (a secret being rolled)."""
    t = str(int(time.time() if at is None else at))
    v1 = [hmac.new(s.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
          for s in (*also, secret)]
    return {"stripe-signature": ",".join([f"t={t}", *(f"v1={v}" for v in v1)]),
            "content-type": "application/json"}


# -- payloads, as each provider posts them ---------------------------------------------------


def stripe_event(event_id: str, email: str) -> dict[str, Any]:
    return {"id": event_id, "object": "event", "type": "checkout.session.completed",
            "api_version": "2024-06-20", "created": int(time.time()), "livemode": False,
            "data": {"object": {"id": f"cs_{event_id}", "object": "checkout.session",
                                "amount_total": 50000, "currency": "krw",
                                "payment_status": "paid",
                                "customer_details": {"email": email, "name": "홍길동"}}}}


def standard_event(email: str, paid_at: str = "2026-11-28 10:00") -> dict[str, Any]:
    return {"type": "payment.succeeded", "timestamp": "2026-11-28T01:00:00Z",
            "data": {"customer": {"email": email}, "amount": 50000, "paid_at": paid_at}}


CONSENT_OPTIONS = [{"id": "3d1c0b39-aa56-4b0e-9c23-6a4f1e0d1a01", "text": "예"},
                   {"id": "f5b0a0c2-5d0e-4bd0-8f5e-0a3e2c7d9b02", "text": "아니오"}]


def tally_submission(response_id: str, email: str, *, consent: str = "예",
                     created: str = "2026-11-28T01:00:21.000Z",
                     event_id: str | None = None) -> dict[str, Any]:
    """A FORM_RESPONSE as Tally posts it: answers in ``data.fields``, choices by option id."""
    chosen = [o["id"] for o in CONSENT_OPTIONS if o["text"] == consent]
    return {
        "eventId": event_id or f"evt-{response_id}", "eventType": "FORM_RESPONSE",
        "createdAt": created,
        "data": {
            "responseId": response_id, "submissionId": response_id, "respondentId": "dwQKYm",
            "formId": "VwbNEw", "formName": "수강 신청", "createdAt": created,
            "fields": [
                {"key": "question_3EKz4n", "label": "이름", "type": "INPUT_TEXT",
                 "value": "홍길동"},
                {"key": "question_mVGEg3", "label": "이메일", "type": "INPUT_EMAIL",
                 "value": email},
                {"key": "question_nPOb3M", "label": "수신 동의", "type": "MULTIPLE_CHOICE",
                 "value": chosen, "options": CONSENT_OPTIONS},
            ],
        },
    }
