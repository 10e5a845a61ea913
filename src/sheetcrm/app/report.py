"""Conversion per flow, per A/B variant, and the lift over the holdout group; clicks,
replies, opt-outs and bounces per flow, step and variant.

Read from the ledger only: every enrollment knows whether it was a holdout and
how it ended; every send knows its variant; every event heard back knows the send it
answers. The ledger counts; this module turns the counts into rates and the lift,
for ``sheetcrm report``. What machines did (link scanners, image proxies) is counted
apart and never as a customer's doing. Opens are kept apart from the rest and
always labelled unreliable: image proxies and Apple Mail Privacy Protection open mail
nobody read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sheetcrm.config import Config
from sheetcrm.ledger import Ledger
from sheetcrm.model import EventKind

#: Opens are never shown without this.
OPENS_UNRELIABLE = ("unreliable: image proxies and Apple Mail Privacy Protection open mail "
                    "nobody read")
_HEARD = {EventKind.CLICK: "clicked", EventKind.REPLY: "replied",
          EventKind.OPT_OUT: "opted_out", EventKind.BOUNCE: "bounced",
          EventKind.OPEN: "opened"}


@dataclass
class Group:
    entered: int = 0
    converted: int = 0

    @property
    def rate(self) -> float | None:
        return self.converted / self.entered if self.entered else None


@dataclass
class Engagement:
    """What the messages of one step (and variant) heard back, counted per message."""

    sent: int = 0  # delivered (or maybe: uncertain)
    clicked: int = 0  # by a person: automatic hits are in ``automatic``
    replied: int = 0
    opted_out: int = 0
    bounced: int = 0
    opened: int = 0  # unreliable: shown apart, and labelled so
    automatic: int = 0  # hits by machines (scanners, image proxies, HEAD): not counted

    def as_dict(self) -> dict[str, int]:
        return {"sent": self.sent, "clicked": self.clicked, "replied": self.replied,
                "opted_out": self.opted_out, "bounced": self.bounced,
                "automatic_hits": self.automatic}


@dataclass
class FlowReport:
    flow: str
    treated: Group = field(default_factory=Group)
    holdout: Group = field(default_factory=Group)
    variants: dict[str, Group] = field(default_factory=dict)  # "step 2: reviews" -> group
    steps: dict[str, Engagement] = field(default_factory=dict)  # "step 2: reviews" -> ...

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
                             for k, g in self.variants.items()},
                "steps": {k: e.as_dict() for k, e in self.steps.items()},
                "opens": {"unreliable": OPENS_UNRELIABLE,
                          "steps": {k: {"sent": e.sent, "opened": e.opened}
                                    for k, e in self.steps.items()}}}


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
    _engagement(ledger, reports)
    return [reports[flow] for flow in sorted(reports)]


def _engagement(ledger: Ledger, reports: dict[str, FlowReport]) -> None:
    """Each flow's steps (and variants): messages delivered, and what they heard back."""
    def step(flow: str, index: int, variant: str | None) -> Engagement:
        report = reports.setdefault(flow, FlowReport(flow))
        label = f"step {index + 1}" + (f": {variant}" if variant else "")
        return report.steps.setdefault(label, Engagement())

    for d in ledger.delivered_by_step():
        step(d.flow, d.step, d.variant).sent = d.delivered
    for h in ledger.heard_by_step(list(_HEARD)):
        counts = step(h.flow, h.step, h.variant)
        setattr(counts, _HEARD[h.kind], h.sends)
        counts.automatic += h.automatic


def read_conversion_report(config: Config) -> list[FlowReport]:
    """``conversion_report`` of the config's ledger, opened read-only (nothing created)."""
    ledger = Ledger.open_readonly(config.state_path)
    try:
        return conversion_report(ledger)
    finally:
        ledger.close()
