"""What looks back on the runs of rules kept in the sheet (``[rules]``): ``report``,
``status``, the daemon's config reload and the sends of a run that crashed.

Each is run on the shipped sample whose rules are typed into the CSV sibling files
(``tests.test_rules_tabs_csv.tabs_folder``), so the config file itself holds no tag,
flow or template: whatever a command shows of them comes from the rule set in force.
"""

from __future__ import annotations

import json
import signal
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from sheetcrm.app.rules import in_force
from sheetcrm.config import load_config
from sheetcrm.ledger import Ledger
from tests.support.daemon import Daemon, read_sheet, save
from tests.support.sample import DAY0, use_webhook
from tests.support.servers import WebhookServer
from tests.test_crash_safety import run_sync
from tests.test_rules_tabs_csv import HOURS_LATER, edit_tab, sync, tab, tabs_folder


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


def tabs_folder_sending_3(tmp_path: Path) -> Path:
    """The sample with its rules in tabs, sending at most 3 messages a run."""
    folder = tabs_folder(tmp_path)
    config = folder / "config.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "max_sends_per_run = 200", "max_sends_per_run = 3"), encoding="utf-8")
    return folder


def test_status_shows_the_rule_set_in_force_from_the_tabs_and_an_edit_that_waits(
        tmp_path: Path, run_cli: Any) -> None:
    folder = tabs_folder_sending_3(tmp_path)
    first = sync(run_cli, folder, DAY0, "--allow-blast")
    edit_tab(folder, "흐름", lambda rows: rows.append(
        ["welcome", "paid", "", "1", "0", "email", "onboarding_welcome", "", "", "", "", "",
         ""]))
    waiting = sync(run_cli, folder, HOURS_LATER)

    result = run_cli(folder, "--now", HOURS_LATER, "--json", "status")
    assert result.code == 0, result.out + result.err
    rules = json.loads(result.out)["rules"]
    assert rules["in_force"] == first["rules"]["in_force"]
    assert rules["tabs"] == {"tags": "태그", "flows": "흐름", "templates": "템플릿"}
    assert rules["flows"] == sorted(["onboarding", "payment", "dormant", "churn", "review"])
    assert "결제 대기" in rules["tags"] and "payment_reminder" in rules["templates"]
    assert rules["pending"]["hash"] == waiting["rules"]["pending"]["hash"]
    assert rules["pending"]["newly"] == waiting["rules"]["pending"]["newly"] > 3

    text = " ".join(run_cli(folder, "--now", HOURS_LATER, "status").out.split())
    assert f"{first['rules']['in_force']} since" in text
    assert "kept in the tabs 태그, 흐름, 템플릿" in text
    assert "flows: churn, dormant, onboarding, payment, review" in text
    assert f"the edit {rules['pending']['hash']} waits" in text


def test_the_daemon_takes_a_tab_edit_each_tick_and_checks_a_config_edit_with_the_tabs(
        tmp_path: Path) -> None:
    folder = tabs_folder(tmp_path)
    config = folder / "config.toml"
    good = config.read_text(encoding="utf-8")
    d = Daemon(folder, "--every-seconds", "0.2")
    try:
        d.wait_runs(1)
        edit_tab(folder, "태그", lambda rows: rows.append(["테스트 태그", "paid", "", ""]))
        d.ticks_after(2)
        _, rows = read_sheet(folder)
        assert "테스트 태그" in rows["jihoon.lee@example.com"]["상태 태그"]  # paid

        # The flows in the 흐름 tab send by "email": a file without it is rejected.
        save(config, good.replace("[channels.email]", "[channels.mail]"))
        rejected = d.wait_for("the rejection", lambda: d.events("config_rejected"))
        error = rejected[0]["error"]
        assert "flows." in error and ".channel" in error and "'email'" in error, error
        d.ticks_after(2)  # still running, on the config it had
        assert not d.events("config_reloaded")

        save(config, good.replace("max_sends_per_run = 200", "max_sends_per_run = 199"))
        d.wait_for("the reload", lambda: d.events("config_reloaded"))
        d.ticks_after(1)
        assert not d.runs("failed")
        assert d.terminate()[0] == 0
    finally:
        d.kill()


def test_a_send_interrupted_by_a_crash_is_named_with_the_rule_set_it_was_claimed_under(
        tmp_path: Path) -> None:
    folder = tabs_folder(tmp_path)
    with WebhookServer() as server:
        use_webhook(folder, server.url)
        code, _out, err = run_sync(folder, "after-send:2")
        assert code == -signal.SIGKILL, err
        code, out, err = run_sync(folder)
        assert code == 0, err
        data = json.loads(out)
    assert len(data["recovered"]) == 1
    with sqlite3.connect(folder / ".sheetcrm/state.db") as db:
        [accepted] = [h for (h,) in db.execute("SELECT hash FROM rulesets")]
        stamps = db.execute("SELECT run_id, status, ruleset FROM sends").fetchall()
    assert data["rules"]["in_force"] == accepted
    crashed = [(status, ruleset) for run_id, status, ruleset in stamps if run_id == 1]
    assert Counter(status for status, _r in crashed)["uncertain"] == 1
    assert Counter(status for status, _r in crashed)["sent"] == 1  # the first, before
    assert {ruleset for _s, ruleset in crashed} == {accepted}
    assert all(ruleset == accepted for _run, _s, ruleset in stamps)


def test_a_flow_renamed_in_the_tab_keeps_its_customers_and_sends_nothing_twice(
        tmp_path: Path, run_cli: Any) -> None:
    folder = tabs_folder_sending_3(tmp_path)
    first = sync(run_cli, folder, DAY0, "--allow-blast")
    paid_reminders = {s["key"] for s in first["sends"]
                      if s["flow"] == "payment" and s["result"] == "sent"}
    assert paid_reminders

    def rename(rows: list[list[str]]) -> None:
        rows[0] += ["이전 이름", "지연 허용"]
        for row in rows[1:]:
            if row[0] == "payment":
                first_row = row[rows[0].index("시작 조건")] != ""
                row[0] = "결제안내"
                row += ["payment" if first_row else "", "2일" if first_row else ""]
            else:
                row += ["", ""]

    edit_tab(folder, "흐름", rename)
    plan = json.loads(run_cli(folder, "--now", HOURS_LATER, "--json", "plan").out)
    assert plan["rules"]["pending"] is None  # nobody is newly messaged by a rename
    assert not [s for s in plan["sends"] if s["flow"] == "결제안내"]
    data = sync(run_cli, folder, HOURS_LATER)
    assert data["rules"]["in_force"] == data["rules"]["candidate"] != first["rules"]["in_force"]
    assert not [s for s in data["sends"] if s["flow"] == "결제안내"]  # step 1: sent already
    with sqlite3.connect(folder / ".sheetcrm/state.db") as db:
        flows = {flow for (flow,) in db.execute("SELECT DISTINCT flow FROM enrollments")}
        sent = {key for (key,) in db.execute(
            "SELECT key FROM sends WHERE flow = '결제안내' AND step = 0 AND status = 'sent'")}
    assert "결제안내" in flows and "payment" not in flows
    assert sent == paid_reminders


def test_the_rule_set_kept_in_force_keeps_the_order_of_the_tabs_rows(
        tmp_path: Path, run_cli: Any) -> None:
    folder = tabs_folder(tmp_path)
    sync(run_cli, folder, DAY0)
    assert sync(run_cli, folder, DAY0)["summary"]["cells_written"] == 0  # nothing new
    edit_tab(folder, "태그", lambda rows: rows.append(["고액 결제", "amont >= 150000", "", ""]))

    data = sync(run_cli, folder, DAY0)  # the last accepted set runs: the same as before
    assert data["rules"]["problems"]
    assert data["summary"]["cells_written"] == 0
    config = load_config(folder / "config.toml", {})
    ledger = Ledger.open_readonly(config.state_path)
    try:
        kept = in_force(config, ledger)
    finally:
        ledger.close()
    assert list(kept.flows) == ["onboarding", "payment", "dormant", "churn", "review"]
    assert list(kept.tags)[0] == [row[0] for row in tab(folder, "태그")[1:]][0]


def test_the_sends_a_crashed_run_finished_on_the_outbox_are_named_too(tmp_path: Path) -> None:
    folder = tabs_folder(tmp_path)
    code, _out, err = run_sync(folder, "after-claim:3")  # the outbox: the claim is dropped
    assert code == -signal.SIGKILL, err
    code, out, err = run_sync(folder)
    assert code == 0, err
    with sqlite3.connect(folder / ".sheetcrm/state.db") as db:
        [accepted] = [h for (h,) in db.execute("SELECT hash FROM rulesets")]
        stamps = db.execute("SELECT run_id, status, ruleset FROM sends").fetchall()
    assert json.loads(out)["rules"]["in_force"] == accepted
    assert len([s for run, s, _r in stamps if run == 1 and s == "sent"]) == 2
    assert {ruleset for _run, _s, ruleset in stamps} == {accepted}
