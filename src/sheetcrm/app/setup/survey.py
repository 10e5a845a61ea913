"""Where the sheet is, what it holds, and the set-up ``init`` proposes for it.

``locate`` turns what the operator typed (a CSV path, a spreadsheet URL or key) into
the ``[table]`` section it will write, and ``open_source`` opens that table through
the backend ``sync`` uses, so a sheet ``init`` can read is one ``sync`` can read.
``survey`` reads it once and proposes: the fields with their types and roles
(``infer.py``), the key, the columns sheetcrm will write (named so they never take
one of the operator's columns), and the starter rules (``starter.py``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any

from sheetcrm.app.setup.infer import Column, by_role, default_key, infer_columns, repeated
from sheetcrm.app.setup.starter import RuleTabs, starter_tabs
from sheetcrm.config.base import SettingError
from sheetcrm.config.table import parse_spreadsheet, parse_table_settings
from sheetcrm.errors import ConfigError
from sheetcrm.i18n import _
from sheetcrm.model import Snapshot
from sheetcrm.table import Table, TableContext, backend_class

#: The tabs the rules live in (``[rules]`` in config.toml).
RULE_TABS = {"tags": "태그", "flows": "흐름", "templates": "템플릿"}
#: ``[writeback]`` role -> the column sheetcrm writes, as the sample names them.
WRITEBACK = {"tags": "상태 태그", "flow": "자동화 흐름", "last_sent": "최근 발송",
             "error": "오류"}
_PLACEHOLDER_KEY = "-"  # [table] needs a key to be read; the real one is chosen later


@dataclass(frozen=True)
class Place:
    """The sheet as ``[table]`` will name it, and where paths in it start from."""

    table: dict[str, Any]  # [table] without its key
    base_dir: Path  # the config file's folder
    env_credentials: bool = False  # gsheets: the key file comes from the environment


def locate(target: str, config_dir: Path, *, worksheet: str | None = None,
           credentials: str | None = None, endpoint: str | None = None,
           env: Mapping[str, str] | None = None) -> Place:
    """The ``[table]`` of ``target``: a CSV file, or a Google spreadsheet's URL or key."""
    text = target.strip()
    if "airtable.com" in text or re.match(r"app[A-Za-z0-9]{14}(?:/|$)", text):
        raise ConfigError(_(
            "sheetcrm init cannot read an Airtable table yet: Airtable's records API does not "
            "name empty fields, and the rule tables cannot be created without the meta API. "
            "Export the table as CSV (Grid view → Download CSV), run sheetcrm init on that "
            "file, then set [table] backend = \"airtable\" with base and table as the README "
            "shows"))
    path = Path(text).expanduser()
    if text.lower().endswith((".csv", ".txt")) or path.is_file():
        if not path.is_file():
            raise ConfigError(_("{path!r} not found; expected the customer CSV file, e.g. "
                                "sheetcrm init customers.csv", path=text))
        resolved = path.resolve()
        try:
            relative = os.path.relpath(resolved, config_dir.resolve())
        except ValueError:  # another drive (Windows)
            relative = str(resolved)
        return Place({"backend": "csv", "path": Path(relative).as_posix()}, config_dir)
    try:
        parse_spreadsheet(text)
    except SettingError as exc:
        raise ConfigError(_("{target!r} is neither a CSV file nor a Google spreadsheet: {why}",
                            target=text, why=str(exc))) from None
    table: dict[str, Any] = {"backend": "gsheets", "spreadsheet": text}
    if worksheet:
        table["worksheet"] = worksheet
    from_env = not credentials and bool((env or {}).get("GOOGLE_APPLICATION_CREDENTIALS"))
    if credentials:
        table["credentials"] = _relative(Path(credentials).expanduser(), config_dir)
    if endpoint:
        table["endpoint"] = endpoint
    return Place(table, config_dir, env_credentials=from_env)


def _relative(path: Path, base: Path) -> str:
    try:
        return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()
    except ValueError:
        return str(path)


def open_source(place: Place, env: Mapping[str, str]) -> Table:
    """The table at ``place``, opened by its backend as ``sync`` would open it."""
    table = dict(place.table)
    if table["backend"] == "csv":  # the config's folder may not exist yet: no "../"
        table["path"] = os.path.normpath(place.base_dir / table["path"])
    settings = parse_table_settings({**table, "key": _PLACEHOLDER_KEY})
    context = TableContext(base_dir=place.base_dir, env=env)
    return backend_class(settings.backend).from_settings(settings, context)


@dataclass
class Survey:
    """What ``init`` proposes for one sheet."""

    snapshot: Snapshot
    columns: list[Column]
    writeback: dict[str, str]  # role -> column
    key: Column | None  # the default key (None: it must be asked)
    repeats: dict[str, list[str]] = field(default_factory=dict)  # key field -> repeated
    tabs: RuleTabs = field(default_factory=RuleTabs)

    @property
    def rows(self) -> int:
        return len(self.snapshot.rows)

    def column(self, name: str) -> Column | None:
        """The column named ``name`` (its header or its field name)."""
        return next((c for c in self.columns if name in (c.name, c.field)), None)

    def roles(self) -> dict[str, str]:
        """Role -> field name, for the roles found."""
        return {role: c.field for role, c in by_role(self.columns).items()}

    def consent(self) -> str | None:
        found = by_role(self.columns).get("consent")
        return found.field if found else None

    def email(self) -> str | None:
        found = by_role(self.columns).get("email")
        return found.field if found else None

    def refresh_rules(self) -> None:
        """Write the starter rules again for the columns' roles as they are now."""
        self.tabs = starter_tabs(self.roles())


def survey(snapshot: Snapshot, tz: tzinfo) -> Survey:
    """Read the snapshot once and propose the set-up (see the module docstring)."""
    if not any(snapshot.header):
        raise ConfigError(_("{source}: the first row is empty; expected the column names "
                            "(고객명, 이메일, ...) in the first row", source=snapshot.source))
    writeback = _writeback(snapshot)
    columns = infer_columns(snapshot.header, snapshot.rows, tz, snapshot.lines,
                            skip=list(writeback.values()))
    result = Survey(snapshot, columns, writeback, default_key(columns, len(snapshot.rows)))
    for column in columns:
        index = snapshot.header.index(column.name)
        twice = repeated(column, snapshot.rows, index)
        if twice:
            result.repeats[column.field] = twice
    result.refresh_rules()
    return result


def _writeback(snapshot: Snapshot) -> dict[str, str]:
    """The column of each writeback role: the usual name when the sheet has no such
    column or it is empty (left by an earlier set-up, as in the sample), else a name
    no column has."""
    header = snapshot.header
    result: dict[str, str] = {}
    for role, name in WRITEBACK.items():
        candidate, n = name, 1
        while candidate in header and _filled(snapshot, header.index(candidate)):
            n += 1
            candidate = f"{name} {n}"
        result[role] = candidate
    return result


def _filled(snapshot: Snapshot, index: int) -> bool:
    return any(index < len(row) and row[index].strip() for row in snapshot.rows)
