"""The endpoint as a use case: what ``sheetcrm serve`` runs, and ``sheetcrm run`` beside
its schedule when ``[server]`` is configured (one process, one systemd unit).

Why it is built this way:

- ``ROUTE_MODULES`` lists each concern's routes (a module of ``sheetcrm.server`` with
  ``routes()``); a new concern is one line there.
- Each server thread opens its own connection to the run's ledger on first use
  (SQLite connections stay in the thread that made them). A write is one short
  transaction, so a sync going on at the same time only makes it wait a moment;
  the guards of the next ``plan`` or ``sync`` see it at once.
- ``Served`` counts the answers by status class for the log: counts only, never a
  path (it holds a token) or an address.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

from sheetcrm.config import Config
from sheetcrm.errors import ConfigError
from sheetcrm.i18n import _
from sheetcrm.ledger import Ledger
from sheetcrm.server import events, tracking, unsubscribe
from sheetcrm.server.app import EventStore, ServerContext, make_app
from sheetcrm.server.serve import Endpoint

#: The routes the endpoint answers, one module per concern.
ROUTE_MODULES: tuple[ModuleType, ...] = (
    unsubscribe,
    tracking,
    events,
)

Clock = Callable[[], datetime]


def running_clock(config: Config, start_at: datetime | None = None) -> Clock:
    """The real clock, or (``--now``) one that starts at ``start_at`` and runs on."""
    if start_at is None:
        return lambda: datetime.now(config.tz)
    origin = time.monotonic()
    return lambda: start_at + timedelta(seconds=time.monotonic() - origin)


def server_context(config: Config, now: Clock | None = None) -> ServerContext:
    """What the handlers get: the config, a ledger per thread, the clock."""
    if config.server is None:
        raise ConfigError(_("there is no [server] table: add one with public_url, listen and "
                            "secret (see docs/server.md)"), path="server")
    path = config.state_path

    def open_store() -> EventStore:
        return Ledger.open(path)

    return ServerContext(config=config, open_store=open_store, now=now or running_clock(config))


class Served:
    """The endpoint bound to ``[server] listen``, and what it answered (by status class)."""

    def __init__(self, config: Config, now: Clock | None = None,
                 modules: tuple[ModuleType, ...] = ROUTE_MODULES) -> None:
        self.context = server_context(config, now)
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        app = make_app(self.context, modules)
        host, port = self.context.settings.host_port

        def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            def start(status: str, headers: list[Any], *exc_info: Any) -> Any:
                with self._lock:
                    self.counts[f"{status[:1]}xx"] += 1
                return start_response(status, headers, *exc_info)

            return app(environ, start)

        self.endpoint = Endpoint(counted, host, port)  # a taken port: ConfigError here
        self.host = host

    @property
    def port(self) -> int:
        return self.endpoint.port

    @property
    def listen(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self.endpoint.start()

    def stop(self) -> None:
        self.endpoint.stop()

    def answered(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.counts.items()))

    def follow(self, config: Config) -> bool:
        """Adopt a reloaded config; False when it changes what only a restart can."""
        old = self.context.settings
        if config.server is None or (config.server.listen, config.server.rate_limit) != (
                old.listen, old.rate_limit) or config.state_path != self.context.config.state_path:
            return False
        self.context.config = config
        return True
