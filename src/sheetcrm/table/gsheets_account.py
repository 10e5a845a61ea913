"""The service account a Google Sheets table signs in with: its key file, read and
checked once, and the credentials made from it.

Apart from the table (``gsheets.py``) because it is settings, not requests: every
problem is a ConfigError naming ``table.credentials``, and the key itself never
appears in a message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from google.oauth2 import service_account

from sheetcrm.errors import ConfigError
from sheetcrm.fsutil import os_reason
from sheetcrm.i18n import _
from sheetcrm.table.base import TableContext

SCOPES = ("https://www.googleapis.com/auth/spreadsheets",)
CREDENTIALS_ENV = "GOOGLE_APPLICATION_CREDENTIALS"
SERVICE_ACCOUNT_FIELDS = ("type", "project_id", "private_key_id", "private_key",
                          "client_email", "token_uri")


def credentials_path(value: str | None, context: TableContext) -> Path:
    if value:
        return context.resolve(value)
    env = context.env.get(CREDENTIALS_ENV)
    if env:
        return Path(env).expanduser()
    raise ConfigError(_("no service-account key file: set table.credentials to the JSON "
                        "key's path, or the {variable} environment variable",
                        variable=CREDENTIALS_ENV), path="table.credentials")


def load_service_account(path: Path) -> dict[str, Any]:
    """The parsed service-account key file; ConfigError (never showing the key) if not."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(_("{path!r} not found; expected the service account's JSON key "
                            "file (Google Cloud console → IAM → Service accounts → Keys)",
                            path=str(path)), path="table.credentials") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = os_reason(exc) if isinstance(exc, OSError) else _("not JSON")
        raise ConfigError(_("{path!r} cannot be read ({reason}); expected a service-account "
                            "JSON key file", path=str(path), reason=reason),
                          path="table.credentials") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        kind = info.get("type") if isinstance(info, dict) else type(info).__name__
        raise ConfigError(_("{path!r} holds a {kind!r} credential; expected a service-account "
                            "key (\"type\": \"service_account\")", path=str(path), kind=kind),
                          path="table.credentials")
    missing = [name for name in SERVICE_ACCOUNT_FIELDS if not info.get(name)]
    if missing:
        raise ConfigError(_("{path!r} lacks {names}; expected a service-account key file as "
                            "Google Cloud downloads it", path=str(path),
                            names=", ".join(missing)), path="table.credentials")
    return info


def credentials(info: Mapping[str, Any], path: str) -> service_account.Credentials:
    """Service-account credentials for the Sheets scope; the key is never shown."""
    missing = [name for name in ("client_email", "private_key", "token_uri") if not info.get(name)]
    if missing:
        raise ConfigError(_("{path} lacks {names}; expected a service-account JSON key file",
                            path=path or _("the service-account info"),
                            names=", ".join(missing)), path="table.credentials")
    try:
        return service_account.Credentials.from_service_account_info(dict(info),
                                                                     scopes=list(SCOPES))
    except (ValueError, TypeError, KeyError):
        raise ConfigError(_("{path}: private_key is not a valid PEM private key; expected a "
                            "service-account JSON key file as Google Cloud downloads it",
                            path=path or _("the service-account info")),
                          path="table.credentials") from None
