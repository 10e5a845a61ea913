"""What the two Korean text-message channels share (``solapi``, ``nhn``): one JSON POST.

Both providers are HTTP APIs answering JSON; both are reached the same careful way,
written once here:

- **Retries** go through ``sheetcrm.http``'s ``RetryPolicy`` (bounded, jittered,
  ``Retry-After`` honoured up to one cap), and each attempt builds its headers afresh:
  Solapi's signature must carry a new salt every time (a reused one is refused).
  Only answers that say the message was *not* taken are retried: a 429, the statuses
  a provider lists as "not processed", a connection that was never made.
- **A lost answer is never retried.** Once the request went out, a timeout or a
  connection cut before the answer means the provider may have the message: the
  send is *uncertain* (never sent again), exactly like a crash at that point.
- ``timeout`` bounds the whole send, retries included (``deadline.py``), through the
  same transport adapter the webhook channel uses.
- A body that is not JSON (a proxy's HTML error page) is described, never parsed
  into a traceback, and nothing said shows more of the endpoint than scheme://host.

``check_recipient`` refuses a number that is not a Korean mobile before anything is
sent; the refusal names the row's number masked (``010-****-5678``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import requests
from urllib3.exceptions import NewConnectionError

from sheetcrm.channels.webhook import DeadlineAdapter
from sheetcrm.config.channels import TextSettings
from sheetcrm.deadline import Deadline
from sheetcrm.errors import ChannelError
from sheetcrm.http import Clock, RetryPolicy
from sheetcrm.i18n import _
from sheetcrm.model import Message
from sheetcrm.redact import url_origin
from sheetcrm.texting import masked, normalize_mobile

MAX_WAIT = 30.0  # seconds; no wait between attempts is longer (Retry-After included)


class _Lost(Exception):
    """The request went out and no answer came back: the provider may have it."""


def check_recipient(message: Message, where: str) -> str:
    """The recipient as digits; ChannelError (this customer only) when it is no mobile."""
    try:
        return normalize_mobile(message.recipient)
    except ValueError as exc:
        raise ChannelError(_("{where}: recipient {recipient} is not {expected}", where=where,
                             recipient=masked(message.recipient), expected=exc),
                           retryable=False) from None


def refused(where: str, code: object, words: str, message: Message,
            fix: str | None) -> ChannelError:
    """A provider's refusal: of the whole channel when ``fix`` (untranslated) says what
    the operator must change, else of this recipient alone (that customer's step fails)."""
    if fix is not None:
        return ChannelError(_("{where} refused the message ({code} {reason}): {fix}",
                              where=where, code=code, reason=words, fix=_(fix)),
                            channel_down=True)
    return ChannelError(_("{where} refused the message to {recipient}: {code} {reason}",
                          where=where, recipient=masked(message.recipient),
                          code=code, reason=words).rstrip(), retryable=False)


def _never_sent(exc: requests.ConnectionError) -> bool:
    """True when the connection was never made (refused, no such host, connect timeout)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    return isinstance(getattr(reason, "reason", reason), NewConnectionError)


def json_body(response: requests.Response) -> dict[str, Any] | None:
    """The answer's JSON object, or None when it is something else (an HTML page)."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def what_came(response: requests.Response) -> str:
    """``HTTP 503 Service Unavailable`` and, when it is not JSON, what it is instead."""
    status = f"HTTP {response.status_code} {response.reason or ''}".strip()
    if json_body(response) is None:
        kind = response.headers.get("content-type", "").split(";")[0].strip() or _("no type")
        status += " " + _("({kind}, not the API's JSON answer: a proxy or the provider's "
                          "front end)", kind=kind)
    return status


class JsonPoster:
    """POSTs one JSON body within the channel's timeout, retrying what is safe to retry."""

    def __init__(self, provider: str, settings: TextSettings, *,
                 retry_statuses: frozenset[int],
                 session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 jitter: Callable[[], float] = random.random) -> None:
        self.settings = settings
        self.where = f"{provider} {url_origin(settings.endpoint)}"
        self._own = session is None
        self.session = session or requests.Session()
        adapter = DeadlineAdapter()
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._clock = Clock(sleep=sleep)
        self._retry = RetryPolicy(attempts=settings.retries + 1, base_delay=settings.backoff,
                                  max_wait=MAX_WAIT, statuses=retry_statuses,
                                  timeout_retries=0, deadline=settings.timeout, jitter=jitter)
        self.tries = 0

    def post(self, path: str, body: bytes, headers: Callable[[], dict[str, str]]
             ) -> requests.Response:
        """The provider's last answer; ChannelError when there is none to read.

        ``headers`` is called for every attempt. A lost answer raises an uncertain
        ChannelError; a connection never made (after the retries) takes the channel down.
        """
        url = self.settings.endpoint + path
        self.tries = 0
        with Deadline(self.settings.timeout) as deadline:

            def attempt() -> requests.Response:
                self.tries += 1
                try:
                    response = self.session.post(url, data=body, headers=headers(),
                                                 timeout=deadline.remaining(),
                                                 allow_redirects=False)
                except requests.ConnectionError as exc:
                    if deadline.expired:  # the deadline cut the connection
                        raise _Lost(self.no_answer()) from None
                    if _never_sent(exc):
                        raise
                    raise _Lost(_("the connection was cut before the answer")) from None
                except requests.Timeout:
                    raise _Lost(self.no_answer()) from None
                if deadline.expired:  # an answer cut off by the deadline can look whole
                    response.close()
                    raise _Lost(self.no_answer())
                return response

            try:
                return self._retry.run(attempt, clock=self._clock)
            except _Lost as lost:
                raise ChannelError(_("{where}: {problem} after the message was sent; the "
                                     "provider may have it, so it is not sent again",
                                     where=self.where, problem=lost),
                                   uncertain=True) from None
            except requests.ConnectionError:
                raise ChannelError(_("{where}: connection failed{after}", where=self.where,
                                     after=self.after()), channel_down=True) from None
            except requests.RequestException as exc:
                raise ChannelError(f"{self.where}: {type(exc).__name__}",
                                   channel_down=True) from None

    def get(self, path: str, headers: dict[str, str]) -> requests.Response:
        """One GET (a query: nothing is sent to anyone), within the timeout; no retry."""
        with Deadline(self.settings.timeout) as deadline:
            try:
                return self.session.get(self.settings.endpoint + path, headers=headers,
                                        timeout=deadline.remaining(), allow_redirects=False)
            except requests.RequestException as exc:
                raise ChannelError(f"{self.where}: {type(exc).__name__}",
                                   channel_down=True) from None

    def after(self) -> str:
        return _(" after {n} tries", n=self.tries) if self.tries > 1 else ""

    def no_answer(self) -> str:
        return _("no answer within {seconds} s", seconds=f"{self.settings.timeout:g}")

    def close(self) -> None:
        if self._own:
            self.session.close()
