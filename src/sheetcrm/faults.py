"""Named crash points, for proving that a kill -9 anywhere never duplicates a send.

``SHEETCRM_KILL_AT=after-claim:2`` makes the process SIGKILL itself the second
time it passes the ``after-claim`` point. The points, in run order: after-read,
after-enroll, after-claim, after-send, before-write, after-write. Unset (always,
outside the crash tests), a checkpoint is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

_passed: dict[str, int] = {}


def checkpoint(name: str) -> None:
    target = os.environ.get("SHEETCRM_KILL_AT")
    if not target:
        return
    point, _, nth = target.partition(":")
    if point != name:
        return
    _passed[name] = _passed.get(name, 0) + 1
    if _passed[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
