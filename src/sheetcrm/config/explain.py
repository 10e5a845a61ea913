"""Validation errors as one line each: the key path, the bad value, the expected form.

This is the one place that turns pydantic's errors into a ``ConfigError``, for the
whole file and for a single ``[channels.NAME]`` table alike. It walks the declared
types along each error's location, so it knows the field an error is about: its
description (what is expected), whether it is secret, how its value may be shown
(``ShownAs``), which keys the section takes, and which union member (a backend, a
channel type) was chosen. The union's tag never appears in the key path: the
operator wrote ``channels.crm.url``, not ``channels.crm.webhook.url``.

Secrets never appear: a ``SecretStr`` value, a value under a key that sounds secret,
a whole table of values, and the value of an unknown key (it may be a misspelt
secret) are left out.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Union

from pydantic import BaseModel, Discriminator, ValidationError
from pydantic.fields import FieldInfo

from sheetcrm.config.base import (
    SettingError,
    Settings,
    ShownAs,
    TagOf,
    quote_key,
    union_members,
)
from sheetcrm.errors import ConfigError
from sheetcrm.i18n import N_, _, current_language
from sheetcrm.redact import HIDDEN, holds_secret, is_secret_key

MAX_PROBLEMS = 5  # problems named in one message; the first one is the error's path

# pydantic's words for the errors an operator makes most, as templates over the error's
# context: in English pydantic's own message is shown as it is, in another language
# these (translated). Any other error shows pydantic's message.
_PYDANTIC = {
    "int_parsing": N_("Input should be a valid integer, unable to parse string as an integer"),
    "int_type": N_("Input should be a valid integer"),
    "int_from_float": N_("Input should be a valid integer, got a number with a fractional part"),
    "float_parsing": N_("Input should be a valid number, unable to parse string as a number"),
    "float_type": N_("Input should be a valid number"),
    "bool_parsing": N_("Input should be a valid boolean, unable to interpret input"),
    "bool_type": N_("Input should be a valid boolean"),
    "string_type": N_("Input should be a valid string"),
    "string_too_short": N_("String should have at least {min_length} characters"),
    "list_type": N_("Input should be a valid list"),
    "dict_type": N_("Input should be a valid dictionary"),
    "literal_error": N_("Input should be {expected}"),
    "greater_than": N_("Input should be greater than {gt}"),
    "greater_than_equal": N_("Input should be greater than or equal to {ge}"),
    "less_than": N_("Input should be less than {lt}"),
    "less_than_equal": N_("Input should be less than or equal to {le}"),
}


_Members = dict[str, type[BaseModel]]  # a union's members by tag


@dataclass
class _Place:
    """Where an error's location leads in the declared types."""

    path: list[str] = field(default_factory=list)  # as the operator writes it
    key: str = ""  # the last key, unquoted
    owner: type[BaseModel] | None = None  # the model the last key belongs to
    info: FieldInfo | None = None  # that key's field, if it is one
    annotation: Any = None  # the type reached
    choice: tuple[TagOf, str, _Members] | None = None  # the last union passed, its tag
    union: tuple[TagOf, _Members] | None = None  # when the location ends at a union


def validation_error(exc: ValidationError, root: Any, prefix: tuple[str, ...] = ()
                     ) -> ConfigError:
    """The problems of ``exc`` as one ConfigError, its path the first problem's.

    ``root`` is the type that was validated (a model class or an annotated union);
    ``prefix`` the key path it sits at (``("channels", "crm")``).
    """
    problems = [_explain(error, root, prefix) for error in exc.errors(include_url=False)]
    (path, text), rest = problems[0], problems[1:MAX_PROBLEMS]
    message = text + "".join(f"; {p}: {t}" if p else f"; {t}" for p, t in rest)
    return ConfigError(message, path=path or None)


def _explain(error: Any, root: Any, prefix: tuple[str, ...]) -> tuple[str, str]:
    place = _walk(root, tuple(error["loc"]))
    path = [quote_key(p) for p in prefix] + place.path
    kind = error["type"]
    value = error.get("input")
    expected = _(place.info.description) if place.info and place.info.description else ""
    if place.union is not None and kind in ("union_tag_invalid", "union_tag_not_found"):
        return _bad_tag(place.union, path, value)
    if kind == "missing":
        needs = place.owner.needs if place.owner and issubclass(place.owner, Settings) \
            else Settings.needs
        text = _(needs, expected=expected) if expected else _("required key is missing")
        return ".".join(path), text
    if kind == "extra_forbidden":
        return ".".join(path), _unknown_key(place)
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, SettingError):
        return ".".join(path), str(cause)
    reason = _reason(error)
    text = reason + ("; " + _("expected {expected}", expected=expected) if expected else "")
    shown = _shown(place, ".".join(path), value)
    return ".".join(path), _("{value} is invalid: {reason}", value=shown, reason=text) \
        if shown else text


def _reason(error: Any) -> str:
    """pydantic's message, in the operator's language (our own validators' messages
    come translated already: they were raised in it)."""
    message = str(error["msg"]).removeprefix("Value error, ")
    template = _PYDANTIC.get(error["type"])
    if template is None or current_language() == "en":
        return message
    context = {k: str(v).replace("' or '", "', '") for k, v in (error.get("ctx") or {}).items()}
    try:
        return _(template, **context)
    except (KeyError, IndexError):
        return message


def _bad_tag(union: tuple[TagOf, _Members], path: list[str], value: Any) -> tuple[str, str]:
    """A ``type``/``backend`` that names nothing, or a section that is not a table."""
    tag_of, members = union
    if not isinstance(value, dict):
        shown = _("a list") if isinstance(value, list) else repr(value)
        return ".".join(path), _("{value} is invalid: expected a table of settings",
                                 value=shown)
    tag = value.get(tag_of.key)
    return (".".join([*path, tag_of.key]),
            _("{value!r} is not {noun}; expected one of: {names}", value=tag,
              noun=_(tag_of.noun), names=", ".join(members)))


def _unknown_key(place: _Place) -> str:
    owner = place.owner
    if owner is None:
        return _("unknown key (check the spelling)")
    keys = [info.alias or name for name, info in owner.model_fields.items()]
    key = place.key
    if place.choice is not None:
        union, tag, members = place.choice
        keys.sort(key=lambda k: k != union.key)  # the key that picked these first
        other = next((t for t, m in members.items() if t != tag and _has_key(m, key)), None)
        if other is not None:
            return _("unknown key for {key} {tag!r} (it belongs to {key} {other!r}); valid keys "
                     "are: {keys}", key=union.key, tag=tag, other=other, keys=", ".join(keys))
    return _("unknown key (check the spelling); valid keys are: {keys}", keys=", ".join(keys))


def _shown(place: _Place, path: str, value: Any) -> str:
    """The value as a message may show it, or "" when it must not appear at all."""
    if place.annotation is not None and holds_secret(place.annotation) or \
            place.info is not None and holds_secret(place.info.annotation) or \
            is_secret_key(path):
        return HIDDEN
    if isinstance(value, dict):
        return ""
    marks = [m for m in (place.info.metadata if place.info else []) if isinstance(m, ShownAs)]
    if marks:
        shown = marks[0].show(value) if isinstance(value, str) else ""
        return repr(shown) if shown else ""
    return repr(value)



def _has_key(model: type[BaseModel], key: str) -> bool:
    return any(key in (name, info.alias) for name, info in model.model_fields.items())


# --------------------------------------------------------------------------- the walk


def _unwrap(annotation: Any, metadata: list[Any]) -> tuple[Any, TagOf | None]:
    """The type under ``Annotated`` and ``X | None``, and its discriminator if any."""
    tag_of = next((m.discriminator for m in metadata if isinstance(m, Discriminator)
                   and isinstance(m.discriminator, TagOf)), None)
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation, *marks = typing.get_args(annotation)
            for mark in marks:
                if isinstance(mark, Discriminator) and isinstance(mark.discriminator, TagOf):
                    tag_of = mark.discriminator
            continue
        if origin in (Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation, tag_of


def _walk(root: Any, loc: tuple[Any, ...]) -> _Place:
    place = _Place()
    annotation, tag_of = _unwrap(root, [])
    for part in loc:
        if tag_of is not None:  # this part is the union's tag, not a key
            members = union_members(annotation)
            if str(part) not in members:
                place.union = (tag_of, members)
                return place
            place.choice = (tag_of, str(part), members)
            annotation, tag_of = members[str(part)], None
            continue
        place.path.append(quote_key(part))
        place.key = str(part)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            place.owner = annotation
            place.info = next((info for name, info in annotation.model_fields.items()
                               if part in (name, info.alias)), None)
            if place.info is None:
                place.annotation = None
                return place
            annotation, tag_of = _unwrap(place.info.annotation, place.info.metadata)
        elif typing.get_origin(annotation) in (dict, list, tuple):
            args = typing.get_args(annotation)
            annotation, tag_of = _unwrap(args[-1] if args else Any, [])
        else:
            annotation, tag_of = Any, None
        place.annotation = annotation
    if tag_of is not None:
        place.union = (tag_of, union_members(annotation))
    return place
