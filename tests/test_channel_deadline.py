"""``timeout`` bounds a whole send, not each socket read: peers that drip one byte at a
time, against the real smtp and webhook channels on loopback."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import requests

from sheetcrm.channels import make_channel, parse_channel_settings
from sheetcrm.channels.base import Message
from sheetcrm.channels.smtp import SmtpChannel
from sheetcrm.channels.webhook import WebhookChannel
from sheetcrm.deadline import Deadline, watch
from sheetcrm.errors import ChannelError
from tests.support.servers import DripServer
from tests.support.smtp import SmtpServer

TIMEOUT = 1.0
MARGIN = 3.0  # a busy machine; without a deadline these sends last 10 s (the drip server gives up)
MESSAGE = Message(
    idempotency_key="kim@example.com:payment:2026-03-01:1",
    recipient="kim@example.com",
    subject="결제를 기다리고 있어요",
    text="안녕하세요.",
    meta={"key": "kim@example.com"},
)


def smtp_channel(port: int) -> SmtpChannel:
    settings = parse_channel_settings("email", {
        "type": "smtp", "from": "hello@example.com", "host": "127.0.0.1", "port": port,
        "security": "none", "timeout": TIMEOUT,
    })
    channel = make_channel("email", settings, base_dir=Path("."))
    assert isinstance(channel, SmtpChannel)
    return channel


def webhook_channel(url: str, **raw: object) -> WebhookChannel:
    settings = parse_channel_settings("crm", {
        "type": "webhook", "url": url, "timeout": TIMEOUT, "backoff": 0.01, **raw,
    })
    session = requests.Session()
    session.trust_env = False  # never route 127.0.0.1 through a proxy from the environment
    channel = make_channel("crm", settings, base_dir=Path("."))
    assert isinstance(channel, WebhookChannel)
    return WebhookChannel("crm", channel.settings, session=session)


def timed_failure(send: object) -> tuple[ChannelError, float]:
    started = time.monotonic()
    with pytest.raises(ChannelError) as caught:
        send()  # type: ignore[operator]
    return caught.value, time.monotonic() - started


def test_a_deadline_cuts_a_watched_read_when_the_time_is_up() -> None:
    left, right = socket.socketpair()
    with left, right:
        started = time.monotonic()
        with Deadline(0.3) as deadline:
            watch(left)
            assert left.recv(1) == b""  # the peer never wrote: the deadline ended it
        assert deadline.expired
        assert 0.25 < time.monotonic() - started < 0.3 + MARGIN


def test_a_deadline_that_ends_in_time_leaves_the_socket_alone() -> None:
    left, right = socket.socketpair()
    with left, right:
        with Deadline(0.2) as deadline:
            watch(left)
            right.sendall(b"x")
            assert left.recv(1) == b"x"
        time.sleep(0.4)
        right.sendall(b"y")
        assert left.recv(1) == b"y"
        assert not deadline.expired


def test_an_smtp_greeting_dripped_byte_by_byte_fails_within_the_timeout() -> None:
    with DripServer(b"220-" + b"x" * 500) as server:
        error, elapsed = timed_failure(lambda: smtp_channel(server.port).send(MESSAGE))
    assert elapsed < TIMEOUT + MARGIN
    assert error.channel_down is True and error.uncertain is False  # nothing was sent
    assert "no answer within 1 s" in str(error)


def test_an_smtp_reply_to_the_message_dripped_fails_within_the_timeout_as_uncertain() -> None:
    with SmtpServer(lose_reply={"kim@example.com": "drip"}) as server:
        channel = smtp_channel(server.port)
        error, elapsed = timed_failure(lambda: channel.send(MESSAGE))
    assert elapsed < TIMEOUT + MARGIN
    assert error.uncertain is True
    assert "timed out after 1 s" in str(error)
    assert len(server.messages) == 1


def test_an_smtp_send_in_time_keeps_its_connection_after_the_timeout_passes() -> None:
    with SmtpServer() as server:
        channel = smtp_channel(server.port)
        channel.send(MESSAGE)
        time.sleep(TIMEOUT + 0.3)
        channel.send(Message(**{**MESSAGE.__dict__, "idempotency_key": "k:2"}))
        channel.close()
    assert len(server.messages) == 2
    assert server.connection_count == 1


@pytest.mark.parametrize("interval", [0.3, 0.02])  # cut in the status line; in a header
def test_a_webhook_answer_dripped_byte_by_byte_fails_within_the_timeout(interval: float) -> None:
    answer = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 500
    with DripServer(answer, interval=interval) as server:
        channel = webhook_channel(f"http://127.0.0.1:{server.port}/hook", retries=0)
        error, elapsed = timed_failure(lambda: channel.send(MESSAGE))
    assert elapsed < TIMEOUT + MARGIN
    assert error.retryable is True  # transient, as any webhook timeout
    assert "no answer within 1 s" in str(error)


def test_a_webhook_send_with_retries_is_bounded_by_one_timeout_in_all() -> None:
    with DripServer(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 500) as server:
        channel = webhook_channel(f"http://127.0.0.1:{server.port}/hook", retries=3)
        error, elapsed = timed_failure(lambda: channel.send(MESSAGE))
    assert server.connections == 1
    assert elapsed < TIMEOUT + MARGIN
    assert "no answer within 1 s" in str(error) and error.channel_down
