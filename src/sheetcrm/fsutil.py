"""Files that survive a crash, state files opened safely, and one run at a time.

Every mechanism that touches the filesystem in a way that must hold up is written
here once, and works on Linux, macOS and Windows (where most operators keep their
CSV). What only one system offers is imported where it is used, and its absence
has a documented fallback, so importing sheetcrm never needs ``fcntl``.

- ``atomic_write`` is the one way sheetcrm replaces a file (the outbox's .eml
  files, the daemon's status file, the CSV through ``write_temp_beside`` and
  ``fsync_directory``). Its docstring states the guarantee.
- ``open_private`` creates the state folder's files (the ledger, the locks, the
  heartbeat) 0600 and refuses a symbolic link planted at their path.
- ``RunLock`` keeps a manual ``sync`` and the daemon from overlapping; ``probe``
  lets ``status`` look without creating the lock file or holding up a run for
  more than a moment. Both are ``portalocker``'s ``flock`` on POSIX and
  ``LockFileEx`` on Windows (its ``win32`` extra brings pywin32 there, which
  shared locks need); the operating system lets go of a lock when its process
  dies, so a crash never leaves a stale lock behind. portalocker is imported
  when a lock is taken: ``plan``, ``check`` and ``explain`` never take one.
- ``exchange`` (Linux's ``renameat2(RENAME_EXCHANGE)``) and ``being_written`` (a
  Linux read lease) let the CSV backend see an operator's save that lands while
  it writes; elsewhere they answer "cannot tell" and the caller falls back.
  renameat2 is called through ctypes because Python's ``os`` has no binding and
  the one PyPI wrapper (``renameat2``, last released 2022) is not maintained.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import signal
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from sheetcrm.errors import ExitStatus, LockedError, SheetcrmError
from sheetcrm.i18n import N_, _

PRIVATE_MODE = 0o600
WAIT_ENV = "SHEETCRM_LOCK_WAIT"  # seconds a command waits for the lock before giving up
POLL_SECONDS = 0.1
# A ``status`` probe holds a shared lock for a few milliseconds: a run that finds the
# lock taken keeps trying this long before it calls the lock busy.
PROBE_GRACE_SECONDS = 0.3

# Flags only some systems have: 0 (no effect) elsewhere. Windows has no O_NOFOLLOW
# (see open_private), makes descriptors non-inheritable by itself, and needs
# O_BINARY so that nothing rewrites line endings.
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
# Who may hold a lock, as a message names it (translated when shown).
LOCK_HOLDERS = (N_("sheetcrm run"), N_("sheetcrm daemon"))
# The reasons an operator meets most, as the system words them in English (so English
# reads as before) and in plain words in the other catalogs; any other is the system's.
_OS_REASONS = {
    errno.ENOENT: N_("No such file or directory"),
    errno.EACCES: N_("Permission denied"),
    errno.EPERM: N_("Operation not permitted"),
    errno.EISDIR: N_("Is a directory"),
    errno.ENOTDIR: N_("Not a directory"),
    errno.ENOSPC: N_("No space left on device"),
    errno.EROFS: N_("Read-only file system"),
    errno.EADDRINUSE: N_("Address already in use"),
    errno.EADDRNOTAVAIL: N_("Cannot assign requested address"),
}
_RENAME_EXCHANGE = 2  # <linux/fs.h>
_AT_FDCWD = -100


# -- replacing a file ---------------------------------------------------------------


def atomic_write(path: Path, data: bytes, *, mode: int = PRIVATE_MODE) -> None:
    """Replace ``path`` with ``data`` so that a crash never leaves half a file.

    The guarantee: at every instant, and after a crash or a power cut at any point,
    ``path`` holds either its previous content or all of ``data``, never a mix nor
    a truncated file; once this returns, the new content survives a power cut.

    How: ``data`` goes into a temporary file in the same folder (``.<name>.*.tmp``,
    so a reader listing ``*.eml`` or ``*.csv`` skips it), created with ``mode``
    (0600 unless told otherwise, whatever the umask) and fsynced; it is renamed
    over ``path`` (atomic within one filesystem), and the folder is fsynced so the
    rename itself is on disk. On failure the temporary file is removed. Where a
    folder cannot be opened for fsync (Windows), the rename rests on the
    filesystem's journal: after a crash the folder shows the old file or the new
    one. A symbolic link at ``path`` is replaced by the file, never written
    through; callers that must refuse links call ``refuse_link`` first.
    """
    temp = write_temp_beside(path, data, mode=mode)
    try:
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    fsync_directory(path.parent)


def write_temp_beside(target: Path, data: bytes | Iterable[bytes], *,
                      mode: int = PRIVATE_MODE) -> Path:
    """``data`` (bytes, or pieces of them written as they come) in a new hidden file
    next to ``target``, fsynced, with ``mode``.

    The first half of ``atomic_write``, for a caller that puts the file in place
    its own way (the CSV backend checks the target, then swaps). The name is
    random and created exclusively, so it never follows a planted link.
    """
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.chmod(name, mode)  # before the fsync, which then covers it too
            if isinstance(data, bytes):
                handle.write(data)
            else:
                handle.writelines(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    return Path(name)


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable; best effort (Windows cannot open a
    folder, some filesystems refuse)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- Linux-only ways to see a concurrent save ---------------------------------------------


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    """glibc's renameat2 (2.28 and later), or None on other systems."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                         ctypes.c_uint]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap the files at ``a`` and ``b``; False (nothing moved) where the
    system or the filesystem cannot (not Linux, NFS, some FUSE filesystems)."""
    function = _renameat2()
    if function is None:
        return False
    if function(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def being_written(fd: int) -> bool:
    """Whether another open file has this one open for writing (Linux; else False).

    Linux refuses a read lease while any writer has the file open. The lease is let
    go at once; should a writer open the file in that instant, the lease break is
    signalled with SIGURG (ignored by default) rather than SIGIO (fatal by default).
    A file owned by another user (EACCES), a filesystem without leases (EINVAL) or
    a system without them (no ``fcntl.F_SETLEASE``: macOS, Windows) gives no
    answer: False, and the caller's content comparison decides alone.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        return False
    setlease = getattr(fcntl, "F_SETLEASE", None)
    if setlease is None:
        return False
    try:
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, setlease, fcntl.F_RDLCK)
    except OSError as exc:
        return exc.errno == errno.EAGAIN
    fcntl.fcntl(fd, setlease, fcntl.F_UNLCK)
    return False


# -- state files -------------------------------------------------------------------------


class StateFileError(SheetcrmError):
    """A file in the state folder cannot be used safely (a symbolic link stands there)."""

    exit_code = ExitStatus.BACKEND


def os_reason(exc: OSError) -> str:
    """Why an operating-system call failed, in the operator's language where known."""
    reason = _OS_REASONS.get(exc.errno or 0)
    return _(reason) if reason else str(exc.strerror or exc)


def _link_error(path: Path) -> StateFileError:
    return StateFileError(_(
        "{path} is a symbolic link; sheetcrm never writes through a link in its state "
        "files. Remove it (rm {path}) and sheetcrm creates the real file there", path=path))


def _is_link(path: Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False


def refuse_link(path: Path) -> None:
    """Raise StateFileError when ``path`` is a symbolic link (a missing path is fine)."""
    if _is_link(path):
        raise _link_error(path)


def open_private(path: Path, flags: int) -> int:
    """Open a state file, creating it 0600 (whatever the umask) if it is missing.

    ``flags`` is the access wanted (``os.O_RDWR``, ``os.O_WRONLY | os.O_TRUNC``, ...).
    A symbolic link at ``path`` is never followed: StateFileError. Where the system
    has O_NOFOLLOW (Linux, macOS, the BSDs) the kernel refuses the link in the open
    itself. Windows has none: there the path is checked just before opening (a link
    made in between would be followed; making one needs administrator rights or
    developer mode), and a created file gets the folder's access list, private to
    the user in a profile folder, since POSIX modes do not apply.
    """
    flags = (flags | _O_NOFOLLOW | _O_CLOEXEC | _O_BINARY) & ~(os.O_CREAT | os.O_EXCL)
    if not _O_NOFOLLOW:
        refuse_link(path)
    while True:
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
        except FileExistsError:
            pass
        else:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, PRIVATE_MODE)  # the umask may have taken bits away
            return fd
        try:
            return os.open(path, flags)
        except FileNotFoundError:
            continue  # removed between the two opens: create it after all
        except OSError as exc:
            # ELOOP on Linux and macOS, EMLINK on FreeBSD: look rather than guess.
            if exc.errno == errno.ELOOP or _is_link(path):
                raise _link_error(path) from None
            raise


# -- one run at a time ---------------------------------------------------------------------


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


def _lock_error(path: Path, exc: Exception) -> StateFileError:
    return StateFileError(_(
        "cannot lock {path}: {reason}; keep the state folder on a local disk "
        "(some network filesystems have no locks)", path=path, reason=exc))


@contextmanager
def probe(path: Path) -> Iterator[bool]:
    """Whether another process holds the lock at ``path``; read-only, creates nothing.

    When nobody does, a shared lock is held until the block ends, so no run can take
    the lock meanwhile: what the block reads about runs in progress stays true. Keep
    the block short (a run waits at most PROBE_GRACE_SECONDS for it).
    """
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | _O_BINARY)
    except OSError:  # missing (never taken) or a link (not ours): nobody holds it
        yield False
        return
    try:
        import portalocker

        try:
            portalocker.lock(fd, portalocker.LOCK_SH | portalocker.LOCK_NB)
        except portalocker.AlreadyLocked:
            held = True
        except portalocker.LockException as exc:
            raise _lock_error(path, exc) from None
        else:
            held = False
        try:
            yield held
        finally:
            if not held:
                portalocker.unlock(fd)
    finally:
        os.close(fd)


def lock_held(path: Path) -> bool:
    """Whether a process holds the lock at ``path`` right now (probing, not a pid)."""
    with probe(path) as held:
        return held


class RunLock:
    """An exclusive lock on a file beside the ledger, holding the holder's pid.

    The operating system releases it when the process dies, so a crash never leaves
    a stale lock behind. ``wait`` is how many seconds to keep trying while another
    process holds it (``None``: ``$SHEETCRM_LOCK_WAIT``, default 0 = fail at once,
    after a brief grace for a ``status`` probe); giving up raises ``LockedError``
    naming the holder's pid, also kept as ``.holder``. On Windows the lock keeps
    other processes from reading the file, so the message says "another process".
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
            raise StateFileError(_(
                "cannot create {path}: {reason}; point state in the config at a folder "
                "sheetcrm may write", path=self.path, reason=os_reason(exc))) from None
        try:
            self._acquire(fd)
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, str(os.getpid()).encode())
        except BaseException:
            os.close(fd)  # closing releases the lock, if it was taken
            raise
        self._fd = fd
        return self

    def _acquire(self, fd: int) -> None:
        """Take the lock, polling until ``wait`` runs out."""
        import portalocker

        deadline = time.monotonic() + max(self.wait, PROBE_GRACE_SECONDS)
        poll = POLL_SECONDS if self.wait else PROBE_GRACE_SECONDS / 6
        while True:
            try:
                portalocker.lock(fd, portalocker.LOCK_EX | portalocker.LOCK_NB)
                return
            except portalocker.AlreadyLocked:
                if time.monotonic() >= deadline:
                    raise self._busy(fd) from None
                time.sleep(poll)
            except portalocker.LockException as exc:
                raise _lock_error(self.path, exc) from None

    def _busy(self, fd: int) -> LockedError:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            holder = os.read(fd, 64).decode(errors="replace").strip()
        except OSError:  # Windows: the holder's lock covers what it wrote
            holder = ""
        who = _("pid {pid}", pid=holder) if holder.isdigit() else _("another process")
        waited = _(" (waited {seconds}s)", seconds=f"{self.wait:g}") if self.wait else ""
        err = LockedError(_(
            "another {what} ({who}) holds {path}{waited}; try again when it has finished, "
            "or set {variable}=SECONDS to wait for it", what=_(self.what), who=who,
            path=self.path, waited=waited, variable=WAIT_ENV))
        err.holder = int(holder) if holder.isdigit() else None  # type: ignore[attr-defined]
        return err

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            import portalocker

            try:
                portalocker.unlock(self._fd)
            finally:
                os.close(self._fd)
                self._fd = None
