"""The stop request, set from a signal handler and waited on by the main thread.

A signal only sets a flag: the run in progress sees it before its next send
(``stop`` in ``runner.sync``), still writes back, and the process exits 0.
"""

from __future__ import annotations

import contextlib
import os
import select


class StopFlag:
    """The stop request, set from a signal handler.

    Not a threading.Event: Event.set() takes a lock that the main thread holds for
    a moment inside Event.wait(); a signal arriving then runs the handler on that
    same thread, which waits for the lock forever. A plain attribute has no lock.
    """

    def __init__(self) -> None:
        self._set = False
        # A pipe wakes wait() at once: writing a byte takes no lock either.
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)

    def set(self) -> None:
        self._set = True
        with contextlib.suppress(OSError):
            os.write(self._write, b"!")

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds, returning early when set; True once set."""
        if not self._set:
            select.select([self._read], [], [], timeout)
        return self._set
