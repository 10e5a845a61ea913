"""The ``[report] value`` field of every row, for revenue per flow.

The ledger keeps no cell values, so the money comes from the sheet as it is when the
report is made: one read, typed by the same code as a sync (a cell that does not
parse counts as no value; a blank or duplicate key is left out, as a sync leaves it).
"""

from __future__ import annotations

from sheetcrm.config import Config
from sheetcrm.core.schema import read_records
from sheetcrm.table import open_table


def read_values(config: Config) -> dict[str, float]:
    """Row key -> the value field's number, for the rows that have one."""
    name = config.model.report.value_field(config.fields)
    if name is None:
        return {}
    records = read_records(open_table(config).read(), config).records
    return {r.key: float(value) for r in records
            if isinstance(value := r.values.get(name), int | float)
            and not isinstance(value, bool)}
