"""The stop request, set from a signal handler and waited on by the main thread.

A signal only sets a flag: the run in progress sees it before its next send
(``Watch.stop`` in ``runner.sync``), still writes back, and the process exits.
The daemon waits on it; ``sheetcrm sync`` sets it on Ctrl-C, on Windows too.
"""

from __future__ import annotations

import contextlib
import select
import socket


class StopFlag:
    """The stop request, set from a signal handler.

    Not a threading.Event: Event.set() takes a lock that the main thread holds for
    a moment inside Event.wait(); a signal arriving then runs the handler on that
    same thread, which waits for the lock forever. A plain attribute has no lock.
    """

    def __init__(self) -> None:
        self._set = False
        # A connected socket pair wakes wait() at once: sending a byte takes no lock
        # either. Sockets rather than a pipe, as Windows selects on sockets only; made
        # by the first wait(), so a flag that is only set and read (sync) opens none.
        self._wake: tuple[socket.socket, socket.socket] | None = None

    def set(self) -> None:
        self._set = True
        if self._wake is not None:
            with contextlib.suppress(OSError):
                self._wake[1].send(b"!")

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds, returning early when set; True once set."""
        if self._wake is None:
            read, write = socket.socketpair()
            write.setblocking(False)
            self._wake = (read, write)  # before the look below: a set() now sends
        if not self._set:
            select.select([self._wake[0]], [], [], timeout)
        return self._set

    def __del__(self) -> None:
        for end in self._wake or ():
            end.close()
