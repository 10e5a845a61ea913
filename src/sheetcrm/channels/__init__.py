"""The channel registry: a ``[channels.<name>]`` table's ``type`` picks settings and class.

Adding a channel type means one module with a settings model and a class, plus one
line in ``CHANNEL_TYPES``.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from sheetcrm.channels.base import Channel
from sheetcrm.channels.outbox import OutboxChannel, OutboxSettings
from sheetcrm.channels.smtp import SmtpChannel, SmtpSettings
from sheetcrm.channels.webhook import WebhookChannel, WebhookSettings, redact_url
from sheetcrm.errors import ConfigError
from sheetcrm.model import Delivery, Message

__all__ = [
    "CHANNEL_TYPES",
    "Channel",
    "Delivery",
    "Message",
    "make_channel",
    "parse_channel_settings",
]

CHANNEL_TYPES: dict[str, tuple[type[BaseModel], type]] = {
    "outbox": (OutboxSettings, OutboxChannel),
    "smtp": (SmtpSettings, SmtpChannel),
    "webhook": (WebhookSettings, WebhookChannel),
}
DEFAULT_TYPE = "outbox"  # nothing leaves the machine unless the operator says so
_OWN_REMEDY = frozenset({"insecure_login"})  # errors whose message already says the fix


def _field(model: type[BaseModel], key: str) -> FieldInfo | None:
    """The field a config key names (by its alias, e.g. ``from``, or its name)."""
    return next((f for n, f in model.model_fields.items() if key in (n, f.alias)), None)


def _is_secret(model: type[BaseModel], field: str) -> bool:
    """True when the field's value must never be shown (a SecretStr, or a dict of them)."""
    info = _field(model, field)
    if info is None:
        return True  # an unknown key may well be a misspelt secret
    pending: list[Any] = [info.annotation]
    while pending:
        annotation = pending.pop()
        if annotation is SecretStr:
            return True
        pending.extend(typing.get_args(annotation))
    return False


def _describe(model: type[BaseModel], field: str) -> str:
    info = _field(model, field)
    return (info.description or "") if info else ""


def _key_path(name: str, loc: tuple[int | str, ...]) -> str:
    return ".".join(["channels", name, *map(str, loc)])


def _explain(model: type[BaseModel], error: Any) -> str:
    """One line naming the bad value (unless secret) and the expected form."""
    field = str(error["loc"][0]) if error["loc"] else ""
    if error["type"] == "extra_forbidden":
        valid = ", ".join(f.alias or n for n, f in model.model_fields.items())
        return f"unknown key; valid keys are: {valid}"
    if error["type"] == "missing":
        expected = _describe(model, field)
        return f"missing; expected {expected}" if expected else "missing"
    reason = str(error["msg"]).removeprefix("Value error, ")
    expected = "" if error["type"] in _OWN_REMEDY else _describe(model, field)
    text = reason + (f"; expected {expected}" if expected else "")
    value = error.get("input")
    if not field or _is_secret(model, field) or isinstance(value, dict):
        return text
    if field == "url":  # the path may hold a token: show scheme://host[:port] at most
        origin = redact_url(value) if isinstance(value, str) else ""
        return f"{origin!r} is not valid: {text}" if origin else text
    return f"{value!r} is not valid: {text}"


def parse_channel_settings(name: str, raw: dict[str, Any]) -> BaseModel:
    """Validate one ``[channels.<name>]`` table into its type's settings model.

    Raises ConfigError naming the key path (``channels.<name>.<key>``), the bad value
    (never a secret's) and the expected form. ``type`` defaults to "outbox".
    """
    kind = raw.get("type", DEFAULT_TYPE)
    if not isinstance(kind, str) or kind not in CHANNEL_TYPES:
        valid = ", ".join(CHANNEL_TYPES)
        raise ConfigError(
            f"{kind!r} is not a channel type; expected one of: {valid}",
            path=f"channels.{name}.type",
        )
    model = CHANNEL_TYPES[kind][0]
    try:
        return model.model_validate({**raw, "type": kind})
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first, rest = errors[0], errors[1:]
        message = _explain(model, first)
        for error in rest:
            message += f"\n{_key_path(name, error['loc'])}: {_explain(model, error)}"
        raise ConfigError(message, path=_key_path(name, first["loc"])) from None


def make_channel(name: str, settings: BaseModel, *, base_dir: Path) -> Channel:
    """Build the channel for settings from ``parse_channel_settings``.

    ``base_dir`` is the config file's folder; relative paths (the outbox) start there.
    """
    if isinstance(settings, OutboxSettings):
        return OutboxChannel(name, settings, base_dir=base_dir)
    for settings_type, channel_type in CHANNEL_TYPES.values():
        if type(settings) is settings_type:
            return channel_type(name, settings)
    raise TypeError(f"{type(settings).__name__} is not a channel settings model")
