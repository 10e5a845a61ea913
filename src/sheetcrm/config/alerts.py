"""``[alerts]``: where the operator hears that something went wrong, through apprise.

Each entry of ``urls`` is an apprise URL (``slack://…``, ``discord://…``,
``tgram://…``, ``mailto://…``, ``json://host/path``, a Slack or Discord webhook's
``https://`` address, …). Such a URL nearly always carries its service's token, so
every one is a secret (``SecretStr``): never shown in an error, masked in every log
line and in ``status``, written ``"${SLACK_WEBHOOK}"`` in the file. Here only the
shape is checked (a scheme, then ``://``): which services apprise knows is the
adapter's business (``sheetcrm.alerts``), and ``sheetcrm check`` asks it.
"""

import re
from typing import Annotated

from pydantic import AfterValidator, Field, SecretStr

from sheetcrm.config.base import SettingError, Settings, ShownAs
from sheetcrm.i18n import _

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,31}")


def url_scheme(url: str) -> str:
    """The scheme of an alert URL (``slack``), or "" when it has none a URL could have."""
    scheme, sep, rest = url.strip().partition("://")
    return scheme.lower() if sep and rest and _SCHEME.fullmatch(scheme) else ""


def _is_url(value: SecretStr) -> SecretStr:
    if not url_scheme(value.get_secret_value()):
        raise SettingError(_("not an apprise URL like \"slack://…\", \"tgram://…\" or "
                             "\"json://host/path\" (the value is not shown: it may hold a "
                             "token)"))
    return value


class AlertSettings(Settings):
    """``[alerts]``: apprise URLs told of each incident once, and once when it ends."""

    urls: list[Annotated[SecretStr, AfterValidator(_is_url)]] = Field(
        min_length=1, description='a list of apprise URLs, e.g. ["${SLACK_WEBHOOK}"]')
    timeout: float = Field(10.0, gt=0, le=120,
                           description="the seconds one alert may take to deliver, e.g. 10")

    def url_values(self) -> list[str]:
        return [url.get_secret_value().strip() for url in self.urls]


def _not_shown(value: str) -> str:
    return ""


#: ``alerts`` in the config: a table, or unset. Whatever else is written there (a URL
#: instead of the table, ``alerts = "${SLACK_WEBHOOK}"``) is not shown in the error.
AlertsTable = Annotated[AlertSettings | None, ShownAs(_not_shown),
                        Field(description='an [alerts] table: urls = ["${SLACK_WEBHOOK}"]')]
