"""Read the new mail of one IMAP folder, touching none of it.

The folder is opened with EXAMINE (read-only: the server may change no flag, not
even ``\\Recent``) and every fetch is a ``BODY.PEEK``: reading sets no ``\\Seen``,
and nothing is ever stored, copied, moved or deleted. The operator's own mail in the
same folder stays exactly as it was.

Each read takes the mail after a cursor (the folder's UIDVALIDITY and the last UID
read), at most ``BATCH`` of them: headers first, for all of them, then the whole
message only for the delivery reports and the replies among them. The first read (or one after the
server renumbered the folder) starts at a date instead. ``timeout`` bounds the whole
exchange (``sheetcrm.deadline``), from the connection to the logout.

imap-tools does the protocol; the two imaplib subclasses only hand their socket to
the deadline the moment it exists, as the smtp channel does with smtplib.
"""

from __future__ import annotations

import contextlib
import imaplib
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

from imap_tools import AND, BaseMailBox
from imap_tools.errors import (
    MailboxFolderSelectError,
    MailboxLoginError,
    MailboxStarttlsError,
)
from imap_tools.utils import check_command_status

from sheetcrm.config import MailboxSettings
from sheetcrm.deadline import Deadline, capped, watch
from sheetcrm.errors import SheetcrmError
from sheetcrm.i18n import _
from sheetcrm.mailbox.parse import Kind, Mail, read_headers, read_reply, read_report
from sheetcrm.redact import mask

BATCH = 500  # mails read per run at most; the rest wait for the next run
FETCH_CHUNK = 100  # headers fetched per IMAP command
MAX_REPORT = 2 * 1024 * 1024  # a larger "report" is not about a small message of ours
MAX_REPLY = 512 * 1024  # a larger reply (attachments) is read by its headers alone


class MailboxError(SheetcrmError):
    """The mailbox could not be read (unreachable, login refused, no such folder, timeout)."""


@dataclass(frozen=True)
class Cursor:
    """Where the last read stopped: UIDs are only comparable within one UIDVALIDITY."""

    uidvalidity: int
    uid: int


@dataclass
class Batch:
    mails: list[Mail]
    cursor: Cursor | None  # to save once the mails are handled; None: nothing new
    more: bool = False  # more new mail than one batch: the next run reads on


def _plain_socket(client: imaplib.IMAP4, timeout: float | None) -> socket.socket:
    # imaplib's own hook for making the socket (IMAP4_SSL calls IMAP4's directly, so it
    # is called the same way here); the type stubs leave it out.
    create = imaplib.IMAP4._create_socket  # type: ignore[attr-defined]
    sock: socket.socket = create(client, capped(timeout) if timeout else timeout)
    watch(sock)
    return sock


class _Imap(imaplib.IMAP4):
    """imaplib.IMAP4 whose socket the active deadline watches from the moment it exists."""

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return _plain_socket(self, timeout)


class _ImapSsl(imaplib.IMAP4_SSL):
    """Implicit TLS; the plain socket is watched before the handshake starts."""

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return self.ssl_context.wrap_socket(_plain_socket(self, timeout),
                                            server_hostname=self.host)


class _MailBox(BaseMailBox):
    """imap-tools' mailbox over the watched imaplib clients, secured as configured."""

    def __init__(self, settings: MailboxSettings, context: ssl.SSLContext) -> None:
        self.settings, self.context = settings, context
        super().__init__()

    def _get_mailbox_client(self) -> imaplib.IMAP4:
        s = self.settings
        if s.security == "ssl":
            return _ImapSsl(s.host, s.port, ssl_context=self.context, timeout=s.timeout)
        client = _Imap(s.host, s.port, timeout=s.timeout)
        if s.security == "starttls":
            try:
                check_command_status(client.starttls(self.context), MailboxStarttlsError)
            except BaseException:
                with contextlib.suppress(OSError):
                    client.shutdown()
                raise
        return client


def _where(s: MailboxSettings) -> str:
    return _("mailbox {host}:{port}", host=s.host, port=s.port)


@dataclass
class _Folder:
    box: _MailBox
    uidvalidity: int
    exists: int  # mails in the folder


@contextmanager
def _opened(settings: MailboxSettings, ssl_context: ssl.SSLContext | None
            ) -> Iterator[_Folder]:
    """Log in and EXAMINE the folder, all under the deadline (the caller's work too).

    Any failure inside, the caller's included, becomes one MailboxError.
    """
    s = settings
    password = s.password.get_secret_value()
    with Deadline(s.timeout) as clock:
        try:
            box = _MailBox(s, ssl_context or ssl.create_default_context())
            try:
                if s.username.isascii() and password.isascii():
                    box.login(s.username, password, initial_folder=None)
                else:
                    box.login_utf8(s.username, password, initial_folder=None)
                _status, exists = box.folder.set(s.folder, readonly=True)
                validity = box.client.untagged_responses.get("UIDVALIDITY", [b"0"])[0]
                yield _Folder(box, _number(validity), _number(exists[-1]))
            finally:
                with contextlib.suppress(Exception):
                    box.logout()
        except MailboxError:
            raise
        except Exception as exc:
            raise _error(exc, s, clock.expired) from None


def _number(value: object) -> int:
    """A number the server sent (``b"3"``); 0 when it sent none or something else."""
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
    return int(text) if text.strip().isdigit() else 0


def _error(exc: Exception, s: MailboxSettings, timed_out: bool) -> MailboxError:
    """A failure as one line that names the server and never shows the password."""
    where = _where(s)
    if timed_out:
        text = _("{where}: no answer within {seconds} s (timeout)", where=where,
                 seconds=f"{s.timeout:g}")
    elif isinstance(exc, MailboxLoginError):
        text = _("{where}: login as {user!r} refused; check username and password",
                 where=where, user=s.username)
    elif isinstance(exc, MailboxFolderSelectError):
        text = _("{where}: no folder {folder!r} to read; check [mailbox] folder", where=where,
                 folder=s.folder)
    elif isinstance(exc, ssl.SSLCertVerificationError):
        text = _("{where}: TLS certificate not trusted ({reason})", where=where,
                 reason=exc.verify_message)
    elif isinstance(exc, MailboxStarttlsError):
        text = _('{where}: the server refused STARTTLS; use security = "ssl" (port 993)',
                 where=where)
    elif isinstance(exc, (OSError, imaplib.IMAP4.error, EOFError)):
        text = _("{where}: connection failed ({error}: {reason})", where=where,
                 error=type(exc).__name__, reason=exc)
    else:
        text = f"{where}: {type(exc).__name__}: {exc}"
    return MailboxError(mask(text, [s.password.get_secret_value()]))


def read_new_mail(settings: MailboxSettings, cursor: Cursor | None, since: date, *,
                  batch: int = BATCH, ssl_context: ssl.SSLContext | None = None) -> Batch:
    """The mail that arrived after ``cursor`` (or on or after ``since``), oldest first.

    Raises MailboxError when the mailbox cannot be read; then nothing was read.
    """
    with _opened(settings, ssl_context) as folder:
        box, validity = folder.box, folder.uidvalidity
        if cursor is not None and cursor.uidvalidity == validity:
            found = box.uids(f"UID {cursor.uid + 1}:*", charset=None)
            after = cursor.uid
        else:
            found = box.uids(AND(date_gte=since), charset=None)
            after = 0
        uids = sorted(u for u in {int(x) for x in found} if u > after)
        todo, more = uids[:batch], len(uids) > batch
        if not todo:
            return Batch([], None)
        mails: list[Mail] = []
        wanted: list[str] = []  # the delivery reports and replies, to read whole
        for message in box.fetch(uid_list=[str(u) for u in todo], headers_only=True,
                                 mark_seen=False, bulk=FETCH_CHUNK):
            if message.uid is None:
                continue
            head = read_headers(int(message.uid), message.obj)
            mails.append(head)
            if ((head.kind is Kind.REPORT and message.size_rfc822 <= MAX_REPORT)
                    or (head.kind is Kind.PERSONAL and head.refers_to
                        and message.size_rfc822 <= MAX_REPLY)):
                wanted.append(message.uid)
        whole = {int(m.uid): m.obj for m in box.fetch(uid_list=wanted, mark_seen=False)
                 if m.uid is not None} if wanted else {}
        mails = [(read_report if m.kind is Kind.REPORT else read_reply)(m, whole[m.uid])
                 if m.uid in whole else m for m in mails]
        return Batch(sorted(mails, key=lambda m: m.uid), Cursor(validity, todo[-1]), more)


def probe(settings: MailboxSettings, *, ssl_context: ssl.SSLContext | None = None) -> str:
    """Log in and open the folder, reading no mail: what ``check --connect`` says."""
    with _opened(settings, ssl_context) as folder:
        count = folder.exists
    security = {"ssl": "TLS", "starttls": "STARTTLS",
                "none": _("no encryption")}[settings.security]
    return _("{where} reachable ({security}), login as {user!r} accepted, folder {folder!r} "
             "holds {count} mail(s); nothing was read", where=_where(settings),
             security=security, user=settings.username, folder=settings.folder, count=count)
