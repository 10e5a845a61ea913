"""What a report holds: counts from the ledger, and the statistics drawn from them.

Plain data, built by ``build.py`` and read by every output (terminal, ``--json``,
HTML, the sheet tab), so all four show the same numbers. Rates come with their 95%
interval (``stats.wilson``); the lift over the holdout with Newcombe's interval; an
A/B step with Fisher's exact test and a verdict (``verdict.py``). ``as_dict`` is the
shape ``report --json`` prints: the keys scripts already read stay as they were, the
intervals and verdicts are added beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sheetcrm.model import EventKind
from sheetcrm.stats import Interval, newcombe, wilson

#: Opens are never shown without this.
OPENS_UNRELIABLE = ("unreliable: image proxies and Apple Mail Privacy Protection open mail "
                    "nobody read")
#: What came back, by the name each count has in an ``Engagement``.
HEARD = {EventKind.CLICK: "clicked", EventKind.REPLY: "replied",
         EventKind.OPT_OUT: "opted_out", EventKind.BOUNCE: "bounced",
         EventKind.OPEN: "opened"}
#: The ones counted beside each other (opens are kept apart: unreliable).
RELIABLE = ("clicked", "replied", "opted_out", "bounced")


def interval_dict(interval: Interval | None) -> dict[str, float] | None:
    if interval is None:
        return None
    return {"estimate": interval.estimate, "low": interval.low, "high": interval.high}


@dataclass
class Group:
    """Customers in a group (messaged, holdout, one A/B variant) and how many converted."""

    entered: int = 0
    converted: int = 0

    @property
    def rate(self) -> float | None:
        return self.converted / self.entered if self.entered else None

    @property
    def interval(self) -> Interval | None:
        return wilson(self.converted, self.entered)

    def as_dict(self) -> dict[str, Any]:
        return {"customers": self.entered, "converted": self.converted, "rate": self.rate,
                "interval": interval_dict(self.interval)}


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

    def interval(self, name: str) -> Interval | None:
        """The share of messages that heard back ``name`` (``clicked``, ...), with its
        interval; None before any message went."""
        return wilson(getattr(self, name), self.sent)


@dataclass
class Deliveries:
    """What the providers reported of one step's text messages (Solapi, NHN Cloud): the
    phone got it, it never will, or no final report yet. Other channels report nothing."""

    delivered: int = 0
    failed: int = 0
    awaiting: int = 0  # accepted by the provider, no final report yet

    def as_dict(self) -> dict[str, int]:
        return {"delivered": self.delivered, "failed": self.failed,
                "awaiting_report": self.awaiting}


@dataclass
class Verdict:
    """A judgment in words: ``code`` picks the sentence, the rest fills it in."""

    code: str
    leader: str | None = None  # the better-looking group (an A/B variant)
    other: str | None = None  # the one it is compared with
    p_value: float | None = None
    difference: Interval | None = None  # leader minus other (or messaged minus holdout)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "leader": self.leader, "other": self.other,
                "p_value": self.p_value, "difference": interval_dict(self.difference)}


@dataclass
class ABTest:
    """One A/B step: the customers each variant reached, and what can be said so far."""

    step: int  # counts from 1, as shown
    variants: dict[str, Group]
    verdict: Verdict = field(default_factory=lambda: Verdict("no_data"))

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step,
                "variants": {name: g.as_dict() for name, g in self.variants.items()},
                "verdict": self.verdict.as_dict(), "test": "fisher_exact"}


@dataclass
class Revenue:
    """The money field summed over a flow's customers, by group."""

    converted_total: float = 0.0  # messaged customers who converted
    converted_with_value: int = 0  # ... of whom this many have a value in the sheet
    messaged_total: float = 0.0  # every messaged customer (per-customer average)
    holdout_total: float = 0.0

    def as_dict(self, flow: FlowReport) -> dict[str, Any]:
        return {"converted_total": self.converted_total,
                "converted_with_value": self.converted_with_value,
                "per_messaged_customer": _per(self.messaged_total, flow.treated.entered),
                "per_holdout_customer": _per(self.holdout_total, flow.holdout.entered)}


def _per(total: float, customers: int) -> float | None:
    return total / customers if customers else None


@dataclass
class FlowReport:
    flow: str
    treated: Group = field(default_factory=Group)
    holdout: Group = field(default_factory=Group)
    variants: dict[str, Group] = field(default_factory=dict)  # "step 2: reviews" -> group
    steps: dict[str, Engagement] = field(default_factory=dict)  # "step 2: reviews" -> ...
    deliveries: dict[str, Deliveries] = field(default_factory=dict)  # text messages' steps
    step_count: int = 0  # the flow's steps (from the config, else as far as sends go)
    reached: list[int] = field(default_factory=list)  # messaged customers per step
    outcomes: dict[str, int] = field(default_factory=dict)  # status -> messaged customers
    days_to_convert: list[float] = field(default_factory=list)  # messaged, converted
    ab_tests: list[ABTest] = field(default_factory=list)
    lift_verdict: Verdict = field(default_factory=lambda: Verdict("no_holdout"))
    holdout_share: float = 0.0  # as configured
    has_goal: bool = True  # a flow without a goal converts nobody: no rates are shown
    revenue: Revenue | None = None
    warnings: list[Verdict] = field(default_factory=list)

    @property
    def lift(self) -> float | None:
        """Conversion of messaged customers minus that of the holdout, as a fraction."""
        t, h = self.treated.rate, self.holdout.rate
        return None if t is None or h is None else t - h

    @property
    def lift_interval(self) -> Interval | None:
        return newcombe(self.treated.converted, self.treated.entered,
                        self.holdout.converted, self.holdout.entered)

    @property
    def median_days_to_convert(self) -> float | None:
        days = sorted(self.days_to_convert)
        if not days:
            return None
        middle = len(days) // 2
        return days[middle] if len(days) % 2 else (days[middle - 1] + days[middle]) / 2

    def as_dict(self) -> dict[str, Any]:
        """The flow as ``report --json`` prints it."""
        return {"flow": self.flow, "has_goal": self.has_goal, "entered": self.treated.entered,
                "converted": self.treated.converted, "holdout_entered": self.holdout.entered,
                "holdout_converted": self.holdout.converted, "lift": self.lift,
                "conversion": self.treated.as_dict(), "holdout": self.holdout.as_dict(),
                "lift_interval": interval_dict(self.lift_interval),
                "lift_verdict": self.lift_verdict.as_dict(),
                "variants": {k: {"sent": g.entered, "converted": g.converted, "rate": g.rate,
                                 "interval": interval_dict(g.interval)}
                             for k, g in self.variants.items()},
                "ab_tests": [t.as_dict() for t in self.ab_tests],
                "funnel": {"entered": self.treated.entered, "reached_step": self.reached,
                           "outcomes": self.outcomes},
                "days_to_convert": {"median": self.median_days_to_convert,
                                    "each": self.days_to_convert},
                "steps": {k: e.as_dict() for k, e in self.steps.items()},
                "heard_back_rates": {k: {name: interval_dict(e.interval(name))
                                         for name in RELIABLE}
                                     for k, e in self.steps.items()},
                "deliveries": {k: d.as_dict() for k, d in self.deliveries.items()},
                "opens": {"unreliable": OPENS_UNRELIABLE,
                          "steps": {k: {"sent": e.sent, "opened": e.opened}
                                    for k, e in self.steps.items()}},
                "revenue": self.revenue.as_dict(self) if self.revenue else None,
                "warnings": [w.as_dict() for w in self.warnings]}


@dataclass
class Report:
    """Every flow, and the activity over time, for one scope of the ledger."""

    generated_at: datetime
    flows: list[FlowReport]
    since: datetime | None = None
    flow: str | None = None
    value_field: str | None = None  # [report] value, when revenue is summed
    # day -> "channel · kind" -> messages delivered
    daily: dict[date, dict[str, int]] = field(default_factory=dict)
    # day -> reason category -> sends held back (see build.held_by_day)
    held: dict[date, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"generated_at": self.generated_at.isoformat(),
                "since": self.since.isoformat() if self.since else None,
                "flow_filter": self.flow, "value_field": self.value_field,
                "flows": [f.as_dict() for f in self.flows],
                "messages_per_day": {d.isoformat(): v for d, v in self.daily.items()},
                "held_per_day": {d.isoformat(): v for d, v in self.held.items()},
                "methods": {"rate_interval": "wilson_95",
                            "lift_interval": "newcombe_hybrid_score_95",
                            "ab_test": "fisher_exact_two_sided"}}
