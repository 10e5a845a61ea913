"""Conversion per flow, per A/B variant, and the lift over the holdout group.

Read from the ledger only: every enrollment knows whether it was a holdout and
how it ended; every send knows its variant. The ledger counts; this module turns
the counts into rates and the lift, for ``sheetcrm report``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sheetcrm.config import Config
from sheetcrm.ledger import Ledger


@dataclass
class Group:
    entered: int = 0
    converted: int = 0

    @property
    def rate(self) -> float | None:
        return self.converted / self.entered if self.entered else None


@dataclass
class FlowReport:
    flow: str
    treated: Group = field(default_factory=Group)
    holdout: Group = field(default_factory=Group)
    variants: dict[str, Group] = field(default_factory=dict)  # "step 2: reviews" -> group

    @property
    def lift(self) -> float | None:
        """Conversion of messaged customers minus that of the holdout, in points."""
        t, h = self.treated.rate, self.holdout.rate
        return None if t is None or h is None else t - h

    def as_dict(self) -> dict[str, Any]:
        """The flow's counts as ``report --json`` prints them."""
        return {"flow": self.flow, "entered": self.treated.entered,
                "converted": self.treated.converted, "holdout_entered": self.holdout.entered,
                "holdout_converted": self.holdout.converted, "lift": self.lift,
                "variants": {k: {"sent": g.entered, "converted": g.converted}
                             for k, g in self.variants.items()}}


def conversion_report(ledger: Ledger) -> list[FlowReport]:
    """One report per flow that has customers, ordered by flow name."""
    reports: dict[str, FlowReport] = {}
    for counts in ledger.conversion_by_group():
        report = reports.setdefault(counts.flow, FlowReport(counts.flow))
        group = report.holdout if counts.holdout else report.treated
        group.entered, group.converted = counts.entered, counts.converted
    for v in ledger.conversion_by_variant():
        report = reports.setdefault(v.flow, FlowReport(v.flow))
        report.variants[f"step {v.step + 1}: {v.variant}"] = Group(v.reached, v.converted)
    return list(reports.values())


def read_conversion_report(config: Config) -> list[FlowReport]:
    """``conversion_report`` of the config's ledger, opened read-only (nothing created)."""
    ledger = Ledger.open_readonly(config.state_path)
    try:
        return conversion_report(ledger)
    finally:
        ledger.close()
