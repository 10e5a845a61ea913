"""What the sheet holds, and the set-up ``init`` proposes for it.

``survey`` reads the sheet's snapshot once and proposes: the fields with their types and roles
(``infer.py``), the key, the columns sheetcrm will write (named so they never take
one of the operator's columns), and the starter rules (``starter.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import tzinfo

from sheetcrm.app.setup.infer import Column, by_role, default_key, infer_columns, repeated
from sheetcrm.app.setup.starter import RuleTabs, starter_tabs
from sheetcrm.errors import ConfigError
from sheetcrm.i18n import _
from sheetcrm.model import Snapshot

#: The tabs the rules live in (``[rules]`` in config.toml).
RULE_TABS = {"tags": "태그", "flows": "흐름", "templates": "템플릿"}
#: ``[writeback]`` role -> the column sheetcrm writes, as the sample names them.
WRITEBACK = {"tags": "상태 태그", "flow": "자동화 흐름", "last_sent": "최근 발송",
             "error": "오류"}


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


def survey(snapshot: Snapshot, tz: tzinfo, hints: Mapping[str, str] | None = None) -> Survey:
    """Read the snapshot once and propose the set-up (see the module docstring)."""
    if not any(snapshot.header):
        raise ConfigError(_("{source}: the first row is empty; expected the column names "
                            "(고객명, 이메일, ...) in the first row", source=snapshot.source))
    writeback = _writeback(snapshot)
    columns = infer_columns(snapshot.header, snapshot.rows, tz, snapshot.lines,
                            skip=list(writeback.values()), hints=hints)
    result = Survey(snapshot, columns, writeback, default_key(columns, len(snapshot.rows)))
    for column in columns:
        index = snapshot.header.index(column.name)
        twice = repeated(snapshot.rows, index)
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
