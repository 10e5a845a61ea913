"""The cyclic garbage collector around whole tables: paused while they are built,
and in a one-shot command (``plan``, ``sync``, ``check``...) told to look away from
them afterwards.

Reading, typing and planning 100k rows allocates millions of small containers, none
of them part of a cycle: reference counting frees them all, while CPython's collector
would re-scan them many times over (a third of the run time). ``gc_paused`` stops it
while they are built. In a one-shot command the built objects then live until the
process ends, and every later full collection (while the output is formatted, while
messages are rendered) would scan them again: ``one_shot`` makes ``gc_paused`` move
them out of the collector's sight (``gc.freeze``) as it ends. Garbage made later is
still collected. The daemon does not freeze per run: it collects after each run and
freezes once what stays alive (``daemon.service``).

Kept apart from ``reading`` so that the command line can switch it on without
importing the planner.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_freeze_after_build = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while whole tables are built."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if _freeze_after_build:
            gc.freeze()
        if enabled:
            gc.enable()


@contextmanager
def one_shot() -> Iterator[None]:
    """A command that ends when its run does: what ``gc_paused`` built is frozen."""
    global _freeze_after_build
    before = _freeze_after_build
    _freeze_after_build = True
    try:
        yield
    finally:
        _freeze_after_build = before
        gc.unfreeze()


def long_running() -> None:
    """The daemon and the endpoint: each run's objects stay in the collector's sight."""
    global _freeze_after_build
    _freeze_after_build = False
