"""The webhook channel against a local ThreadingHTTPServer: signing, retries, failures."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
import requests
from standardwebhooks import Webhook

from sheetcrm.channels import make_channel, parse_channel_settings
from sheetcrm.channels.base import Message
from sheetcrm.channels.webhook import WebhookChannel, webhook_id
from sheetcrm.errors import ChannelError, ConfigError
from sheetcrm.redact import url_origin as redact_url
from tests.support.servers import Reply, WebhookServer

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
MESSAGE = Message(
    idempotency_key="kim@example.com:payment:2026-03-01:1",
    recipient="kim@example.com",
    subject="결제를 기다리고 있어요",
    text="안녕하세요, 김철수님.",
    meta={"key": "kim@example.com", "flow": "payment", "step": "1"},
)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False  # never route 127.0.0.1 through a proxy from the environment
        yield s


@pytest.fixture
def sleeps() -> list[float]:
    return []


def hook(url: str, session: requests.Session, sleeps: list[float], **raw: object) -> WebhookChannel:
    settings = parse_channel_settings(
        "crm", {"type": "webhook", "url": url, "backoff": 0.01, "timeout": 2, **raw}
    )
    channel = make_channel("crm", settings, base_dir=Path("."))
    assert isinstance(channel, WebhookChannel)
    # the same class, built directly so the test can inject its seams
    return WebhookChannel(
        "crm", channel.settings, session=session, sleep=sleeps.append, jitter=lambda: 1.0
    )


def test_payload_and_signed_headers_arrive(session, sleeps) -> None:
    with WebhookServer() as server:
        channel = hook(server.url, session, sleeps, secret=SECRET, headers={"X-Team": "crm"})
        delivery = channel.send(MESSAGE)
    [request] = server.requests
    assert request.method == "POST" and request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == MESSAGE.idempotency_key
    assert request.headers["x-team"] == "crm"
    assert "김철수" in request.body.decode("utf-8")  # UTF-8 on the wire, not \\u escapes
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload == {
        "id": MESSAGE.idempotency_key,
        "type": "sheetcrm.message",
        "recipient": "kim@example.com",
        "subject": MESSAGE.subject,
        "text": MESSAGE.text,
        "kind": "transactional",
        "meta": MESSAGE.meta,
    }
    assert delivery.message_id == MESSAGE.idempotency_key
    assert delivery.detail == "HTTP 200"
    assert channel.redelivery_safe is False


def test_a_korean_key_becomes_a_valid_deterministic_webhook_id(session, sleeps) -> None:
    key = "김철수:payment:2026-03-01:1"
    with WebhookServer() as server:
        channel = hook(server.url, session, sleeps, secret=SECRET)
        first = channel.send(Message(**{**MESSAGE.__dict__, "idempotency_key": key}))
        again = channel.send(Message(**{**MESSAGE.__dict__, "idempotency_key": key}))
    assert first.message_id == again.message_id == webhook_id(key)
    assert first.message_id.isascii() and "김" not in first.message_id
    assert webhook_id("a%20b") != webhook_id("a b") == "a b"
    for request in server.requests:
        assert request.headers["webhook-id"] == first.message_id
        assert Webhook(SECRET).verify(request.body, request.headers)["id"] == key


def test_own_payload_is_sent_as_is_without_signature_when_no_secret(session, sleeps) -> None:
    payload = {"event": "결제 대기", "amount": 39000, "tags": ["a", "b"]}
    with WebhookServer([204]) as server:
        channel = hook(server.url, session, sleeps)
        channel.send(Message(**{**MESSAGE.__dict__, "payload": payload}))
    [request] = server.requests
    assert json.loads(request.body) == payload
    assert "webhook-signature" not in request.headers
    assert int(request.headers["webhook-timestamp"]) > 0


def test_each_attempt_is_signed_with_its_own_timestamp(session) -> None:
    times = iter([1_700_000_000.0, 1_700_000_042.9])
    with WebhookServer([503, 200]) as server:
        settings = hook(server.url, session, [], secret=SECRET).settings
        channel = WebhookChannel(
            "crm", settings, session=session, sleep=lambda s: None, clock=lambda: next(times)
        )
        channel.send(MESSAGE)
    stamps = [r.headers["webhook-timestamp"] for r in server.requests]
    assert stamps == ["1700000000", "1700000042"]
    signatures = {r.headers["webhook-signature"] for r in server.requests}
    assert len(signatures) == 2
    assert {r.body for r in server.requests} == {server.requests[0].body}


def test_retries_5xx_until_success(session, sleeps) -> None:
    with WebhookServer([503, 503, 200]) as server:
        delivery = hook(server.url, session, sleeps).send(MESSAGE)
    assert len(server.requests) == 3
    assert delivery.detail == "HTTP 200"
    assert sleeps == [0.01, 0.02]  # exponential; jitter pinned to its maximum


def test_client_error_fails_at_once(session, sleeps) -> None:
    with WebhookServer([400]) as server:
        url = server.url.replace("127.0.0.1", "user:pw@127.0.0.1") + "?token=abc"
        channel = hook(url, session, sleeps, secret=SECRET)
        with pytest.raises(ChannelError) as caught:
            channel.send(MESSAGE)
    assert len(server.requests) == 1
    assert caught.value.retryable is False
    text = str(caught.value)
    assert "400" in text and f"http://127.0.0.1:{server.port}:" in text
    assert "/hook" not in text  # the path may hold the hook's token
    assert "pw" not in text and "token" not in text and SECRET not in text
    assert sleeps == []


@pytest.mark.parametrize("status", [408, 429, 500, 502])
def test_transient_statuses_are_retried(session, sleeps, status: int) -> None:
    with WebhookServer([status, 200]) as server:
        hook(server.url, session, sleeps).send(MESSAGE)
    assert len(server.requests) == 2


def test_exhausted_retries_are_retryable_later(session, sleeps) -> None:
    with WebhookServer([503] * 10) as server:
        channel = hook(server.url, session, sleeps, retries=2)
        with pytest.raises(ChannelError, match="503") as caught:
            channel.send(MESSAGE)
    assert len(server.requests) == 3
    assert caught.value.retryable is True
    assert len(sleeps) == 2


def test_a_timeout_ends_the_send_and_the_message_waits_for_the_next_run(
        session, sleeps) -> None:
    # The timeout bounds the whole send, retries included: no time is left to retry.
    with WebhookServer([Reply(200, delay=2.0), 200]) as server:
        channel = hook(server.url, session, sleeps, timeout=0.2)
        with pytest.raises(ChannelError, match="no answer within 0.2 s") as caught:
            channel.send(MESSAGE)
    assert len(server.requests) == 1 and sleeps == []
    assert caught.value.channel_down and caught.value.retryable


def test_retry_after_is_honoured_and_capped(session, sleeps) -> None:
    replies = [
        Reply(429, headers={"Retry-After": "7"}),
        Reply(503, headers={"Retry-After": "3600"}),
    ]
    with WebhookServer([*replies, 200]) as server:
        hook(server.url, session, sleeps, timeout=120).send(MESSAGE)
    assert len(server.requests) == 3
    assert sleeps == [7.0, 60.0]


def test_a_retry_after_given_as_an_http_date_is_honoured(session, sleeps) -> None:
    when = formatdate(time.time() + 20, usegmt=True)
    with WebhookServer([Reply(503, headers={"Retry-After": when}), 200]) as server:
        hook(server.url, session, sleeps, timeout=120).send(MESSAGE)
    assert len(server.requests) == 2
    [wait] = sleeps
    assert 18.0 <= wait <= 20.0  # the date has whole seconds


def test_a_retry_after_beyond_the_time_left_waits_for_the_next_run(session, sleeps) -> None:
    with (WebhookServer([Reply(429, headers={"Retry-After": "7"}), 200]) as server,
          pytest.raises(ChannelError, match="HTTP 429") as caught):
        hook(server.url, session, sleeps, timeout=2).send(MESSAGE)
    assert len(server.requests) == 1 and sleeps == []
    assert caught.value.channel_down


def test_nothing_listening_is_retried_then_retryable(session, sleeps) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    channel = hook(f"http://127.0.0.1:{port}/hook", session, sleeps, retries=1)
    with pytest.raises(ChannelError, match="connection failed") as caught:
        channel.send(MESSAGE)
    assert caught.value.retryable is True
    assert len(sleeps) == 1


def test_redirects_are_not_followed(session, sleeps) -> None:
    server = WebhookServer([Reply(302, headers={"Location": "/elsewhere"})])
    with server, pytest.raises(ChannelError, match="302") as caught:
        hook(server.url, session, sleeps).send(MESSAGE)
    assert [r.path for r in server.requests] == ["/hook"]
    assert caught.value.channel_down is True  # the URL is wrong for every message


def test_close_keeps_an_injected_session_open(session, sleeps) -> None:
    with WebhookServer() as server:
        channel = hook(server.url, session, sleeps)
        channel.close()
        session.post(server.url, data=b"{}", timeout=2)  # still usable
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"url": "ftp://example.com/x"}, "channels.crm.url"),
        ({"url": "ftp://example.com/s3cret-path"}, "channels.crm.url"),
        ({"url": "https://example.com/s3cret-path with space"}, "channels.crm.url"),
        ({"url": "example.com/s3cret-path"}, "channels.crm.url"),
        ({"url": "https://example.com", "secret": "not-a-secret"}, "channels.crm.secret"),
        ({"url": "https://example.com", "secret": "whsec_%%%"}, "channels.crm.secret"),
        ({"url": "https://example.com", "headers": {"webhook-id": "x"}}, "channels.crm.headers"),
        ({"url": "https://example.com", "headers": {"X-A": "a\r\nb"}}, "channels.crm.headers"),
        ({"url": "https://example.com", "headers": {"X-A": "토큰"}}, "channels.crm.headers"),
        ({"url": "https://example.com", "retries": -1}, "channels.crm.retries"),
        ({"url": "https://example.com", "timeout": "soon"}, "channels.crm.timeout"),
        ({"url": "https://example.com", "secrett": "whsec_abc"}, "channels.crm.secrett"),
        ({}, "channels.crm.url"),
    ],
)
def test_bad_settings_name_the_key_and_hide_secrets(raw: dict, path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_channel_settings("crm", {"type": "webhook", **raw})
    assert caught.value.path == path
    for secret in ("not-a-secret", "whsec_%%%", "whsec_abc", "a\r\nb", "토큰", "s3cret"):
        assert secret not in str(caught.value)


def test_settings_never_print_secrets() -> None:
    settings = parse_channel_settings(
        "crm",
        {
            "type": "webhook",
            "url": "https://example.com/hook",
            "secret": SECRET,
            "headers": {"Authorization": "Bearer tok-123"},
        },
    )
    assert SECRET not in repr(settings) and "tok-123" not in repr(settings)
    assert SECRET not in str(settings) and "tok-123" not in str(settings)


def test_unknown_type_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="outbox, smtp, webhook") as caught:
        parse_channel_settings("crm", {"type": "slack"})
    assert caught.value.path == "channels.crm.type"


def test_redact_url_keeps_only_scheme_host_and_port() -> None:
    assert redact_url("https://u:p@example.com:8443/a/b?token=x#f") == "https://example.com:8443"
    assert redact_url("https://hooks.slack.com/services/T0/B0/XyZ") == "https://hooks.slack.com"
    assert redact_url("http://[::1]/hook") == "http://[::1]"
    assert redact_url("not a url /with/a/token") == ""
