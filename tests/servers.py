"""Loopback servers that speak the real protocols, so the real client code runs in tests.

- ``SmtpServer``: aiosmtpd on 127.0.0.1, records what it accepts; optional AUTH,
  STARTTLS or implicit TLS, SMTPUTF8 or not, recipients to refuse, recipients whose
  message is taken but whose final reply is lost, and ``drop_connections()``.
- ``WebhookServer``: a threaded ``http.server`` on 127.0.0.1 (optionally https),
  records every request and answers from a script of ``Reply`` (status, delay,
  headers); 200 once the script ends.
- ``DripServer``: a TCP server on 127.0.0.1 that answers every connection one byte at
  a time, slowly enough that no per-read timeout ever fires.
- ``make_tls_contexts(dir)``: a throwaway self-signed certificate for 127.0.0.1.

The servers are context managers (``with SmtpServer() as smtp: ...``) and also have
``start()``/``stop()``; they bind a free port chosen by the OS.
"""

from __future__ import annotations

import asyncio
import datetime
import email
import email.policy
import http.server
import ipaddress
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

# --------------------------------------------------------------------------- SMTP


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


# --------------------------------------------------------------------------- HTTP


class LoopbackHTTP:
    """A threaded HTTP server on 127.0.0.1, on a port the OS picks, that a test starts
    and stops (``with Server() as server:``). Subclasses supply the handler class."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler],
                 tls: ssl.SSLContext | None = None) -> None:
        self._stopping = threading.Event()  # ends scripted delays when the server stops
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()



@dataclass
class Reply:
    """One scripted answer: wait ``delay`` seconds, then answer ``status``."""

    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


class WebhookServer(LoopbackHTTP):
    """A recording HTTP server on 127.0.0.1 answering from a script.

    ``replies`` (``Reply`` or a bare status) are used in order, one per request; once
    they run out every request gets 200. Delays end early when the server stops.
    ``on_request`` runs for each request before it is answered (a test's way to act
    while the client waits). ``tls``: a server SSLContext makes it https.
    """

    def __init__(self, replies: Iterable[Reply | int] = (), *, path: str = "/hook",
                 on_request: Callable[[ReceivedRequest], None] | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.path = path
        self.on_request = on_request
        self.requests: list[ReceivedRequest] = []
        self._script = [r if isinstance(r, Reply) else Reply(r) for r in replies]
        self._lock = threading.Lock()
        super().__init__(self._handler_class(), tls)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{self.path}"

    def _next_reply(self, request: ReceivedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self.on_request is not None:
                self.on_request(request)
            return self._script.pop(0) if self._script else Reply()

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = server._next_reply(ReceivedRequest(self.command, self.path, headers, body))
                if reply.delay:
                    server._stopping.wait(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the client gave up waiting (a timeout test)

            do_POST = do_GET = do_PUT = _answer  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # keep test output clean

        return Handler


# --------------------------------------------------------------------------- drip


class DripServer:
    """A TCP server on 127.0.0.1 that answers each connection with ``data``, one byte
    every ``interval`` seconds, without reading anything (the kernel buffers what the
    client sends). An empty ``data`` is a peer that accepts and never says a word.

    Every connection ends after ``give_up`` seconds at the latest, so a client with no
    overall deadline still finishes (late) instead of hanging the test run.
    """

    def __init__(self, data: bytes = b"", *, interval: float = 0.2,
                 give_up: float = 10.0) -> None:
        self.data, self.interval, self.give_up = data, interval, give_up
        self.connections = 0
        self._stopping = threading.Event()
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                server.connections += 1
                sock: socket.socket = self.request
                end = time.monotonic() + server.give_up
                for byte in server.data:
                    if server._stopping.wait(server.interval) or time.monotonic() > end:
                        return
                    try:
                        sock.sendall(bytes([byte]))
                    except OSError:
                        return  # the client gave up
                while not server._stopping.wait(0.05) and time.monotonic() < end:
                    pass

        self._tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._tcp.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._tcp.server_address[1])

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._tcp.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._tcp.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._tcp.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- TLS


def make_tls_contexts(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context) for a self-signed cert valid for 127.0.0.1.

    The client context verifies the certificate and host name as in production; it
    only trusts this one certificate.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client
