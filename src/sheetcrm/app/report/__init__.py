"""``sheetcrm report``: what worked, in numbers an operator can trust and charts to look at.

Conversion per flow and per A/B variant, the lift over the holdout group, the funnel
and the time to conversion, clicks, replies, opt-outs and bounces per step and variant
(opens apart: unreliable), messages and held-back sends per day, revenue when a money
field is named. One ``Report`` (``build``) feeds every output: the terminal and
``--json`` (``cli``), a self-contained HTML file with SVG charts (``html``, ``svg``),
and a summary tab in the operator's Google spreadsheet (``sheet``). Every word shown
lives in ``words``. The statistics are ``sheetcrm.stats``; what they allow one to say
is ``verdict``.
"""

from __future__ import annotations

from datetime import datetime

from sheetcrm.app.report.build import build_report, held_category
from sheetcrm.app.report.model import (
    OPENS_UNRELIABLE,
    RELIABLE,
    ABTest,
    Engagement,
    FlowReport,
    Group,
    Report,
    Revenue,
    Verdict,
)
from sheetcrm.app.report.values import read_values
from sheetcrm.app.rules import in_force
from sheetcrm.config import Config
from sheetcrm.ledger import Ledger
from sheetcrm.ledger.queries import Scope

__all__ = ["OPENS_UNRELIABLE", "RELIABLE", "ABTest", "Engagement", "FlowReport", "Group",
           "Report", "Revenue", "Scope", "Verdict", "build_report", "held_category",
           "flows_in_force", "read_report"]


def read_report(config: Config, now: datetime, scope: Scope = Scope()) -> Report:
    """The report of the config's ledger, opened read-only (nothing is created or
    changed); with ``[report] value``, that field is read from the table too. With
    ``[rules]``, the flows are those of the rule set in force (``rules.in_force``)."""
    values = read_values(config) if config.model.report.value else None
    ledger = Ledger.open_readonly(config.state_path)
    try:
        return build_report(ledger, in_force(config, ledger), now, scope=scope,
                            values=values)
    finally:
        ledger.close()


def flows_in_force(config: Config) -> list[str]:
    """The flows a report can be narrowed to: the config's, or with ``[rules]`` those of
    the rule set in force."""
    ledger = Ledger.open_readonly(config.state_path)
    try:
        return sorted(in_force(config, ledger).flows)
    finally:
        ledger.close()
