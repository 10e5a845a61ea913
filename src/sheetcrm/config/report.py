"""``[report]``: what ``sheetcrm report`` adds to the ledger's counts.

``value`` names the money a customer brings (a ``[fields]`` name, or the sheet column
one of them reads, such as ``"결제 금액"``): with it the report sums that field over each
flow's converted customers, read from the sheet when the report is made. ``language``
is the language of the HTML report and of the ``--to-sheet`` tab: the top-level
``language`` unless set here (``config.language.with_language`` fills it in).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from sheetcrm.config.base import Settings
from sheetcrm.config.sections import FieldSettings
from sheetcrm.errors import ConfigError

#: Field types a sum of money can be read from.
MONEY_TYPES = ("number", "int")


class ReportSettings(Settings):
    value: str | None = Field(None, description='a money field, e.g. "결제 금액"')
    language: Literal["ko", "en"] = "ko"

    def value_field(self, fields: Mapping[str, FieldSettings]) -> str | None:
        """The ``[fields]`` name ``value`` stands for (a field's name or its column)."""
        if self.value is None:
            return None
        if self.value in fields:
            return self.value
        return next((name for name, f in fields.items() if f.column == self.value), None)


def check_report(report: ReportSettings, fields: Mapping[str, FieldSettings]) -> None:
    """``value`` must name a number field; ConfigError naming ``report.value`` if not."""
    if report.value is None:
        return
    name = report.value_field(fields)
    if name is None:
        columns = sorted(f.column for f in fields.values() if f.type in MONEY_TYPES)
        raise ConfigError(f"{report.value!r} is neither a field nor the column of one; "
                          f"expected a number field or its column, e.g. {columns or ['결제 금액']}",
                          path="report.value")
    if fields[name].type not in MONEY_TYPES:
        raise ConfigError(f"{report.value!r} is a {fields[name].type!r} field; a sum of money "
                          f"needs type = \"number\" (or \"int\") in fields.{name}",
                          path="report.value")
