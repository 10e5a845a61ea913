"""The webhook channel: POSTs JSON, signed the Standard Webhooks way (standardwebhooks.com).

``webhook-id`` is the idempotency key, so a receiver can drop a duplicate if a retry
follows a request whose answer was lost. Transient failures (429, 408, 5xx, timeouts,
connection errors) are retried a bounded number of times with capped backoff.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import random
import re
import time
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from sheetcrm.channels.base import Delivery, Message
from sheetcrm.errors import ChannelError

MAX_BACKOFF = 30.0  # seconds; the exponential backoff never waits longer
MAX_RETRY_AFTER = 60.0  # seconds; a longer Retry-After is cut to this
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110)
_PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
_RESERVED = {"content-type", "content-length", "host"} | {
    f"webhook-{h}" for h in ("id", "timestamp", "signature")
}


# Answers that say the endpoint itself is misconfigured, not the message.
_ENDPOINT_WRONG = frozenset({401, 403, 404, 405, 410})


def redact_url(url: str) -> str:
    """The URL without user:password and query string, for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def decode_secret(secret: str) -> bytes:
    """The HMAC key from a ``whsec_<base64>`` secret; ValueError if it is not one."""
    if not secret.startswith("whsec_"):
        raise ValueError("must start with 'whsec_'")
    encoded = secret[len("whsec_") :]
    try:  # some providers drop the base64 padding
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be 'whsec_' followed by base64") from None
    if not key:
        raise ValueError("must not be empty after 'whsec_'")
    return key


def webhook_id(idempotency_key: str) -> str:
    """The key as a header value: printable ASCII stays, anything else (a Korean row key,
    a line break) is percent-encoded, and ``%`` too, so distinct keys stay distinct."""
    return quote(idempotency_key, safe=_PRINTABLE)


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: v1,<base64 HMAC-SHA256 of "id.timestamp.body">."""
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


class WebhookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["webhook"]
    url: str = Field(description="an http:// or https:// URL")
    secret: SecretStr | None = Field(
        None, description='a Standard Webhooks secret "whsec_<base64>", e.g. "${WEBHOOK_SECRET}"'
    )
    timeout: float = Field(20.0, gt=0, le=300, description="seconds to wait for an answer")
    retries: int = Field(3, ge=0, le=10, description="extra attempts after a transient failure")
    backoff: float = Field(
        1.0, ge=0, le=MAX_BACKOFF, description="seconds before the first retry; doubles after"
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="extra static headers, e.g. an Authorization token"
    )

    @field_validator("url")
    @classmethod
    def _is_http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if any(c.isspace() for c in value):
            raise ValueError("must not contain spaces or line breaks")
        return value

    @field_validator("secret")
    @classmethod
    def _is_whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            decode_secret(value.get_secret_value())
        return value

    @field_validator("headers")
    @classmethod
    def _are_headers(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, header in value.items():
            if not _TOKEN.fullmatch(name):
                raise ValueError(f"{name!r} is not a header name")
            if name.lower() in _RESERVED:
                raise ValueError(f"{name!r} is set by sheetcrm and cannot be overridden")
            text = header.get_secret_value()
            if not text.isascii() or any(c in text for c in "\r\n\0"):
                raise ValueError(f"the value of {name!r} must be ASCII text on one line")
        return value


def default_payload(message: Message) -> dict[str, Any]:
    """The body sent when the message has no payload of its own."""
    return {
        "id": message.idempotency_key,
        "type": "sheetcrm.message",
        "recipient": message.recipient,
        "subject": message.subject,
        "text": message.text,
        "kind": message.kind,
        "meta": dict(message.meta),
    }


class WebhookChannel:
    """POSTs each message once, retrying only failures that may clear up by themselves."""

    redelivery_safe = False

    def __init__(
        self,
        name: str,
        settings: WebhookSettings,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.name = name
        self.settings = settings
        self._own_session = session is None
        self._session = session or requests.Session()
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        secret = settings.secret
        self._key = decode_secret(secret.get_secret_value()) if secret else None
        self._where = redact_url(settings.url)

    def _headers(self, msg_id: str, body: bytes) -> dict[str, str]:
        headers = {k: v.get_secret_value() for k, v in self.settings.headers.items()}
        timestamp = int(self._clock())
        headers.update(
            {
                "content-type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(timestamp),
            }
        )
        if self._key is not None:
            headers["webhook-signature"] = sign(self._key, msg_id, timestamp, body)
        return headers

    def _backoff(self, attempt: int, response: requests.Response | None) -> float:
        """Seconds before retry number ``attempt`` (0-based): Retry-After, else backoff."""
        retry_after = response.headers.get("retry-after", "") if response is not None else ""
        if retry_after.strip().isdigit():
            return min(float(retry_after), MAX_RETRY_AFTER)
        delay = min(self.settings.backoff * 2**attempt, MAX_BACKOFF)
        return delay / 2 + delay / 2 * self._jitter()  # "equal jitter"

    def send(self, message: Message) -> Delivery:
        payload = message.payload if message.payload is not None else default_payload(message)
        try:
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise ChannelError(f"payload is not JSON: {exc}", retryable=False) from None
        msg_id = webhook_id(message.idempotency_key)
        problem = ""
        response: requests.Response | None = None
        for attempt in range(self.settings.retries + 1):
            if attempt:
                self._sleep(self._backoff(attempt - 1, response))
                response = None
            try:
                response = self._session.post(
                    self.settings.url,
                    data=body,
                    headers=self._headers(msg_id, body),
                    timeout=self.settings.timeout,
                    allow_redirects=False,  # a redirected POST may turn into a GET
                )
            except (requests.Timeout, requests.ConnectionError) as exc:
                problem = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
                continue
            except requests.RequestException as exc:
                text = f"POST {self._where}: {type(exc).__name__}"
                raise ChannelError(text, retryable=False) from None
            status = response.status_code
            if 200 <= status <= 299:
                return Delivery(message_id=msg_id, detail=f"HTTP {status}")
            problem = f"HTTP {status} {response.reason or ''}".strip()
            if status in _ENDPOINT_WRONG or 300 <= status < 400:
                # The URL or the credentials are wrong: true for every message alike.
                raise ChannelError(f"POST {self._where}: {problem}", channel_down=True)
            if status not in (408, 429) and status < 500:
                raise ChannelError(f"POST {self._where}: {problem}", retryable=False)
        tries = self.settings.retries + 1
        # The receiver is down or overloaded: stop sending to it until the next run.
        raise ChannelError(f"POST {self._where}: {problem} after {tries} tries",
                           channel_down=True)

    def close(self) -> None:
        if self._own_session:
            self._session.close()
