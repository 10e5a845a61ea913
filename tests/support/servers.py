"""Loopback servers that speak the real protocols, so the real client code runs in tests.

- ``LoopbackServer``: a threaded HTTP server on 127.0.0.1 (optionally https) with the
  parts every fake HTTP service needs, written once: a request log (``requests``,
  each a ``Request`` stamped by the server's clock and marked with the status it got),
  scripted faults (``add_fault``: a ``Reply`` for the requests a ``Fault`` matches,
  after ``skip`` of them and ``times`` times, or only after the request was applied,
  or a dropped connection, or a late answer), an ``on_request`` callback (a test's
  way to act while the client waits), and ``start``/``stop``. A subclass answers
  what no fault replaces: ``answer(request) -> Reply`` (or raises ``HttpError``
  for an error with a JSON body). The Sheets and Airtable
  emulators (``support.emulators``) are subclasses.
- ``WebhookServer``: a ``LoopbackServer`` that answers from a script of ``Reply``
  (status, delay, headers, body), one per request, then 200.
- ``DripServer``: a TCP server on 127.0.0.1 that answers every connection one byte at
  a time, slowly enough that no per-read timeout ever fires.
- ``make_tls_contexts(dir)``: a throwaway self-signed certificate for 127.0.0.1.

The servers are context managers (``with WebhookServer() as server: ...``) and also
have ``start()``/``stop()``; they bind a free port chosen by the OS. A scripted delay
ends early when the server stops. The SMTP server is in ``support.smtp``.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import socket
import socketserver
import ssl
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self


class _Threaded:
    """A socketserver server served from a background thread: start, stop, port."""

    def __init__(self, server: socketserver.BaseServer) -> None:
        self._server = server
        self._stopping = threading.Event()  # ends scripted delays when the server stops
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])  # type: ignore[index]

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- HTTP


@dataclass
class Request:
    """One request as a loopback server saw it."""

    method: str
    target: str  # the path and query as sent (percent-encoded)
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float = 0.0  # the server's clock when it arrived
    status: int = 0  # the status answered; -1 when the connection was dropped

    @property
    def path(self) -> str:
        """The target without its query, still percent-encoded."""
        return self.target.partition("?")[0]

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self.target.partition("?")[2], keep_blank_values=True)

    def json(self) -> Any:
        """The body parsed as JSON; None when empty."""
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    """One scripted answer: wait ``delay`` seconds (with a ``gate``, until the test
    sets it, ``delay`` at most), then answer ``status`` (or, with ``drop``, close the
    connection without a word)."""

    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    drop: bool = False
    gate: threading.Event | None = None


def json_reply(status: int, payload: Any) -> Reply:
    """An answer with a JSON body (UTF-8, non-ASCII kept as is)."""
    return Reply(status, headers={"Content-Type": "application/json; charset=UTF-8"},
                 body=json.dumps(payload, ensure_ascii=False).encode())


class HttpError(Exception):
    """Raised from ``LoopbackServer.answer``: the server answers ``status`` with the
    JSON ``body``. An emulator subclasses it to build its service's error bodies."""

    def __init__(self, status: int, body: Any, message: str = "") -> None:
        super().__init__(message or f"HTTP {status}")
        self.status = status
        self.body = body


def _every(request: Request) -> bool:
    return True


@dataclass
class Fault:
    """``reply`` for the requests ``matches`` accepts: the next ``times`` of them (None:
    every one) once ``skip`` of them went by.

    A ``reply`` with status 0 only delays the real answer. With ``after_apply`` the
    request is answered as usual first (what it changes stays changed) and only its
    answer is replaced: a response lost on the way back.
    """

    reply: Reply
    matches: Callable[[Request], bool] = _every
    times: int | None = 1
    skip: int = 0
    after_apply: bool = False


class LoopbackServer(_Threaded):
    """A threaded HTTP server on 127.0.0.1 with a request log and scripted faults.

    ``protocol`` is the HTTP version it speaks: "HTTP/1.0" closes the connection after
    each answer, "HTTP/1.1" keeps it alive (as Google's and Airtable's front ends do).
    ``clock`` stamps each request (``time.monotonic`` unless a test gives a virtual
    clock's ``now``). ``tls``: a server SSLContext makes it https. ``request_type``
    is the record a subclass logs (a ``Request`` subclass adding what it needs).
    """

    request_type: type[Request] = Request

    def __init__(self, *, protocol: str = "HTTP/1.1", tls: ssl.SSLContext | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 on_request: Callable[[Any], None] | None = None) -> None:
        self.clock = clock
        self.on_request = on_request
        self.requests: list[Any] = []  # of request_type
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        self.serving: weakref.WeakSet[threading.Thread] = weakref.WeakSet()  # handler threads
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class(protocol))
        httpd.daemon_threads = True
        if tls is not None:
            httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        super().__init__(httpd)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    # -- what a test controls ------------------------------------------------------

    def add_fault(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def clear_log(self) -> None:
        with self.lock:
            self.requests.clear()

    def requests_where(self, method: str | None = None, status: int | None = None
                       ) -> list[Any]:
        """The logged requests with this method and/or this status."""
        with self.lock:
            return [r for r in self.requests if (method is None or r.method == method)
                    and (status is None or r.status == status)]

    # -- what a subclass supplies --------------------------------------------------

    def answer(self, request: Any) -> Reply:
        """The answer to a request no fault replaced: 200 and no body. It may raise
        ``HttpError`` to answer an error."""
        return Reply()

    # -- serving -------------------------------------------------------------------

    def _serve(self, method: str, target: str, headers: dict[str, str], body: bytes
               ) -> Reply | None:
        """Log the request, apply the faults and answer it; None drops the connection."""
        request = self.request_type(method, target, headers, body, at=self.clock())
        with self.lock:
            self.requests.append(request)
            if self.on_request is not None:
                self.on_request(request)
            fault = self._take_fault(request)
        if fault is not None:
            reply = fault.reply
            if reply.gate is not None:
                reply.gate.wait(reply.delay)
            elif reply.delay:
                self._stopping.wait(reply.delay)
            if reply.drop:
                request.status = -1
                return None
            if reply.status and not fault.after_apply:
                request.status = reply.status
                return reply
        try:
            answer = self.answer(request)
        except HttpError as exc:
            answer = json_reply(exc.status, exc.body)
        if fault is not None and fault.after_apply:
            answer = fault.reply
        request.status = answer.status
        return answer

    def _take_fault(self, request: Request) -> Fault | None:
        for fault in self.faults:
            if (fault.times is None or fault.times > 0) and fault.matches(request):
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                return fault
        return None

    def _handler_class(self, protocol: str) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = protocol
            # Status line, headers and body leave in one segment: separate small writes
            # on a kept-alive connection would stall 40 ms each on Nagle + delayed ACK.
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def setup(self) -> None:
                server.serving.add(threading.current_thread())
                super().setup()

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = server._serve(self.command, self.path, headers, body)
                if reply is None:  # a dropped connection
                    self.close_connection = True
                    return
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    self.wfile.flush()
                except OSError:
                    self.close_connection = True  # the client gave up (a timeout test)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # keep test output clean

        return Handler


class WebhookServer(LoopbackServer):
    """A recording HTTP server on 127.0.0.1 answering from a script.

    ``replies`` (``Reply`` or a bare status) are used in order, one per request; once
    they run out every request gets 200. ``on_request`` runs for each request before
    it is answered. ``tls``: a server SSLContext makes it https. HTTP/1.0: one request
    per connection.
    """

    def __init__(self, replies: Iterable[Reply | int] = (), *, path: str = "/hook",
                 on_request: Callable[[Request], None] | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        super().__init__(protocol="HTTP/1.0", tls=tls, on_request=on_request)
        self.path = path
        for reply in replies:
            self.add_fault(Fault(reply if isinstance(reply, Reply) else Reply(reply)))

    @property
    def url(self) -> str:
        return f"{super().url}{self.path}"


# --------------------------------------------------------------------------- drip


class DripServer(_Threaded):
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

        tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        tcp.daemon_threads = True
        super().__init__(tcp)


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
