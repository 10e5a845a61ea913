"""The channel interface: one file per channel under ``sheetcrm/channels/``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Message:
    """A rendered message, ready for a channel.

    ``idempotency_key`` is unique per (row key, flow, entry, step): email uses it
    for the Message-ID, webhooks for ``webhook-id``, the outbox for the file name.
    """

    idempotency_key: str
    recipient: str  # email address for email channels; the row key for webhooks
    subject: str
    text: str
    html: str | None = None
    kind: str = "transactional"  # "transactional" | "ad"
    payload: dict[str, Any] | None = None  # webhook body; None -> channel default
    meta: dict[str, str] = field(default_factory=dict)  # key, flow, step, template


@dataclass(frozen=True)
class Delivery:
    """What a channel reports after a successful send."""

    message_id: str
    detail: str = ""  # e.g. the outbox file path or the HTTP status


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
