"""The channel registry: a ``[channels.<name>]`` table's ``type`` names the class.

The settings of every type are declared in ``sheetcrm.config.channels`` and validated
when the config loads; this package only delivers. Adding a channel type means a
settings model there, one module here with a class that has ``from_settings``, and
one line in ``CHANNEL_TYPES``. A class is imported only when a channel of its type is
made: the providers' clients bring ``requests`` (4 MB, 50 ms), which a run on the
outbox or SMTP alone never needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, cast

from sheetcrm.channels.base import Channel
from sheetcrm.channels.email import message_id_for
from sheetcrm.config.channels import ChannelSettings, EmailSettings, parse_channel_settings
from sheetcrm.model import Delivery, Message
from sheetcrm.registry import named

__all__ = [
    "CHANNEL_TYPES",
    "Channel",
    "ChannelType",
    "Delivery",
    "Message",
    "channel_class",
    "make_channel",
    "message_id_of",
    "parse_channel_settings",
]


class ChannelType(Protocol):
    """A channel class: builds its channel from the settings of its type."""

    @classmethod
    def from_settings(cls, name: str, settings: Any, *, base_dir: Path) -> Channel: ...


#: ``type`` -> ``module:Class`` of the class that delivers for it.
CHANNEL_TYPES: dict[str, str] = {
    "outbox": "sheetcrm.channels.outbox:OutboxChannel",
    "smtp": "sheetcrm.channels.smtp:SmtpChannel",
    "webhook": "sheetcrm.channels.webhook:WebhookChannel",
    "solapi": "sheetcrm.channels.solapi:SolapiChannel",
    "nhn": "sheetcrm.channels.nhn:NhnChannel",
}


def channel_class(type_: str) -> type[ChannelType]:
    """The class of channel type ``type_`` (a key of ``CHANNEL_TYPES``), imported now."""
    return cast("type[ChannelType]", named(CHANNEL_TYPES[type_]))


def make_channel(name: str, settings: ChannelSettings, *, base_dir: Path) -> Channel:
    """The channel for validated settings (``Config.channels[name]``).

    ``base_dir`` is the config file's folder; relative paths (the outbox) start there.
    """
    return channel_class(settings.type).from_settings(name, settings, base_dir=base_dir)


def message_id_of(settings: ChannelSettings, idem_key: str) -> str | None:
    """The Message-ID an email channel gives the message with this key (None elsewhere).

    Known before the send, so a send whose answer was lost still has its Message-ID in
    the ledger, and a bounce or reply to it is matched all the same.
    """
    if not isinstance(settings, EmailSettings):
        return None
    return message_id_for(idem_key, settings.sender.domain)
