"""What looks back on the runs of rules kept in the sheet (``[rules]``): ``report``,
``status``, the daemon's config reload and a send interrupted by a crash.

Each is run on the shipped sample whose rules are typed into the CSV sibling files
(``tests.test_rules_tabs_csv.tabs_folder``), so the config file itself holds no tag,
flow or template: whatever a command shows of them comes from the rule set in force.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.sample import DAY0
from tests.test_rules_tabs_csv import sync, tabs_folder


def report(run_cli: Any, folder: Path, *flags: str) -> dict[str, Any]:
    result = run_cli(folder, "--now", DAY0, "--json", "report", *flags)
    assert result.code == 0, result.out + result.err
    return json.loads(result.out)


def test_the_report_covers_the_flows_of_the_tabs_and_its_advice_points_at_the_tab(
        tmp_path: Path, run_cli: Any) -> None:
    folder = tabs_folder(tmp_path)
    sync(run_cli, folder, DAY0)

    flows = {f["flow"]: f for f in report(run_cli, folder)["flows"]}
    assert not flows["churn"]["has_goal"]  # the 흐름 tab gives churn no 목표
    assert len(flows["onboarding"]["funnel"]["reached_step"]) == 3  # its three steps
    [warning] = flows["onboarding"]["warnings"]
    assert (warning["code"], warning["other"]) == ("no_holdout_in_tab", "흐름")
    assert "no_holdout_in_tab" not in {w["code"] for w in flows["payment"]["warnings"]}

    [only] = report(run_cli, folder, "--flow", "churn")["flows"]
    assert only["flow"] == "churn"
    text = run_cli(folder, "--now", DAY0, "report")
    assert text.code == 0, text.out + text.err
    assert "대조군 비율 column on the first row of flow onboarding in the 흐름" in " ".join(
        text.out.split())
    assert "[flows.onboarding] holdout" not in text.out
