"""Build RFC 5322 messages from a rendered Message; shared by the outbox and smtp channels.

Everything that ends up in a header may come from a spreadsheet cell, so every such
value goes through ``clean_header_value`` first (see CVE-2024-6923: CPython 3.11 lets an
encoded word like ``=?UTF-8?Q?=0A?=`` smuggle a line break into a folded header). That
function and ``parse_address`` live with the settings in ``sheetcrm.config.channels``,
which checks the configured addresses with them at load.

Addresses keep to what any server takes where they can: a domain written in Hangul
becomes its IDNA (``xn--``) form, so only a non-ASCII local part (``김철수@…``) needs a
server that speaks SMTPUTF8; such a message is written with raw UTF-8 headers
(``email_bytes``), because an encoded word inside an address is not an address.

An ad carries ``List-Unsubscribe`` with its own opt-out page (``Message.unsubscribe``,
a signed ``/u/TOKEN`` URL made with ``[server]``) and the channel's ``mailto:``, and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058). That header is
written on one line, never folded: the standard library would fold a long URL into
encoded words, which no mail client reads as a URL, and relays that refold headers
break the DKIM signature over it.
"""

from __future__ import annotations

import email.policy
import email.utils
import hashlib
from email.message import EmailMessage
from email.policy import EmailPolicy
from typing import Any

from sheetcrm.config.channels import EmailSettings, clean_header_value, parse_address
from sheetcrm.errors import ChannelError
from sheetcrm.i18n import _
from sheetcrm.model import Message

__all__ = ["EmailSettings", "build_email", "clean_header_value", "email_bytes",
           "message_id_for", "needs_smtputf8", "parse_address", "shown"]


def shown(value: str, limit: int = 60) -> str:
    """A cell value short enough for a one-line message (an address may be 2,000 long)."""
    return value if len(value) <= limit else value[:limit] + "…"


ADDRESS_HEADERS = ("From", "To", "Reply-To")


def needs_smtputf8(msg: EmailMessage) -> bool:
    """True when an address in the message has a non-ASCII local part."""
    return any(
        not address.username.isascii()
        for name in ADDRESS_HEADERS
        for header in msg.get_all(name, [])
        for address in header.addresses
    )


UNFOLDED_HEADERS = frozenset({"list-unsubscribe", "list-unsubscribe-post"})


class _Policy(EmailPolicy):
    """The default policy, except that the unsubscribe headers stay on one line."""

    def _unfolded(self, name: str, value: Any) -> str | None:
        text = str(value)
        if name.lower() in UNFOLDED_HEADERS and text.isascii():
            return f"{name}: {text}{self.linesep}"
        return None

    def fold(self, name: str, value: Any) -> str:
        line = self._unfolded(name, value)
        return line if line is not None else super().fold(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        line = self._unfolded(name, value)
        return line.encode("ascii") if line is not None else super().fold_binary(name, value)


_POLICY = _Policy()


def email_bytes(msg: EmailMessage, linesep: str = "\n") -> bytes:
    """The message as bytes: 7-bit, or with raw UTF-8 headers when an address needs it."""
    policy = _POLICY.clone(linesep=linesep, utf8=needs_smtputf8(msg))
    return msg.as_bytes(policy=policy)


def message_id_for(idempotency_key: str, domain: str) -> str:
    """Same key, same Message-ID: a re-sent message is recognisably the same message."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{domain.lower()}>"


def _set_text(msg: EmailMessage, text: str, subtype: str, *, alternative: bool) -> None:
    # base64 for non-ASCII bodies keeps the message 7-bit clean for any relay
    # (no 8BITMIME needed); ASCII stays readable.
    cte = None if text.isascii() else "base64"
    if alternative:
        msg.add_alternative(text, subtype=subtype, charset="utf-8", cte=cte)
    else:
        msg.set_content(text, subtype=subtype, charset="utf-8", cte=cte)


def _date_header(message: Message) -> str:
    """``meta["date"]`` (from the caller's injected clock) re-formatted, else now."""
    raw = message.meta.get("date")
    if raw is None:
        return email.utils.formatdate(localtime=False)
    try:
        when = email.utils.parsedate_to_datetime(clean_header_value(raw))
    except (TypeError, ValueError):
        when = None
    if when is None:
        text = _("meta date {value!r} is not an RFC 2822 date", value=raw)
        raise ChannelError(text, retryable=False)
    return email.utils.format_datetime(when)  # canonical: nothing of the input survives


def _unsubscribe_targets(message: Message, settings: EmailSettings) -> list[str]:
    """The ad's opt-out page (with ``[server]``) and the channel's ``mailto:``."""
    targets = []
    if message.unsubscribe:
        targets.append(clean_header_value(message.unsubscribe))
    if settings.unsubscribe_mailto:
        targets.append(settings.unsubscribe_mailto)
    return targets


def build_email(message: Message, settings: EmailSettings) -> EmailMessage:
    """Turn a rendered Message into an EmailMessage ready to write or send.

    Raises ChannelError(retryable=False) when the recipient is not one valid address
    (a bad cell never becomes a header) or ``meta["date"]`` is not an RFC 2822 date.
    """
    try:
        recipient = parse_address(message.recipient)
    except ValueError as exc:
        text = _("recipient {recipient!r}: {reason}", recipient=shown(message.recipient),
                 reason=exc)
        raise ChannelError(text, retryable=False) from None
    sender = settings.sender

    msg = EmailMessage(policy=email.policy.default)
    msg["From"] = sender
    msg["To"] = recipient
    if settings.reply_to:
        msg["Reply-To"] = parse_address(settings.reply_to)
    msg["Subject"] = clean_header_value(message.subject)
    msg["Date"] = _date_header(message)
    msg["Message-ID"] = message_id_for(message.idempotency_key, sender.domain)
    msg["X-Sheetcrm-Key"] = clean_header_value(message.idempotency_key)
    if message.kind == "ad":
        targets = _unsubscribe_targets(message, settings)
        if targets:
            msg["List-Unsubscribe"] = ", ".join(f"<{t}>" for t in targets)
        if message.unsubscribe:
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"

    _set_text(msg, message.text, "plain", alternative=False)
    if message.html is not None:
        _set_text(msg, message.html, "html", alternative=True)
    return msg
