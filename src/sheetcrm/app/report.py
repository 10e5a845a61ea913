"""Conversion per flow, per A/B variant, and the lift over the holdout group.

Read from the ledger only: every enrollment knows whether it was a holdout and
how it ended; every send knows its variant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


def conversion_report(ledger: Ledger) -> list[FlowReport]:
    reports: dict[str, FlowReport] = {}
    rows = ledger.conn.execute(
        "SELECT flow, holdout, COUNT(*), SUM(status = 'converted') FROM enrollments"
        " GROUP BY flow, holdout ORDER BY flow")
    for flow, holdout, entered, converted in rows:
        report = reports.setdefault(flow, FlowReport(flow))
        group = report.holdout if holdout else report.treated
        group.entered, group.converted = entered, converted or 0
    rows = ledger.conn.execute(
        "SELECT s.flow, s.step, s.variant, COUNT(*), SUM(e.status = 'converted')"
        " FROM sends s JOIN enrollments e"
        " ON e.key = s.key AND e.flow = s.flow AND e.entry = s.entry"
        " WHERE s.variant IS NOT NULL AND s.status IN ('sent', 'uncertain')"
        " GROUP BY s.flow, s.step, s.variant ORDER BY s.flow, s.step, s.variant")
    for flow, step, variant, entered, converted in rows:
        report = reports.setdefault(flow, FlowReport(flow))
        report.variants[f"step {step + 1}: {variant}"] = Group(entered, converted or 0)
    return list(reports.values())
