"""The one scheduled job, and the back-off that skips ticks after failures.

APScheduler 3.x fires one job. ``max_instances=1`` and ``coalesce=True`` mean a
slow run is never overlapped by the next tick and the ticks it missed collapse into
one. Across processes ``runner.sync`` takes the file lock a manual ``sync`` takes:
a tick that finds it held is skipped and logged, never queued.

A failing run never ends the daemon: the next ticks are skipped in a growing,
capped number (``backoff_ticks``), so a dead backend is not hammered.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from apscheduler.executors.pool import ThreadPoolExecutor  # type: ignore[import-untyped]
from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.base import BaseTrigger  # type: ignore[import-untyped]

JOB_ID = "sync"
MAX_SKIPPED_TICKS = 11  # back-off cap: at every 5m a dead backend is tried about hourly
MISFIRE_GRACE_SECONDS = 900  # a tick that starts late (busy or suspended VPS) still runs


def new_scheduler(tz: tzinfo) -> BackgroundScheduler:
    """A scheduler whose job never overlaps itself and never queues missed ticks."""
    return BackgroundScheduler(
        timezone=tz,
        executors={"default": ThreadPoolExecutor(1)},
        job_defaults={"max_instances": 1, "coalesce": True,
                      "misfire_grace_time": MISFIRE_GRACE_SECONDS},
    )


def backoff_ticks(failures: int) -> int:
    """Ticks to skip after ``failures`` failed runs in a row: 0, 1, 3, 7, 11, 11, ...

    The first failure is retried on the next tick (a blip); a lasting outage is
    tried ever less often, but at least every MAX_SKIPPED_TICKS + 1 ticks.
    """
    return min(2 ** min(failures - 1, 8) - 1, MAX_SKIPPED_TICKS) if failures > 0 else 0


def next_fire(trigger: BaseTrigger, fired_at: datetime | None, skip: int,
              now: datetime) -> datetime | None:
    """When the next run will start, ``skip`` ticks of back-off included.

    ``fired_at`` is when the current or last tick began; a run that outlasted the
    interval was coalesced, so the next tick counts from ``now``.
    """
    fire = trigger.get_next_fire_time(fired_at, now) if fired_at else None
    if fire is None or fire < now:
        fire = trigger.get_next_fire_time(None, now)
    for _ in range(skip):
        if fire is None:
            break
        fire = trigger.get_next_fire_time(fire, fire)
    return fire
