"""What every settings section shares: the model base, durations, and how values show.

Settings are declared as data: a section is a pydantic model whose fields carry their
type, whether they are required, what is expected of them (``description``) and
whether they are secret (``SecretStr``). The one error formatter (``explain.py``)
reads those declarations, so a section never writes a message about a missing key,
an unknown key or a secret of its own. A validator that has more to say than "this
value is invalid" raises ``SettingError`` with words that already name the value and
the fix.

Every command that reads the config pays for these models at start, so they cost no
more than they must. A validator is built when first used (``defer_build``): a file
is validated once by ``ConfigModel``, whose validator holds every section, and a
section's own validator is built only when that section is validated alone
(``parse_channel_settings``, ``with_rules``) or made from its defaults. The modules
that declare settings models do not postpone their annotations (no ``from __future__
import annotations``): pydantic would evaluate each annotation's text when the class
is made.
"""

import ipaddress
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Tag

from sheetcrm.i18n import N_, _

_DURATION_PART = re.compile(r"(\d+)\s*(w|d|h|m|s)")
_DURATION_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


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
        raise ValueError(_("{text} is not a duration like 1d, 36h, 1d12h, 30m or 2w",
                           text=repr(text)))
    return timedelta(seconds=seconds)


def quote_key(part: Any) -> str:
    """One part of a key path as TOML would write it: ``tags."결제 대기"``."""
    s = str(part)
    return s if re.fullmatch(r"[A-Za-z0-9_]+", s) else f'"{s}"'


def resolve_path(relative: str, base_dir: Path) -> Path:
    """A path from the config: ``~`` expanded, relative ones from the config's folder."""
    path = Path(relative).expanduser()
    return path if path.is_absolute() else base_dir / path


def is_loopback(host: str) -> bool:
    """True for this machine: localhost, 127.0.0.0/8, ::1 (where clear text is harmless)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


#: The config of a ``TypeAdapter`` over settings models: built when first used, as they are.
ON_FIRST_USE = ConfigDict(defer_build=True)


class Settings(BaseModel):
    """Base of every settings section: unknown keys are refused, values never change."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True,
                              defer_build=True)

    #: What a missing required key says; ``{expected}`` is the field's description.
    needs: ClassVar[str] = N_("required key is missing; expected {expected}")


class SettingError(ValueError):
    """A value refused in words of its own, shown as they are.

    The words name the bad value (never a secret) and the fix, so the formatter adds
    neither the value nor the field's description.
    """


@dataclass(frozen=True)
class ShownAs:
    """``Annotated[str, ShownAs(url_origin)]``: in messages the value appears only as
    ``show`` makes it (a URL whose path may hold a token shows scheme://host)."""

    show: Callable[[str], str]


class TagOf:
    """The discriminator of a settings union: the member is named by ``key``.

    ``default`` is the member used when the key is unset; ``noun`` says what the key
    names, for the message that lists the valid names.
    """

    def __init__(self, key: str, default: str, noun: str) -> None:
        self.key = key
        self.default = default
        self.noun = noun
        self.__name__ = key  # pydantic names the discriminator in its own messages

    def __call__(self, value: Any) -> str | None:
        if isinstance(value, Mapping):
            tag = value.get(self.key, self.default)
        else:
            tag = getattr(value, self.key, None)
        return tag if tag is None or isinstance(tag, str) else repr(tag)


def union_members(union: Any) -> dict[str, type[BaseModel]]:
    """Tag -> model of a union whose members are ``Annotated[Model, Tag(...)]``."""
    if typing.get_origin(union) is Annotated:
        union = typing.get_args(union)[0]
    members: dict[str, type[BaseModel]] = {}
    for member in typing.get_args(union):
        model, *marks = typing.get_args(member)
        members.update((mark.tag, model) for mark in marks if isinstance(mark, Tag))
    return members
