"""Table backends, by name. One file per backend; each implements ``base.Table``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sheetcrm.errors import ConfigError
from sheetcrm.model import CellUpdate, Snapshot, WriteReport
from sheetcrm.table.base import Table

if TYPE_CHECKING:
    from sheetcrm.config import Config

__all__ = ["CellUpdate", "Snapshot", "Table", "WriteReport", "open_table"]


def open_table(config: Config) -> Table:
    """The backend named by ``[table] backend``."""
    settings = config.table
    if settings.backend == "csv":
        from sheetcrm.table.csv import CsvTable

        assert settings.path is not None
        return CsvTable(config.resolve(settings.path), encoding=settings.encoding,
                        delimiter=settings.delimiter)
    if settings.backend == "gsheets":
        from sheetcrm.table.gsheets import GoogleSheetsTable

        return GoogleSheetsTable.from_config(config)
    if settings.backend == "airtable":
        from sheetcrm.table.airtable import AirtableTable

        return AirtableTable.from_config(config)
    raise ConfigError(f"unknown backend {settings.backend!r}", path="table.backend")
