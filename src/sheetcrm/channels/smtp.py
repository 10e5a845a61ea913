"""The smtp channel: sends the built message through a real SMTP server.

One connection is kept open across the sends of a run (servers throttle clients that
reconnect for every message) and probed with NOOP before reuse, so an idle connection
the server dropped is replaced once instead of failing the send.

The transaction (MAIL, RCPT, DATA) is spelt out here rather than left to
``smtplib.sendmail`` because the moment matters: once the message and its final dot
have gone out, the server may have it, so a reply lost to a timeout or a dropped
connection makes the send *uncertain* (never sent again), while a failure before
that point is an ordinary one. Whatever one recipient cannot take (an address too
long for SMTP, a non-ASCII local part on a server without SMTPUTF8, a refusal at
RCPT) fails that customer only; only what is true for every message (login, TLS,
the server unreachable or silent) takes the channel down.

``timeout`` bounds a whole send, reconnecting included (see ``deadline.py``).
"""

from __future__ import annotations

import base64
import contextlib
import re
import smtplib
import socket
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

from sheetcrm.channels.email import EmailBuilder, email_bytes, needs_smtputf8, shown
from sheetcrm.config.channels import SmtpSettings
from sheetcrm.deadline import Deadline, capped, watch
from sheetcrm.errors import ChannelError
from sheetcrm.i18n import _
from sheetcrm.model import Delivery, Message
from sheetcrm.redact import mask

MAX_ADDRESS = 254  # octets: RFC 5321's 256-octet path minus its angle brackets


# Replies about the service or the session, not the message: the server is closing
# (421), TLS or authentication is required or failed (454, 530, 534, 535, 538).
_SERVICE_CODES = frozenset({421, 454, 530, 534, 535, 538})


def _retryable(code: int) -> bool:
    """4xx replies are temporary by definition (RFC 5321); 5xx are permanent."""
    return not 500 <= code <= 599


class _Smtp(smtplib.SMTP):
    """smtplib.SMTP whose socket the active deadline watches from the moment it exists."""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # smtplib's own hook for making the socket (SMTP_SSL and LMTP override it too);
        # the type stubs leave it out.
        sock = super()._get_socket(host, port, capped(timeout))  # type: ignore[misc]
        watch(sock)
        return sock


class _SmtpSsl(smtplib.SMTP_SSL, _Smtp):
    """Implicit TLS; the plain socket is watched before the handshake starts."""


class _ReplyLost(Exception):
    """The message went out but the server's answer to it never came."""


def _dot_stuffed(data: bytes) -> bytes:
    """The DATA payload: leading dots doubled, ended by CRLF "." CRLF (RFC 5321 4.5.2)."""
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _transact(conn: smtplib.SMTP, sender: str, recipient: str, data: bytes,
              options: list[str], clock: Deadline) -> None:
    """MAIL, RCPT, DATA; raises _ReplyLost when the reply to the data does not come.

    A reply cut off by the deadline can look whole (smtplib takes the part of a line
    read before the connection ended), so an expired deadline is a lost reply.
    """
    code, reply = conn.mail(sender, options)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = conn.rcpt(recipient)
    if code not in (250, 251):
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    code, reply = conn.docmd("data")
    if code != 354:
        raise smtplib.SMTPDataError(code, reply)
    conn.send(_dot_stuffed(data))  # raises if it could not all go out: not delivered
    try:
        code, reply = conn.getreply()
    except smtplib.SMTPServerDisconnected as exc:
        cause = exc.__context__
        raise _ReplyLost(_("timed out") if isinstance(cause, TimeoutError)
                         else _("connection closed")) from exc
    except smtplib.SMTPResponseException as exc:  # an endless line, not an answer
        raise _ReplyLost(_("unreadable answer")) from exc
    if clock.expired:
        raise _ReplyLost(_("timed out"))
    if 200 <= code <= 299:
        return
    if 400 <= code <= 599:
        raise smtplib.SMTPDataError(code, reply)
    raise _ReplyLost(_("unreadable answer {reply!r}", reply=_reply(reply)))


class SmtpChannel:
    """Delivers through one lazily opened SMTP connection; ``close()`` sends QUIT."""

    redelivery_safe = False

    def __init__(
        self, name: str, settings: SmtpSettings, *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.name = name
        self.settings = settings
        self.builder = EmailBuilder(settings)  # the sender and static headers, once a run
        self._ssl_context = ssl_context  # tests pass one that trusts a self-signed cert
        self._conn: smtplib.SMTP | None = None

    @classmethod
    def from_settings(cls, name: str, settings: SmtpSettings, *, base_dir: Path
                      ) -> SmtpChannel:
        """The channel for ``[channels.<name>]`` (no file is involved: ``base_dir`` unused)."""
        return cls(name, settings)

    @property
    def _where(self) -> str:
        return f"SMTP {self.settings.host}:{self.settings.port}"

    def _scrub(self, text: str) -> str:
        """Mask the password (and the base64 forms AUTH sends it in) in a server reply."""
        password = self.settings.password
        secret = password.get_secret_value() if password is not None else ""
        user = self.settings.username or ""
        forms = [secret, base64.b64encode(secret.encode()).decode(),
                 base64.b64encode(f"\0{user}\0{secret}".encode()).decode()] if secret else []
        return mask(text, forms)

    def _connect(self) -> smtplib.SMTP:
        """A connection that is through TLS and login as configured, with EHLO done."""
        s = self.settings
        context = self._ssl_context or ssl.create_default_context()
        conn: smtplib.SMTP
        if s.security == "ssl":
            conn = _SmtpSsl(s.host, s.port, timeout=s.timeout, context=context)
        else:
            conn = _Smtp(s.host, s.port, timeout=s.timeout)
        try:
            if s.security == "starttls":
                conn.starttls(context=context)
            if s.username is not None and s.password is not None:
                conn.login(s.username, s.password.get_secret_value())
            conn.ehlo_or_helo_if_needed()
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self) -> smtplib.SMTP:
        if self._conn is not None:
            if self._conn.sock is not None:
                watch(self._conn.sock)
            try:
                alive = self._conn.noop()[0] == 250
            except (smtplib.SMTPException, OSError):
                alive = False
            if not alive:
                self._drop()
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _refuse(self, recipient: Address, reason: str) -> ChannelError:
        """This recipient cannot be sent to; the others can."""
        return ChannelError(_("{where}: recipient {recipient!r}: {reason}", where=self._where,
                              recipient=shown(recipient.addr_spec), reason=reason),
                            retryable=False)

    def _check_smtputf8(self, conn: smtplib.SMTP, msg: EmailMessage,
                        recipient: Address) -> list[str]:
        """MAIL options for this message; ChannelError when the server cannot take it."""
        if not needs_smtputf8(msg):
            return []
        if conn.has_extn("smtputf8"):
            return ["SMTPUTF8", "BODY=8BITMIME"] if conn.has_extn("8bitmime") else ["SMTPUTF8"]
        reason = _("the server does not support SMTPUTF8, which an address with non-ASCII "
                   "characters before the @ needs")
        if not recipient.username.isascii():
            raise self._refuse(recipient, _("{reason}; ask the customer for another address",
                                            reason=reason))
        # The sender or the reply address needs it: true for every message.
        raise ChannelError(_("{where}: {reason} (from or reply_to)", where=self._where,
                             reason=reason), channel_down=True)

    def send(self, message: Message) -> Delivery:
        msg = self.builder.build(message)
        sender = msg["From"].addresses[0].addr_spec
        recipient = msg["To"].addresses[0]
        size = len(recipient.addr_spec.encode("utf-8"))
        if size > MAX_ADDRESS:
            raise self._refuse(recipient, _("the address is {size} characters long; SMTP "
                                            "allows at most {most}", size=size,
                                            most=MAX_ADDRESS))
        data = email_bytes(msg, linesep="\r\n")
        with Deadline(self.settings.timeout) as clock:
            try:
                conn = self._connection()
                options = self._check_smtputf8(conn, msg, recipient)
                _transact(conn, sender, recipient.addr_spec, data, options, clock)
            except ChannelError:
                raise  # nothing was sent; the connection is still in a known state
            except _ReplyLost as lost:
                self._drop()
                why = (_("timed out after {seconds} s", seconds=f"{self.settings.timeout:g}")
                       if clock.expired else str(lost))
                text = _("{where}: no answer after the message was sent ({why}); the server "
                         "may have accepted it, so it is not sent again", where=self._where,
                         why=why)
                raise ChannelError(text, uncertain=True) from None
            except Exception as exc:
                self._drop()  # the next send starts from a fresh, known state
                raise self._error(exc, clock.expired) from None
        return Delivery(message_id=str(msg["Message-ID"]), detail=self._where)

    def probe(self) -> str:
        """Connect, TLS and log in as configured, then QUIT: nothing is sent."""
        s = self.settings
        with Deadline(s.timeout) as clock:
            try:
                conn = self._connect()
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    conn.quit()
                conn.close()
            except Exception as exc:
                error = self._error(exc, clock.expired)
                raise ChannelError(str(error), channel_down=True) from None
        security = {"ssl": "TLS", "starttls": "STARTTLS", "none": _("no encryption")}[s.security]
        login = _(", login as {user!r} accepted", user=s.username) if s.username else ""
        return _("{where} reachable ({security}){login}", where=self._where, security=security,
                 login=login)

    def _error(self, exc: Exception, timed_out: bool) -> ChannelError:
        """Map an smtplib/socket failure to a ChannelError that never shows the password."""
        where = self._where
        if timed_out:
            text = _("{where}: no answer within {seconds} s (timeout)", where=where,
                     seconds=f"{self.settings.timeout:g}")
            return ChannelError(text, channel_down=True)
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            text = _("{where}: login as {user!r} refused ({code}); check username and password "
                     "(Gmail and Naver want an app password)", where=where,
                     user=self.settings.username, code=exc.smtp_code)
            return ChannelError(self._scrub(text), channel_down=True)
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            code, reply = next(iter(exc.recipients.values()))
            text = _("{where}: recipient refused ({code} {reply})", where=where, code=code,
                     reply=_reply(reply))
            return ChannelError(self._scrub(text), retryable=_retryable(code))
        if isinstance(exc, smtplib.SMTPResponseException):
            text = _("{where}: server replied {code} {reply}", where=where, code=exc.smtp_code,
                     reply=_reply(exc.smtp_error))
            session = isinstance(exc, (smtplib.SMTPConnectError, smtplib.SMTPHeloError))
            if session or exc.smtp_code in _SERVICE_CODES:
                return ChannelError(self._scrub(text), channel_down=True)
            return ChannelError(self._scrub(text), retryable=_retryable(exc.smtp_code))
        if isinstance(exc, smtplib.SMTPNotSupportedError):  # STARTTLS or AUTH missing
            return ChannelError(f"{where}: {exc}", channel_down=True)
        if isinstance(exc, ssl.SSLCertVerificationError):
            return ChannelError(_("{where}: TLS certificate not trusted ({reason})", where=where,
                                  reason=exc), channel_down=True)
        if isinstance(exc, (smtplib.SMTPServerDisconnected, OSError)):
            text = _("{where}: connection failed ({error}: {reason})", where=where,
                     error=type(exc).__name__, reason=exc)
            return ChannelError(self._scrub(text), channel_down=True)
        return ChannelError(self._scrub(f"{where}: {type(exc).__name__}: {exc}"), retryable=False)

    def close(self) -> None:
        if self._conn is not None:
            with Deadline(self.settings.timeout):
                if self._conn.sock is not None:
                    watch(self._conn.sock)
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    self._conn.quit()
            self._drop()


def _reply(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())[:200]
