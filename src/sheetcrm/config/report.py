"""``[report]``: what ``sheetcrm report`` adds to the ledger's counts.

``value`` names the money a customer brings (a ``[fields]`` name, or the sheet column
one of them reads, such as ``"결제 금액"``): with it the report sums that field over each
flow's converted customers, read from the sheet when the report is made. ``language``
is the language of the HTML report and of the ``--to-sheet`` tab: the top-level
``language`` unless set here (``config.language.with_language`` fills it in).
"""

from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from sheetcrm.config.base import Settings
from sheetcrm.config.sections import FieldSettings
from sheetcrm.errors import ConfigError
from sheetcrm.i18n import _

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
        raise ConfigError(_("{value} is neither a field nor the column of one; expected a "
                            "number field or its column, e.g. {columns}",
                            value=repr(report.value), columns=columns or ["결제 금액"]),
                          path="report.value")
    if fields[name].type not in MONEY_TYPES:
        raise ConfigError(_("{value} is a {type} field; a sum of money needs type = "
                            "\"number\" (or \"int\") in fields.{name}", value=repr(report.value),
                            type=repr(fields[name].type), name=name), path="report.value")
