"""The one virtual clock of the test suite: seconds pass only when someone sleeps.

Code that waits (``sheetcrm.http``'s pacer and retries, the table adapters) reads
the time and sleeps through a ``sheetcrm.http.Clock``; an emulator stamps requests
with a time function. Giving both the same ``VirtualClock`` lets a test play out a
minute's pacing window or a 30-second penalty at once and then check the waits
themselves (``sleeps``) and when each request arrived.

``now`` and ``sleep`` have the shape of ``Clock``'s fields, so the clock fits where a
``Clock`` is read; ``clock`` is the real ``Clock`` built on them, for code that wants
that type. Thread-safe: emulator threads read it while the client sleeps on it.
"""

from __future__ import annotations

import threading

from sheetcrm.http import Clock


class VirtualClock:
    """Monotonic seconds that move only on ``sleep`` (recorded) or ``advance``."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        """Record the wait and let that much time pass at once."""
        with self._lock:
            self.sleeps.append(seconds)
            self._now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        """Let time pass without anyone sleeping (a slow answer, a gap between runs)."""
        with self._lock:
            self._now += seconds

    @property
    def clock(self) -> Clock:
        """This clock as the ``sheetcrm.http.Clock`` that waiting code takes."""
        return Clock(self.now, self.sleep)
