"""Build RFC 5322 messages from a rendered Message; shared by the outbox and smtp channels.

Everything that ends up in a header may come from a spreadsheet cell, so every such
value goes through ``clean_header_value`` first (see CVE-2024-6923: CPython 3.11 lets an
encoded word like ``=?UTF-8?Q?=0A?=`` smuggle a line break into a folded header).

Addresses keep to what any server takes where they can: a domain written in Hangul
becomes its IDNA (``xn--``) form, so only a non-ASCII local part (``김철수@…``) needs a
server that speaks SMTPUTF8; such a message is written with raw UTF-8 headers
(``email_bytes``), because an encoded word inside an address is not an address.
"""

from __future__ import annotations

import email.policy
import email.utils
import hashlib
import re
from email import errors
from email.headerregistry import Address
from email.message import EmailMessage
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sheetcrm.errors import ChannelError
from sheetcrm.model import Message

# Control characters (CR, LF, NUL, ...) and everything str.splitlines() treats as a
# line break: any of them in a header value could end the header early.
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def clean_header_value(value: str) -> str:
    """Make an untrusted string safe to put in a header.

    Line breaks and control characters become one space; ``=?`` is removed until none
    is left, so no encoded word can start (and none re-forms after a removal).
    """
    cleaned = _UNSAFE_CHARS.sub(" ", value)
    while "=?" in cleaned:
        cleaned = cleaned.replace("=?", "")
    return cleaned.strip()


def shown(value: str, limit: int = 60) -> str:
    """A cell value short enough for a one-line message (an address may be 2,000 long)."""
    return value if len(value) <= limit else value[:limit] + "…"


def parse_address(value: str) -> Address:
    """Parse exactly one mailbox (``Name <a@b.example>`` or ``a@b.example``).

    The domain comes back in its ASCII form (IDNA: ``예시.한국`` becomes
    ``xn--vv4b11d.xn--3e0b707e``); a non-ASCII local part is kept as written (see
    ``needs_smtputf8``). Raises ValueError for anything the stdlib parser flags: a
    list, a group, a missing domain, trailing junk, a domain IDNA cannot encode. The
    3.11 parser can also raise IndexError on input like ``x@``, so every parse failure
    is turned into ValueError.
    """
    try:
        header = email.policy.default.header_factory("to", clean_header_value(value))
        addresses = header.addresses
    except Exception as exc:  # HeaderParseError, IndexError, ...
        raise ValueError("not an email address") from exc
    defects = [d for d in header.defects if not isinstance(d, errors.NonASCIILocalPartDefect)]
    if len(addresses) != 1 or defects:
        raise ValueError("not exactly one email address")
    address = addresses[0]
    if not address.username or not address.domain:
        raise ValueError("not an email address")
    if address.domain.isascii():
        return address
    try:
        domain = address.domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"the domain {address.domain!r} is not a valid domain name") from None
    return Address(address.display_name, address.username, domain)


ADDRESS_HEADERS = ("From", "To", "Reply-To")


def needs_smtputf8(msg: EmailMessage) -> bool:
    """True when an address in the message has a non-ASCII local part."""
    return any(
        not address.username.isascii()
        for name in ADDRESS_HEADERS
        for header in msg.get_all(name, [])
        for address in header.addresses
    )


def email_bytes(msg: EmailMessage, linesep: str = "\n") -> bytes:
    """The message as bytes: 7-bit, or with raw UTF-8 headers when an address needs it."""
    policy = email.policy.default.clone(linesep=linesep, utf8=needs_smtputf8(msg))
    return msg.as_bytes(policy=policy)


class EmailSettings(BaseModel):
    """Settings every email channel shares (outbox and smtp)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    from_: str = Field(alias="from", description='the sender, e.g. "My Class <hello@example.com>"')
    to: str | None = Field(
        None, min_length=1, description="the field holding the address; the row key if unset"
    )
    reply_to: str | None = Field(None, description="an email address for replies")
    unsubscribe_mailto: str | None = Field(
        None, description='"mailto:" followed by an address, e.g. mailto:unsubscribe@example.com'
    )
    unsubscribe_url: str | None = Field(
        None,
        description="an https URL for one-click unsubscribe; {key} is replaced by the row key",
    )

    @field_validator("from_", "reply_to")
    @classmethod
    def _is_address(cls, value: str | None) -> str | None:
        if value is not None:
            if clean_header_value(value) != value.strip():
                raise ValueError("must not contain line breaks, control characters or '=?'")
            parse_address(value)
        return value

    @field_validator("unsubscribe_mailto")
    @classmethod
    def _is_mailto(cls, value: str | None) -> str | None:
        if value is not None:
            if not value.startswith("mailto:"):
                raise ValueError("must start with 'mailto:'")
            parse_address(value[len("mailto:") :].split("?", 1)[0])
            if clean_header_value(value) != value:
                raise ValueError("must not contain spaces, line breaks or '=?'")
        return value

    @field_validator("unsubscribe_url")
    @classmethod
    def _is_https(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme != "https" or not parts.hostname:
                raise ValueError("must be an https:// URL")
            if clean_header_value(value) != value or " " in value:
                raise ValueError("must not contain spaces, line breaks or '=?'")
        return value

    @property
    def sender(self) -> Address:
        """The parsed From address (validated at load, so this cannot fail)."""
        return parse_address(self.from_)


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
        text = f"meta date {raw!r} is not an RFC 2822 date"
        raise ChannelError(text, retryable=False)
    return email.utils.format_datetime(when)  # canonical: nothing of the input survives


def _unsubscribe_targets(message: Message, settings: EmailSettings) -> list[str]:
    targets = []
    if settings.unsubscribe_url:
        row_key = quote(message.meta.get("key", message.recipient), safe="")
        targets.append(clean_header_value(settings.unsubscribe_url.replace("{key}", row_key)))
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
        text = f"recipient {shown(message.recipient)!r}: {exc}"
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
        if settings.unsubscribe_url:
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"

    _set_text(msg, message.text, "plain", alternative=False)
    if message.html is not None:
        _set_text(msg, message.html, "html", alternative=True)
    return msg
