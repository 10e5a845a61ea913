"""The report's verdicts and warnings as sentences, the same for every output.

The terminal, the HTML file and the sheet tab call these, so a verdict reads the
same everywhere (in the output's language).
"""

from __future__ import annotations

from sheetcrm.app.report.model import ABTest, FlowReport, Verdict
from sheetcrm.app.report.words import Words


def ab_sentence(words: Words, test: ABTest) -> str:
    v = test.verdict
    if v.code == "no_data":
        return words("ab_no_data")
    if v.leader is None:
        return words("ab_tied")
    diff = v.difference
    values = {"leader": v.leader, "other": v.other, "leader_ga": words.particle(v.leader),
              "p": words.p_value(v.p_value),
              "diff": words.points(diff.estimate if diff else None),
              "low": words.points(diff.low if diff else None),
              "high": words.points(diff.high if diff else None)}
    return words("ab_better" if v.code == "better" else "ab_too_early", **values)


def lift_sentence(words: Words, flow: FlowReport) -> str:
    v = flow.lift_verdict
    if v.code == "no_holdout" or v.difference is None:
        return words("lift_no_holdout")
    d = v.difference
    return words(f"lift_{v.code}", diff=words.points(d.estimate), low=words.points(d.low),
                 high=words.points(d.high))


def sizes_sentence(words: Words, flow: FlowReport) -> str:
    return words("sizes", treated=flow.treated.entered, holdout=flow.holdout.entered)


def warning_sentence(words: Words, flow: FlowReport, warning: Verdict) -> str:
    return words(warning.code, n=warning.other or "", tab=warning.other or "", flow=flow.flow)
