"""Retry and pacing for every HTTP client of sheetcrm, written once.

Google Sheets (gspread), Airtable (pyairtable) and the webhook channel all talk HTTP
through ``requests``, and all meet the same weather: quotas that answer 429, servers
that answer 5xx (sometimes with an HTML page instead of JSON), answers that never
come. This module is the one place that decides what to do about it:

- ``Clock``: monotonic seconds and a way to wait them. Tests inject a virtual clock
  whose ``sleep`` only moves the time, so a minute's quota window or Airtable's
  30-second penalty costs nothing.
- ``Pacer``: at most ``limit`` requests in any ``period`` seconds (a sliding window:
  "55 per 60 s" for a Sheets service account, "1 per 0.22 s" for Airtable's 5 a
  second), and ``hold(seconds)``: nothing starts before then. With a ``penalty``, a
  429 holds every request of the pacer that long (Airtable refuses a base for 30 s).
  A pacer is an object its owner makes and keeps (a table makes its own): nothing
  here is process-global, and two clients share a pace only when given one pacer.
- ``RetryPolicy``: which answers and failures are retried (429, 408 and 5xx whatever
  the body; timeouts up to a bound; refused and dropped connections), exponential
  backoff with "equal jitter" (a wait is drawn from [½, 1] × the exponential step, so
  clients that failed together do not retry together), ``Retry-After`` in seconds or
  as an HTTP date, at most ``attempts`` tries and, optionally, a ``deadline`` for all
  of them: a wait that would end past it is not begun. ``max_wait`` is the one cap:
  no wait is longer, whether it comes from the backoff or from ``Retry-After``.
  ``run`` returns the last answer (a 503 after the last try, its HTML body intact)
  or raises the last exception, so the caller says what went wrong in its own words.
- ``RetryAdapter``: requests' transport adapter that sends every request through a
  pacer and a policy and counts the attempts. Mounted on a session, it covers a
  library that sends its own requests (gspread, pyairtable) without touching it.

The loop is tenacity's ``Retrying``; its wait, stop and retry predicates are plain
functions of the attempt, and its sleep is injected. urllib3's ``Retry`` (what
requests and pyairtable offer) was the other candidate: it gives up with
``MaxRetryError``, which requests turns into a ``ConnectionError`` (a timed-out read
no longer says it timed out) or a ``RetryError`` without the response; it sleeps with
``time.sleep``; it has no overall deadline; and pacing every attempt means overriding
``increment``, ``sleep`` and ``new``, which follow urllib3's internals. urllib3 still
parses ``Retry-After`` here (``Retry.parse_retry_after``).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
import tenacity
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

__all__ = ["SYSTEM_CLOCK", "TRANSIENT_STATUSES", "Clock", "Pacer", "RetryAdapter",
           "RetryPolicy", "retry_after"]

#: Answers that may clear up by themselves: timeout, too many requests, server errors.
TRANSIENT_STATUSES = frozenset({408, 429, *range(500, 600)})
#: Failures before or while an answer arrives: refused, reset or cut short.
CONNECTION_FAILURES = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)


@dataclass(frozen=True)
class Clock:
    """Where waiting code reads the time and waits: the system's, or a virtual one."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


SYSTEM_CLOCK = Clock()


class Pacer:
    """At most ``limit`` requests in any ``period`` seconds, and holds after a 429.

    ``wait`` blocks until one more request fits and books it. ``hold`` keeps every
    request back for a while; a ``penalty`` is the hold a 429 puts on the pacer (the
    retry policy books it). ``waited`` is the total of the waits, in seconds.
    Thread-safe: callers that share a pacer take turns.
    """

    def __init__(self, limit: int, period: float, *, clock: Clock = SYSTEM_CLOCK,
                 penalty: float = 0.0) -> None:
        if limit < 1 or period <= 0:
            raise ValueError(f"a pace of {limit} per {period} s allows nothing")
        self.limit = limit
        self.period = period
        self.clock = clock
        self.penalty = penalty
        self.waited = 0.0
        self._sent: deque[float] = deque()
        self._held_until = float("-inf")
        self._lock = threading.Lock()

    def wait(self, delay: float = 0.0) -> float:
        """Block until one more request fits (and at least ``delay`` s); return the wait."""
        with self._lock:
            now = self.clock.now()
            while self._sent and self._sent[0] <= now - self.period:
                self._sent.popleft()
            ready = self._held_until
            if len(self._sent) >= self.limit:
                ready = max(ready, self._sent[0] + self.period)
            wait = max(delay, ready - now)
            if wait > 0:
                self.clock.sleep(wait)
                self.waited += wait
                now = max(self.clock.now(), ready)
            while self._sent and self._sent[0] <= now - self.period:
                self._sent.popleft()
            self._sent.append(now)
            return max(wait, 0.0)

    def admit(self) -> bool:
        """Book one request if it fits now, else refuse it without waiting (True if booked).

        The endpoint's per-client limit: a request over the pace is answered 429 at once.
        """
        with self._lock:
            now = self.clock.now()
            while self._sent and self._sent[0] <= now - self.period:
                self._sent.popleft()
            if now < self._held_until or len(self._sent) >= self.limit:
                return False
            self._sent.append(now)
            return True

    def hold(self, seconds: float) -> None:
        """No request starts before ``seconds`` from now."""
        with self._lock:
            self._held_until = max(self._held_until, self.clock.now() + seconds)


_PARSER = Retry(0)


def retry_after(response: requests.Response) -> float | None:
    """The answer's ``Retry-After`` in seconds (a number or an HTTP date); None if absent
    or unreadable. A date is measured against the wall clock, as the server's is."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return _PARSER.parse_retry_after(value)
    except InvalidHeader:
        return None


def _never(response: requests.Response) -> bool:
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a request again, how long to wait, and when to stop.

    ``attempts`` counts the first try. The n-th wait (0-based) is drawn from
    [½, 1] × min(max_wait, base_delay × 2ⁿ), or is the answer's ``Retry-After`` when
    that is longer, cut to ``max_wait``. Answers with a status in ``statuses`` are
    retried; so are refused and dropped connections, and timeouts up to
    ``timeout_retries`` times (None: as often as the attempts allow; 0: never, for a
    caller whose timeout is its deadline). With a ``deadline`` (seconds from the start
    of ``run``), a retry whose wait would end past it is not begun.
    """

    attempts: int = 7
    base_delay: float = 1.0
    max_wait: float = 32.0
    statuses: frozenset[int] = TRANSIENT_STATUSES
    timeout_retries: int | None = None
    deadline: float | None = None
    jitter: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        ceiling = min(self.max_wait, self.base_delay * 2 ** min(retry, 64))
        wait = ceiling * (0.5 + 0.5 * self.jitter())
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_wait))
        return wait

    def run(self, attempt: Callable[[], requests.Response], *, clock: Clock = SYSTEM_CLOCK,
            pacer: Pacer | None = None,
            final: Callable[[requests.Response], bool] = _never) -> requests.Response:
        """Call ``attempt`` until it answers for good or the attempts or time run out.

        Every try first waits for ``pacer`` (when given), and a retry's wait is then
        spent in the pacer too, so the retry also keeps to the pace. A 429 holds the
        pacer for its penalty or its ``Retry-After``, whichever is longer, even when
        no retry follows. ``final`` marks an answer whose status looks transient but
        is not (Airtable's monthly cap): it is returned at once, and holds nothing.
        Returns the last answer, or raises the last exception.
        """
        started = clock.now()
        timeouts = 0
        pending = 0.0  # the wait before the next try, when a pacer takes it

        def retryable(state: tenacity.RetryCallState) -> bool:
            nonlocal timeouts
            outcome = state.outcome
            assert outcome is not None
            error = outcome.exception()
            if error is None:
                response: requests.Response = outcome.result()
                return response.status_code in self.statuses and not final(response)
            if isinstance(error, requests.Timeout):
                timeouts += 1
                return self.timeout_retries is None or timeouts <= self.timeout_retries
            return isinstance(error, CONNECTION_FAILURES)

        def penalize(state: tenacity.RetryCallState) -> None:
            response = _answer(state)
            if pacer is not None and response is not None and response.status_code == 429:
                pacer.hold(max(pacer.penalty, min(retry_after(response) or 0.0, self.max_wait)))

        def wait(state: tenacity.RetryCallState) -> float:
            response = _answer(state)
            after = retry_after(response) if response is not None else None
            return self.delay(state.attempt_number - 1, after)

        def stop(state: tenacity.RetryCallState) -> bool:
            if state.attempt_number >= self.attempts:
                return True
            return (self.deadline is not None
                    and clock.now() - started + state.upcoming_sleep >= self.deadline)

        def release(state: tenacity.RetryCallState) -> None:
            response = _answer(state)
            if response is not None:
                response.close()  # its connection goes back to the pool

        def defer(seconds: float) -> None:
            nonlocal pending
            pending = seconds

        def paced(state: tenacity.RetryCallState) -> None:
            nonlocal pending
            assert pacer is not None
            pacer.wait(pending)
            pending = 0.0

        retrying = tenacity.Retrying(
            retry=retryable, after=penalize, wait=wait, stop=stop, before_sleep=release,
            sleep=clock.sleep if pacer is None else defer,
            before=tenacity.before_nothing if pacer is None else paced,
            retry_error_callback=_last)
        response: requests.Response = retrying(attempt)
        return response


def _answer(state: tenacity.RetryCallState) -> requests.Response | None:
    outcome = state.outcome
    if outcome is None or outcome.failed:
        return None
    response: requests.Response = outcome.result()
    return response


def _last(state: tenacity.RetryCallState) -> requests.Response:
    """The last answer, or the last exception raised again: what the caller reports."""
    assert state.outcome is not None
    response: requests.Response = state.outcome.result()
    return response


def _method(request: requests.PreparedRequest) -> str:
    return request.method or "GET"


class RetryAdapter(HTTPAdapter):
    """requests' adapter sending every request through a pacer and a retry policy.

    ``counts`` holds the attempts sent, by ``label(request)`` (the method unless told
    otherwise); ``last_attempts`` the attempts of the latest request, for messages
    ("after 4 attempts"). The answer's body is read inside the attempt, so one cut
    short is retried like a dropped connection. urllib3 retries nothing here.
    """

    def __init__(self, retry: RetryPolicy, *, pacer: Pacer | None = None,
                 clock: Clock | None = None,
                 final: Callable[[requests.Response], bool] = _never,
                 label: Callable[[requests.PreparedRequest], str] = _method) -> None:
        super().__init__()
        self.retry = retry
        self.pacer = pacer
        self.clock = clock or (pacer.clock if pacer is not None else SYSTEM_CLOCK)
        self.final = final
        self.label = label
        self.counts: Counter[str] = Counter()
        self.last_attempts = 0

    @property
    def attempts(self) -> int:
        """Every attempt sent so far, retries included."""
        return sum(self.counts.values())

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: Any = None, verify: bool | str = True,
             cert: str | tuple[str, str] | None = None,
             proxies: dict[str, str] | None = None) -> requests.Response:
        kind = self.label(request)
        tries = 0
        send = super().send

        def attempt() -> requests.Response:
            nonlocal tries
            tries += 1
            self.counts[kind] += 1
            self.last_attempts = tries
            response = send(request, stream=stream, timeout=timeout, verify=verify, cert=cert,
                            proxies=proxies)
            if not stream:
                _ = response.content
            return response

        return self.retry.run(attempt, clock=self.clock, pacer=self.pacer, final=self.final)


@dataclass(frozen=True)
class HttpOptions:
    """How an adapter reaches its API; every unset field takes the adapter's default.

    ``endpoint`` is another host (a proxy or a local emulator), ``timeout`` the
    (connect, read) seconds of one request, ``pacer`` the pace (share one between
    adapters to share a quota), ``retry`` what is retried and how long to wait.
    """

    endpoint: str | None = None
    timeout: tuple[float, float] | None = None
    pacer: Pacer | None = None
    retry: RetryPolicy | None = None
