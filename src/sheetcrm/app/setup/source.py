"""Where the sheet is, and the sheet opened as ``sync`` will open it.

``locate`` turns what the operator typed (a CSV path; a spreadsheet's URL or key; an
Airtable ``appXXXXXXXXXXXXXX/table`` or table URL) into the ``[table]`` section
``init`` writes, and ``open_source`` opens that table through the backend ``sync``
uses, so a sheet ``init`` can read is one ``sync`` can read. An Airtable table's
fields are first listed through the meta API (``table.airtable_schema``): records
leave their empty fields out, so only the schema names every column, in order.
Secrets stay references: the Airtable token is ``${AIRTABLE_TOKEN}`` in the file and
read from the environment here; a Google key file comes from ``--credentials`` (a
path, not the key) or ``${GOOGLE_APPLICATION_CREDENTIALS}``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sheetcrm.config.base import SettingError
from sheetcrm.config.table import parse_spreadsheet, parse_table_settings
from sheetcrm.errors import ConfigError
from sheetcrm.i18n import _
from sheetcrm.table import Table, TableContext, backend_class

if TYPE_CHECKING:  # pyairtable is slow to import: only for an Airtable table
    from sheetcrm.table.airtable_schema import AirtableSchema

TOKEN_ENV = "AIRTABLE_TOKEN"  # as sheetcrm.table.airtable reads it

_PLACEHOLDER_KEY = "-"  # [table] needs a key to be read; the real one is chosen later
#: ``appXXXXXXXXXXXXXX/table``, or an Airtable URL with the base and the table in it.
_AIRTABLE = re.compile(r"(?:https?://)?(?:airtable\.com/)?(app[A-Za-z0-9]{14})/([^/?#]+)")
#: Airtable field type -> the field type its cells are, when they all read as it (a
#: currency of whole won reads as whole numbers too, and is still an amount).
AIRTABLE_TYPES = {"checkbox": "bool", "currency": "number", "percent": "number",
                  "date": "date", "dateTime": "datetime", "email": "email",
                  "phoneNumber": "phone"}


@dataclass(frozen=True)
class Place:
    """The sheet as ``[table]`` will name it, and where paths in it start from."""

    table: dict[str, Any]  # [table] without its key
    base_dir: Path  # the config file's folder


@dataclass
class Source:
    """The sheet opened: the table, and for Airtable the base's schema."""

    place: Place
    table: Table
    schema: AirtableSchema | None = None
    hints: dict[str, str] = field(default_factory=dict)  # column -> the type it is made as


def locate(target: str, config_dir: Path, *, worksheet: str | None = None,
           credentials: str | None = None, endpoint: str | None = None) -> Place:
    """The ``[table]`` of ``target`` (see the module docstring)."""
    text = target.strip()
    airtable = _AIRTABLE.match(text)
    if airtable is not None:
        table: dict[str, Any] = {"backend": "airtable", "base": airtable[1],
                                 "table": airtable[2], "token": f"${{{TOKEN_ENV}}}"}
        return Place({**table, **({"endpoint": endpoint} if endpoint else {})}, config_dir)
    path = Path(text).expanduser()
    if text.lower().endswith((".csv", ".txt")) or path.is_file():
        if not path.is_file():
            raise ConfigError(_("{path!r} not found; expected the customer CSV file, e.g. "
                                "sheetcrm init customers.csv", path=text))
        return Place({"backend": "csv", "path": _relative(path, config_dir)}, config_dir)
    try:
        parse_spreadsheet(text)
    except SettingError as exc:
        raise ConfigError(_("{target!r} is neither a CSV file, nor a Google spreadsheet, nor "
                            "an Airtable table (appXXXXXXXXXXXXXX/table): {why}",
                            target=text, why=str(exc))) from None
    table = {"backend": "gsheets", "spreadsheet": text}
    if worksheet:
        table["worksheet"] = worksheet
    if credentials:
        table["credentials"] = _relative(Path(credentials).expanduser(), config_dir)
    if endpoint:
        table["endpoint"] = endpoint
    return Place(table, config_dir)


def _relative(path: Path, base: Path) -> str:
    """``path`` from the config's folder (which may not exist yet), else absolute."""
    try:
        return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()
    except ValueError:  # another drive (Windows)
        return str(path.resolve())


def open_source(place: Place, env: Mapping[str, str]) -> Source:
    """The table at ``place``, opened by its backend as ``sync`` would open it."""
    table = dict(place.table)
    if table["backend"] == "csv":  # the config's folder may not exist yet: no "../"
        table["path"] = os.path.normpath(place.base_dir / table["path"])
    table.pop("token", None)  # a reference: the backend reads the environment
    settings = parse_table_settings({**table, "key": _PLACEHOLDER_KEY})
    opener = backend_class(settings.backend)
    context = TableContext(base_dir=place.base_dir, env=env)
    if settings.backend != "airtable":
        return Source(place, opener.from_settings(settings, context))
    from sheetcrm.table.airtable_schema import AirtableSchema

    opener.from_settings(settings, context)  # the token checked, as sync checks it
    schema = AirtableSchema(token=env[TOKEN_ENV].strip(), base=table["base"],
                            endpoint=table.get("endpoint"))
    found = schema.table(table["table"])
    if found is None:
        names = ", ".join(repr(t.get("name")) for t in schema.tables())
        raise ConfigError(_("Airtable base {base} has no table {table!r}; its tables: "
                            "{names}", base=table["base"], table=table["table"],
                            names=names or _("none")))
    fields = found.get("fields", [])
    columns = tuple(str(f["name"]) for f in fields)
    hints = {str(f["name"]): AIRTABLE_TYPES[f.get("type")] for f in fields
             if f.get("type") in AIRTABLE_TYPES}
    context = TableContext(base_dir=place.base_dir, env=env, columns=columns)
    return Source(place, opener.from_settings(settings, context), schema, hints)
