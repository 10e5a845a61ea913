"""``[server]``, ``[events.NAME]`` and ``[mailbox]``: how sheetcrm hears back.

The endpoint (``sheetcrm serve``, or inside ``sheetcrm run``) answers the links in
every message (unsubscribe, clicks, opens) and providers' webhooks; the mailbox
reader picks bounces and replies out of an IMAP folder. Everything they hear is
stored in the ledger first and written into the sheet by the next run.

An ``[events.NAME]`` is one of two kinds, told apart by ``source``: a payment or a
form answer that sets fields of a row (``key``, ``set``), or a text-message
provider's delivery reports (``solapi``, ``nhn``), which name the messages they
report on and so need neither: they say which ``channel``'s sends they are about.
"""

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from sheetcrm.config.base import SettingError, Settings, is_loopback, parse_duration
from sheetcrm.i18n import N_, _

_LISTEN = re.compile(r"^\[?([^\]]*?)\]?:(\d{1,5})$")
# Dotted parts; a part may hold spaces inside (a Tally question labelled "수신 동의").
_PART = r"[^.\s](?:[^.]*[^.\s])?"
_KEY_PATH = re.compile(rf"^{_PART}(\.{_PART})*$")
SIGNED_SOURCES = ("standard", "tally", "stripe")
CONFIRMED_SOURCES = ("portone", "toss")  # unsigned: each payment is looked up first
REPORT_SOURCES = ("solapi", "nhn")  # delivery reports of a text channel of that type
_URL_SAFE = re.compile(r"^[A-Za-z0-9._~-]+$")  # a secret that goes in a URL as it is
MIN_URL_SECRET = 16  # characters of an unguessable secret in a URL


class ServerSettings(Settings):
    """``[server]``: the small public HTTP service behind the operator's TLS proxy."""

    public_url: str = Field(description=N_('how customers reach it, e.g. "https://crm.example.com"'))
    listen: str = Field("127.0.0.1:8080",
                        description=N_('host:port to bind, e.g. "127.0.0.1:8080"'))
    secret: SecretStr = Field(
        description=N_('at least 16 characters signing every link, e.g. "${SHEETCRM_SECRET}"'))
    track_clicks: bool = True
    track_opens: bool = False  # opens are unreliable (image proxies, Apple MPP)
    max_body: int = Field(256 * 1024, ge=1024, le=16 * 1024 * 1024,
                          description=N_("the largest request body accepted, in bytes"))
    rate_limit: str = Field("120/1m", description=N_('requests per client address, e.g. "120/1m"'))

    @field_validator("public_url")
    @classmethod
    def _is_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
                or parts.fragment or not (parts.netloc + parts.path).isprintable() \
                or " " in value.strip():
            raise SettingError(_("{value!r} is not a base URL like 'https://crm.example.com'",
                                 value=value))
        if not parts.netloc.isascii():  # a Hangul domain: its xn-- form, as mail needs
            try:
                host = (parts.hostname or "").encode("idna").decode("ascii")
                port = f":{parts.port}" if parts.port is not None else ""
            except (UnicodeError, ValueError):
                raise SettingError(_("{value!r} has a host name that is not a valid domain",
                                     value=value)) from None
            parts = parts._replace(netloc=host + port)
        if not parts.path.isascii():
            raise SettingError(_("{value!r}: write the path in ASCII (percent-encoded)",
                                 value=value))
        return parts.geturl().rstrip("/")

    @field_validator("listen")
    @classmethod
    def _is_listen(cls, value: str) -> str:
        m = _LISTEN.match(value.strip())
        if not m or not 0 < int(m.group(2)) < 65536:
            raise SettingError(_("{value!r} is not host:port like '127.0.0.1:8080'", value=value))
        return value.strip()

    @field_validator("secret")
    @classmethod
    def _is_long(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise SettingError(_("the secret is shorter than 16 characters; make a long random "
                                 'one, e.g. with: python -c "import secrets; '
                                 'print(secrets.token_urlsafe(32))"'))
        return value

    @field_validator("rate_limit")
    @classmethod
    def _is_rate(cls, value: str) -> str:
        count, _slash, period = value.partition("/")
        if not count.strip().isdigit() or int(count) < 1:
            raise SettingError(_("{value!r} is not a rate like '120/1m'", value=value))
        if parse_duration(period).total_seconds() <= 0:
            raise SettingError(_("{value!r} is not a rate like '120/1m'", value=value))
        return value

    @property
    def host_port(self) -> tuple[str, int]:
        m = _LISTEN.match(self.listen)
        assert m is not None  # validated
        return m.group(1) or "127.0.0.1", int(m.group(2))

    @property
    def https(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def public_on_loopback(self) -> bool:
        return is_loopback(urlsplit(self.public_url).hostname or "")


class EventSettings(Settings):
    """``[events.NAME]``: a provider's webhook at ``POST /e/NAME``."""

    source: Literal["standard", "tally", "stripe", "portone", "toss", "solapi", "nhn"] = Field(
        description=N_("standard, tally, stripe, portone, toss, or solapi / nhn (delivery "
                    "reports)"))
    secret: SecretStr | None = Field(
        None, description=N_('the signing secret the provider shows, e.g. "${PAY_WEBHOOK_SECRET}"'))
    key: str | None = Field(
        None, description=N_('where the row key is in the payload, e.g. "data.customer.email"'))
    set: dict[str, Any] = Field(
        default_factory=dict,
        description=N_("fields to set on that row once, e.g. { paid = true }"))
    append: bool = False  # an event for an unknown key adds a row (a form's intake)
    api_url: str | None = Field(
        None, description=N_("the provider's API, to confirm an unsigned payment (a proxy or "
                          "an emulator; the public API when unset)"))
    api_key: SecretStr | None = Field(
        None, description=N_('the provider\'s API secret, e.g. "${TOSS_SECRET_KEY}"'))
    amount: list[int] | None = Field(
        None, description=N_("the price a confirmed payment must have to count, e.g. 50000 or "
                          "[50000, 90000]"))
    channel: str | None = Field(
        None, description=N_("solapi / nhn: the [channels.NAME] whose sends these reports are "
                          "about (the only channel of that type when unset)"))

    @property
    def reports(self) -> bool:
        """Delivery reports of a text channel, not an event that sets fields of a row."""
        return self.source in REPORT_SOURCES

    @field_validator("key")
    @classmethod
    def _is_path(cls, value: str | None) -> str | None:
        if value is not None and not _KEY_PATH.match(value):
            raise SettingError(_("{value!r} is not a dotted path like 'data.customer.email'",
                                 value=value))
        return value

    @field_validator("amount", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        return [value] if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("set")
    @classmethod
    def _literal_or_path(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name, spec in value.items():
            if isinstance(spec, dict):
                path = spec.get("from")
                if set(spec) != {"from"} or not isinstance(path, str) or not _KEY_PATH.match(
                        path):
                    raise SettingError(_("{name}: {spec!r} is neither a value nor {{ from = "
                                         '"a.dotted.path" }} (where in the payload the value is)',
                                         name=name, spec=spec))
            elif not _is_literal(spec):
                raise SettingError(_("{name}: {spec!r} is not a value a cell can hold (text, a "
                                     "number, true/false or a list of those)", name=name,
                                     spec=spec))
        return value

    @model_validator(mode="after")
    def _can_be_trusted(self) -> Self:
        if self.reports:
            return self._reports_can_be_trusted()
        if self.key is None:
            raise SettingError(_("key is missing: where the row key is in the payload, e.g. "
                                 '"data.customer.email"'))
        if self.channel is not None:
            raise SettingError(_("channel names the text channel of delivery reports (source = "
                                 '"solapi" or "nhn"), not of {source} webhooks',
                                 source=self.source))
        if self.source in SIGNED_SOURCES and self.secret is None:
            raise SettingError(_("a {source} webhook is signed: set secret to the signing secret "
                                 "the provider shows", source=self.source))
        if self.source in CONFIRMED_SOURCES and self.api_key is None:
            raise SettingError(_("{source} does not sign its webhooks: set api_key so each "
                                 "payment is confirmed with the provider before it counts",
                                 source=self.source))
        if self.source == "standard" and self.secret is not None:
            _standard_secret(self.secret.get_secret_value())
        if self.source == "portone" and self.api_key is not None and ":" not in (
                self.api_key.get_secret_value()):
            raise SettingError(_("portone's api_key is the REST API key and secret joined by a "
                                 'colon, e.g. "${IMP_KEY}:${IMP_SECRET}"'))
        if self.amount is not None and self.source not in CONFIRMED_SOURCES:
            raise SettingError(_("amount is checked on payments confirmed with the provider "
                                 "(portone, toss), not on {source} webhooks", source=self.source))
        return self

    def _reports_can_be_trusted(self) -> Self:
        """Delivery reports name their messages and change no field: only ``secret``
        (and ``channel``) apply. Solapi does not sign its webhooks, so the secret is
        one the operator makes up and puts in the URL; NHN Cloud sends the value typed
        in its console in ``X-Toast-Webhook-Signature``."""
        unused = [name for name in ("key", "api_url", "api_key", "amount")
                  if getattr(self, name) is not None] + [
                  name for name in ("set", "append") if getattr(self, name)]
        if unused:
            raise SettingError(_("{names}: not used by {source} delivery reports (they name the "
                                 "messages they report on and set no field); remove it",
                                 names=', '.join(unused), source=self.source))
        if self.secret is None:
            raise SettingError(_(_REPORT_SECRET[self.source]))
        secret = self.secret.get_secret_value()
        if self.source == "solapi" and (len(secret) < MIN_URL_SECRET
                                        or not _URL_SAFE.match(secret)):
            raise SettingError(_("the secret goes in the webhook URL (?secret=…): make it at "
                                 "least {min_url_secret} letters, digits, '-' or '_', e.g. with: "
                                 'python -c "import secrets; print(secrets.token_urlsafe(32))"',
                                 min_url_secret=MIN_URL_SECRET))
        if self.source == "nhn" and not (secret.isascii() and secret.isprintable()):
            raise SettingError(_("the signature NHN Cloud sends is ASCII text on one line; copy "
                                 "it as you typed it in the console"))
        return self


_REPORT_SECRET = {
    "solapi": N_("Solapi does not sign its webhooks: set secret to a long random text and put "
              "it in the webhook URL you give Solapi (https://…/e/NAME?secret=…), e.g. "
              "secret = \"${SOLAPI_WEBHOOK_SECRET}\""),
    "nhn": N_("set secret to the signature typed in NHN Cloud's webhook settings (sent as "
           "X-Toast-Webhook-Signature), e.g. secret = \"${NHN_WEBHOOK_SIGNATURE}\""),
}


def report_channel(event: EventSettings, channels: Mapping[str, Any]) -> str:
    """The ``[channels.NAME]`` whose sends delivery reports ``event`` is about.

    ``channel`` when set, else the config's only channel of the source's type. Raises
    SettingError when that channel does not exist, is of another type, or cannot be
    told (none, or several, of that type).
    """
    if event.channel is not None:
        settings = channels.get(event.channel)
        if settings is None:
            raise SettingError(_("{channel!r} is not a channel; expected one of {value}",
                                 channel=event.channel, value=sorted(channels) or _('none')))
        if getattr(settings, "type", None) != event.source:
            raise SettingError(_("channel {channel!r} is not a {source} channel; {source} "
                                 'reports are about a channel of type = "{source}"',
                                 channel=event.channel, source=event.source))
        return event.channel
    of_type = sorted(name for name, s in channels.items()
                     if getattr(s, "type", None) == event.source)
    if len(of_type) != 1:
        found = (_("several ({names})", names=", ".join(of_type)) if of_type
                 else _("none"))
        raise SettingError(_('{source} reports are about a channel of type = "{source}", and the '
                             'config has {found}: set channel = "NAME"', source=event.source,
                             found=found))
    return of_type[0]


def _is_literal(value: Any) -> bool:
    if isinstance(value, list):
        return all(isinstance(v, str | int | float | bool) for v in value)
    return isinstance(value, str | int | float | bool)


def _standard_secret(secret: str) -> None:
    """A Standard Webhooks secret is ``whsec_`` and base64 (the part after may stand alone)."""
    body = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except binascii.Error:
        key = b""
    if not key:
        raise SettingError(_("a standard webhook secret looks like 'whsec_' followed by base64 "
                             "(copy it as the provider shows it)"))


class MailboxSettings(Settings):
    """``[mailbox]``: the IMAP folder where bounces and replies arrive."""

    host: str = Field(min_length=1, description=N_("the IMAP server's host name"))
    port: int = Field(993, ge=1, le=65535, description=N_("a TCP port, e.g. 993"))
    security: Literal["ssl", "starttls", "none"] = Field(
        "ssl", description=N_('"ssl" (port 993), "starttls" (port 143) or "none"'))
    username: str = Field(description=N_("the login name"))
    password: SecretStr = Field(description=N_('the password, e.g. "${IMAP_PASSWORD}"'))
    folder: str = Field("INBOX", description=N_("the folder to read, e.g. INBOX"))
    timeout: float = Field(30.0, gt=0, le=300, description=N_("seconds for the whole read"))

    @model_validator(mode="after")
    def _password_is_encrypted(self) -> Self:
        if self.security == "none" and not is_loopback(self.host):
            raise SettingError(_("the password would travel unencrypted to {host}; use security "
                                 '= "ssl" (port 993) or "starttls" (port 143)', host=self.host))
        return self
