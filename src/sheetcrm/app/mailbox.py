"""Hear the mailbox before a run plans: bounces and replies into the ledger.

``sync`` calls ``hear_mailbox`` first, under the run lock, so what came back counts
in the same run: a customer whose address bounced for good is sent nothing more
(the guards), and one who replied meets a goal such as ``replied()``.

A mail matters only when it names a message sheetcrm sent: a delivery report by the
returned message's Message-ID, a reply by its In-Reply-To/References. Each of
sheetcrm's Message-IDs is derived from the send's idempotency key, and the ledger
finds the send (and so the row) by it. Everything else (the operator's own mail,
auto-replies, temporary failures, reports about other mail) is left as it was and
recorded nowhere.

Each mail becomes at most one event (source ``mailbox``, the mail's own Message-ID
as event id), stored once however often the folder is read; a reply whose own words
ask to stop ("수신거부") is also an opt-out, honoured like the unsubscribe page's.
A mailbox that cannot be reached is logged and said in the run's summary; the run
goes on without it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sheetcrm.config import Config
from sheetcrm.config.channels import EmailSettings
from sheetcrm.i18n import _
from sheetcrm.ledger import Ledger
from sheetcrm.mailbox import Batch, Cursor, Kind, Mail, MailboxError, read_new_mail
from sheetcrm.model import Event, EventKind

log = logging.getLogger("sheetcrm.mailbox")

SOURCE = "mailbox"
FIRST_READ = timedelta(days=30)  # how far back a mailbox never read before is read


@dataclass
class MailboxReport:
    """What one read of the mailbox found: counts only, safe for a shared log."""

    read: int = 0
    bounces: int = 0
    replies: int = 0
    opt_outs: int = 0  # replies asking for no more mail
    more: bool = False  # more new mail than one read takes: the next run goes on
    error: str = ""  # why the mailbox could not be read (the run went on without it)

    def summary(self) -> dict[str, Any]:
        if self.error:
            return {"read": False, "error": self.error}
        return {"read": True, "mails": self.read, "bounces": self.bounces,
                "replies": self.replies, "opt_outs": self.opt_outs,
                "more_waiting": self.more}


def mailbox_name(config: Config) -> str:
    s = config.model.mailbox
    assert s is not None
    return f"{s.username}@{s.host}:{s.port}/{s.folder}"


def hear_mailbox(config: Config, ledger: Ledger, now: datetime, **connect: Any
                 ) -> MailboxReport | None:
    """Read the new mail and record the bounces and replies; None without ``[mailbox]``.

    ``connect`` goes to the reader (tests pass an ``ssl_context``). Never raises for
    the mailbox's sake: an unreachable one is logged and reported.
    """
    settings = config.model.mailbox
    if settings is None:
        return None
    name = mailbox_name(config)
    saved = ledger.mailbox_cursor(name)
    try:
        batch = read_new_mail(settings, Cursor(*saved) if saved else None,
                              (now - FIRST_READ).date(), **connect)
    except MailboxError as exc:
        log.warning(_("mailbox not read, the run goes on without it: {error}", error=exc))
        return MailboxReport(error=str(exc))
    report = record(batch, ledger, now, _own_addresses(config))
    if batch.cursor is not None:
        ledger.save_mailbox_cursor(name, batch.cursor.uidvalidity, batch.cursor.uid)
    if report.bounces or report.replies or report.more:
        counts = dict(read=report.read, bounces=report.bounces, replies=report.replies)
        log.info(_("mailbox read: {read} mail(s), {bounces} bounce(s), {replies} repl(ies); "
                   "more waits for the next run", **counts) if report.more else
                 _("mailbox read: {read} mail(s), {bounces} bounce(s), {replies} repl(ies)",
                   **counts))
    return report


def record(batch: Batch, ledger: Ledger, now: datetime, own: set[str]) -> MailboxReport:
    """Store an event for each mail about one of sheetcrm's sends."""
    report = MailboxReport(read=len(batch.mails), more=batch.more)
    for mail in batch.mails:
        event = event_for(mail, ledger, now, own)
        if event is None:
            continue
        if ledger.record_event(event):
            if event.kind is EventKind.BOUNCE:
                report.bounces += 1
            else:
                report.replies += 1
        if mail.asks_to_stop and event.kind is EventKind.REPLY:
            report.opt_outs += _opt_out(event, ledger)
    return report


def _opt_out(reply: Event, ledger: Ledger) -> int:
    """Record the opt-out a reply asks for, unless the customer is opted out already."""
    history = ledger.events_of(reply.key, (EventKind.OPT_OUT, EventKind.OPT_IN))
    if history and history[-1].kind is EventKind.OPT_OUT:
        return 0
    event = Event(source=SOURCE, event_id=f"{reply.event_id}:opt-out", kind=EventKind.OPT_OUT,
                  key=reply.key, at=reply.at, idem_key=reply.idem_key,
                  data={"via": "reply"})
    return int(ledger.record_event(event))


def event_for(mail: Mail, ledger: Ledger, now: datetime, own: set[str]) -> Event | None:
    """The BOUNCE or REPLY event a mail stands for, or None when it is not about us."""
    if mail.kind is Kind.REPORT:
        if not mail.bounces:
            return None  # temporary, or delivered after all, or not read whole
        kind = EventKind.BOUNCE
    elif mail.kind is Kind.PERSONAL and mail.sender not in own:
        kind = EventKind.REPLY
    else:
        return None  # an auto-reply, a vacation notice, a list; or our own copy
    at = min(mail.date, now) if mail.date is not None else now
    for message_id in mail.refers_to:
        send = ledger.send_by_message_id(message_id)
        if send is None:
            continue
        idem_key, key = send
        return Event(source=SOURCE, event_id=mail.event_id, kind=kind, key=key, at=at,
                     idem_key=idem_key, data=_data(mail, kind, message_id))
    # A message of ours (its Message-ID names our domain) the ledger has forgotten
    # ([ledger] keep): its customer is the address it went to (a bounce) or came from,
    # so a "수신거부" reply to an old ad still opts out.
    domains = {mine.rpartition("@")[2] for mine in own}
    for message_id in mail.refers_to:
        if message_id.strip("<>").rpartition("@")[2].lower() not in domains:
            continue
        address = mail.bounces[0].address if kind is EventKind.BOUNCE else mail.sender
        customer = ledger.forgotten_customer(address) if address else None
        if customer is not None:
            return Event(source=SOURCE, event_id=mail.event_id, kind=kind, key=customer, at=at,
                         data=_data(mail, kind, message_id))
    return None


def _data(mail: Mail, kind: EventKind, message_id: str) -> dict[str, Any]:
    data: dict[str, Any] = {"message_id": message_id}
    if kind is EventKind.BOUNCE:
        bounce = mail.bounces[0]
        data |= {"status": bounce.status, "reason": bounce.reason, "address": bounce.address}
    return data


def _own_addresses(config: Config) -> set[str]:
    """sheetcrm's sender addresses: a copy of its own mail is nobody's reply."""
    own: set[str] = set()
    for settings in config.channels.values():
        if isinstance(settings, EmailSettings):
            own.add(settings.sender.addr_spec.lower())
    return own
