"""Table backends, by name. One file per backend; each implements ``base.Table``.

``BACKENDS`` maps a ``[table] backend`` name to its class; a class is imported only
when a table of its kind is opened (the Google and Airtable clients are slow to
import, and a config uses one backend). Each class opens its table from its own
settings (``sheetcrm.config.table``) and a ``TableContext``, never the whole config.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

from sheetcrm.model import CellUpdate, Snapshot, WriteReport
from sheetcrm.registry import named
from sheetcrm.table.base import Table, TableBackend, TableContext

if TYPE_CHECKING:
    from sheetcrm.config import Config

__all__ = ["BACKENDS", "CellUpdate", "Snapshot", "Table", "TableBackend", "TableContext",
           "WriteReport", "backend_class", "open_table", "table_context"]

#: ``[table] backend`` -> ``module:Class`` of the backend.
BACKENDS: dict[str, str] = {
    "csv": "sheetcrm.table.csv:CsvTable",
    "gsheets": "sheetcrm.table.gsheets:GoogleSheetsTable",
    "airtable": "sheetcrm.table.airtable:AirtableTable",
}


def backend_class(name: str) -> type[TableBackend]:
    """The class of backend ``name`` (a key of ``BACKENDS``), imported now."""
    return cast("type[TableBackend]", named(BACKENDS[name]))


def table_context(config: Config, env: Mapping[str, str] | None = None) -> TableContext:
    """What the config's backend is given besides its settings; ``env`` defaults to
    the process environment."""
    return TableContext(
        base_dir=config.base_dir,
        env=os.environ if env is None else env,
        columns=tuple(spec.column for spec in config.fields.values()),
        writeback=config.writeback.roles(),
        tabs=tuple(dict.fromkeys(config.rule_tabs.values())),
    )


def open_table(config: Config, env: Mapping[str, str] | None = None) -> Table:
    """The table of ``[table]``, opened by the backend its ``backend`` names."""
    settings = config.table
    return backend_class(settings.backend).from_settings(settings, table_context(config, env))
