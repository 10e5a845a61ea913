"""The endpoint's WSGI application: routing, limits, and one way to fail.

Why it is built this way:

- **werkzeug** parses requests and routes them; **waitress** (``serve.py``) serves
  them: both well kept, neither reaches further than this package. Each concern's
  routes live in a module of their own (``unsubscribe``, ``tracking``, ``events``)
  and are listed in ``sheetcrm.app.serve.ROUTE_MODULES``.
- **Bounded on the open internet.** A body larger than ``[server] max_body`` is
  answered 413 before it is read (by the route's ``too_large(ctx, **arguments)``
  when its handler has one, to count it); a client over ``[server] rate_limit`` gets 429
  (one ``http.Pacer`` per client address, the same sliding window the API clients
  pace themselves with); a handler's bug is a bare 500 and one log line with counts,
  never a traceback or a customer's data in the answer or the log.
- **Store first, answer after.** Handlers write what they heard to the event store
  (the ledger) and only then answer 2xx; applying it to the sheet is the next run's
  job, through its normal batched write.
- The store is opened per thread (``store()``): SQLite connections stay in the
  thread that made them, and the ledger's writes are short transactions.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType
from typing import Any, Protocol

from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, TooManyRequests
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from sheetcrm.config import Config, parse_duration
from sheetcrm.config.hearing import ServerSettings
from sheetcrm.http import Pacer
from sheetcrm.model import Event, EventKind

log = logging.getLogger("sheetcrm.server")
MAX_CLIENTS = 10_000  # per-client pacers kept; the least recently seen go first


class EventStore(Protocol):
    """What the endpoint needs of the ledger (``sheetcrm.ledger.Ledger`` is one)."""

    def record_event(self, event: Event) -> bool: ...

    def send_of(self, idem_key: str) -> tuple[str, str, str] | None: ...

    def events_of(self, key: str, kinds: Iterable[EventKind]) -> list[Event]: ...

    def delivered_at(self, idem_key: str) -> datetime | None: ...

    def close(self) -> None: ...


@dataclass
class ServerContext:
    """What every handler is given: the config, the secret, the store and the clock."""

    config: Config
    open_store: Callable[[], EventStore]  # a new store (ledger connection)
    now: Callable[[], datetime]
    _local: threading.local = field(default_factory=threading.local)

    @property
    def settings(self) -> ServerSettings:
        assert self.config.server is not None  # no endpoint without [server]
        return self.config.server

    @property
    def secret(self) -> bytes:
        return self.settings.secret.get_secret_value().encode("utf-8")

    def store(self) -> EventStore:
        """This thread's store, opened on first use."""
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = self.open_store()
        return store


Handler = Callable[..., Response]


class _ClientLimits:
    """One pacer per client address, at most ``MAX_CLIENTS`` of them."""

    def __init__(self, settings: ServerSettings) -> None:
        count, _, period = settings.rate_limit.partition("/")
        self.limit, self.period = int(count), parse_duration(period).total_seconds()
        self._pacers: OrderedDict[str, Pacer] = OrderedDict()
        self._lock = threading.Lock()

    def admit(self, client: str) -> bool:
        with self._lock:
            pacer = self._pacers.pop(client, None) or Pacer(self.limit, self.period)
            self._pacers[client] = pacer
            while len(self._pacers) > MAX_CLIENTS:
                self._pacers.popitem(last=False)
        return pacer.admit()


def client_address(request: Request) -> str:
    """The client's address; behind a proxy on this machine, the one it forwards."""
    remote = request.remote_addr or ""
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and remote in ("127.0.0.1", "::1"):
        return forwarded.split(",")[-1].strip() or remote
    return remote


def make_app(ctx: ServerContext, modules: Iterable[ModuleType]) -> Callable[..., Any]:
    """The WSGI application answering every route the ``modules`` declare.

    Each module has ``routes() -> list[werkzeug.routing.Rule]`` whose endpoints are
    handlers ``(request, ctx, **arguments) -> Response``.
    """
    url_map = Map([rule for module in modules for rule in module.routes()],
                  strict_slashes=False)
    limits = _ClientLimits(ctx.settings)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        request.max_content_length = ctx.settings.max_body
        response = _answer(request, ctx, url_map, limits)
        return response(environ, start_response)

    return application


def _answer(request: Request, ctx: ServerContext, url_map: Map,
            limits: _ClientLimits) -> Response:
    try:
        if not limits.admit(client_address(request)):
            raise TooManyRequests()
        handler, arguments = url_map.bind_to_environ(request.environ).match()
        length = request.content_length
        if length is not None and length > ctx.settings.max_body:
            too_large = getattr(handler, "too_large", None)
            if too_large is not None:  # a handler that counts what it turns away
                answer: Response = too_large(ctx, **arguments)
                return answer
            raise RequestEntityTooLarge()
        response: Response = handler(request, ctx, **arguments)
        return response
    except HTTPException as exc:
        code = exc.code or 500
        return Response(f"{code} {exc.name}\n", status=code,
                        content_type="text/plain; charset=utf-8")
    except Exception as exc:  # a bug: answer 500, say where in the log, no request data
        log.error("", extra={"event": "server_error",
                             "fields": {"path": request.path.split("/")[1:2],
                                        "error": type(exc).__name__}})
        return Response("500 Internal Server Error\n", status=500,
                        content_type="text/plain; charset=utf-8")


def rule(path: str, handler: Handler, methods: Iterable[str]) -> Rule:
    """A route: ``rule("/u/<token>", unsubscribe_page, ["GET"])``."""
    return Rule(path, endpoint=handler, methods=list(methods))
