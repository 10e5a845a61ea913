"""The webhook channel: POSTs JSON, signed the Standard Webhooks way (standardwebhooks.com).

``webhook-id`` is the idempotency key, so a receiver can drop a duplicate if a retry
follows a request whose answer was lost. Transient failures (429, 408, 5xx, refused
connections) are retried by ``sheetcrm.http``'s ``RetryPolicy``, a bounded number of
times with jittered backoff and ``Retry-After`` honoured up to one cap. Each attempt
is signed afresh (its own timestamp), so the retry loop wraps the whole POST rather
than a transport adapter, which would resend one prepared request.

``timeout`` bounds the whole send, retries included: a receiver that drips its
answer cannot hold the run longer, a retry starts only if its wait ends in the time
left, and a timed-out attempt is not retried (its time is up). A transport adapter
hands urllib3's sockets to the shared deadline (``deadline.py``), which cuts them
when the time is up, connect to last byte.

A webhook URL often carries its credential in the path (Slack and Discord hooks), so
nothing this channel says shows more of it than scheme://host[:port].
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import requests.certs
import urllib3.poolmanager
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from sheetcrm.config.channels import WebhookSettings, decode_secret
from sheetcrm.deadline import Deadline, watch
from sheetcrm.errors import ChannelError
from sheetcrm.http import Clock, RetryPolicy
from sheetcrm.i18n import _
from sheetcrm.model import Delivery, Message
from sheetcrm.redact import url_origin

MAX_WAIT = 60.0  # seconds; no wait between attempts is longer (Retry-After included)
_PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


# Answers that say the endpoint itself is misconfigured, not the message.
_ENDPOINT_WRONG = frozenset({401, 403, 404, 405, 410})


class _TimeUp(Exception):
    """The send's deadline passed during an attempt: no answer, and no retry."""


def webhook_id(idempotency_key: str) -> str:
    """The key as a header value: printable ASCII stays, anything else (a Korean row key,
    a line break) is percent-encoded, and ``%`` too, so distinct keys stay distinct."""
    return quote(idempotency_key, safe=_PRINTABLE)


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: v1,<base64 HMAC-SHA256 of "id.timestamp.body">."""
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


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


class _WatchedConnection(HTTPConnection):
    """A urllib3 connection whose socket the active deadline watches: a new one from
    before its TLS handshake, a reused one from the start of each request."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:
            watch(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection, _WatchedConnection):
    pass


class _WatchedPool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedPool, "https": _WatchedHTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter, with connections a ``Deadline`` can cut (proxied ones too)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        # SOCKS proxies bring pool classes of their own: those are left alone.
        if manager.pool_classes_by_scheme is urllib3.poolmanager.pool_classes_by_scheme:
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


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
        adapter = DeadlineAdapter()
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._clock = clock  # wall time, for webhook-timestamp
        self._timing = Clock(sleep=sleep)  # monotonic, for the waits between attempts
        self._retry = RetryPolicy(attempts=settings.retries + 1, base_delay=settings.backoff,
                                  max_wait=MAX_WAIT, timeout_retries=0,
                                  deadline=settings.timeout, jitter=jitter)
        secret = settings.secret
        self._key = decode_secret(secret.get_secret_value()) if secret else None
        self._where = url_origin(settings.url)

    @classmethod
    def from_settings(cls, name: str, settings: WebhookSettings, *, base_dir: Path
                      ) -> WebhookChannel:
        """The channel for ``[channels.<name>]`` (no file is involved: ``base_dir`` unused)."""
        return cls(name, settings)

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

    def send(self, message: Message) -> Delivery:
        payload = message.payload if message.payload is not None else default_payload(message)
        try:
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise ChannelError(_("payload is not JSON: {reason}", reason=exc),
                               retryable=False) from None
        msg_id = webhook_id(message.idempotency_key)
        deadline = Deadline(self.settings.timeout)  # the whole send, retries included
        with deadline:
            return self._post(body, msg_id, deadline)

    def _post(self, body: bytes, msg_id: str, deadline: Deadline) -> Delivery:
        tries = 0

        def attempt() -> requests.Response:
            nonlocal tries
            tries += 1
            try:
                response = self._session.post(
                    self.settings.url,
                    data=body,
                    headers=self._headers(msg_id, body),
                    timeout=deadline.remaining(),
                    allow_redirects=False,  # a redirected POST may turn into a GET
                )
            except requests.RequestException:
                if deadline.expired:  # the deadline cut the connection
                    raise _TimeUp from None
                raise
            if deadline.expired:  # an answer cut off by the deadline can look whole
                response.close()
                raise _TimeUp
            return response

        try:
            response = self._retry.run(attempt, clock=self._timing)
        except (_TimeUp, requests.Timeout):
            problem = self._no_answer()
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
            problem = _("connection failed")
        except requests.RequestException as exc:
            # Only the exception's type is shown: its text holds the URL's path.
            text = f"POST {self._where}: {type(exc).__name__}"
            raise ChannelError(text, retryable=False) from None
        else:
            status = response.status_code
            if 200 <= status <= 299:
                return Delivery(message_id=msg_id, detail=f"HTTP {status}")
            problem = f"HTTP {status} {response.reason or ''}".strip()
            if status in _ENDPOINT_WRONG or 300 <= status < 400:
                # The URL or the credentials are wrong: true for every message alike.
                raise ChannelError(_("POST {where}: {problem} — check the address (url) and "
                                     "its credentials; the messages wait until it is fixed",
                                     where=self._where, problem=problem), channel_down=True)
            if status not in self._retry.statuses:
                raise ChannelError(f"POST {self._where}: {problem}", retryable=False)
        # The receiver is down, overloaded or too slow: leave it until the next run.
        after = _(" after {n} tries", n=tries) if tries > 1 else ""
        raise ChannelError(f"POST {self._where}: {problem}{after}", channel_down=True)

    def _no_answer(self) -> str:
        return _("no answer within {seconds} s", seconds=f"{self.settings.timeout:g}")

    def probe(self) -> str:
        """TCP connect, and the TLS handshake for https, within ``timeout``; no request
        is sent, so nothing can trigger the receiver."""
        parts = urlsplit(self.settings.url)
        https = parts.scheme == "https"
        host = parts.hostname or ""
        port = parts.port or (443 if https else 80)
        context = self._tls_context() if https else None
        clock = Deadline(self.settings.timeout)
        try:
            with clock, socket.create_connection((host, port), self.settings.timeout) as sock:
                watch(sock)
                if context is not None:
                    with context.wrap_socket(sock, server_hostname=host):
                        pass
        except ssl.SSLCertVerificationError as exc:
            text = _("{where}: TLS certificate not trusted ({reason})", where=self._where,
                     reason=exc.verify_message)
            raise ChannelError(text, channel_down=True) from None
        except OSError as exc:
            if clock.expired or isinstance(exc, TimeoutError):
                problem = self._no_answer()
            else:
                problem = _("connection failed ({error})", error=type(exc).__name__)
            raise ChannelError(f"{self._where}: {problem}", channel_down=True) from None
        if context is None:
            return _("{where} reachable", where=self._where)
        if context.verify_mode != ssl.CERT_NONE:
            return _("{where} reachable (TLS certificate trusted)", where=self._where)
        return _("{where} reachable (TLS certificate not checked)", where=self._where)

    def _tls_context(self) -> ssl.SSLContext:
        """The certificate check the POSTs get: the session's ``verify`` (after
        REQUESTS_CA_BUNDLE and friends), else requests' own CA bundle."""
        merged = self._session.merge_environment_settings(
            self.settings.url, {}, None, None, None
        )
        verify = merged.get("verify", True)
        if verify is False:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        if isinstance(verify, str) and os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        cafile = verify if isinstance(verify, str) else requests.certs.where()
        return ssl.create_default_context(cafile=cafile)

    def close(self) -> None:
        if self._own_session:
            self._session.close()
