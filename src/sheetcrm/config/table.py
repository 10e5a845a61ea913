"""``[table]``: one settings model per backend, picked by ``backend``.

Each backend takes only its own keys, so ``backend = "csv"`` with a ``spreadsheet``
line is an error naming that key, and everything a backend can check without
opening the table (a spreadsheet URL, a base id, an endpoint, a CSV delimiter) is
checked when the file is loaded. What needs the outside world (the key file, a token
from the environment) is checked when the backend opens the table.
"""

import codecs
import re
from typing import Annotated, Any, ClassVar, Literal
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
)

from sheetcrm.config.base import (
    ON_FIRST_USE,
    SettingError,
    Settings,
    TagOf,
    is_loopback,
    union_members,
)
from sheetcrm.config.explain import validation_error
from sheetcrm.i18n import N_, _

_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{20,}")
_URL_KEY = re.compile(r"/spreadsheets/d/([A-Za-z0-9_-]+)")
_URL_GID = re.compile(r"[#&?]gid=(\d+)")
#: Hand-written: pyairtable's is_base_id checks only the prefix and the length, and
#: the id is also searched for inside a pasted URL.
_BASE_ID = re.compile(r"app[A-Za-z0-9]{14}")


class _TableSettings(Settings):
    """What every backend takes: the field whose column identifies a row."""

    key: str = Field(description="the field that identifies a row, e.g. 'email'")

    @field_validator("*", mode="before")
    @classmethod
    def _given(cls, value: Any, info: ValidationInfo) -> Any:
        """A required key left blank is as good as missing."""
        assert info.field_name is not None
        field = cls.model_fields[info.field_name]
        if field.is_required() and (value is None or isinstance(value, str)
                                    and not value.strip()):
            raise SettingError(cls.needs.format(expected=field.description))
        return value


class CsvTableSettings(_TableSettings):
    backend: Literal["csv"] = "csv"
    path: str = Field(description="a path, e.g. 'sample_sheets/customers.csv'")
    encoding: str | None = None  # None = detect (UTF-8, UTF-8 BOM, CP949)
    delimiter: str = ","

    needs: ClassVar[str] = N_("the csv backend needs {expected}")

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                codecs.lookup(value)
            except LookupError:
                raise SettingError(_("unknown encoding {value}; expected e.g. 'utf-8' or "
                                     "'cp949', or leave it out to detect it",
                                     value=repr(value))) from None
        return value

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1 or value in '"\r\n':
            raise ValueError(_("a CSV delimiter is one character other than a quote or a "
                               "newline, like ',' or ';'"))
        return value


class GoogleSheetsSettings(_TableSettings):
    backend: Literal["gsheets"]
    spreadsheet: str = Field(description="the spreadsheet's key or URL, e.g. "
                             "'https://docs.google.com/spreadsheets/d/KEY/edit'")
    worksheet: str | None = None  # title; the first sheet when unset
    credentials: str | None = None  # service-account JSON path
    header_row: int = Field(1, ge=1)
    endpoint: str | None = None  # another API host (emulators, proxies)

    needs: ClassVar[str] = N_("the gsheets backend needs {expected}")

    @field_validator("spreadsheet")
    @classmethod
    def _spreadsheet(cls, value: str) -> str:
        parse_spreadsheet(value)
        return value

    @field_validator("worksheet")
    @classmethod
    def _worksheet(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise SettingError(_("'' is blank; expected a worksheet title such as '고객 목록', "
                                 "or leave it out for the first worksheet"))
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return api_endpoint(value, example="https://sheets-proxy.example.com")


class AirtableSettings(_TableSettings):
    backend: Literal["airtable"]
    base: str = Field(description="the base id, e.g. 'appXXXXXXXXXXXXXX'")
    table: str = Field(description="the table's name or id, e.g. '고객' or 'tblXXXXXXXXXXXXXX'")
    token: SecretStr | None = None  # personal access token, from ${ENV}
    view: str | None = None
    monthly_calls: int | None = Field(None, gt=0)  # the workspace's API calls a month
    endpoint: str | None = None  # another API host (emulators, proxies)

    needs: ClassVar[str] = N_("the airtable backend needs {expected}")

    @field_validator("base")
    @classmethod
    def _base_id(cls, value: str) -> str:
        """``appXXXXXXXXXXXXXX``, also found inside a pasted Airtable URL."""
        value = value.strip()
        if _BASE_ID.fullmatch(value):
            return value
        if value.startswith(("https://airtable.com/", "airtable.com/")):
            match = _BASE_ID.search(value)
            if match:
                return match.group()
        raise SettingError(_(
            "{value} is not an Airtable base id; expected 'app' and 14 letters or digits, "
            "as in the base's URL https://airtable.com/appXXXXXXXXXXXXXX/...",
            value=repr(value)))

    @field_validator("table")
    @classmethod
    def _table(cls, value: str) -> str:
        return value.strip()

    @field_validator("view")
    @classmethod
    def _view(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise SettingError(_("is blank; remove it or name a view"))
        return value.strip() if value is not None else None

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return api_endpoint(value, example="https://api.airtable.com")


#: ``[table]``: the settings of the backend ``backend`` names (csv when unset).
TableSettings = Annotated[
    Annotated[CsvTableSettings, Tag("csv")]
    | Annotated[GoogleSheetsSettings, Tag("gsheets")]
    | Annotated[AirtableSettings, Tag("airtable")],
    Discriminator(TagOf("backend", default="csv", noun=N_("a table backend"))),
]

#: ``backend`` -> its settings model.
TABLE_SETTINGS = union_members(TableSettings)
_TABLE_SETTINGS: TypeAdapter[TableSettings] = TypeAdapter(TableSettings, config=ON_FIRST_USE)


def parse_table_settings(raw: dict[str, Any]) -> TableSettings:
    """Validate a ``[table]`` section on its own; ConfigError naming ``table.<key>``."""
    try:
        return _TABLE_SETTINGS.validate_python(raw)
    except ValidationError as exc:
        raise validation_error(exc, TableSettings, ("table",)) from None


def parse_spreadsheet(value: str) -> tuple[str, int | None]:
    """``(key, gid)`` from a spreadsheet key or a full URL; SettingError otherwise."""
    text = value.strip()
    if "/" in text:
        match = _URL_KEY.search(text)
        if match is None or not text.startswith(("https://", "http://", "docs.google.com")):
            raise SettingError(_("{value} is not a Google Sheets URL; expected "
                                 "'https://docs.google.com/spreadsheets/d/KEY/edit' or the KEY",
                                 value=repr(text)))
        gid = _URL_GID.search(text)
        return match.group(1), int(gid.group(1)) if gid else None
    if not _KEY_PATTERN.fullmatch(text):
        raise SettingError(_("{value} is not a spreadsheet key; expected the long id from "
                             "the sheet's URL (https://docs.google.com/spreadsheets/d/KEY/edit) "
                             "or the full URL, not the spreadsheet's title", value=repr(text)))
    return text, None


def api_endpoint(value: str | None, *, example: str) -> str | None:
    """A validated API base URL without its trailing slash, or None when unset.

    https, or plain http only to this machine (an emulator or a local proxy):
    credentials travel with every request.
    """
    if value is None:
        return None
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment:
        raise SettingError(_("{value} is not a base URL; expected e.g. {example} or "
                             "'http://127.0.0.1:8080'", value=repr(value),
                             example=repr(example)))
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise SettingError(_("{value} would send credentials in clear text; use https "
                             "(plain http is accepted only for 127.0.0.1 or localhost)",
                             value=repr(value)))
    return url
