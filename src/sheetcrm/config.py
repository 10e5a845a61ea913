"""Load and validate ``config.toml``: the operator's whole interface.

The file is read once. Every mistake becomes a ``ConfigError`` naming the key path,
the bad value and the expected form. ``${ENV_VAR}`` references are replaced from the
environment before validation; secrets never appear in messages.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time, timedelta, tzinfo
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from sheetcrm.channels import parse_channel_settings
from sheetcrm.errors import ConfigError
from sheetcrm.fields import FIELD_TYPES

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DURATION_PART = re.compile(r"(\d+)\s*(w|d|h|m|s)")
_DURATION_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_FLOW_NAME = re.compile(r"^\w[\w-]*$")
_SECRET_WORDS = ("password", "secret", "token", "key_file", "credentials")


def parse_duration(text: str) -> timedelta:
    """``"1d"``, ``"36h"``, ``"1d12h"``, ``"30m"``, ``"2w"``, ``"0"`` -> timedelta."""
    s = str(text).strip().lower().replace(" ", "")
    if s in ("0", "0s", "0m", "0h", "0d"):
        return timedelta(0)
    pos, seconds = 0, 0
    for m in _DURATION_PART.finditer(s):
        if m.start() != pos:
            break
        seconds += int(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f"{text!r} is not a duration like 1d, 36h, 1d12h, 30m or 2w")
    return timedelta(seconds=seconds)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class TableSettings(_Model):
    """``[table]``: which backend, and its settings (each backend reads its own)."""

    backend: Literal["csv", "gsheets", "airtable"] = "csv"
    key: str  # a field name; rows are identified by its column
    # csv
    path: str | None = None
    encoding: str | None = None  # None = detect (UTF-8, UTF-8 BOM, CP949)
    delimiter: str = ","
    # gsheets
    spreadsheet: str | None = None  # key or full URL
    worksheet: str | None = None  # title; the first sheet when unset
    credentials: str | None = None  # service-account JSON path
    header_row: int = Field(1, ge=1)
    # airtable
    base: str | None = None  # app...
    table: str | None = None  # name or tbl... id
    token: SecretStr | None = None  # personal access token, from ${ENV}
    view: str | None = None
    monthly_calls: int | None = Field(None, gt=0)  # the workspace's API calls a month
    # gsheets and airtable: another API host (emulators, proxies)
    endpoint: str | None = None


class FieldSettings(_Model):
    column: str
    type: str = "text"

    @field_validator("type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        if v not in FIELD_TYPES:
            raise ValueError(f"unknown field type {v!r}; expected one of {', '.join(FIELD_TYPES)}")
        return v


class WritebackSettings(_Model):
    tags: str | None = None
    flow: str | None = None
    last_sent: str | None = None
    error: str | None = None
    # Existing columns that hold the operator's values and that sheetcrm may overwrite
    # all the same: the operator's explicit say-so (see schema.foreign_writeback).
    adopt: list[str] = []

    def columns(self) -> list[str]:
        return [c for c in (self.tags, self.flow, self.last_sent, self.error) if c]

    def roles(self) -> dict[str, str]:
        """Sheet column -> the key that names it (``tags``, ``flow``, ...)."""
        return {column: role for role in ("tags", "flow", "last_sent", "error")
                if (column := getattr(self, role))}


class StepSettings(_Model):
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
                raise ValueError("an A/B test needs at least two variants")
            if any(w <= 0 for w in v.values()):
                raise ValueError("variant weights must be positive numbers")
            if any(not re.fullmatch(r"\w+", name) for name in v):
                raise ValueError("variant names are letters, digits or '_'")
        return v


class FlowSettings(_Model):
    trigger: str
    goal: str | None = None
    steps: list[StepSettings] = Field(min_length=1)
    anchor: str | None = None  # a date/datetime field the step offsets count from
    grace: timedelta = timedelta(days=1)  # steps overdue by more than this at entry are skipped
    reentry: timedelta | None = None  # None: never; else the gap after an exit
    then: str | None = None  # hand a finished customer to this flow
    renamed_from: str | None = None  # the flow's old name: its customers carry over
    holdout: float = Field(0.0, ge=0.0, le=0.5)  # share that gets no messages (control group)

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


class QuietHours(_Model):
    """A daily window (local time) in which sends of the given kinds are deferred."""

    start: time
    end: time

    def contains(self, t: time) -> bool:
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # spans midnight (21:00-08:00)


class SendingSettings(_Model):
    """Sending guards that apply to every flow."""

    paused: bool = False  # kill switch: tags and state still update, nothing is sent
    consent: str | None = None  # bool field: advertising needs it to be true
    unsubscribed: str | None = None  # bool field: true = opted out of all but transactional
    suppression: str | None = None  # file: one key or address per line, never sent ads
    quiet_hours: QuietHours | None = QuietHours(start=time(21), end=time(8))
    quiet_kinds: list[Literal["transactional", "ad"]] = ["ad"]
    skip_holidays: bool = False  # defer ads on Korean public holidays
    frequency_cap: tuple[int, timedelta] | None = None  # "2/7d": at most 2 per 7 days
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
                raise ValueError(f"{v!r} is not a window like '21:00-08:00' or 'off'")
            h1, m1, h2, m2 = map(int, m.groups())
            if max(h1, h2) > 24 or max(m1, m2) > 59 or 24 in (h1, h2) and m1 + m2 > 0:
                raise ValueError(f"{v!r} is not a window of clock times (00:00 to 24:00), "
                                 "like '21:00-08:00'")
            if (h1 % 24, m1) == (h2 % 24, m2):
                raise ValueError(f"{v!r} starts and ends at the same time; write 'off' "
                                 "to turn quiet hours off")
            return {"start": time(h1 % 24, m1), "end": time(h2 % 24, m2)}
        return v

    @field_validator("frequency_cap", mode="before")
    @classmethod
    def _cap(cls, v: Any) -> Any:
        if v in (None, "", "off"):
            return None
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\S+)\s*", str(v))
        if not m:
            raise ValueError(f"{v!r} is not a cap like '2/7d' (messages / period)")
        limit, period = int(m.group(1)), parse_duration(m.group(2))
        if limit < 1 or period <= timedelta(0):
            raise ValueError(f"{v!r} allows nothing: the number of messages and the period "
                             "must be more than 0, like '2/7d'")
        return (limit, period)

    @field_validator("recheck_after", mode="before")
    @classmethod
    def _recheck(cls, v: Any) -> timedelta:
        return parse_duration(v)


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
            raise ValueError(f"weekday {item!r}: the step after '/' must be a whole number "
                             "above 0, as in */2")
        step = int(step_text) if slash else 1
        if span == "*":
            first, last = 0, 7
        elif "-" in span:
            start, _, end = span.partition("-")
            first, last = _crontab_weekday(start), _crontab_weekday(end, at_end=True)
            if first > last:
                raise ValueError(f"weekday {item!r} runs backwards; write it as in 1-5 or "
                                 "mon-fri (0 and 7 are Sunday)")
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
    raise ValueError(f"weekday {text!r} is not 0-7 (0 and 7 are Sunday) or one of "
                     f"{', '.join(_CRON_WEEKDAYS)}")


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
        raise ValueError(f"{len(fields)} fields; a crontab line has 5: "
                         "minute hour day month weekday")
    minute, hour, day, month, weekday = fields
    days = crontab_weekdays(weekday)

    def cron(**when: str) -> Any:
        return CronTrigger(minute=minute, hour=hour, month=month, timezone=tz, **when)

    if day.startswith("*") or weekday.startswith("*"):
        return cron(day=day, day_of_week=days)
    return OrTrigger([cron(day=day), cron(day_of_week=days)])


class ScheduleSettings(_Model):
    """``[schedule]``: when ``sheetcrm run`` syncs, and how it reports it is alive."""

    every: str | None = "5m"  # a duration: 30s, 5m, 1h; ignored when cron is set
    cron: str | None = None  # "*/5 * * * *", in the config time zone, read as crontab does
    heartbeat: str | None = None  # file touched after each successful run
    health_port: int | None = Field(None, ge=0, le=65535)  # GET /health on 127.0.0.1

    @field_validator("every")
    @classmethod
    def _every(cls, v: str | None) -> str | None:
        if v is not None and parse_duration(v) <= timedelta(0):
            raise ValueError(f"{v!r} must be longer than 0, like 30s, 5m or 1h")
        return v

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                crontab_trigger(v)
            except ValueError as exc:
                raise ValueError(f"{v!r} is not a crontab line like '*/5 * * * *' "
                                 f"(minute hour day month weekday): {exc}") from None
        return v


class ConfigModel(_Model):
    timezone: str = "Asia/Seoul"
    state: str = ".sheetcrm/state.db"
    templates: str = "templates"
    table: TableSettings
    fields: dict[str, FieldSettings]
    writeback: WritebackSettings = WritebackSettings()
    tags: dict[str, str] = {}
    channels: dict[str, dict[str, Any]] = {}
    flows: dict[str, FlowSettings] = {}
    sending: SendingSettings = SendingSettings()
    schedule: ScheduleSettings = ScheduleSettings()


@dataclass(frozen=True)
class Config:
    """A validated config, with paths resolved against the config file's folder."""

    model: ConfigModel
    path: Path
    base_dir: Path
    tz: ZoneInfo
    channels: dict[str, BaseModel]

    # Short-hands the rest of the code reads.
    @property
    def table(self) -> TableSettings:
        return self.model.table

    @property
    def fields(self) -> dict[str, FieldSettings]:
        return self.model.fields

    @property
    def writeback(self) -> WritebackSettings:
        return self.model.writeback

    @property
    def tags(self) -> dict[str, str]:
        return self.model.tags

    @property
    def flows(self) -> dict[str, FlowSettings]:
        return self.model.flows

    @property
    def sending(self) -> SendingSettings:
        return self.model.sending

    @property
    def key_column(self) -> str:
        return self.fields[self.table.key].column

    @cached_property
    def renames(self) -> dict[str, str]:
        """Old flow name -> the flow now carrying its customers (``renamed_from``)."""
        return {f.renamed_from: name for name, f in self.flows.items() if f.renamed_from}

    @cached_property
    def handoffs(self) -> dict[str, list[str]]:
        """Flow -> the flows that hand their finished customers to it."""
        result: dict[str, list[str]] = {}
        for name, flow in self.flows.items():
            if flow.then:
                result.setdefault(flow.then, []).append(name)
        return result

    def resolve(self, relative: str) -> Path:
        p = Path(relative).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @property
    def state_path(self) -> Path:
        return self.resolve(self.model.state)

    @property
    def templates_dir(self) -> Path:
        return self.resolve(self.model.templates)


def load_config(path: Path | str, env: Mapping[str, str]) -> Config:
    """Read, expand and validate a config file. Raises ConfigError."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"config file {str(path)!r} not found; pass --config PATH or create config.toml"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {str(path)!r} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return config_from_dict(raw, env, path=path)


RECORD_ID_FIELD = "record_id"  # Airtable without [table] key: rows are keyed by record id


def config_from_dict(raw: dict[str, Any], env: Mapping[str, str], *, path: Path) -> Config:
    expanded = _expand_env(raw, env, "")
    table = expanded.get("table")
    if isinstance(table, dict) and table.get("backend") == "airtable" and "key" not in table:
        # Airtable records have an id of their own; the backend shows it as "_id".
        expanded["table"] = {**table, "key": RECORD_ID_FIELD}
        fields = expanded.get("fields") if isinstance(expanded.get("fields"), dict) else {}
        expanded["fields"] = {RECORD_ID_FIELD: {"column": "_id"}, **fields}
    try:
        model = ConfigModel.model_validate(expanded)
    except ValidationError as exc:
        raise _config_error(exc) from None
    try:
        tz = ZoneInfo(model.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {model.timezone!r}; expected an IANA name like 'Asia/Seoul'",
            path="timezone",
        ) from None
    channels = {
        name: parse_channel_settings(name, dict(settings))
        for name, settings in model.channels.items()
    }
    _check_references(model, channels)
    return Config(model=model, path=path, base_dir=path.resolve().parent, tz=tz, channels=channels)


def _expand_env(value: Any, env: Mapping[str, str], where: str) -> Any:
    """Replace ``${NAME}`` in every string; a missing variable is a ConfigError."""
    if isinstance(value, dict):
        return {k: _expand_env(v, env, f"{where}.{k}" if where else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in env:
                raise ConfigError(f"environment variable {name} is not set", path=where)
            return env[name]

        return _ENV_REF.sub(sub, value)
    return value


def _config_error(exc: ValidationError) -> ConfigError:
    """The first validation problem as one readable line, secrets masked."""
    lines = []
    for err in exc.errors()[:5]:
        loc = ".".join(_quote_key(p) for p in err["loc"])
        value = err.get("input")
        secret = any(word in loc.lower() for word in _SECRET_WORDS)
        shown = "(hidden)" if secret else repr(value)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            lines.append(f"{loc}: required key is missing")
        elif err["type"] == "extra_forbidden":
            lines.append(f"{loc}: unknown key (check the spelling)")
        else:
            lines.append(f"{loc}: {shown} is invalid: {msg}")
    return ConfigError("; ".join(lines))


def _quote_key(part: Any) -> str:
    s = str(part)
    return s if re.fullmatch(r"[A-Za-z0-9_]+", s) else f'"{s}"'


def _check_references(model: ConfigModel, channels: Mapping[str, BaseModel]) -> None:
    """Names that point elsewhere in the file must exist."""
    if model.table.key not in model.fields:
        raise ConfigError(
            f"{model.table.key!r} is not a field; expected one of {sorted(model.fields)}",
            path="table.key",
        )
    if model.table.backend == "csv" and not model.table.path:
        raise ConfigError("the csv backend needs a path, e.g. 'sample_sheets/customers.csv'",
                          path="table.path")
    owned = model.writeback.columns()
    if len(set(owned)) != len(owned):
        raise ConfigError(f"writeback columns must differ, got {owned}", path="writeback")
    for column in model.writeback.adopt:
        if column not in owned:
            raise ConfigError(f"{column!r} is not one of the writeback columns {owned}; "
                              "adopt names a column sheetcrm writes", path="writeback.adopt")
    for name, field in model.fields.items():
        if field.column in owned:
            raise ConfigError(
                f"column {field.column!r} is a writeback column; sheetcrm would overwrite it",
                path=f"fields.{_quote_key(name)}.column",
            )
    for key in ("consent", "unsubscribed"):
        name = getattr(model.sending, key)
        if name is not None and name not in model.fields:
            raise ConfigError(f"{name!r} is not a field; expected one of {sorted(model.fields)}",
                              path=f"sending.{key}")
    if model.sending.compliance == "kr":
        for key in ("sender_name", "sender_contact", "opt_out"):
            if not getattr(model.sending, key):
                raise ConfigError("compliance = 'kr' needs the sender's name, contact and "
                                  "how to opt out for the ad footer", path=f"sending.{key}")
    for name, settings in channels.items():
        to = getattr(settings, "to", None)
        if to is not None and to not in model.fields:
            raise ConfigError(f"{to!r} is not a field; expected one of {sorted(model.fields)}",
                              path=f"channels.{_quote_key(name)}.to")
    renamed: dict[str, str] = {}
    for flow_name, flow in model.flows.items():
        where = f"flows.{_quote_key(flow_name)}"
        if flow.renamed_from is not None and flow.renamed_from in renamed:
            raise ConfigError(f"{renamed[flow.renamed_from]!r} already says it was renamed "
                              f"from {flow.renamed_from!r}", path=f"{where}.renamed_from")
        if flow.renamed_from is not None:
            renamed[flow.renamed_from] = flow_name
        if not _FLOW_NAME.match(flow_name):
            raise ConfigError("a flow name is letters, digits, '_' or '-'", path=where)
        if flow.anchor is not None and flow.anchor not in model.fields:
            raise ConfigError(f"{flow.anchor!r} is not a field", path=f"{where}.anchor")
        for i, step in enumerate(flow.steps):
            if step.channel not in channels:
                raise ConfigError(
                    f"unknown channel {step.channel!r}; defined: {sorted(channels) or 'none'}",
                    path=f"{where}.steps[{i}].channel",
                )
        if flow.then is not None and flow.then not in model.flows:
            raise ConfigError(f"unknown flow {flow.then!r}; defined: {sorted(model.flows)}",
                              path=f"{where}.then")
        old = flow.renamed_from
        if old is not None and (old in model.flows or not _FLOW_NAME.match(old)):
            problem = ("is still a flow of this config" if old in model.flows
                       else "is not a flow name (letters, digits, '_' or '-')")
            raise ConfigError(f"{old!r} {problem}; renamed_from names the flow's old name",
                              path=f"{where}.renamed_from")
        cycle = _handoff_cycle(model.flows, flow_name)
        if cycle:
            raise ConfigError(
                f"hand-offs go round in a circle ({' → '.join(cycle)}): a customer would "
                "be messaged by these flows forever; remove one 'then'", path=f"{where}.then")
        afters = [s.after for s in flow.steps]
        if afters != sorted(afters):
            raise ConfigError("step 'after' offsets must not decrease", path=f"{where}.steps")


def _handoff_cycle(flows: Mapping[str, FlowSettings], start: str) -> list[str]:
    """The flows ``then`` leads through from ``start`` back to it, or [] if it does not."""
    path, name = [start], flows[start].then
    while name is not None and name in flows and name not in path:
        path.append(name)
        name = flows[name].then
    return [*path, name] if name == start else []
