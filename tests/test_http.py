"""The shared retry and pacing (``sheetcrm.http``) against a real loopback HTTP server.

``WebhookServer`` answers from a script (status, delay, headers, body), so each test
says exactly what the server does; requests and urllib3 run unchanged. Waits go to a
virtual clock whose ``sleep`` only moves the time: a minute's window or a 30-second
penalty costs nothing, and the waits themselves are what the tests check.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate

import pytest
import requests

from sheetcrm.http import Pacer, RetryAdapter, RetryPolicy, retry_after
from tests.support.clock import VirtualClock
from tests.support.servers import Reply, WebhookServer

HTML = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"


@pytest.fixture
def vclock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False  # never route 127.0.0.1 through a proxy from the environment
        yield s


def mount(session: requests.Session, vclock: VirtualClock, *, pacer: Pacer | None = None,
          **policy: object) -> RetryAdapter:
    """A RetryAdapter on ``session`` waiting on the virtual clock; jitter pinned to 0."""
    adapter = RetryAdapter(RetryPolicy(**{"jitter": lambda: 0.0, **policy}),  # type: ignore[arg-type]
                           pacer=pacer, clock=vclock.clock)
    session.mount("http://", adapter)
    return adapter


# --------------------------------------------------------------------------- Retry-After


def test_a_429_with_retry_after_in_seconds_waits_that_long(session, vclock) -> None:
    with WebhookServer([Reply(429, headers={"Retry-After": "7"}), 200]) as server:
        adapter = mount(session, vclock)
        response = session.get(server.url, timeout=2)
    assert response.status_code == 200 and len(server.requests) == 2
    assert vclock.sleeps == [7.0]  # longer than the backoff's 0.5 s
    assert adapter.counts == {"GET": 2} and adapter.last_attempts == 2


def test_a_retry_after_given_as_an_http_date_is_honoured(session, vclock) -> None:
    when = formatdate(time.time() + 20, usegmt=True)  # whole seconds, on the wall clock
    with WebhookServer([Reply(503, headers={"Retry-After": when}), 200]) as server:
        mount(session, vclock)
        assert session.get(server.url, timeout=2).status_code == 200
    [wait] = vclock.sleeps
    assert 18.0 <= wait <= 20.0


def test_an_unreadable_retry_after_falls_back_to_the_backoff(session, vclock) -> None:
    with WebhookServer([Reply(429, headers={"Retry-After": "soon"}), 200]) as server:
        mount(session, vclock, base_delay=2.0)
        assert session.get(server.url, timeout=2).status_code == 200
    assert vclock.sleeps == [1.0]  # 2 s × ½, jitter at its minimum
    answer = requests.Response()
    answer.headers["Retry-After"] = "soon"
    assert retry_after(answer) is None


def test_no_wait_is_longer_than_the_one_cap(session, vclock) -> None:
    """Retry-After and the exponential backoff are cut to the same ``max_wait``."""
    replies = [Reply(503, headers={"Retry-After": "3600"}), Reply(503), 200]
    with WebhookServer(replies) as server:
        mount(session, vclock, max_wait=60.0, base_delay=100.0, jitter=lambda: 1.0)
        assert session.get(server.url, timeout=2).status_code == 200
    assert vclock.sleeps == [60.0, 60.0]


def test_jitter_spreads_waits_within_bounds() -> None:
    for draw in (0.0, 0.3, 0.999):
        policy = RetryPolicy(jitter=lambda d=draw: d)
        for retry in range(10):
            ceiling = min(policy.max_wait, policy.base_delay * 2 ** retry)
            assert ceiling / 2 <= policy.delay(retry) <= ceiling
    assert RetryPolicy(jitter=lambda: 0.0).delay(0, retry_after=20) == 20
    assert RetryPolicy(jitter=lambda: 0.0).delay(0, retry_after=900) == 32


# --------------------------------------------------------------------------- what is retried


def test_a_5xx_with_an_html_body_is_retried_and_the_last_answer_kept(session, vclock) -> None:
    html = {"Content-Type": "text/html"}
    with WebhookServer([Reply(502, headers=html, body=HTML)] * 3) as server:
        mount(session, vclock, attempts=3)
        response = session.post(server.url, data=b"{}", timeout=2)
    assert len(server.requests) == 3
    assert response.status_code == 502 and response.content == HTML  # the caller reports it
    with WebhookServer([Reply(502, headers=html, body=HTML), 200]) as server:
        assert session.post(server.url, data=b"{}", timeout=2).status_code == 200
    assert [r.body for r in server.requests] == [b"{}", b"{}"]  # the body is sent again


def test_client_errors_are_answered_at_once(session, vclock) -> None:
    with WebhookServer([400, 404, 200]) as server:
        mount(session, vclock)
        assert session.get(server.url, timeout=2).status_code == 400
        assert session.get(server.url, timeout=2).status_code == 404
    assert len(server.requests) == 2 and vclock.sleeps == []


def test_an_answer_marked_final_is_neither_retried_nor_held(vclock) -> None:
    pacer = Pacer(100, 1.0, clock=vclock.clock, penalty=30.0)
    spent = Reply(429, body=b'{"error": "MONTHLY_CAP"}')
    with WebhookServer([spent, 200]) as server, requests.Session() as session:
        session.trust_env = False
        session.mount("http://", RetryAdapter(RetryPolicy(), pacer=pacer,
                                              final=lambda r: b"MONTHLY_CAP" in r.content))
        assert session.get(server.url, timeout=2).status_code == 429
        assert session.get(server.url, timeout=2).status_code == 200
    assert len(server.requests) == 2 and vclock.sleeps == []


@pytest.mark.parametrize(("timeout_retries", "attempts"), [(0, 1), (1, 2), (None, 3)])
def test_a_timeout_is_retried_only_as_often_as_the_policy_allows(
        session, vclock, timeout_retries: int | None, attempts: int) -> None:
    slow = Reply(200, delay=1.0)
    with WebhookServer([slow, slow, 200]) as server:
        adapter = mount(session, vclock, timeout_retries=timeout_retries)
        if attempts == 3:
            assert session.get(server.url, timeout=0.2).status_code == 200
        else:
            with pytest.raises(requests.ReadTimeout):  # still a timeout, not a ConnectionError
                session.get(server.url, timeout=0.2)
    assert adapter.counts["GET"] == attempts == len(server.requests)


def test_refused_connections_are_retried_then_raised(session, vclock) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = mount(session, vclock, attempts=3)
    with pytest.raises(requests.ConnectionError):
        session.get(f"http://127.0.0.1:{port}/", timeout=2)
    assert adapter.last_attempts == 3 and vclock.sleeps == [0.5, 1.0]


def test_an_answer_cut_short_is_retried_like_a_dropped_connection(session, vclock) -> None:
    """The adapter reads the body inside the attempt, so a cut body is retried too."""
    served: list[int] = []

    class CutOnce(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            served.append(1)
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"x" * (10 if len(served) == 1 else 100))
            self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CutOnce)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        mount(session, vclock)
        response = session.get(f"http://127.0.0.1:{server.server_port}/", timeout=2)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert response.content == b"x" * 100 and len(served) == 2 and vclock.sleeps == [0.5]


# --------------------------------------------------------------------------- bounds


def test_the_attempts_are_bounded_and_the_backoff_doubles(session, vclock) -> None:
    with WebhookServer([503] * 10) as server:
        adapter = mount(session, vclock, attempts=4, jitter=lambda: 1.0)
        assert session.get(server.url, timeout=2).status_code == 503
    assert len(server.requests) == 4 and adapter.last_attempts == 4
    assert vclock.sleeps == [1.0, 2.0, 4.0]


def test_the_deadline_stops_before_a_wait_that_would_end_past_it(session, vclock) -> None:
    replies = [Reply(429, headers={"Retry-After": "4"}), Reply(429, headers={"Retry-After": "7"}),
               200]
    with WebhookServer(replies) as server:
        mount(session, vclock, deadline=10.0)
        response = session.get(server.url, timeout=2)
    assert response.status_code == 429  # 4 s waited; 4 + 7 would pass the 10 s deadline
    assert len(server.requests) == 2 and vclock.sleeps == [4.0]


def test_the_deadline_counts_the_time_the_attempts_took(session, vclock) -> None:
    """The policy reads its clock, so time spent waiting for answers counts too."""

    def slow_answer(request: object) -> None:
        vclock.advance(4.5)  # each answer takes 4.5 s

    with WebhookServer([503, 503, 200], on_request=slow_answer) as server:
        mount(session, vclock, deadline=10.0)
        assert session.get(server.url, timeout=2).status_code == 503
    assert len(server.requests) == 2
    assert vclock.sleeps == [0.5]  # after 9.5 s, a 1 s wait would end past 10 s


# --------------------------------------------------------------------------- pacing


def test_a_pacer_keeps_requests_within_its_window(session, vclock) -> None:
    pacer = Pacer(2, 60.0, clock=vclock.clock)
    with WebhookServer() as server:
        adapter = mount(session, vclock, pacer=pacer)
        for _ in range(5):
            session.get(server.url, timeout=2)
    assert len(server.requests) == 5 and adapter.attempts == 5
    assert vclock.sleeps == [60.0, 60.0] and pacer.waited == 120.0


def test_a_pacer_allows_at_most_limit_requests_in_any_window(vclock) -> None:
    pacer = Pacer(55, 60.0, clock=vclock.clock)
    stamps = []
    for i in range(200):
        pacer.wait()
        stamps.append(vclock.now())
        vclock.advance(0.1 if i % 7 else 0.5)
    for i, start in enumerate(stamps):
        assert sum(1 for t in stamps[i:] if t < start + 60.0) <= 55


def test_retries_keep_to_the_pace_too(session, vclock) -> None:
    pacer = Pacer(1, 5.0, clock=vclock.clock)
    with WebhookServer([503, 200]) as server:
        mount(session, vclock, pacer=pacer)
        assert session.get(server.url, timeout=2).status_code == 200
    assert vclock.sleeps == [5.0]  # the 0.5 s backoff is inside the 5 s spacing


def test_a_429_holds_the_pacer_for_its_penalty_even_when_retries_run_out(
        session, vclock) -> None:
    pacer = Pacer(100, 1.0, clock=vclock.clock, penalty=30.0)
    replies = [429, Reply(429, headers={"Retry-After": "45"}), 200]
    with WebhookServer(replies) as server:
        mount(session, vclock, pacer=pacer, attempts=1, max_wait=60.0)
        assert session.get(server.url, timeout=2).status_code == 429  # no retry allowed
        assert session.get(server.url, timeout=2).status_code == 429  # ... and held 30 s
        assert session.get(server.url, timeout=2).status_code == 200  # ... then 45 s
    assert vclock.sleeps == [30.0, 45.0]


def test_pacer_refuses_a_pace_that_allows_nothing() -> None:
    with pytest.raises(ValueError, match="allows nothing"):
        Pacer(0, 60.0)
