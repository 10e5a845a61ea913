"""What ``sheetcrm sync`` shows while it runs, and how Ctrl-C stops it.

- A progress bar (rich) on standard error, once a run has taken more than
  ``PROGRESS_DELAY`` seconds: reading, each message sent out of how many, writing
  back. A quick run shows nothing, and neither does a run whose standard error is
  not a terminal (a pipe, a file, cron): no bar ever lands in a log. Standard output
  (the tables, ``--json``) is untouched; the bar clears itself when the run ends.
- Ctrl-C sets a ``StopFlag``, the daemon's stop mechanism, passed to the run as
  ``Watch.stop``: the message being sent finishes, no other starts, and the run
  writes back what was sent. The first announcement comes from the main thread at
  the next step of the run, never from the signal handler (a print there could
  land in the middle of another). A second Ctrl-C leaves at once
  (``KeyboardInterrupt``); every send is in the ledger before it leaves, so the
  next sync writes the sheet and sends nothing twice.
- Any other command that Ctrl-C stops says so in one line (``say_interrupted``: plan
  and check change nothing), never click's bare "Aborted".
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from sheetcrm.daemon.stopflag import StopFlag
from sheetcrm.i18n import N_, _

PROGRESS_DELAY = 2.0  # seconds a run goes on before the bar appears

_PHASES = {
    "reading": N_("Reading the sheet and planning"),
    "sending": N_("Sending"),
    "writing": N_("Writing back into the sheet"),
}
STOPPING = N_("Stopping: the message being sent finishes, then what was sent is written "
              "into the sheet. Press Ctrl-C again to leave at once.")


class RunProgress:
    """``Watch.progress`` for a terminal: a bar on standard error after a delay."""

    def __init__(self, console: Console | None = None, delay: float = PROGRESS_DELAY,
                 stop: StopFlag | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = self.console.is_terminal
        self._stop = stop
        self._told = False
        self._bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                             TextColumn("{task.fields[count]}"), TimeElapsedColumn(),
                             console=self.console, transient=True,
                             redirect_stdout=False, redirect_stderr=False)
        first = _PHASES["reading"]  # not inside _(): Babel 2.18 would extract "reading" too
        self._task = self._bar.add_task(_(first), total=None, count="")
        self._lock = threading.Lock()
        self._shown = self._ended = False
        self._timer = threading.Timer(delay, self._show)
        self._timer.daemon = True

    def __call__(self, phase: str, done: int, total: int) -> None:
        description = _PHASES.get(phase, phase)
        self._bar.update(self._task, description=_(description), completed=done,
                         total=total or None, count=f"{done}/{total}" if total else "")
        if self._stop is not None and self._stop.is_set() and not self._told:
            self._told = True
            self.console.print(_(STOPPING), style="bold", markup=False, highlight=False)

    def _show(self) -> None:
        with self._lock:
            if not self._ended:
                self._bar.start()
                self._shown = True

    def __enter__(self) -> RunProgress:
        if self.enabled:
            self._timer.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._timer.cancel()
        with self._lock:
            self._ended = True
            if self._shown:
                self._bar.stop()


@contextmanager
def ctrl_c_stops() -> Iterator[StopFlag]:
    """While the block runs, the first Ctrl-C sets the flag it yields; the second
    raises KeyboardInterrupt. Outside the main thread (where Python delivers
    signals) nothing is installed and the flag is never set."""
    stop = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def say_stopped(sent: int, left: int) -> None:
    """The last word of a sync that Ctrl-C stopped (on standard error)."""
    if left:
        click.echo(_("Stopped by Ctrl-C: {sent} message(s) sent, {left} left for the next "
                     "sync. What was sent is written into the sheet.", sent=sent, left=left),
                   err=True)
    else:
        click.echo(_("Ctrl-C came after the last message: {sent} message(s) sent, and "
                     "written into the sheet.", sent=sent), err=True)


#: The commands that change nothing: a Ctrl-C leaves nothing half done.
CHANGES_NOTHING = frozenset({"plan", "check", "preview", "status", "history"})


def say_interrupted(command: str | None) -> None:
    """The last word of a command other than sync that Ctrl-C stopped."""
    if command in CHANGES_NOTHING:
        click.echo(_("Stopped by Ctrl-C: {command} changes nothing, so nothing was sent or "
                     "written.", command=command), err=True)
    else:
        click.echo(_("Stopped by Ctrl-C."), err=True)


def say_left_at_once() -> None:
    """The last word of a sync left by a second Ctrl-C."""
    click.echo(_("Stopped at once by a second Ctrl-C: the sheet was not written this time. "
                 "Every message sent is in the ledger: the next sync writes it into the "
                 "sheet and sends nothing twice."), err=True)
