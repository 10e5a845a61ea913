"""``[channels.NAME]``: one settings model per channel type, picked by ``type``.

Each model declares its keys as data: type, default, what is expected (the
``description`` an error message quotes) and which values are secret (``SecretStr``,
never shown). Every type says which field, if any, holds a row's recipient
(``recipient_field``): the planner holds a send whose recipient cell is blank, and
the config check makes sure that field exists.

The checks a value needs at load live here with the models: an email address (every
header value may come from a cell, so the header primitives are here too and the
email channels build on them), a webhook secret's form, a header name.
"""

import base64
import binascii
import email.policy
import re
from email import errors
from email.headerregistry import Address
from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    Discriminator,
    Field,
    SecretStr,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sheetcrm.config.base import (
    ON_FIRST_USE,
    SettingError,
    Settings,
    ShownAs,
    TagOf,
    is_loopback,
    union_members,
)
from sheetcrm.config.explain import validation_error
from sheetcrm.i18n import N_, _
from sheetcrm.redact import url_origin
from sheetcrm.texting.phone import normalize_sender

MAX_BACKOFF = 30.0  # seconds; a webhook's exponential backoff never waits longer
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110)
_RESERVED = {"content-type", "content-length", "host"} | {
    f"webhook-{h}" for h in ("id", "timestamp", "signature")
}
# Control characters (CR, LF, NUL, ...) and everything str.splitlines() treats as a
# line break: any of them in a header value could end the header early.
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


# --------------------------------------------------------------------------- values


def clean_header_value(value: str) -> str:
    """Make an untrusted string safe to put in a header.

    Line breaks and control characters become one space; ``=?`` is removed until none
    is left, so no encoded word can start (and none re-forms after a removal).
    """
    cleaned = _UNSAFE_CHARS.sub(" ", value)
    while "=?" in cleaned:
        cleaned = cleaned.replace("=?", "")
    return cleaned.strip()


def parse_address(value: str) -> Address:
    """Parse exactly one mailbox (``Name <a@b.example>`` or ``a@b.example``).

    The domain comes back in its ASCII form (IDNA: ``예시.한국`` becomes
    ``xn--vv4b11d.xn--3e0b707e``); a non-ASCII local part is kept as written. Raises
    ValueError for anything the stdlib parser flags: a list, a group, a missing
    domain, trailing junk, a domain IDNA cannot encode. The 3.11 parser can also
    raise IndexError on input like ``x@``, so every parse failure is turned into
    ValueError.
    """
    try:
        header = email.policy.default.header_factory("to", clean_header_value(value))
        addresses = header.addresses
    except Exception as exc:  # HeaderParseError, IndexError, ...
        raise ValueError(_("not an email address")) from exc
    defects = [d for d in header.defects if not isinstance(d, errors.NonASCIILocalPartDefect)]
    if len(addresses) != 1 or defects:
        raise ValueError(_("not exactly one email address"))
    address = addresses[0]
    if not address.username or not address.domain:
        raise ValueError(_("not an email address"))
    if address.domain.isascii():
        return address
    try:
        domain = address.domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(_("the domain {domain!r} is not a valid domain name",
                           domain=address.domain)) from None
    return Address(address.display_name, address.username, domain)


def decode_secret(secret: str) -> bytes:
    """The HMAC key from a ``whsec_<base64>`` secret; ValueError if it is not one."""
    if not secret.startswith("whsec_"):
        raise ValueError(_("must start with 'whsec_'"))
    encoded = secret[len("whsec_") :]
    try:  # some providers drop the base64 padding
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(_("must be 'whsec_' followed by base64")) from None
    if not key:
        raise ValueError(_("must not be empty after 'whsec_'"))
    return key


# --------------------------------------------------------------------------- models


class EmailSettings(Settings):
    """Settings every email channel shares (outbox and smtp)."""

    from_: str = Field(alias="from",
                       description=N_('the sender, e.g. "My Class <hello@example.com>"'))
    to: str | None = Field(
        None, min_length=1, description=N_("the field holding the address; the row key if unset")
    )
    reply_to: str | None = Field(None, description=N_("an email address for replies"))
    unsubscribe_mailto: str | None = Field(
        None,
        description=N_('"mailto:" followed by an address, e.g. mailto:unsubscribe@example.com')
    )
    # Removed: its "{key}" URL let anyone unsubscribe anyone. Kept only to say so.
    unsubscribe_url: str | None = Field(None, description=N_("removed; see [server]"))

    @property
    def recipient_field(self) -> str | None:
        """The field holding the address; None sends to the row key."""
        return self.to

    @field_validator("from_", "reply_to")
    @classmethod
    def _is_address(cls, value: str | None) -> str | None:
        if value is not None:
            if clean_header_value(value) != value.strip():
                raise ValueError(_("must not contain line breaks, control characters or '=?'"))
            parse_address(value)
        return value

    @field_validator("unsubscribe_mailto")
    @classmethod
    def _is_mailto(cls, value: str | None) -> str | None:
        if value is not None:
            if not value.startswith("mailto:"):
                raise ValueError(_("must start with 'mailto:'"))
            parse_address(value[len("mailto:") :].split("?", 1)[0])
            if clean_header_value(value) != value:
                raise ValueError(_("must not contain spaces, line breaks or '=?'"))
        return value

    @field_validator("unsubscribe_url")
    @classmethod
    def _removed(cls, value: str | None) -> str | None:
        if value is not None:
            raise SettingError(_(
                "unsubscribe_url was removed: a link with the row key in it let anyone "
                "unsubscribe anyone. Delete it and set [server] public_url and secret: "
                "every ad then carries its own signed one-click opt-out link"))
        return value

    @property
    def sender(self) -> Address:
        """The parsed From address (validated at load, so this cannot fail)."""
        return parse_address(self.from_)


class OutboxSettings(EmailSettings):
    type: Literal["outbox"] = "outbox"
    path: str = Field("outbox", description=N_("a folder, relative to the config file's folder"))


class SmtpSettings(EmailSettings):
    # Field order matters: ``security`` is checked against the fields before it.
    type: Literal["smtp"]
    host: str = Field(min_length=1, description=N_("the SMTP server's host name"))
    port: int = Field(587, ge=1, le=65535, description=N_("a TCP port, e.g. 587 or 465"))
    username: str | None = Field(None, description=N_("the login name, if the server needs one"))
    password: SecretStr | None = Field(
        None, description=N_('the password, e.g. "${SMTP_PASSWORD}"'))
    allow_insecure_login: bool = Field(
        False, description=N_('true to send the password unencrypted (security = "none")')
    )
    security: Literal["starttls", "ssl", "none"] = Field(
        "starttls", description=N_('"starttls" (port 587), "ssl" (port 465) or "none"')
    )
    timeout: float = Field(30.0, gt=0, description=N_("seconds a whole send may take"))

    @field_validator("security")
    @classmethod
    def _password_is_encrypted(cls, value: str, info: ValidationInfo) -> str:
        data = info.data
        host = str(data.get("host") or "")
        if (value == "none" and data.get("password") is not None and host
                and not is_loopback(host) and not data.get("allow_insecure_login")):
            raise SettingError(_("the password would travel unencrypted to {host}; use "
                                 "\"starttls\" or \"ssl\", or set allow_insecure_login = true "
                                 "to accept that", host=host))
        return value

    @model_validator(mode="after")
    def _login_is_complete(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError(_("username and password must be set together"))
        return self


class WebhookSettings(Settings):
    type: Literal["webhook"]
    url: Annotated[str, ShownAs(url_origin)] = Field(
        description=N_("an http:// or https:// URL"), repr=False
    )
    secret: SecretStr | None = Field(
        None,
        description=N_('a Standard Webhooks secret "whsec_<base64>", e.g. "${WEBHOOK_SECRET}"')
    )
    timeout: float = Field(
        20.0, gt=0, le=300, description=N_("seconds one attempt may take, connect to last byte")
    )
    retries: int = Field(3, ge=0, le=10, description=N_("extra attempts after a transient failure"))
    backoff: float = Field(
        1.0, ge=0, le=MAX_BACKOFF, description=N_("seconds before the first retry; doubles after")
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description=N_("extra static headers, e.g. an Authorization token")
    )

    #: A webhook is addressed by the row key (the payload's ``recipient``).
    recipient_field: ClassVar[None] = None

    @field_validator("url")
    @classmethod
    def _is_http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(_("must be an http:// or https:// URL with a host"))
        if any(c.isspace() for c in value):
            raise ValueError(_("must not contain spaces or line breaks"))
        return value

    @field_validator("secret")
    @classmethod
    def _is_whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            decode_secret(value.get_secret_value())
        return value

    @field_validator("headers")
    @classmethod
    def _are_headers(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, header in value.items():
            if not _TOKEN.fullmatch(name):
                raise ValueError(_("{name!r} is not a header name", name=name))
            if name.lower() in _RESERVED:
                raise ValueError(_("{name!r} is set by sheetcrm and cannot be overridden",
                                   name=name))
            text = header.get_secret_value()
            if not text.isascii() or any(c in text for c in "\r\n\0"):
                raise ValueError(_("the value of {name!r} must be ASCII text on one line",
                                   name=name))
        return value


class TextSettings(Settings):
    """What the Korean text-message providers share (Solapi, NHN Cloud): the number
    sent from, the field holding each customer's phone, the AlimTalk templates, how
    the API is reached, and for ad SMS/LMS the §50 sender name and free opt-out."""

    to: str = Field(min_length=1, description=N_("the field holding the customer's mobile number"))
    endpoint: str = Field(
        description=N_("the provider's API address, or a proxy or local emulator"))
    sender: str = Field(description=N_('the sender number registered with the provider, e.g. '
                                    '"02-123-4567"'))
    templates: dict[str, str] = Field(
        default_factory=dict,
        description=N_('template name = the approved AlimTalk template id, e.g. '
                    '{ payment_reminder = "KA01TP..." }'))
    fallback: bool = Field(True, description=N_("true to send an SMS/LMS when an AlimTalk "
                                             "cannot be delivered"))
    sender_name: str | None = Field(None, min_length=1, description=N_("the name an ad SMS "
                                    "starts with after (광고); [sending] sender_name if unset"))
    opt_out_number: str | None = Field(None, description=N_('the free 080 opt-out number an ad '
                                       'SMS ends with, e.g. "080-123-4567"'))
    timeout: float = Field(20.0, gt=0, le=300, description=N_("seconds a whole send may take, "
                           "retries included"))
    retries: int = Field(2, ge=0, le=10, description=N_("extra attempts after a 429 or an "
                         "unavailable server"))
    backoff: float = Field(1.0, ge=0, le=MAX_BACKOFF, description=N_("seconds before the first "
                           "retry; doubles after"))

    #: "alimtalk" when the channel sends AlimTalk (a template id per template), else "sms".
    @property
    def mode(self) -> str:
        return "alimtalk"

    @property
    def recipient_field(self) -> str:
        return self.to

    @field_validator("sender")
    @classmethod
    def _is_sender(cls, value: str) -> str:
        return normalize_sender(value)

    @field_validator("opt_out_number")
    @classmethod
    def _is_080(cls, value: str | None) -> str | None:
        if value is not None:
            digits = re.sub(r"[\s-]", "", value)
            if not re.fullmatch(r"080\d{7,8}", digits):
                raise ValueError(_("must be a free 080 number, like 080-123-4567"))
        return value

    @field_validator("endpoint")
    @classmethod
    def _is_endpoint(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in (
                "", "/") or parts.query or any(c.isspace() for c in value):
            raise ValueError(_("must be an http:// or https:// address with no path"))
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise SettingError(_("{origin} is not https: the API key would travel in clear; "
                                 "use https (http is only for 127.0.0.1)",
                                 origin=url_origin(value)))
        return value.rstrip("/")


class SolapiSettings(TextSettings):
    """Solapi (솔라피): AlimTalk with ``pf_id`` and ``templates``, else plain SMS/LMS."""

    type: Literal["solapi"]
    api_key: SecretStr = Field(description=N_('the API key, e.g. "${SOLAPI_API_KEY}"'))
    api_secret: SecretStr = Field(description=N_('the API secret, e.g. "${SOLAPI_API_SECRET}"'))
    pf_id: str | None = Field(None, min_length=1, description=N_("the Kakao channel's pfId: set "
                              "it to send AlimTalk; leave it out for SMS/LMS"))
    endpoint: str = Field("https://api.solapi.com", description=N_("https://api.solapi.com, or a "
                          "proxy or local emulator"))

    @property
    def mode(self) -> str:
        return "alimtalk" if self.pf_id else "sms"


class NhnSettings(TextSettings):
    """NHN Cloud Notification, KakaoTalk Bizmessage AlimTalk (API v2.3)."""

    type: Literal["nhn"]
    app_key: SecretStr = Field(description=N_('the AlimTalk app key, e.g. "${NHN_APP_KEY}"'))
    secret_key: SecretStr = Field(description=N_('the secret key, e.g. "${NHN_SECRET_KEY}"'))
    sender_key: str = Field(min_length=1, description=N_("the Kakao channel's sender key (40 "
                            "characters)"))
    endpoint: str = Field("https://kakaotalk-bizmessage.api.nhncloudservice.com",
                          description=N_("NHN Cloud's AlimTalk API address, or a proxy or local "
                                      "emulator"))


def text_step_problem(settings: TextSettings, template: str, kind: str,
                      sender_name: str | None) -> str | None:
    """What is wrong with a flow step on a text channel, or None (checked at load).

    AlimTalk is informational only: an ad cannot go by AlimTalk. An AlimTalk step
    needs its template's approved id. An ad SMS needs the sender's name and a free
    080 opt-out number (정보통신망법 §50).
    """
    if settings.mode == "alimtalk":
        if kind == "ad":
            return _("an ad cannot be sent by AlimTalk (Kakao allows only informational "
                     "messages); send ads by SMS (a solapi channel without pf_id) or email, "
                     'or set kind = "transactional" if this is not an ad')
        if template not in settings.templates:
            return _('template {template!r} has no approved AlimTalk template id; add '
                     '{template} = "<template id>" to the channel\'s templates',
                     template=template)
        return None
    if kind == "ad" and not (settings.opt_out_number and (settings.sender_name or sender_name)):
        return _("an ad by SMS/LMS must name the sender and end with a free 080 opt-out number "
                 "(정보통신망법 §50): set opt_out_number (and sender_name, or [sending] "
                 "sender_name) on the channel")
    return None


#: ``[channels.NAME]``: the settings of the type ``type`` names. Nothing leaves the
#: machine unless the operator says so: an unset type is the outbox.
ChannelSettings = Annotated[
    Annotated[OutboxSettings, Tag("outbox")]
    | Annotated[SmtpSettings, Tag("smtp")]
    | Annotated[WebhookSettings, Tag("webhook")]
    | Annotated[SolapiSettings, Tag("solapi")]
    | Annotated[NhnSettings, Tag("nhn")],
    Discriminator(TagOf("type", default="outbox", noun=N_("a channel type"))),
]

#: ``type`` -> its settings model.
CHANNEL_SETTINGS = union_members(ChannelSettings)
_CHANNEL_SETTINGS: TypeAdapter[ChannelSettings] = TypeAdapter(ChannelSettings, config=ON_FIRST_USE)


def parse_channel_settings(name: str, raw: dict[str, Any]) -> ChannelSettings:
    """Validate one ``[channels.<name>]`` table into its type's settings model.

    Raises ConfigError naming the key path (``channels.<name>.<key>``), the bad value
    (never a secret's) and the expected form. ``type`` defaults to "outbox".
    """
    try:
        return _CHANNEL_SETTINGS.validate_python(raw)
    except ValidationError as exc:
        raise validation_error(exc, ChannelSettings, ("channels", name)) from None
