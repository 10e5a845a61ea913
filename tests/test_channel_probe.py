"""``probe()`` (for ``check --connect``): reach the service, send nothing, and say
clearly what is wrong; against real loopback SMTP, HTTP and HTTPS servers."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import requests

from sheetcrm.channels import make_channel, parse_channel_settings
from sheetcrm.channels.smtp import SmtpChannel
from sheetcrm.channels.webhook import WebhookChannel
from sheetcrm.errors import ChannelError
from tests.support.servers import DripServer, WebhookServer, make_tls_contexts
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

PASSWORD = "s3cret-Pa55word"
TOKEN = "T0ken-in-the-path"


def free_port() -> int:
    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def smtp_channel(port: int, **raw: object) -> SmtpChannel:
    settings = parse_channel_settings("email", {
        "type": "smtp", "from": "hello@example.com", "host": "127.0.0.1", "port": port,
        "security": "none", "timeout": 1, **raw,
    })
    channel = make_channel("email", settings, base_dir=Path("."))
    assert isinstance(channel, SmtpChannel)
    return channel


def webhook_channel(url: str, verify: bool | str = True) -> WebhookChannel:
    settings = parse_channel_settings("crm", {"type": "webhook", "url": url, "timeout": 1})
    session = requests.Session()
    session.trust_env = False
    session.verify = verify
    channel = make_channel("crm", settings, base_dir=Path("."))
    assert isinstance(channel, WebhookChannel)
    return WebhookChannel("crm", channel.settings, session=session)


# --- smtp -------------------------------------------------------------------------


def test_smtp_probe_logs_in_and_sends_nothing() -> None:
    with SmtpServer(users={"hello": PASSWORD}) as server:
        found = smtp_channel(server.port, username="hello", password=PASSWORD).probe()
        assert server.connection_count == 1
    assert found == (f"SMTP 127.0.0.1:{server.port} reachable (no encryption), "
                     "login as 'hello' accepted")
    assert server.messages == []


@pytest.mark.parametrize(("security", "shown"), [("starttls", "STARTTLS"), ("ssl", "TLS")])
def test_smtp_probe_goes_through_tls_as_configured(tmp_path: Path, security: str,
                                                   shown: str) -> None:
    server_tls, client_tls = make_tls_contexts(tmp_path)
    with SmtpServer(users={"hello": PASSWORD}, tls=server_tls,
                    implicit_tls=security == "ssl") as server:
        settings = smtp_channel(server.port, security=security, username="hello",
                                password=PASSWORD).settings
        found = SmtpChannel("email", settings, ssl_context=client_tls).probe()
    assert f"({shown})" in found and "login as 'hello' accepted" in found
    assert server.messages == []


def test_smtp_probe_with_a_wrong_password_takes_the_channel_down() -> None:
    wrong = "wrong-" + PASSWORD
    with SmtpServer(users={"hello": PASSWORD}) as server:
        channel = smtp_channel(server.port, username="hello", password=wrong)
        with pytest.raises(ChannelError) as caught:
            channel.probe()
    assert caught.value.channel_down is True
    assert "login as 'hello' refused (535)" in str(caught.value)
    assert wrong not in str(caught.value) and PASSWORD not in str(caught.value)


def test_smtp_probe_of_an_unreachable_server_takes_the_channel_down() -> None:
    port = free_port()
    with pytest.raises(ChannelError, match=f"127.0.0.1:{port}: connection failed") as caught:
        smtp_channel(port).probe()
    assert caught.value.channel_down is True


def test_smtp_probe_of_an_untrusted_certificate_takes_the_channel_down(tmp_path: Path) -> None:
    server_tls, _ = make_tls_contexts(tmp_path)
    with (SmtpServer(tls=server_tls) as server,
          pytest.raises(ChannelError, match="certificate") as caught):
        smtp_channel(server.port, security="starttls").probe()
    assert caught.value.channel_down is True


def test_smtp_probe_of_a_server_that_never_finishes_its_greeting_ends_in_time() -> None:
    with DripServer(b"220-" + b"x" * 500) as server:
        started = time.monotonic()
        with pytest.raises(ChannelError, match="no answer within 1 s") as caught:
            smtp_channel(server.port).probe()
    assert time.monotonic() - started < 4  # the drip server itself gives up after 10 s
    assert caught.value.channel_down is True


# --- webhook ----------------------------------------------------------------------


def test_webhook_probe_connects_without_sending_a_request() -> None:
    with WebhookServer(path=f"/services/{TOKEN}") as server:
        found = webhook_channel(server.url).probe()
    assert found == f"http://127.0.0.1:{server.port} reachable"
    assert server.requests == []  # nothing the receiver could act on


def test_webhook_probe_checks_the_certificate_of_an_https_receiver(tmp_path: Path) -> None:
    server_tls, _ = make_tls_contexts(tmp_path)
    with WebhookServer(path=f"/services/{TOKEN}", tls=server_tls) as server:
        found = webhook_channel(server.url, verify=str(tmp_path / "cert.pem")).probe()
        with pytest.raises(ChannelError, match="certificate") as caught:
            webhook_channel(server.url).probe()  # requests' own CA bundle: not trusted
    assert found == f"https://127.0.0.1:{server.port} reachable (TLS certificate trusted)"
    assert caught.value.channel_down is True
    assert TOKEN not in str(caught.value)
    assert server.requests == []


def test_webhook_probe_of_nothing_listening_takes_the_channel_down() -> None:
    port = free_port()
    with pytest.raises(ChannelError) as caught:
        webhook_channel(f"http://127.0.0.1:{port}/services/{TOKEN}").probe()
    assert caught.value.channel_down is True
    assert str(caught.value) == (f"http://127.0.0.1:{port}: connection failed "
                                 "(ConnectionRefusedError)")


def test_webhook_probe_of_a_peer_that_never_completes_tls_ends_in_time() -> None:
    with DripServer() as server:  # accepts, never answers the TLS handshake
        started = time.monotonic()
        with pytest.raises(ChannelError, match="no answer within 1 s") as caught:
            webhook_channel(f"https://127.0.0.1:{server.port}/services/{TOKEN}").probe()
    assert time.monotonic() - started < 4  # the drip server itself gives up after 10 s
    assert caught.value.channel_down is True
    assert TOKEN not in str(caught.value)
