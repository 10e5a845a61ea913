"""The smtp channel against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import SmtpServer, make_tls_contexts

from sheetcrm.channels import make_channel, parse_channel_settings
from sheetcrm.channels.base import Message
from sheetcrm.channels.smtp import SmtpChannel
from sheetcrm.errors import ChannelError

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

PASSWORD = "s3cret-Pa55word"
MESSAGE = Message(
    idempotency_key="kim@example.com:payment:2026-03-01:1",
    recipient="김철수 <kim@example.com>",
    subject="결제를 기다리고 있어요",
    text="안녕하세요, 김철수님.",
    meta={"key": "kim@example.com", "date": "Mon, 02 Mar 2026 09:00:00 +0900"},
)


def message(**changes: object) -> Message:
    return Message(**{**MESSAGE.__dict__, **changes})


def channel_for(server: SmtpServer | None, port: int = 0, **raw: object) -> SmtpChannel:
    settings = parse_channel_settings(
        "email",
        {
            "type": "smtp",
            "from": "My Class <hello@example.com>",
            "host": "127.0.0.1",
            "port": server.port if server else port,
            "security": "none",
            "timeout": 5,
            **raw,
        },
    )
    channel = make_channel("email", settings, base_dir=Path("."))
    assert isinstance(channel, SmtpChannel)
    return channel


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(refuse={"nobody@example.com": "550 5.1.1 No such user"}) as server:
        yield server


@pytest.fixture
def smtp_auth() -> Iterator[SmtpServer]:
    with SmtpServer(users={"hello": PASSWORD}) as server:
        yield server


def test_plain_send_arrives_with_korean_subject(smtp: SmtpServer) -> None:
    channel = channel_for(smtp)
    delivery = channel.send(MESSAGE)
    channel.close()
    [mail] = smtp.messages
    assert mail.mail_from == "hello@example.com"
    assert mail.rcpt_tos == ["kim@example.com"]
    assert mail.message["Subject"] == "결제를 기다리고 있어요"
    assert mail.message["Message-ID"] == delivery.message_id
    assert mail.message.get_content() == "안녕하세요, 김철수님.\n"
    assert channel.redelivery_safe is False


def test_one_connection_is_kept_across_sends(smtp: SmtpServer) -> None:
    channel = channel_for(smtp)
    for step in range(3):
        channel.send(message(idempotency_key=f"k:{step}"))
    channel.close()
    channel.close()  # closing twice is harmless
    assert len(smtp.messages) == 3
    assert smtp.connection_count == 1


def test_reconnects_once_when_the_server_dropped_the_connection(smtp: SmtpServer) -> None:
    channel = channel_for(smtp)
    channel.send(message(idempotency_key="k:1"))
    smtp.drop_connections()
    channel.send(message(idempotency_key="k:2"))
    channel.close()
    assert [m.message["X-Sheetcrm-Key"] for m in smtp.messages] == ["k:1", "k:2"]
    assert smtp.connection_count == 2


def test_header_injection_arrives_neutralised(smtp: SmtpServer) -> None:
    channel = channel_for(smtp)
    channel.send(message(subject="안녕\r\nBcc: evil@x.com", idempotency_key="k:1"))
    channel.send(message(subject="=?UTF-8?Q?=0A?=Bcc: evil@x.com", idempotency_key="k:2"))
    channel.close()
    assert [m.rcpt_tos for m in smtp.messages] == [["kim@example.com"]] * 2
    for mail in smtp.messages:
        assert mail.message["Bcc"] is None
        assert len(mail.message.get_all("Subject")) == 1


def test_refused_recipient_is_not_retryable(smtp: SmtpServer) -> None:
    channel = channel_for(smtp)
    with pytest.raises(ChannelError, match="550") as caught:
        channel.send(message(recipient="nobody@example.com"))
    assert caught.value.retryable is False
    channel.send(MESSAGE)  # the channel still works afterwards
    channel.close()
    assert len(smtp.messages) == 1


def test_temporary_refusal_is_retryable() -> None:
    with SmtpServer(refuse={"busy@example.com": "450 4.2.1 Mailbox busy"}) as server:
        channel = channel_for(server)
        with pytest.raises(ChannelError, match="450") as caught:
            channel.send(message(recipient="busy@example.com"))
        channel.close()
    assert caught.value.retryable is True


def test_server_not_listening_is_retryable() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    channel = channel_for(None, port=port, username="hello", password=PASSWORD)
    with pytest.raises(ChannelError) as caught:
        channel.send(MESSAGE)
    assert caught.value.retryable is True
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_login_succeeds(smtp_auth: SmtpServer) -> None:
    channel = channel_for(smtp_auth, username="hello", password=PASSWORD)
    channel.send(MESSAGE)
    channel.close()
    [mail] = smtp_auth.messages
    assert mail.login == "hello"


def test_wrong_password_takes_the_channel_down_and_is_never_shown(smtp_auth: SmtpServer) -> None:
    wrong = "wrong-" + PASSWORD
    channel = channel_for(smtp_auth, username="hello", password=wrong)
    with pytest.raises(ChannelError) as caught:
        channel.send(MESSAGE)
    assert caught.value.channel_down is True  # no customer is failed for it
    assert "535" in str(caught.value) and "hello" in str(caught.value)
    assert wrong not in str(caught.value) and wrong not in repr(caught.value)
    assert wrong not in repr(channel.settings)
    assert smtp_auth.messages == []


def test_missing_login_is_refused(smtp_auth: SmtpServer) -> None:
    channel = channel_for(smtp_auth)
    with pytest.raises(ChannelError, match="530") as caught:
        channel.send(MESSAGE)
    assert caught.value.channel_down is True  # no customer is failed for it


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_with_login(tmp_path: Path, security: str) -> None:
    server_tls, client_tls = make_tls_contexts(tmp_path)
    implicit = security == "ssl"
    with SmtpServer(users={"hello": PASSWORD}, tls=server_tls, implicit_tls=implicit) as server:
        settings = channel_for(server, security=security, username="hello", password=PASSWORD)
        channel = SmtpChannel("email", settings.settings, ssl_context=client_tls)
        channel.send(MESSAGE)
        channel.close()
    [mail] = server.messages
    assert mail.login == "hello"
    assert mail.message["Subject"] == MESSAGE.subject


def test_untrusted_certificate_takes_the_channel_down(tmp_path: Path) -> None:
    server_tls, _ = make_tls_contexts(tmp_path)
    with SmtpServer(tls=server_tls) as server:
        channel = channel_for(server, security="starttls")  # trusts only the system CAs
        with pytest.raises(ChannelError, match="certificate") as caught:
            channel.send(MESSAGE)
    assert caught.value.channel_down is True  # no customer is failed for it
    assert server.messages == []
