"""The channel interface: one file per channel under ``sheetcrm/channels/``.

A channel takes a rendered ``Message`` and reports a ``Delivery``; both are plain
domain types in ``sheetcrm.model`` (the planner builds messages without knowing any
channel), named here too for the channels that implement this protocol.
"""

from __future__ import annotations

from typing import Protocol

from sheetcrm.model import Delivery, Message

__all__ = ["Channel", "Delivery", "Message"]


class Channel(Protocol):
    """Delivers messages. Raises ChannelError(retryable=...) when it cannot."""

    name: str
    # True when delivering the same message twice cannot produce a second copy
    # (the outbox overwrites one file per idempotency key). Sends interrupted by
    # a crash are retried only on such channels; on the others they are reported
    # as uncertain and never re-sent automatically.
    redelivery_safe: bool

    def send(self, message: Message) -> Delivery: ...

    def probe(self) -> str:
        """``check --connect``: reach the service without sending anything.

        Returns a short description of what was reached (no secret in it); raises
        ChannelError saying what is wrong when the service cannot be reached.
        """
        ...

    def close(self) -> None: ...
