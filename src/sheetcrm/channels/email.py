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

A non-ASCII Subject is folded here too, as ``email.header`` folds it: the standard
library's folder can drop the space between two encoded words of a long Korean subject
(the space ends up as folding whitespace, which readers remove), so "12월 시작됩니다"
arrives as "12월시작됩니다". Each encoded word here carries its own spaces
(``encoded_subject``: base64 words filled greedily, as ``email.header`` fills them,
without its character-by-character re-encoding).

What every message of a channel shares is built once, when the channel is made (a
channel lives for one run): ``EmailBuilder`` holds the parsed sender and reply
address as finished headers. Header classes come from a registry that makes each one
once: the standard one makes a new class for every header of every message, which
was a third of the cost of building a message.

The outbox writes most messages without the standard library's message objects
(``EmailBuilder.build_bytes``): a plain text part to one plain ``a@b.example``
address, every header short printable ASCII or the Subject, is written line by line
as the standard library would write it (the tests compare the two), the shared
lines made once. Anything else (a display name, an HTML part, a long or non-ASCII
header besides the Subject, a long body line) goes through ``build`` and
``email_bytes``, one header at a time where only that header is unusual.
"""

from __future__ import annotations

import binascii
import email.policy
import email.utils
import hashlib
import re
from collections.abc import Callable
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage
from email.policy import EmailPolicy
from typing import Any

from sheetcrm.config.channels import EmailSettings, clean_header_value, parse_address
from sheetcrm.errors import ChannelError
from sheetcrm.i18n import _
from sheetcrm.model import Message

__all__ = ["EmailBuilder", "EmailSettings", "build_email", "clean_header_value", "email_bytes",
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


#: Headers whose value is new in every message: never worth keeping.
_UNIQUE_HEADERS = frozenset({"to", "message-id", "x-sheetcrm-key"})
_KEPT = 512  # values kept per cache; the caches start over when full


def _kept(cache: dict[Any, Any], key: Any, make: Any) -> Any:
    """``cache[key]``, made by ``make()`` the first time (bounded: see ``_KEPT``)."""
    value = cache.get(key)
    if value is None:
        if len(cache) >= _KEPT:
            cache.clear()
        value = cache[key] = make()
    return value


class _Registry(HeaderRegistry):
    """The standard registry, making each header class once (the standard one makes a
    class for every header it parses) and each repeated header once: the MIME headers,
    the Date and Subject shared by a run's messages. Headers are immutable."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type] = {}
        self._headers: dict[tuple[str, str], Any] = {}

    def __getitem__(self, name: str) -> type:
        return _kept(self._classes, name.lower(), lambda: super(_Registry, self)
                     .__getitem__(name))

    def __call__(self, name: str, value: Any) -> Any:
        if not isinstance(value, str) or name.lower() in _UNIQUE_HEADERS:
            return super().__call__(name, value)
        return _kept(self._headers, (name, value), lambda: super(_Registry, self)
                     .__call__(name, value))


_FOLDED: dict[tuple[Any, ...], Any] = {}  # (how, name, value, policy) -> the folded line


class _Policy(EmailPolicy):
    """The default policy, except that the unsubscribe headers stay on one line, a
    non-ASCII Subject is folded into encoded words that keep their spaces, and a
    header met again is folded once."""

    def _unfolded(self, name: str, value: Any) -> str | None:
        text = str(value)
        lowered = name.lower()
        if lowered in UNFOLDED_HEADERS and text.isascii():
            return f"{name}: {text}{self.linesep}"
        if lowered == "subject" and not text.isascii() and not self.utf8:
            words = encoded_subject(text, self.linesep, self.max_line_length or 78)
            return f"{name}: {words}{self.linesep}"
        return None

    def _folded(self, how: str, name: str, value: Any, fold: Any) -> Any:
        if name.lower() in _UNIQUE_HEADERS:
            return fold(name, value)
        key = (how, name, str(value), self.linesep, self.utf8, self.max_line_length,
               self.cte_type)
        return _kept(_FOLDED, key, lambda: fold(name, value))

    def fold(self, name: str, value: Any) -> str:
        line = self._unfolded(name, value)
        if line is not None:
            return line
        return self._folded("str", name, value, super().fold)  # type: ignore[no-any-return]

    def fold_binary(self, name: str, value: Any) -> bytes:
        line = self._unfolded(name, value)
        if line is not None:
            return line.encode("ascii")
        return self._folded("bytes", name, value,  # type: ignore[no-any-return]
                            super().fold_binary)


_POLICY = _Policy(header_factory=_Registry())
_CHROME = len("=?utf-8?b??=")


def encoded_subject(text: str, linesep: str = "\n", width: int = 78) -> str:
    """``text`` as base64 encoded words after ``Subject: ``, each line within ``width``:
    what ``email.header.Header(text, "utf-8", header_name="Subject").encode()`` makes.

    Each word takes as many whole characters as fit (never half of one), spaces
    included, so no space is lost between two words.
    """
    pieces = []
    start = size = 0
    room = width - len("Subject: ") - _CHROME
    for i, char in enumerate(text):
        more = len(char.encode("utf-8"))
        if i > start and -(-(size + more) // 3) * 4 > room:
            pieces.append(text[start:i])
            start, size, room = i, 0, width - 1 - _CHROME
        size += more
    pieces.append(text[start:])
    return (linesep + " ").join(
        "=?utf-8?b?" + binascii.b2a_base64(piece.encode("utf-8"), newline=False).decode("ascii")
        + "?=" for piece in pieces)


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


#: One plain address as a mailbox: dot-atoms of ASCII letters, digits and the usual
#: marks, no display name, nothing to quote or to convert (IDNA). Anything else is
#: parsed by ``parse_address``.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*"
                            r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_PRINTABLE = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")
_WIDTH = 78  # the policy's max_line_length
_BASE64_LINE = _WIDTH // 4 * 3  # bytes per body line, as the standard library cuts them


def _line(name: str, value: str) -> str | None:
    """``Name: value`` as the standard library writes it, when it has nothing to fold,
    quote or encode: printable ASCII, single spaces, within the line."""
    if len(name) + 2 + len(value) <= _WIDTH and _PRINTABLE.fullmatch(value):
        return f"{name}: {value}\n"
    return None


def _folded(name: str, value: Any) -> str:
    """One header as ``email_bytes`` writes it (7-bit, ``\n``), through the policy."""
    return _POLICY.fold_binary(name, _POLICY.header_factory(name, value)).decode("ascii")


def _text_part(text: str) -> str | None:
    """The MIME headers and body of a plain text part, as ``set_content`` makes them:
    base64 for non-ASCII text, 7bit for ASCII text whose lines all fit; None for the
    rest (quoted-printable, chosen by the standard library's own measure)."""
    lines = text.encode("utf-8").splitlines()
    if text.isascii():
        if max(map(len, lines), default=0) > _WIDTH:
            return None
        cte, body = "7bit", b"\n".join(lines).decode("ascii") + "\n"
    else:
        data = b"\n".join(lines) + b"\n"
        cte = "base64"
        body = "".join(binascii.b2a_base64(data[i:i + _BASE64_LINE]).decode("ascii")
                       for i in range(0, len(data), _BASE64_LINE))
    return (f'Content-Type: text/plain; charset="utf-8"\nContent-Transfer-Encoding: {cte}\n'
            f"MIME-Version: 1.0\n\n{body}")


class EmailBuilder:
    """Builds the messages of one channel; what they all share is made once, here."""

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings
        factory = _POLICY.header_factory
        self.sender = settings.sender
        self._from = factory("From", self.sender)
        self._reply_to = (factory("Reply-To", parse_address(settings.reply_to))
                          if settings.reply_to else None)
        self._domain = self.sender.domain
        self._dates: dict[str, Any] = {}  # meta["date"] -> its header (one per run)
        self._date_lines: dict[str, str] = {}  # meta["date"] -> its line (build_bytes)
        # build_bytes: From (and Reply-To) as written; None when an address needs
        # SMTPUTF8, which only ``build`` and ``email_bytes`` write.
        self._from_line: str | None = None
        self._reply_line = ""
        if self.sender.username.isascii() and (
                self._reply_to is None or self._reply_to.addresses[0].username.isascii()):
            self._from_line = _folded("From", self._from)
            if self._reply_to is not None:
                self._reply_line = _folded("Reply-To", self._reply_to)

    def _date(self, message: Message) -> Any:
        """The Date header: made once per ``meta["date"]`` (one per run)."""
        return _once_per_date(self._dates, message,
                              lambda: _POLICY.header_factory("Date", _date_header(message)))

    def build(self, message: Message) -> EmailMessage:
        """Turn a rendered Message into an EmailMessage ready to write or send.

        Raises ChannelError(retryable=False) when the recipient is not one valid
        address (a bad cell never becomes a header) or ``meta["date"]`` is not an
        RFC 2822 date.
        """
        try:
            recipient = parse_address(message.recipient)
        except ValueError as exc:
            text = _("recipient {recipient!r}: {reason}", recipient=shown(message.recipient),
                     reason=exc)
            raise ChannelError(text, retryable=False) from None

        msg = EmailMessage(policy=_POLICY)
        msg["From"] = self._from
        msg["To"] = recipient
        if self._reply_to is not None:
            msg["Reply-To"] = self._reply_to
        msg["Subject"] = clean_header_value(message.subject)
        msg["Date"] = self._date(message)
        msg["Message-ID"] = message_id_for(message.idempotency_key, self._domain)
        msg["X-Sheetcrm-Key"] = clean_header_value(message.idempotency_key)
        if message.kind == "ad":
            targets = _unsubscribe_targets(message, self.settings)
            if targets:
                msg["List-Unsubscribe"] = ", ".join(f"<{t}>" for t in targets)
            if message.unsubscribe:
                msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"

        _set_text(msg, message.text, "plain", alternative=False)
        if message.html is not None:
            _set_text(msg, message.html, "html", alternative=True)
        return msg

    def build_bytes(self, message: Message) -> tuple[bytes, str]:
        """``email_bytes(self.build(message))`` and the Message-ID, written directly
        when the message is of the usual kind (the module's docstring).

        Raises what ``build`` raises.
        """
        written = self._written(message)
        if written is not None:
            return written
        msg = self.build(message)
        return email_bytes(msg), str(msg["Message-ID"])

    def _written(self, message: Message) -> tuple[bytes, str] | None:
        recipient = clean_header_value(message.recipient)
        if self._from_line is None or message.html is not None or \
                not _PLAIN_ADDRESS.fullmatch(recipient):
            return None
        to = _line("To", recipient)
        body = _text_part(message.text)
        if to is None or body is None:
            return None
        subject = clean_header_value(message.subject)
        message_id = message_id_for(message.idempotency_key, self._domain)
        key = clean_header_value(message.idempotency_key)
        lines = [self._from_line, to, self._reply_line,
                 _line("Subject", subject) or self._subject_line(subject),
                 self._date_line(message),
                 _line("Message-ID", message_id) or _folded("Message-ID", message_id),
                 _line("X-Sheetcrm-Key", key) or _folded("X-Sheetcrm-Key", key)]
        if message.kind == "ad":
            targets = _unsubscribe_targets(message, self.settings)
            if targets:
                lines.append(_folded("List-Unsubscribe", ", ".join(f"<{t}>" for t in targets)))
            if message.unsubscribe:
                lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click\n")
        lines.append(body)
        return "".join(lines).encode("ascii"), message_id

    @staticmethod
    def _subject_line(subject: str) -> str:
        """A non-ASCII subject as the policy folds it (``_Policy._unfolded``): no
        encoded word can be in it to decode first (``clean_header_value``)."""
        if subject.isascii() or not subject.isprintable():
            return _folded("Subject", subject)
        return f"Subject: {encoded_subject(subject)}\n"

    def _date_line(self, message: Message) -> str:
        """The Date line as written: made once per ``meta["date"]``."""
        return _once_per_date(self._date_lines, message,
                              lambda: _folded("Date", _date_header(message)))


def _once_per_date(made: dict[str, Any], message: Message, make: Callable[[], Any]) -> Any:
    """What ``make`` makes of the message's date, kept in ``made`` by ``meta["date"]``
    (a run injects one; bounded all the same); made afresh when there is none."""
    raw = message.meta.get("date")
    if raw is None:
        return make()
    found = made.get(raw)
    if found is None:
        if len(made) > 64:
            made.clear()
        found = made[raw] = make()
    return found


def build_email(message: Message, settings: EmailSettings) -> EmailMessage:
    """One message (``EmailBuilder`` for the messages of a run)."""
    return EmailBuilder(settings).build(message)
