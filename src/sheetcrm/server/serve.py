"""Serving the endpoint with waitress, in the foreground or beside the daemon.

``Endpoint`` binds at construction (so a taken port is a clear error before anything
else starts), serves from ``start()`` on a thread of its own and stops with
``stop()``: ``sheetcrm serve`` runs it until a signal, ``sheetcrm run`` next to the
scheduler. waitress serves each request on a small thread pool and bounds what a
slow client may hold (``channel_timeout``).

waitress leaves ``X-Forwarded-For`` alone (``clear_untrusted_proxy_headers=False``):
``app.client_address`` believes it only from a peer on this machine (the TLS proxy),
so each customer behind the proxy has a rate limit of their own instead of all of
them sharing the proxy's address, and a client elsewhere cannot claim another's.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from waitress import wasyncore
from waitress.server import create_server

from sheetcrm.errors import ConfigError
from sheetcrm.fsutil import os_reason
from sheetcrm.i18n import _

THREADS = 8
CHANNEL_TIMEOUT = 30  # seconds a client may take to send its request or read the answer


class Endpoint:
    """The endpoint's HTTP server on ``host:port`` (port 0: any free port)."""

    def __init__(self, app: Callable[..., Any], host: str, port: int) -> None:
        try:
            self._server = create_server(app, host=host, port=port, threads=THREADS,
                                         channel_timeout=CHANNEL_TIMEOUT, ident="sheetcrm",
                                         clear_untrusted_proxy_headers=False)
        except OSError as exc:
            raise ConfigError(_("cannot listen on {host}:{port}: {reason}", host=host, port=port,
                                reason=os_reason(exc)), path="server.listen") from None
        self._thread = threading.Thread(target=self._server.run, name="sheetcrm-endpoint",
                                        daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.effective_port)  # type: ignore[attr-defined]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish the requests in progress, then close every socket and end the thread.

        The sockets are closed by the serving thread itself (a thunk through waitress's
        trigger): closed from here, they vanish under its ``select()``, which then fails
        with EBADF and leaves a traceback on stderr.
        """
        server = self._server
        server.task_dispatcher.shutdown()
        sockets = server._map  # waitress's own map of this server's sockets
        if self._thread.is_alive():
            # OSError: the loop closed its trigger already, it is ending by itself.
            with contextlib.suppress(OSError):
                server.trigger.pull_trigger(
                    lambda: wasyncore.close_all(sockets, ignore_all=True))
            self._thread.join(timeout=10)
        if not self._thread.is_alive():  # whatever the loop left open
            wasyncore.close_all(sockets, ignore_all=True)
