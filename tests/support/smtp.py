"""A recording SMTP server on 127.0.0.1, so the real smtplib code runs in tests.

``SmtpServer`` is aiosmtpd's server on a port the OS picks; it records what it
accepts. Optional AUTH, STARTTLS or implicit TLS, SMTPUTF8 or not, recipients to
refuse, recipients whose message is taken but whose final reply is lost, and
``drop_connections()``. A context manager (``with SmtpServer() as smtp: ...``) that
also has ``start()``/``stop()``. Certificates for TLS: ``servers.make_tls_contexts``.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


@dataclass
class ReceivedMail:
    """One message the SMTP server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes  # exactly the bytes after DATA
    login: str | None  # the authenticated user, if any

    @property
    def message(self) -> EmailMessage:
        # Parsed from text: SMTPUTF8 mail has raw UTF-8 headers, which the bytes parser
        # would leave undecoded.
        text = self.data.decode("utf-8", "surrogateescape")
        return email.message_from_string(text, policy=email.policy.default)  # type: ignore[return-value]


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        reply = self.server.refuse.get(address)
        if reply == "drop":
            server.transport.close()
            return "421 4.3.0 Closing"
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        login = session.login_data.decode() if session.authenticated else None
        mail = ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, login)
        self.server.messages.append(mail)
        lost = [self.server.lose_reply[r] for r in envelope.rcpt_tos if r in self.server.lose_reply]
        if lost:
            await _lose_reply(server.transport, lost[0])
        return "250 2.0.0 Message accepted"


async def _lose_reply(transport: asyncio.Transport, how: str) -> None:
    """The message is kept; its reply is dropped, swallowed, or dripped without end."""
    if how == "drop":
        transport.close()
        return
    if how == "drip":
        transport.write(b"250 ")
    give_up = time.monotonic() + 30  # bounded, whatever the client does
    while not transport.is_closing() and time.monotonic() < give_up:
        if how == "drip":
            transport.write(b"x")
        await asyncio.sleep(0.2)


class _Controller(Controller):
    """aiosmtpd's Controller, on a port the OS picks, remembering every connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: list[SMTP] = []

    def factory(self) -> SMTP:
        smtpd = super().factory()
        self.connections.append(smtpd)
        return smtpd

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]  # port=0 -> the real one
        super()._trigger_server()


class SmtpServer:
    """A recording SMTP server on 127.0.0.1.

    ``users``: {login: password}; when given, AUTH is required before MAIL.
    ``refuse``: {address: reply}, e.g. {"nobody@example.com": "550 5.1.1 No such user"};
    the reply "drop" closes the connection instead.
    ``tls``: a server SSLContext; with ``implicit_tls`` the socket is TLS from the
    start (port 465 style), otherwise STARTTLS is offered and required. AUTH without
    TLS makes aiosmtpd warn ("Requiring AUTH while not requiring TLS"); tests may filter it.
    ``smtputf8``: whether SMTPUTF8 is advertised (without it, non-ASCII in a command is
    refused). ``lose_reply``: {address: how}; a message to that address is kept, but
    the reply to its data is lost: "drop" closes the connection, "silence" never
    answers, "drip" starts a reply and sends one more byte every 0.2 s.
    """

    def __init__(
        self,
        *,
        users: dict[str, str] | None = None,
        refuse: dict[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        smtputf8: bool = True,
        lose_reply: dict[str, str] | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.messages: list[ReceivedMail] = []
        self.refuse = dict(refuse or {})
        self.lose_reply = dict(lose_reply or {})
        self.users = dict(users or {})
        options: dict[str, Any] = {"server_hostname": "localhost", "ready_timeout": 5.0,
                                   "enable_SMTPUTF8": smtputf8}
        if self.users:
            options.update(
                authenticator=self._authenticate,
                auth_required=True,
                # aiosmtpd counts only STARTTLS as TLS; loopback AUTH in clear is fine.
                auth_require_tls=tls is not None and not implicit_tls,
            )
        if tls is not None and implicit_tls:
            options["ssl_context"] = tls
        elif tls is not None:
            options.update(tls_context=tls, require_starttls=True)
        self._controller = _Controller(_Handler(self), hostname=self.host, port=0, **options)

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.users.get(auth_data.login.decode()) == auth_data.password.decode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    @property
    def port(self) -> int:
        return self._controller.port

    @property
    def connection_count(self) -> int:
        """How many TCP connections the server has accepted (after start-up's own probe)."""
        return len(self._controller.connections) - 1

    def drop_connections(self) -> None:
        """Close every open client connection, as a server does to idle clients."""

        async def close_all() -> None:
            for smtpd in self._controller.connections:
                if smtpd.transport is not None:
                    smtpd.transport.close()

        loop = self._controller.loop
        asyncio.run_coroutine_threadsafe(close_all(), loop).result(timeout=5)

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop(no_assert=True)

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
