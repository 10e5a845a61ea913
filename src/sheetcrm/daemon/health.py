"""``GET /health`` on 127.0.0.1: 200 after a good run, 503 while sending is stalled.

It listens on loopback only and answers only requests addressed to a loopback name
(``Host: localhost``, ``127.0.0.1``, ``[::1]``): a web page that rebinds its own
DNS name to 127.0.0.1 gets 403, not the daemon's state. The body is the daemon's
snapshot: counts and reasons, no rows, secrets masked.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_LOOPBACK_HOST = re.compile(r"(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?", re.IGNORECASE)


def loopback_host(host: str | None) -> bool:
    """Whether a Host header names this machine's loopback (with or without a port).

    A browser tricked by DNS rebinding sends its own site's name here: refused.
    """
    return bool(host and _LOOPBACK_HOST.fullmatch(host.strip()))


class HealthServer:
    """``GET /health`` on 127.0.0.1: 200 after a good run, 503 while sending is stalled."""

    def __init__(self, port: int, snapshot: Callable[[], dict[str, Any]]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if not loopback_host(self.headers.get("Host")):
                    status, data = 403, {"error": "ask for http://127.0.0.1:PORT/health "
                                         "(only a loopback Host header is answered)"}
                else:
                    data = snapshot()
                    status = 200 if data.get("healthy") else 503
                body = json.dumps(data, ensure_ascii=False, default=str).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # monitors poll often; the run lines are the log

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.2}, daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
