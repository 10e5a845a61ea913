"""``[schedule]``: when ``sheetcrm run`` syncs, and crontab lines read as crontab reads them.

APScheduler's ``CronTrigger.from_crontab`` differs from crontab in two ways (weekday
numbers, and a day of the month with a weekday), so the translation is written here,
once: the config check and the daemon's scheduler use the same trigger.
"""

from datetime import timedelta, tzinfo
from typing import Any

from pydantic import Field, field_validator

from sheetcrm.config.base import Settings, parse_duration
from sheetcrm.i18n import _

_CRON_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab's 0-6; 7 is sun


def crontab_weekdays(field: str) -> str:
    """Crontab's day-of-week field, as APScheduler day names that mean the same days.

    Crontab counts 0 and 7 as Sunday and 1 as Monday; APScheduler 3 counts 0 as
    Monday, and ``CronTrigger.from_crontab`` passes the numbers through, so
    ``1-5`` would mean Tuesday to Saturday. Every form crontab allows (numbers,
    names, ranges, lists, steps) is expanded here into the days it names.
    """
    field = field.strip().lower()
    if field == "*":
        return "*"
    days: set[int] = set()
    for item in field.split(","):
        span, slash, step_text = item.partition("/")
        if slash and not (step_text.isdigit() and int(step_text) > 0):
            raise ValueError(_("weekday {item}: the step after '/' must be a whole number "
                               "above 0, as in */2", item=repr(item)))
        step = int(step_text) if slash else 1
        if span == "*":
            first, last = 0, 7
        elif "-" in span:
            start, _dash, end = span.partition("-")
            first, last = _crontab_weekday(start), _crontab_weekday(end, at_end=True)
            if first > last:
                raise ValueError(_("weekday {item} runs backwards; write it as in 1-5 or "
                                   "mon-fri (0 and 7 are Sunday)", item=repr(item)))
        else:
            first = _crontab_weekday(span)
            last = 7 if slash else first
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(_CRON_WEEKDAYS[day] for day in sorted(days))


def _crontab_weekday(text: str, *, at_end: bool = False) -> int:
    if text.isdigit() and int(text) <= 7:
        return int(text)
    if text in _CRON_WEEKDAYS:
        # "fri-sun": Sunday closing a range is day 7, as in 5-7
        return 7 if at_end and text == "sun" else _CRON_WEEKDAYS.index(text)
    raise ValueError(_("weekday {text} is not 0-7 (0 and 7 are Sunday) or one of {days}",
                       text=repr(text), days=", ".join(_CRON_WEEKDAYS)))


def crontab_trigger(line: str, tz: tzinfo | None = None) -> Any:
    """An APScheduler trigger that fires when crontab would run ``line``.

    Two differences with ``CronTrigger.from_crontab`` make it crontab's: the weekday
    numbers (``crontab_weekdays``), and a day of the month and a weekday both given
    (neither starting with ``*``) fire on a day matching either, not both. Raises
    ValueError naming the field.
    """
    from apscheduler.triggers.combining import OrTrigger
    from apscheduler.triggers.cron import CronTrigger

    fields = line.split()
    if len(fields) != 5:
        raise ValueError(_("{n} fields; a crontab line has 5: minute hour day month weekday",
                           n=len(fields)))
    minute, hour, day, month, weekday = fields
    days = crontab_weekdays(weekday)

    def cron(**when: str) -> Any:
        return CronTrigger(minute=minute, hour=hour, month=month, timezone=tz, **when)

    if day.startswith("*") or weekday.startswith("*"):
        return cron(day=day, day_of_week=days)
    return OrTrigger([cron(day=day), cron(day_of_week=days)])


class ScheduleSettings(Settings):
    """``[schedule]``: when ``sheetcrm run`` syncs, and how it reports it is alive."""

    every: str | None = "5m"  # a duration: 30s, 5m, 1h; ignored when cron is set
    cron: str | None = None  # "*/5 * * * *", in the config time zone, read as crontab does
    heartbeat: str | None = None  # file touched after each successful run
    health_port: int | None = Field(None, ge=0, le=65535)  # GET /health on 127.0.0.1

    @field_validator("every")
    @classmethod
    def _every(cls, v: str | None) -> str | None:
        if v is not None and parse_duration(v) <= timedelta(0):
            raise ValueError(_("{value} must be longer than 0, like 30s, 5m or 1h",
                               value=repr(v)))
        return v

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                crontab_trigger(v)
            except ValueError as exc:
                raise ValueError(_("{value} is not a crontab line like '*/5 * * * *' (minute "
                                   "hour day month weekday): {problem}", value=repr(v),
                                   problem=exc)) from None
        return v
