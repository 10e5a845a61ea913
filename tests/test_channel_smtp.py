"""The smtp channel against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sheetcrm.channels import make_channel, parse_channel_settings
from sheetcrm.channels.base import Message
from sheetcrm.channels.smtp import SmtpChannel
from sheetcrm.errors import ChannelError, ConfigError
from tests.support.servers import make_tls_contexts
from tests.support.smtp import SmtpServer

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
    assert caught.value.channel_down is False and caught.value.uncertain is False
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


# --- the reply to the message lost (the server may have it) -------------------------


@pytest.mark.parametrize("how", ["drop", "silence"])
def test_a_lost_reply_to_the_message_makes_the_send_uncertain(how: str) -> None:
    with SmtpServer(lose_reply={"kim@example.com": how}) as server:
        channel = channel_for(server, timeout=1)
        started = time.monotonic()
        with pytest.raises(ChannelError) as caught:
            channel.send(MESSAGE)
        elapsed = time.monotonic() - started
        channel.send(message(recipient="lee@example.com", idempotency_key="k:2"))
        channel.close()
    assert caught.value.uncertain is True  # like a crash after sending: never sent again
    assert caught.value.retryable is False and caught.value.channel_down is False
    assert "may have accepted it" in str(caught.value)
    assert elapsed < 3
    # The server did take the first message; the channel goes on with the next one.
    assert [m.rcpt_tos for m in server.messages] == [["kim@example.com"], ["lee@example.com"]]


def test_a_connection_dropped_before_the_message_went_out_is_not_uncertain() -> None:
    with SmtpServer(refuse={"kim@example.com": "drop"}) as server:
        channel = channel_for(server)
        with pytest.raises(ChannelError) as caught:
            channel.send(MESSAGE)
    assert caught.value.uncertain is False
    assert caught.value.retryable is True  # not delivered: the next run sends it
    assert server.messages == []


# --- what one recipient's address needs -------------------------------------------


def test_a_hangul_domain_goes_idna_encoded_to_a_server_without_smtputf8() -> None:
    with SmtpServer(smtputf8=False) as server:
        channel = channel_for(server)
        channel.send(message(recipient="김철수 <kim@예시.한국>"))
        channel.close()
    [mail] = server.messages
    assert mail.rcpt_tos == ["kim@xn--vv4b11d.xn--3e0b707e"]
    assert mail.data.isascii()
    assert mail.message["To"].addresses[0].addr_spec == "kim@xn--vv4b11d.xn--3e0b707e"
    assert mail.message["To"].addresses[0].display_name == "김철수"


def test_a_korean_local_part_fails_only_that_recipient_without_smtputf8() -> None:
    with SmtpServer(smtputf8=False) as server:
        channel = channel_for(server)
        with pytest.raises(ChannelError, match="SMTPUTF8") as caught:
            channel.send(message(recipient="김철수@example.com"))
        channel.send(message(idempotency_key="k:2"))  # the channel still works
        channel.close()
    assert caught.value.retryable is False and caught.value.channel_down is False
    assert "김철수@example.com" in str(caught.value)
    assert [m.rcpt_tos for m in server.messages] == [["kim@example.com"]]


def test_a_korean_local_part_goes_through_a_server_with_smtputf8() -> None:
    with SmtpServer(smtputf8=True) as server:
        channel = channel_for(server)
        channel.send(message(recipient="김철수 <김철수@예시.한국>"))
        channel.close()
    [mail] = server.messages
    assert mail.rcpt_tos == ["김철수@xn--vv4b11d.xn--3e0b707e"]
    assert mail.message["To"].addresses[0].username == "김철수"
    assert mail.message["Subject"] == MESSAGE.subject


def test_an_address_too_long_for_smtp_fails_only_that_recipient(smtp: SmtpServer) -> None:
    channel = channel_for(smtp)
    with pytest.raises(ChannelError) as caught:
        channel.send(message(recipient="a" * 2000 + "@example.com"))
    channel.send(MESSAGE)
    channel.close()
    assert caught.value.retryable is False and caught.value.channel_down is False
    text = str(caught.value)
    assert "2012 characters" in text and "254" in text
    assert len(text) < 200  # the address is not repeated in full
    assert [m.rcpt_tos for m in smtp.messages] == [["kim@example.com"]]


# --- a password in clear ----------------------------------------------------------


def smtp_settings(**raw: object) -> object:
    return parse_channel_settings("email", {
        "type": "smtp", "from": "hello@example.com", "host": "smtp.example.com",
        "username": "hello", "password": PASSWORD, **raw,
    })


def test_a_password_in_clear_to_another_machine_is_refused_at_load() -> None:
    with pytest.raises(ConfigError) as caught:
        smtp_settings(security="none")
    assert caught.value.path == "channels.email.security"
    text = str(caught.value)
    assert "smtp.example.com" in text and "allow_insecure_login = true" in text
    assert PASSWORD not in text


@pytest.mark.parametrize(
    "raw",
    [
        {"security": "none", "allow_insecure_login": True},
        {"security": "none", "host": "127.0.0.1"},
        {"security": "none", "host": "127.0.0.53"},
        {"security": "none", "host": "::1"},
        {"security": "none", "host": "localhost"},
        {"security": "starttls"},
        {"security": "ssl"},
    ],
)
def test_a_password_in_clear_is_accepted_on_loopback_tls_or_when_allowed(raw: dict) -> None:
    smtp_settings(**raw)


def test_no_password_needs_no_encryption() -> None:
    parse_channel_settings("email", {"type": "smtp", "from": "hello@example.com",
                                     "host": "smtp.example.com", "security": "none"})
