"""The sections about rows and sending: ``[fields]``, ``[writeback]``, ``[flows.*]``,
``[sending]``.

Each is a settings model (``base.Settings``): unknown keys are refused, and a value
that is not what the key expects becomes one line naming the key path (``explain.py``).
Durations are written as operators write them (``1d12h``) and parsed once, here.
"""

import re
from datetime import time, timedelta, tzinfo
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, field_validator, model_validator

from sheetcrm.config.base import SettingError, Settings, parse_duration, quote_key
from sheetcrm.fields import FIELD_TYPES, Parse, make_parser
from sheetcrm.i18n import _


class FieldSettings(Settings):
    column: str
    type: str = "text"
    # How a date column reads 6/1/2026: never guessed, so unset such a cell is an error.
    date_order: Literal["M/D/YYYY", "D/M/YYYY"] | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        if v not in FIELD_TYPES:
            raise ValueError(_("unknown field type {type}; expected one of {types}",
                               type=repr(v), types=", ".join(FIELD_TYPES)))
        return v

    @model_validator(mode="after")
    def _order_for_dates(self) -> Self:
        if self.date_order is not None and self.type not in ("date", "datetime"):
            raise SettingError(_("date_order is for date and datetime fields; this one is "
                                 "of type {type}", type=repr(self.type)))
        return self

    def parser(self, name: str, tz: tzinfo) -> Parse:
        """``parse(cell) -> value`` for this field (``name`` in ``[fields]``)."""
        return make_parser(self.type, column=self.column, tz=tz, date_order=self.date_order,
                           setting=f"fields.{quote_key(name)}.date_order")


class WritebackSettings(Settings):
    tags: str | None = None
    flow: str | None = None
    last_sent: str | None = None
    error: str | None = None
    opt_out: str | None = None  # the date the customer opted out (from the endpoint)
    engagement: str | None = None  # clicks, replies and the latest, e.g. "클릭 2 · 최근 11-28"
    # Existing columns that hold the operator's values and that sheetcrm may overwrite
    # all the same: the operator's explicit say-so (see schema.foreign_writeback).
    adopt: list[str] = []

    ROLES: ClassVar[tuple[str, ...]] = ("tags", "flow", "last_sent", "error", "opt_out",
                                        "engagement")

    def columns(self) -> list[str]:
        return list(self.roles())

    def roles(self) -> dict[str, str]:
        """Sheet column -> the key that names it (``tags``, ``flow``, ...)."""
        return {column: role for role in self.ROLES if (column := getattr(self, role))}


class StepSettings(Settings):
    after: timedelta
    channel: str
    template: str
    kind: Literal["transactional", "ad"] = "transactional"
    # A/B test: variant name -> weight. The template sees ``variant``; a file
    # ``<template>.<variant>.j2`` replaces the template for that variant.
    variants: dict[str, float] | None = None

    @field_validator("after", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> timedelta:
        return parse_duration(v)

    @field_validator("variants")
    @classmethod
    def _weights(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is not None:
            if len(v) < 2:
                raise ValueError(_("an A/B test needs at least two variants"))
            if any(w <= 0 for w in v.values()):
                raise ValueError(_("variant weights must be positive numbers"))
            if any(not re.fullmatch(r"\w+", name) for name in v):
                raise ValueError(_("variant names are letters, digits or '_'"))
        return v


class FlowSettings(Settings):
    trigger: str
    goal: str | None = None
    steps: list[StepSettings] = Field(min_length=1)
    anchor: str | None = None  # a date/datetime field the step offsets count from
    grace: timedelta = timedelta(days=1)  # steps overdue by more than this at entry are skipped
    reentry: timedelta | None = None  # None: never; else the gap after an exit
    then: str | None = None  # hand a finished customer to this flow
    renamed_from: str | None = None  # the flow's old name: its customers carry over
    holdout: float = Field(0.0, ge=0.0, le=0.5)  # share that gets no messages (control group)
    exit_on_reply: bool = False  # a reply heard since entry ends the flow, like the goal

    @field_validator("grace", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> timedelta:
        return parse_duration(v)

    @field_validator("reentry", mode="before")
    @classmethod
    def _reentry(cls, v: Any) -> timedelta | None:
        if v is None or v == "never":
            return None
        return parse_duration(v)


class QuietHours(Settings):
    """A daily window (local time) in which sends of the given kinds are deferred."""

    start: time
    end: time

    def contains(self, t: time) -> bool:
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # spans midnight (21:00-08:00)


class SendingSettings(Settings):
    """Sending guards that apply to every flow."""

    paused: bool = False  # kill switch: tags and state still update, nothing is sent
    consent: str | None = None  # bool field: advertising needs it to be true
    unsubscribed: str | None = None  # bool field: true = opted out of all but transactional
    suppression: str | None = None  # file: one key or address per line, never sent ads
    quiet_hours: QuietHours | None = QuietHours(start=time(21), end=time(8))
    quiet_kinds: list[Literal["transactional", "ad"]] = ["ad"]
    skip_holidays: bool = False  # defer ads on Korean public holidays
    frequency_cap: tuple[int, timedelta] | None = None  # "2/7d": at most 2 per 7 days
    min_gap: timedelta | None = None  # "1h": a message waits while the last one is younger
    max_sends_per_run: int | None = Field(500, ge=0)  # blast-radius guard
    max_share_per_run: float | None = Field(None, gt=0, le=1)  # ... or a share of the rows
    recheck_after: timedelta = timedelta(seconds=60)  # re-read the table before sending after
    compliance: Literal["kr"] | None = None
    sender_name: str | None = None  # compliance footer: who sends
    sender_contact: str | None = None  # ... how to reach them
    opt_out: str | None = None  # ... how to opt out, free of charge

    @field_validator("quiet_hours", mode="before")
    @classmethod
    def _window(cls, v: Any) -> Any:
        if v in (None, "", "off", False):
            return None
        if isinstance(v, str):
            m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", v)
            if not m:
                raise ValueError(_("{value} is not a window like '21:00-08:00' or 'off'",
                                   value=repr(v)))
            h1, m1, h2, m2 = map(int, m.groups())
            if max(h1, h2) > 24 or max(m1, m2) > 59 or 24 in (h1, h2) and m1 + m2 > 0:
                raise ValueError(_("{value} is not a window of clock times (00:00 to "
                                   "24:00), like '21:00-08:00'", value=repr(v)))
            if (h1 % 24, m1) == (h2 % 24, m2):
                raise ValueError(_("{value} starts and ends at the same time; write 'off' "
                                   "to turn quiet hours off", value=repr(v)))
            return {"start": time(h1 % 24, m1), "end": time(h2 % 24, m2)}
        return v

    @field_validator("frequency_cap", mode="before")
    @classmethod
    def _cap(cls, v: Any) -> Any:
        if v in (None, "", "off"):
            return None
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\S+)\s*", str(v))
        if not m:
            raise ValueError(_("{value} is not a cap like '2/7d' (messages / period)",
                               value=repr(v)))
        limit, period = int(m.group(1)), parse_duration(m.group(2))
        if limit < 1 or period <= timedelta(0):
            raise ValueError(_("{value} allows nothing: the number of messages and the "
                               "period must be more than 0, like '2/7d'", value=repr(v)))
        return (limit, period)

    @field_validator("min_gap", mode="before")
    @classmethod
    def _gap(cls, v: Any) -> timedelta | None:
        if v in (None, "", "off"):
            return None
        gap = parse_duration(v)
        return gap if gap > timedelta(0) else None

    @field_validator("recheck_after", mode="before")
    @classmethod
    def _recheck(cls, v: Any) -> timedelta:
        return parse_duration(v)
