"""``[ledger] keep``: how long the ledger keeps its history.

A daemon runs for months; without a bound, the sends, events, runs and tag changes it
records grow for ever, and so do the file and what each run reads. ``keep = "400d"``
bounds them (``ledger.retention`` forgets what is older at the end of each sync);
unset, everything is kept, as always. Whether the rules read further back than
``keep`` is told from their syntax trees, which this layer does not read: the ledger
refuses such a config when a run reads it (``ledger.lookback``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field, field_validator

from sheetcrm.config.base import SettingError, Settings, parse_duration
from sheetcrm.i18n import N_, _

#: The least ``keep``: a provider retries a webhook for days (Stripe for three), and an
#: event forgotten before its last retry would be stored, and applied, a second time.
KEEP_AT_LEAST = timedelta(days=7)


class LedgerSettings(Settings):
    """``[ledger]``: the state file's own settings."""

    keep: timedelta | None = Field(
        None, description=N_('how long history is kept, like "400d" or "8w" (at least 7d)'))

    @field_validator("keep", mode="before")
    @classmethod
    def _keep(cls, v: Any) -> timedelta | None:
        if v in (None, "", "all"):
            return None
        keep = parse_duration(v)
        if keep < KEEP_AT_LEAST:
            raise SettingError(_(
                "keep = {value} is less than 7 days: providers retry a webhook for days, "
                "and an event forgotten sooner could be applied twice; write keep = \"7d\" "
                "or more, or remove it to keep everything", value=repr(v)))
        return keep
