"""Load and validate ``config.toml``: the operator's whole interface.

The file is read once. Every mistake becomes a ``ConfigError`` naming the key path,
the bad value and the expected form. ``${ENV_VAR}`` references are replaced from the
environment before validation; secrets never appear in messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tomllib
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .channels import parse_channel_settings
from .errors import ConfigError
from .fields import FIELD_TYPES

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

    def columns(self) -> list[str]:
        return [c for c in (self.tags, self.flow, self.last_sent, self.error) if c]


class StepSettings(_Model):
    after: timedelta
    channel: str
    template: str
    kind: Literal["transactional", "ad"] = "transactional"

    @field_validator("after", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> timedelta:
        return parse_duration(v)


class FlowSettings(_Model):
    trigger: str
    goal: str | None = None
    steps: list[StepSettings] = Field(min_length=1)
    anchor: str | None = None  # a date/datetime field the step offsets count from
    grace: timedelta = timedelta(days=1)  # steps overdue by more than this at entry are skipped

    @field_validator("grace", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> timedelta:
        return parse_duration(v)


class SendingSettings(_Model):
    """Sending guards that apply to every flow."""

    paused: bool = False  # kill switch: tags and state still update, nothing is sent
    consent: str | None = None  # bool field: advertising needs it to be true


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


def config_from_dict(raw: dict[str, Any], env: Mapping[str, str], *, path: Path) -> Config:
    expanded = _expand_env(raw, env, "")
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
    for name, field in model.fields.items():
        if field.column in owned:
            raise ConfigError(
                f"column {field.column!r} is a writeback column; sheetcrm would overwrite it",
                path=f"fields.{_quote_key(name)}.column",
            )
    consent = model.sending.consent
    if consent is not None and consent not in model.fields:
        raise ConfigError(f"{consent!r} is not a field", path="sending.consent")
    for name, settings in channels.items():
        to = getattr(settings, "to", None)
        if to is not None and to not in model.fields:
            raise ConfigError(f"{to!r} is not a field; expected one of {sorted(model.fields)}",
                              path=f"channels.{_quote_key(name)}.to")
    for flow_name, flow in model.flows.items():
        where = f"flows.{_quote_key(flow_name)}"
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
        afters = [s.after for s in flow.steps]
        if afters != sorted(afters):
            raise ConfigError("step 'after' offsets must not decrease", path=f"{where}.steps")
