"""When syncs run: every fixed interval, or on a crontab line.

The daemon schedules its job with it, and ``sheetcrm status`` tells from it when
the next run is due, so it sits here, below both.

``[schedule]`` is validated once, by the config (``config.ScheduleSettings``); a
``Schedule`` is built from the validated settings and checks nothing again. The
``--every`` and ``--cron`` options go through those same validators
(``Schedule.parse``), so a value means the same and is refused with the same
words wherever it is written. A ``cron`` schedule is read as crontab reads it
(``config.crontab_trigger``: weekday 0 and 7 are Sunday), not as APScheduler
numbers weekdays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from apscheduler.triggers.base import BaseTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]
from pydantic import ValidationError

from sheetcrm.config import Config, ScheduleSettings, crontab_trigger, parse_duration
from sheetcrm.errors import ConfigError
from sheetcrm.i18n import _


@dataclass(frozen=True)
class Schedule:
    """Every fixed interval, or on a crontab expression."""

    every: timedelta | None = None
    cron: str | None = None

    @classmethod
    def from_settings(cls, settings: ScheduleSettings) -> Schedule:
        """From ``[schedule]`` as the config validated it: nothing is checked again."""
        if settings.cron:
            return cls(cron=settings.cron.strip())
        every = settings.every if settings.every is not None else ScheduleSettings().every
        assert every is not None  # [schedule] every has a default
        return cls(every=parse_duration(every))

    @classmethod
    def from_config(cls, config: Config) -> Schedule:
        return cls.from_settings(config.model.schedule)

    @classmethod
    def parse(cls, every: str | None = None, cron: str | None = None,
              seconds: float | None = None, *, where: str = "schedule") -> Schedule:
        """From command-line values, validated as ``[schedule]`` is.

        ``seconds`` is a fractional interval (tests). Mistakes are ConfigErrors whose
        key path starts with ``where``.
        """
        if seconds is not None:
            if seconds <= 0:
                raise ConfigError(_("{seconds} seconds is not longer than 0",
                                    seconds=f"{seconds:g}"), path=f"{where}.every")
            return cls(every=timedelta(seconds=seconds))
        given = {"cron": cron} if cron else {"every": every} if every is not None else {}
        try:
            settings = ScheduleSettings.model_validate(given)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            key = ".".join(str(part) for part in error["loc"])
            raise ConfigError(str(error["msg"]).removeprefix("Value error, "),
                              path=f"{where}.{key}") from None
        return cls.from_settings(settings)

    def trigger(self, tz: tzinfo) -> BaseTrigger:
        if self.cron:
            return crontab_trigger(self.cron, tz)
        assert self.every is not None
        return IntervalTrigger(seconds=self.every.total_seconds(), timezone=tz)

    def describe(self) -> str:
        if self.cron:
            return _("cron {expression}", expression=self.cron)
        assert self.every is not None
        return _("every {duration}", duration=human_duration(self.every))

    def next_run(self, last_started: datetime | None, now: datetime, tz: tzinfo) -> datetime:
        """The next run of a daemon whose last run started at ``last_started``.

        For ``status`` when no daemon says: an interval counts from the last run (the
        result may be in the past: the daemon is overdue or not running).
        """
        if self.cron:
            return self.trigger(tz).get_next_fire_time(None, now)
        assert self.every is not None
        return now if last_started is None else last_started + self.every


def human_duration(delta: timedelta) -> str:
    """``timedelta(minutes=90)`` -> ``"1h30m"``; fractions of a second as ``"0.5s"``."""
    total = delta.total_seconds()
    if total != int(total) or total < 1:
        return f"{total:g}s"
    parts, rest = [], int(total)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)
