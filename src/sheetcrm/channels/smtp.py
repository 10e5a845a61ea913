"""The smtp channel: sends the built message through a real SMTP server.

One connection is kept open across the sends of a run (servers throttle clients that
reconnect for every message) and probed with NOOP before reuse, so an idle connection
the server dropped is replaced once instead of failing the send.
"""

from __future__ import annotations

import base64
import contextlib
import smtplib
import ssl
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from sheetcrm.channels.base import Delivery, Message
from sheetcrm.channels.email import EmailSettings, build_email
from sheetcrm.errors import ChannelError


class SmtpSettings(EmailSettings):
    type: Literal["smtp"]
    host: str = Field(min_length=1, description="the SMTP server's host name")
    port: int = Field(587, ge=1, le=65535, description="a TCP port, e.g. 587 or 465")
    security: Literal["starttls", "ssl", "none"] = Field(
        "starttls", description='"starttls" (port 587), "ssl" (port 465) or "none"'
    )
    username: str | None = Field(None, description="the login name, if the server needs one")
    password: SecretStr | None = Field(None, description='the password, e.g. "${SMTP_PASSWORD}"')
    timeout: float = Field(30.0, gt=0, description="seconds to wait for the server")

    @model_validator(mode="after")
    def _login_is_complete(self) -> SmtpSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password must be set together")
        return self


# Replies about the service or the session, not the message: the server is closing
# (421), TLS or authentication is required or failed (454, 530, 534, 535, 538).
_SERVICE_CODES = frozenset({421, 454, 530, 534, 535, 538})


def _retryable(code: int) -> bool:
    """4xx replies are temporary by definition (RFC 5321); 5xx are permanent."""
    return not 500 <= code <= 599


class SmtpChannel:
    """Delivers through one lazily opened SMTP connection; ``close()`` sends QUIT."""

    redelivery_safe = False

    def __init__(
        self, name: str, settings: SmtpSettings, *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.name = name
        self.settings = settings
        self._ssl_context = ssl_context  # tests pass one that trusts a self-signed cert
        self._conn: smtplib.SMTP | None = None

    @property
    def _where(self) -> str:
        return f"SMTP {self.settings.host}:{self.settings.port}"

    def _scrub(self, text: str) -> str:
        """Remove the password (and its base64 forms used by AUTH) from server replies."""
        if self.settings.password is None:
            return text
        secret = self.settings.password.get_secret_value()
        if not secret:
            return text
        user = self.settings.username or ""
        for form in (
            secret,
            base64.b64encode(secret.encode()).decode(),
            base64.b64encode(f"\0{user}\0{secret}".encode()).decode(),
        ):
            text = text.replace(form, "***")
        return text

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = self._ssl_context or ssl.create_default_context()
        conn: smtplib.SMTP
        if s.security == "ssl":
            conn = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
        else:
            conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            if s.security == "starttls":
                conn.starttls(context=context)
            if s.username is not None and s.password is not None:
                conn.login(s.username, s.password.get_secret_value())
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self) -> smtplib.SMTP:
        if self._conn is not None:
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

    def send(self, message: Message) -> Delivery:
        msg = build_email(message, self.settings)
        sender = self.settings.sender.addr_spec
        recipient = msg["To"].addresses[0].addr_spec
        try:
            self._connection().send_message(msg, from_addr=sender, to_addrs=[recipient])
        except Exception as exc:
            self._drop()  # the next send starts from a fresh, known state
            raise self._error(exc) from None
        return Delivery(message_id=str(msg["Message-ID"]), detail=self._where)

    def _error(self, exc: Exception) -> ChannelError:
        """Map an smtplib/socket failure to a ChannelError that never shows the password."""
        where = self._where
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            text = f"{where}: login as {self.settings.username!r} refused ({exc.smtp_code})"
            return ChannelError(self._scrub(text), channel_down=True)
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            code, reply = next(iter(exc.recipients.values()))
            text = f"{where}: recipient refused ({code} {_reply(reply)})"
            return ChannelError(self._scrub(text), retryable=_retryable(code))
        if isinstance(exc, smtplib.SMTPResponseException):
            text = f"{where}: server replied {exc.smtp_code} {_reply(exc.smtp_error)}"
            if exc.smtp_code in _SERVICE_CODES:
                return ChannelError(self._scrub(text), channel_down=True)
            return ChannelError(self._scrub(text), retryable=_retryable(exc.smtp_code))
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return ChannelError(f"{where}: {exc}", channel_down=True)
        if isinstance(exc, ssl.SSLCertVerificationError):
            return ChannelError(f"{where}: TLS certificate not trusted ({exc})",
                                channel_down=True)
        if isinstance(exc, (smtplib.SMTPServerDisconnected, OSError)):
            text = f"{where}: connection failed ({type(exc).__name__}: {exc})"
            return ChannelError(self._scrub(text), channel_down=True)
        return ChannelError(self._scrub(f"{where}: {type(exc).__name__}: {exc}"), retryable=False)

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._conn.quit()
            self._drop()


def _reply(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())[:200]
