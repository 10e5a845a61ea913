"""One sheetcrm at a time per config: a manual ``sync`` and the daemon never overlap."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from .errors import LockedError

WAIT_ENV = "SHEETCRM_LOCK_WAIT"  # seconds a command waits for the lock before giving up
POLL_SECONDS = 0.1


def default_wait() -> float:
    """The wait asked for in the environment (``SHEETCRM_LOCK_WAIT=60``), else none.

    An environment variable rather than a flag so that every command that takes the
    lock (``sync`` from a terminal or from cron) honours it without its own option.
    """
    text = os.environ.get(WAIT_ENV, "").strip()
    try:
        return max(0.0, float(text)) if text else 0.0
    except ValueError:
        return 0.0


class RunLock:
    """An exclusive ``flock`` on a file beside the ledger.

    The kernel releases it when the process dies, so a crash never leaves a stale
    lock behind. ``wait`` is how many seconds to keep trying while another process
    holds it (``None``: ``$SHEETCRM_LOCK_WAIT``, default 0 = fail at once); giving
    up raises ``LockedError`` naming the holder's pid, also kept as ``.holder``.
    """

    def __init__(self, path: Path, *, wait: float | None = None,
                 what: str = "sheetcrm run") -> None:
        self.path = path
        self.wait = default_wait() if wait is None else max(0.0, wait)
        self.what = what
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            self._acquire(fd)
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def _acquire(self, fd: int) -> None:
        """Take the lock, polling until ``wait`` runs out (flock has no timeout)."""
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise self._busy(fd) from None
                time.sleep(POLL_SECONDS)

    def _busy(self, fd: int) -> LockedError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
        who = f"pid {holder}" if holder.isdigit() else "another process"
        waited = f" (waited {self.wait:g}s)" if self.wait else ""
        err = LockedError(
            f"another {self.what} ({who}) holds {self.path}{waited}; try again when it "
            f"has finished, or set {WAIT_ENV}=SECONDS to wait for it"
        )
        err.holder = int(holder) if holder.isdigit() else None  # type: ignore[attr-defined]
        return err

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
