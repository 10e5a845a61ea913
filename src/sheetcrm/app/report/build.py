"""Building a report: the ledger's counts for one scope, then the statistics over them.

Read from the ledger only (and, when ``[report] value`` names a money field, that
field from the sheet): every enrollment knows whether it was a holdout and how it
ended; every send knows its step, variant, channel and kind; every event heard back
knows the send it answers; every run keeps its held-back counts by reason. What
machines did (link scanners, image proxies) is counted apart and never as a
customer's doing.

``since`` makes a cohort: the customers who entered a flow since then, with all their
sends and what those heard back; the charts over time show what happened since then.
Held-back sends come from two places: steps skipped for good are sends in the ledger
(exact, per day); deferrals (quiet hours, the frequency cap, ...) are only counted in
each run's summary, and a deferred send is counted again by every run until it goes,
so a day shows its busiest run's count, not a sum.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

from sheetcrm.app.report.model import (
    HEARD,
    ABTest,
    Deliveries,
    Engagement,
    FlowReport,
    Group,
    Report,
    Revenue,
    Verdict,
)
from sheetcrm.app.report.verdict import judge
from sheetcrm.config import Config
from sheetcrm.core.wording import said_in
from sheetcrm.ledger import RUNS_KEPT, Ledger
from sheetcrm.ledger.queries import Scope
from sheetcrm.model import DeliveryState, EnrollmentStatus, SendStatus

#: Held-back reasons by how they start (the guards' and the engine's words), and the
#: category each is shown under. The first four skip the step for good.
HELD_CATEGORIES = (
    ("holdout", "holdout"), ("no consent", "no_consent"), ("opted out", "opted_out"),
    ("the address bounced", "bounced"), ("paused", "paused"), ("no recipient", "no_recipient"),
    ("quiet hours", "quiet_hours"), ("public holiday", "holiday"),
    ("frequency cap", "frequency_cap"), ("blast-radius", "blast_radius"),
    ("flow change", "flow_change"), ("already recorded", "already_recorded"),
)
LASTING = frozenset({"holdout", "no_consent", "opted_out", "bounced"})
#: A delivery state -> the ``Deliveries`` count it is.
DELIVERY_COUNTS = {DeliveryState.DELIVERED: "delivered", DeliveryState.FAILED: "failed",
                   DeliveryState.ACCEPTED: "awaiting"}


def held_category(reason: str) -> str:
    """The category a held-back reason is shown under (``other`` when unknown).

    A reason held back by a run in Korean is read as its English words first.
    """
    for start, category in HELD_CATEGORIES:
        if reason.startswith(start):
            return category
    english = said_in(reason, "ko", "en")
    return held_category(english) if english and english != reason else "other"


def build_report(ledger: Ledger, config: Config | None, now: datetime, *,
                 scope: Scope = Scope(), values: dict[str, float] | None = None) -> Report:
    """The report of ``scope`` (every flow and all time by default).

    ``config`` gives the flows' step counts, holdout shares and the time zone of the
    days (None: what the ledger shows, days in UTC), and with ``[rules]`` the 흐름 tab
    the holdout advice points at; ``values`` maps row keys to the
    ``[report] value`` field for revenue.
    """
    tz = config.tz if config is not None else UTC
    flows = _flows(ledger, scope)
    for report in flows.values():
        settings = config.flows.get(report.flow) if config is not None else None
        if settings is not None:
            report.step_count = len(settings.steps)
            report.holdout_share = settings.holdout
            report.has_goal = settings.goal is not None
        report.step_count = max(report.step_count, len(report.reached))
        report.reached += [0] * (report.step_count - len(report.reached))
    if values is not None:
        _revenue(ledger, scope, flows, values)
    tab = config.rule_tabs.get("flows") if config is not None else None
    for report in flows.values():
        judge(report)
        if tab:  # the flows are kept in the sheet: the advice points at the tab's column
            report.warnings = [Verdict("no_holdout_in_tab", other=tab)
                               if w.code == "no_holdout_configured" else w
                               for w in report.warnings]
    value = config.model.report.value if config is not None and values is not None else None
    result = Report(generated_at=now, flows=[flows[name] for name in sorted(flows)],
                    since=scope.since, flow=scope.flow, value_field=value)
    _activity(ledger, scope, tz, result)
    return result


def _flows(ledger: Ledger, scope: Scope) -> dict[str, FlowReport]:
    reports: dict[str, FlowReport] = {}

    def flow(name: str) -> FlowReport:
        return reports.setdefault(name, FlowReport(name))

    for counts in ledger.conversion_by_group(scope):
        group = flow(counts.flow).holdout if counts.holdout else flow(counts.flow).treated
        group.entered, group.converted = counts.entered, counts.converted
    tests: dict[tuple[str, int], ABTest] = {}
    for v in ledger.conversion_by_variant(scope):
        report = flow(v.flow)
        report.variants[f"step {v.step + 1}: {v.variant}"] = Group(v.reached, v.converted)
        test = tests.get((v.flow, v.step))
        if test is None:
            test = tests[(v.flow, v.step)] = ABTest(v.step + 1, {})
            report.ab_tests.append(test)
        test.variants[v.variant] = Group(v.reached, v.converted)
    for o in ledger.outcomes(scope):
        if not o.holdout:
            flow(o.flow).outcomes[str(o.status)] = o.customers
    for c in ledger.conversions(scope):
        if not c.holdout:
            days = (datetime.fromisoformat(c.exited_at)
                    - datetime.fromisoformat(c.entered_at)).total_seconds() / 86400
            flow(c.flow).days_to_convert.append(max(0.0, days))
    _engagement(ledger, scope, flow)
    return reports


def _engagement(ledger: Ledger, scope: Scope, flow: Any) -> None:
    """Each flow's steps (and variants): messages delivered, and what they heard back."""
    def step(name: str, index: int, variant: str | None) -> Engagement:
        label = f"step {index + 1}" + (f": {variant}" if variant else "")
        return flow(name).steps.setdefault(label, Engagement())

    for d in ledger.delivered_by_step(scope):
        step(d.flow, d.step, d.variant).sent = d.delivered
        reached = flow(d.flow).reached
        reached += [0] * (d.step + 1 - len(reached))
        reached[d.step] += d.delivered
    for h in ledger.heard_by_step(list(HEARD), scope):
        counts = step(h.flow, h.step, h.variant)
        setattr(counts, HEARD[h.kind], h.sends)
        counts.automatic += h.automatic
    for r in ledger.deliveries_by_step(scope):  # text messages, as their providers reported
        label = f"step {r.step + 1}" + (f": {r.variant}" if r.variant else "")
        reported = flow(r.flow).deliveries.setdefault(label, Deliveries())
        setattr(reported, DELIVERY_COUNTS[r.delivery], r.sends)


def _revenue(ledger: Ledger, scope: Scope, flows: dict[str, FlowReport],
             values: dict[str, float]) -> None:
    for m in ledger.members(scope):
        report = flows.get(m.flow)
        if report is None or not report.has_goal:  # revenue counts converted customers
            continue
        revenue = report.revenue = report.revenue or Revenue()
        value = values.get(m.key)
        if value is None:
            continue
        if m.holdout:
            revenue.holdout_total += value
            continue
        revenue.messaged_total += value
        if m.status == EnrollmentStatus.CONVERTED:
            revenue.converted_total += value
            revenue.converted_with_value += 1


def _activity(ledger: Ledger, scope: Scope, tz: Any, report: Report) -> None:
    """Messages per day by channel and kind; held-back sends per day by reason."""
    daily: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    held: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for a in ledger.activity(scope):
        day = datetime.fromisoformat(a.minute + ":00+00:00").astimezone(tz).date()
        if a.status == SendStatus.SKIPPED:
            held[day][held_category(a.detail)] += a.sends
        else:
            daily[day][f"{a.channel} · {a.kind}"] += a.sends
    if scope.flow is None:  # a run's summary does not say which flow a hold was in
        busiest: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for run in ledger.last_runs(RUNS_KEPT):
            summary = run.get("summary") or {}
            when = datetime.fromisoformat(str(summary.get("now") or run["started_at"]))
            if scope.since is not None and when < scope.since:
                continue
            counts: dict[str, int] = defaultdict(int)
            for reason, n in (summary.get("held") or {}).items():
                if (category := held_category(reason)) not in LASTING:
                    counts[category] += int(n)
            day = when.astimezone(tz).date()
            for category, n in counts.items():
                busiest[day][category] = max(busiest[day][category], n)
        for day, counts in busiest.items():
            for category, n in counts.items():
                held[day][category] += n
    report.daily = {d: dict(daily[d]) for d in sorted(daily)}
    report.held = {d: dict(held[d]) for d in sorted(held)}

