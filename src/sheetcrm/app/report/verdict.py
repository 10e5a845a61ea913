"""What may be said about an A/B step and a holdout lift, and the warnings beside them.

A judgment is a ``Verdict`` code; ``words.py`` turns it into a sentence in the
report's language. The rules are written for the small numbers an operator has:

- **A/B**: the variant with the higher conversion is the *leader*; it is called better
  only when Fisher's exact test (two-sided, right at any sample size) gives p < 0.05
  against the runner-up, with a Bonferroni factor when more than two variants were
  compared (the leader was picked after looking). Otherwise the verdict is
  ``too_early``: "B가 낫다고 보기에는 아직 표본이 부족합니다", never a winner.
- **Lift over the holdout**: Newcombe's 95% interval of the difference; the messages
  helped (or hurt) only when the whole interval is above (or below) zero.
- **Warnings**: a holdout too small to say much, and a flow with no holdout at all.
"""

from __future__ import annotations

from sheetcrm.app.report.model import ABTest, FlowReport, Verdict
from sheetcrm.stats import fisher_exact, newcombe

ALPHA = 0.05
#: Fewer customers than this in the holdout makes the lift's interval too wide to use.
SMALL_HOLDOUT = 10


def judge_ab(test: ABTest) -> Verdict:
    """``better`` (leader over the runner-up at p < 0.05), ``too_early`` or ``no_data``."""
    groups = test.variants
    if len(groups) < 2 or any(g.entered == 0 for g in groups.values()):
        return Verdict("no_data")
    ranked = sorted(groups.items(), key=lambda item: (-(item[1].rate or 0.0), item[0]))
    (leader, a), (other, b) = ranked[0], ranked[1]
    p = fisher_exact(a.converted, a.entered, b.converted, b.entered)
    assert p is not None  # both groups have customers
    p = min(1.0, p * (len(groups) - 1))
    difference = newcombe(a.converted, a.entered, b.converted, b.entered)
    if a.rate == b.rate:
        return Verdict("too_early", None, None, p, difference)
    code = "better" if p < ALPHA else "too_early"
    return Verdict(code, leader, other, p, difference)


def judge_lift(flow: FlowReport) -> Verdict:
    """``helped``, ``hurt``, ``too_early`` or ``no_holdout`` (nobody held out)."""
    treated, holdout = flow.treated, flow.holdout
    interval = flow.lift_interval
    if interval is None or treated.entered == 0:
        return Verdict("no_holdout")
    p = fisher_exact(treated.converted, treated.entered, holdout.converted, holdout.entered)
    if interval.low > 0:
        return Verdict("helped", p_value=p, difference=interval)
    if interval.high < 0:
        return Verdict("hurt", p_value=p, difference=interval)
    return Verdict("too_early", p_value=p, difference=interval)


def warnings(flow: FlowReport) -> list[Verdict]:
    """What the reader must know before trusting the flow's numbers."""
    found = []
    if 0 < flow.holdout.entered < SMALL_HOLDOUT:
        found.append(Verdict("small_holdout", other=str(flow.holdout.entered)))
    if (flow.holdout.entered == 0 and flow.treated.entered and flow.holdout_share == 0
            and flow.has_goal):
        found.append(Verdict("no_holdout_configured"))
    return found


def judge(flow: FlowReport) -> None:
    """Fill in the flow's verdicts and warnings from its counts."""
    for test in flow.ab_tests:
        test.verdict = judge_ab(test)
    flow.lift_verdict = judge_lift(flow)
    flow.warnings = warnings(flow)
