"""One sheetcrm at a time per config, and the state folder's files opened safely.

A manual ``sync`` and the daemon never overlap: both take an exclusive ``flock``
beside the ledger. ``probe`` tells a read-only command (``status``) whether someone
holds it without creating the file or disturbing the holder for longer than a
moment.

Every file sheetcrm writes into its state folder (the ledger, the locks, the
daemon's status file, the heartbeat) goes through ``open_private``: a file it
creates is 0600 whatever the umask (the ledger says who got which message), and a
symbolic link planted at one of those paths is refused, never written through.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from sheetcrm.errors import ExitStatus, LockedError, SheetcrmError

WAIT_ENV = "SHEETCRM_LOCK_WAIT"  # seconds a command waits for the lock before giving up
POLL_SECONDS = 0.1
# A ``status`` probe holds a shared lock for a few milliseconds: a run that finds the
# lock taken keeps trying this long before it calls the lock busy.
PROBE_GRACE_SECONDS = 0.3
PRIVATE_MODE = 0o600


class StateFileError(SheetcrmError):
    """A file in the state folder cannot be used safely (a symbolic link stands there)."""

    exit_code = ExitStatus.BACKEND


def _link_error(path: Path) -> StateFileError:
    return StateFileError(
        f"{path} is a symbolic link; sheetcrm never writes through a link in its state "
        f"files. Remove it (rm {path}) and sheetcrm creates the real file there")


def refuse_link(path: Path) -> None:
    """Raise StateFileError when ``path`` is a symbolic link (a missing path is fine)."""
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            raise _link_error(path)
    except FileNotFoundError:
        pass


def open_private(path: Path, flags: int) -> int:
    """Open a state file, creating it 0600 (whatever the umask) if it is missing.

    ``flags`` is the access wanted (``os.O_RDWR``, ``os.O_WRONLY | os.O_TRUNC``, ...).
    A symbolic link at ``path`` is never followed: StateFileError.
    """
    flags = (flags | os.O_NOFOLLOW | os.O_CLOEXEC) & ~(os.O_CREAT | os.O_EXCL)
    while True:
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
        except FileExistsError:
            pass
        else:
            os.fchmod(fd, PRIVATE_MODE)  # the umask may have taken bits away
            return fd
        try:
            return os.open(path, flags)
        except FileNotFoundError:
            continue  # removed between the two opens: create it after all
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _link_error(path) from None
            raise


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


@contextmanager
def probe(path: Path) -> Iterator[bool]:
    """Whether another process holds the lock at ``path``; read-only, creates nothing.

    When nobody does, a shared lock is held until the block ends, so no run can take
    the lock meanwhile: what the block reads about runs in progress stays true. Keep
    the block short (a run waits at most PROBE_GRACE_SECONDS for it).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:  # missing (never taken) or a link (not ours): nobody holds it
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            held = False
        except BlockingIOError:
            held = True
        yield held
    finally:
        os.close(fd)  # closing releases the shared lock


def lock_held(path: Path) -> bool:
    """Whether a process holds the lock at ``path`` right now (probing, not a pid)."""
    with probe(path) as held:
        return held


class RunLock:
    """An exclusive ``flock`` on a file beside the ledger.

    The kernel releases it when the process dies, so a crash never leaves a stale
    lock behind. ``wait`` is how many seconds to keep trying while another process
    holds it (``None``: ``$SHEETCRM_LOCK_WAIT``, default 0 = fail at once, after a
    brief grace for a ``status`` probe); giving up raises ``LockedError`` naming the
    holder's pid, also kept as ``.holder``.
    """

    def __init__(self, path: Path, *, wait: float | None = None,
                 what: str = "sheetcrm run") -> None:
        self.path = path
        self.wait = default_wait() if wait is None else max(0.0, wait)
        self.what = what
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = open_private(self.path, os.O_RDWR)
        except OSError as exc:
            raise StateFileError(
                f"cannot create {self.path}: {exc.strerror or exc}; point state in the "
                "config at a folder sheetcrm may write") from None
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
        deadline = time.monotonic() + max(self.wait, PROBE_GRACE_SECONDS)
        poll = POLL_SECONDS if self.wait else PROBE_GRACE_SECONDS / 6
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise self._busy(fd) from None
                time.sleep(poll)

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
