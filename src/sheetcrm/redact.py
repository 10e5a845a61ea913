"""One redaction policy: what counts as a secret, and how it is masked in text.

Secrets leave the process in many places (log lines, ``/health``, the status file,
error messages, a server's reply quoted in an error); each of them masks the same
way, through this module:

- A secret value found inside text is replaced by ``MASK`` (``***``), the longest
  first, so a secret that contains another is masked whole.
- A URL keeps at most ``scheme://host[:port]`` where it is shown on its own
  (``url_origin``): user, password, path (where many hooks keep their token), query
  and fragment are left out. Inside free text, a ``user:password@`` is masked.
- A message about a bad value shows ``HIDDEN`` instead of a secret value.
- The secrets of a config are the values of its ``SecretStr`` settings and of every
  ``${ENV}`` its file references (a webhook URL from the environment may carry a
  token). Values shorter than ``MIN_SECRET_LENGTH`` are left out of that
  collection: masking ``587`` or ``on`` would garble unrelated text, and a secret
  that short protects nothing.
- A secret setting that is a URL (an ``[alerts]`` apprise URL) is also masked piece
  by piece (``url_secret_parts``): a message may quote its token without the rest
  (``tgram://BOT_TOKEN/…``, a hook's path). Plain words (``services``, ``hooks``),
  domain names and port numbers are not secrets and stay readable.

It imports nothing of sheetcrm's: the config and the channels call it, never the
other way round.
"""

from __future__ import annotations

import contextlib
import re
import typing
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr

MASK = "***"  # stands in for a secret inside other text
HIDDEN = "(hidden)"  # stands in for the whole value a message is about
MIN_SECRET_LENGTH = 4

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")  # ``${NAME}`` in the config
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s:]+:[^/@\s]+@")
# A part of a URL that reads as a word, not a token: "services", "api", "web-hooks".
_PLAIN_WORD = re.compile(r"[a-z]+(?:[-_][a-z]+)*")
_DOTTED = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")  # example.com, 127.0.0.1
# Key names whose values are secrets although their type does not say so (a raw
# table before validation, a path to a credentials file).
SECRET_KEY_WORDS = ("password", "secret", "token", "key_file", "credentials")


# -- masking text ----------------------------------------------------------------


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every one of ``secrets`` and every password in a URL masked.

    Each non-empty secret given is masked, whatever its length: the caller says what
    is secret (``config_secrets`` leaves out values too short to mask).
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return mask_url_credentials(text)


def mask_url_credentials(text: str) -> str:
    """``https://user:password@host/`` anywhere in ``text`` -> ``https://***@host/``."""
    return _URL_USERINFO.sub(f"{MASK}@", text)


def url_origin(url: str) -> str:
    """Only ``scheme://host[:port]`` of a URL, for messages and logs.

    User, password, path, query and fragment are left out. A URL without a host
    gives "".
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host:
        return ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, "", "", ""))


def url_secret_parts(url: str) -> list[str]:
    """The pieces of a secret URL that may be credentials on their own.

    The password, and every part of the host, path, query and fragment that could be
    a token: at least ``MIN_SECRET_LENGTH`` long and neither a plain lowercase word,
    a domain name or address (dotted), nor a port number.
    """
    if "://" not in url:
        return []
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    found = [userinfo.partition(":")[2]] if at else []
    tail = "/".join((parts.path, parts.query, parts.fragment))
    for part in [*hostport.split(":"), *re.split(r"[/&=;,]+", tail)]:
        if _DOTTED.fullmatch(part) or _PLAIN_WORD.fullmatch(part) or \
                part.isdigit() and len(part) <= 5:
            continue  # a domain name or an address, a word, a port
        found.append(part)
    return [p for p in found if len(p) >= MIN_SECRET_LENGTH]


def shown_value(value: Any, *, secret: bool) -> str:
    """A bad value as a message shows it: ``repr``, or ``HIDDEN`` when it is secret."""
    return HIDDEN if secret else repr(value)


# -- what is secret ----------------------------------------------------------------


def is_secret_key(key_path: str) -> bool:
    """Whether a key path (``channels.smtp.password``) names a secret by its words."""
    lowered = key_path.lower()
    return any(word in lowered for word in SECRET_KEY_WORDS)


def is_secret_field(model: type[BaseModel], key: str) -> bool:
    """Whether a settings model's field (by name or alias) holds a secret.

    A field typed ``SecretStr`` (alone, optional, or inside a dict or list) is
    secret; so is a key the model does not know: it may well be a misspelt one.
    """
    info = next((f for n, f in model.model_fields.items() if key in (n, f.alias)), None)
    return info is None or holds_secret(info.annotation)


def holds_secret(annotation: Any) -> bool:
    """Whether a type is ``SecretStr`` or holds one (optional, in a dict or a list)."""
    pending: list[Any] = [annotation]
    while pending:
        current = pending.pop()
        if current is SecretStr:
            return True
        pending.extend(typing.get_args(current))
    return False


def secret_values(*values: Any) -> Iterator[str]:
    """The ``SecretStr`` values inside settings models, dicts, lists and tuples."""
    for value in values:
        if isinstance(value, SecretStr):
            yield value.get_secret_value()
        elif isinstance(value, BaseModel):
            yield from secret_values(*(getattr(value, n) for n in type(value).model_fields))
        elif isinstance(value, Mapping):
            yield from secret_values(*value.values())
        elif isinstance(value, list | tuple):
            yield from secret_values(*value)


def referenced_env_values(text: str, env: Mapping[str, str]) -> list[str]:
    """The values of the ``${NAME}`` references in ``text`` that ``env`` has."""
    return [env[name] for name in ENV_REFERENCE.findall(text) if name in env]


class SecretSource(Protocol):
    """What ``config_secrets`` reads of a loaded config (``sheetcrm.config.Config``)."""

    @property
    def model(self) -> BaseModel: ...

    @property
    def channels(self) -> Mapping[str, BaseModel]: ...

    @property
    def path(self) -> Path: ...


def config_secrets(config: SecretSource, env: Mapping[str, str]) -> list[str]:
    """Every secret a config holds: its ``SecretStr`` settings (the pieces of those that
    are URLs too, ``url_secret_parts``) and ``${ENV}`` values.

    The file is read again for its ``${NAME}`` references (the validated config has
    only their values); an unreadable file adds none. Values shorter than
    ``MIN_SECRET_LENGTH`` are left out.
    """
    found = list(secret_values(config.model, config.channels))
    found.extend(part for value in list(found) for part in url_secret_parts(value))
    with contextlib.suppress(OSError, UnicodeDecodeError):
        found.extend(referenced_env_values(config.path.read_text(encoding="utf-8"), env))
    return sorted({s for s in found if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)


class Redactor:
    """Masks a known set of secrets in text about to leave the process."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    @classmethod
    def for_config(cls, config: SecretSource, env: Mapping[str, str]) -> Redactor:
        return cls(config_secrets(config, env))

    def __call__(self, text: str) -> str:
        return mask(text, self.secrets)

    def deep(self, value: Any) -> Any:
        """Mask every string inside dicts, lists and tuples (tuples become lists)."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.deep(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.deep(v) for v in value]
        return value
