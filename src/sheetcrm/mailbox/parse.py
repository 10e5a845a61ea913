"""What a mail in the mailbox says: a delivery report, an automatic answer or a person's mail.

Pure functions over a parsed ``email.message.Message``: no connection, no ledger.

- A **delivery report** (RFC 3464: ``multipart/report; report-type=delivery-status``) is
  read with flufl.bounce. Its DSN detector runs first and, on a report, answers
  alone; a recipient counts only when the report's own structured block for it
  says ``Action: failed`` with a ``5.x.x`` status. So a heuristic detector, which
  can match an address quoted in the returned message, never decides by itself,
  and a failure that is only temporary (``4.x.x``, also after the sending server
  gave up retrying) never counts.
- The message a report is about is named by the returned message (``message/rfc822``
  or its headers in ``text/rfc822-headers``), the report's ``X-Original-Message-ID``
  (Gmail) and the report's own ``In-Reply-To``/``References`` (Exchange), in that order.
- An **automatic** mail (RFC 3834 ``Auto-Submitted``, ``X-Autoreply``, ``Precedence:
  auto_reply/bulk/junk/list``, a null ``Return-Path``, a mailing list's ``List-Id``,
  read receipts and other reports, a mailer daemon, or a subject such as "Automatic
  reply:" or "자동 회신:") is neither a bounce nor a reply. Postfix and Gmail mark
  their delivery reports ``Auto-Submitted`` too, which is why reports are told first.
- Any other mail is **personal**: a reply when its ``In-Reply-To``/``References`` name
  a message sheetcrm sent (the caller looks them up).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.utils import parseaddr, parsedate_to_datetime
from enum import StrEnum

from flufl.bounce import all_failures

_ID = re.compile(r"<[^<>\s]+>")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SPACE = re.compile(r"\s+")
MAX_REASON = 200  # characters of a bounce's diagnostic kept (it goes into the sheet)

# Subjects auto-responders put first (Outlook in English and Korean, Exchange, Gmail's
# vacation responder as users word it, Korean webmail). Anchored at the start: a
# person's "Re: 자동응답 설정 문의" is a reply, not an automatic answer.
_AUTO_SUBJECT = re.compile(
    r"^\s*[\[(]?\s*(?:"
    r"auto(?:matic)?[\s_-]*(?:reply|response|answer)|autoreply|auto:|"
    r"out[\s-]+of[\s-]+(?:the[\s-]+)?office|ooo\b|on\s+vacation|vacation\s+(?:reply|notice)|"
    r"abwesenheit|"
    r"자동\s*(?:회신|응답|답장|답변)|부재\s*중?\s*(?:자동|알림|안내|회신|응답)"
    r")",
    re.IGNORECASE,
)
_AUTO_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponse", "X-Auto-Reply")
_AUTO_PRECEDENCE = {"auto_reply", "bulk", "junk", "list"}
_DAEMONS = ("mailer-daemon", "postmaster", "mail-daemon")
_RETURNED = ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers")


class Kind(StrEnum):
    REPORT = "report"  # a delivery report (DSN)
    AUTOMATIC = "automatic"  # an auto-reply, a vacation notice, a list, a read receipt
    PERSONAL = "personal"  # written by a person: a reply when it refers to our message


@dataclass(frozen=True)
class Bounce:
    """One recipient a delivery report says failed for good."""

    address: str
    status: str  # the enhanced status code, "5.1.1"
    reason: str  # the remote server's words (Diagnostic-Code), or the status text


@dataclass(frozen=True)
class Mail:
    """One mail as far as sheetcrm cares: what it is and which messages it is about."""

    uid: int
    event_id: str  # its own Message-ID, or a hash of its headers when it has none
    kind: Kind
    sender: str  # the From address, lower case
    date: datetime | None  # its Date header, when readable
    refers_to: tuple[str, ...]  # Message-IDs it answers or reports on, most likely first
    bounces: tuple[Bounce, ...] = ()  # permanent failures (reports only, once read whole)


def message_ids(value: str | None) -> list[str]:
    """The ``<id@host>`` tokens of a header, in order."""
    return _ID.findall(str(value)) if value else []


def read_headers(uid: int, msg: Message) -> Mail:
    """What the headers alone tell: enough for replies, and to pick the reports."""
    kind = Kind.REPORT if is_delivery_report(msg) else (
        Kind.AUTOMATIC if is_automatic(msg) else Kind.PERSONAL)
    own = message_ids(msg.get("Message-ID"))
    refers = [*message_ids(msg.get("In-Reply-To")),
              *reversed(message_ids(msg.get("References")))]
    return Mail(uid=uid, event_id=own[0] if own else _header_hash(msg), kind=kind,
                sender=parseaddr(str(msg.get("From", "")))[1].lower(), date=_date(msg),
                refers_to=_unique(refers))


def read_report(head: Mail, msg: Message) -> Mail:
    """A delivery report read whole: its permanent failures and the message it returns."""
    refers = [*_returned_ids(msg), *_per_message_ids(msg), *head.refers_to]
    return Mail(uid=head.uid, event_id=head.event_id, kind=Kind.REPORT, sender=head.sender,
                date=head.date, refers_to=_unique(refers), bounces=permanent_failures(msg))


def is_delivery_report(msg: Message) -> bool:
    return (msg.get_content_type() == "multipart/report"
            and str(msg.get_param("report-type") or "").lower() == "delivery-status")


def is_automatic(msg: Message) -> bool:
    """Written by a program, not a person (RFC 3834 and the headers that predate it)."""
    auto = str(msg.get("Auto-Submitted", "")).strip().lower()
    if auto and not auto.startswith("no"):
        return True
    if any(str(msg.get(h, "")).strip().lower() not in ("", "no") for h in _AUTO_HEADERS):
        return True
    for name in ("Precedence", "X-Precedence"):
        if str(msg.get(name, "")).strip().lower() in _AUTO_PRECEDENCE:
            return True
    if str(msg.get("Return-Path", "x")).strip() == "<>" or msg.get("List-Id"):
        return True
    if msg.get_content_type() == "multipart/report":  # read receipts, feedback reports
        return True
    local = parseaddr(str(msg.get("From", "")))[1].split("@")[0].lower()
    return local in _DAEMONS or bool(_AUTO_SUBJECT.match(subject_of(msg)))


def subject_of(msg: Message) -> str:
    raw = msg.get("Subject")
    if raw is None:
        return ""
    try:
        return str(make_header(decode_header(str(raw))))
    except (ValueError, LookupError, UnicodeError):
        return str(raw)


def permanent_failures(msg: Message) -> tuple[Bounce, ...]:
    """Recipients the report's DSN blocks say failed for good (``Action: failed``, 5.x.x)."""
    if not is_delivery_report(msg):
        return ()
    _, permanent = all_failures(msg)
    failed = {address.decode("ascii").lower() for address in permanent}
    found: dict[str, Bounce] = {}
    for block in _recipient_blocks(msg):
        address = _recipient(block)
        action = str(block.get("Action", "")).strip().lower()
        status = _status(block)
        if (address.lower() in failed and action.startswith(("failed", "error"))
                and status.startswith("5.")):
            found.setdefault(address.lower(), Bounce(address, status, _reason(block, status)))
    return tuple(found.values())


def _recipient_blocks(msg: Message) -> list[Message]:
    blocks: list[Message] = []
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status" and part.is_multipart():
            payload = part.get_payload()
            assert isinstance(payload, list)  # a delivery-status part parses as header blocks
            # The first block is about the message, the others each about a recipient.
            blocks.extend(b for b in payload[1:] if isinstance(b, Message))
    return blocks


def _recipient(block: Message) -> str:
    for name in ("Original-Recipient", "Final-Recipient"):
        _, _, address = str(block.get(name, "")).partition(";")
        address = address.strip().strip("<>").strip()
        if "@" in address:
            return address
    return ""


def _status(block: Message) -> str:
    for name in ("Status", "Diagnostic-Code"):
        m = _STATUS.search(str(block.get(name, "")))
        if m:
            return m.group(0)
    return ""


def _reason(block: Message, status: str) -> str:
    diagnostic = str(block.get("Diagnostic-Code", ""))
    _, _, text = diagnostic.partition(";")  # "smtp; 550 5.1.1 ..." -> "550 5.1.1 ..."
    text = _SPACE.sub(" ", text or diagnostic).strip() or _SPACE.sub(
        " ", str(block.get("Status", status))).strip()
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def _returned_ids(msg: Message) -> list[str]:
    """The Message-ID of the message a report returns, whole or as its headers only."""
    for part in msg.walk():
        if part is msg or part.get_content_type() not in _RETURNED:
            continue
        if part.is_multipart():  # message/rfc822 (and rfc822-headers) parse as a message
            payload = part.get_payload()
            assert isinstance(payload, list)
            inner = payload[0] if payload else None
            return message_ids(inner.get("Message-ID")) if isinstance(inner, Message) else []
        data = part.get_payload(decode=True)
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else ""
        return message_ids(HeaderParser().parsestr(text).get("Message-ID"))
    return []


def _per_message_ids(msg: Message) -> list[str]:
    """``X-Original-Message-ID`` and the like in a report's per-message block (Gmail)."""
    found: list[str] = []
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status" and part.is_multipart():
            payload = part.get_payload()
            assert isinstance(payload, list)
            first = payload[0] if payload else None
            for name in ("X-Original-Message-ID", "Original-Message-ID"):
                found += message_ids(first.get(name)) if isinstance(first, Message) else []
    return found


def _date(msg: Message) -> datetime | None:
    try:
        when = parsedate_to_datetime(str(msg.get("Date", "")))
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _header_hash(msg: Message) -> str:
    """An id for a mail without a Message-ID: the same mail hashes the same every read."""
    parts = [str(msg.get(name, "")) for name in ("From", "To", "Date", "Subject", "Received")]
    return "sha256:" + hashlib.sha256("\n".join(parts).encode("utf-8", "replace")).hexdigest()


def _unique(ids: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i.lower() for i in ids))
