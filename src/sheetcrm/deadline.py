"""Deadlines: a ``timeout`` bounds a whole exchange, not each socket operation.

Socket timeouts restart on every byte, so a peer that answers one byte a second can
hold a send (and the run) for as long as it likes. A ``Deadline`` instead runs a timer
for the whole exchange; every socket opened or used while it is active is watched,
and when the time is up the watched sockets are shut down. Whatever the client
library was blocked in (connect, TLS handshake, a read, a write) then fails at once,
and ``expired`` tells the channel that the cause was time, not the peer.

It is written once and used by every network client: smtplib's sockets are handed
to it by the smtp channel, urllib3's by the webhook channel's transport adapter,
imaplib's by the mailbox reader. The client code only opens ``with Deadline(seconds):``
around an exchange and calls ``watch(sock)``; code that knows no deadline is active
pays nothing.

A watched socket is kept as a duplicate of its file descriptor: a shutdown through
the duplicate ends the connection for the original as well (TLS included, whose
wrapper detaches the plain socket object), and the duplicate is closed when the
deadline ends.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from contextvars import ContextVar, Token
from types import TracebackType

_ACTIVE: ContextVar[Deadline | None] = ContextVar("sheetcrm_deadline", default=None)


class Deadline:
    """``with Deadline(seconds) as deadline:`` bounds everything inside to ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = 0.0
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []
        self._expired = False
        self._done = False
        self._timer: threading.Timer | None = None
        self._token: Token[Deadline | None] | None = None

    @property
    def expired(self) -> bool:
        """True once the time is up (the watched sockets have been shut down)."""
        return self._expired

    def remaining(self) -> float:
        """Seconds left; a small positive number once expired (0 would mean non-blocking)."""
        return max(self._end - time.monotonic(), 0.001)

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock``'s connection down when the time is up (at once if it already is)."""
        try:
            twin = socket.fromfd(sock.fileno(), sock.family, sock.type)
        except OSError:
            return  # already closed: nothing left to bound
        with self._lock:
            if self._done:
                twin.close()
                return
            self._watched.append(twin)
            if self._expired:
                _shut(twin)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self._expired = True
            for twin in self._watched:
                _shut(twin)

    def __enter__(self) -> Deadline:
        self._end = time.monotonic() + self.seconds
        self._token = _ACTIVE.set(self)
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._done = True
            watched, self._watched = self._watched, []
        for twin in watched:
            twin.close()
        if self._token is not None:
            _ACTIVE.reset(self._token)
            self._token = None


def _shut(twin: socket.socket) -> None:
    with contextlib.suppress(OSError):  # the peer may have closed it already
        twin.shutdown(socket.SHUT_RDWR)


def watch(sock: socket.socket) -> None:
    """Put ``sock`` under the active deadline, if there is one."""
    deadline = _ACTIVE.get()
    if deadline is not None:
        deadline.watch(sock)


def capped(timeout: float) -> float:
    """A socket timeout no longer than the active deadline's remaining time."""
    deadline = _ACTIVE.get()
    return timeout if deadline is None else min(timeout, deadline.remaining())
