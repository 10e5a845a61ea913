"""``sheetcrm check`` catches what ``sync`` would hit, before anything is sent."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.sample import DAY0


def edit_config(folder: Path, old: str, new: str) -> None:
    config = folder / "config.toml"
    text = config.read_text(encoding="utf-8")
    assert old in text
    config.write_text(text.replace(old, new, 1), encoding="utf-8")


def findings(run_cli, folder: Path, *args: str) -> list[dict[str, str]]:
    result = run_cli(folder, "--now", DAY0, "--json", "check", *args)
    assert result.code in (0, 1), result.err
    return json.loads(result.out)["findings"]


def test_a_rule_that_fails_on_every_row_is_found_by_check_and_fails_sync(
        sample: Path, run_cli) -> None:
    # A date compared with a number: a type error on every row, not a syntax error.
    edit_config(sample, '"정리 대상"   = "finished(\'dormant\')"',
                '"정리 대상"   = "finished(\'dormant\')"\n"신규" = "applied_at >= 14"')
    found = [f for f in findings(run_cli, sample) if f["where"] == 'tags."신규"']
    assert len(found) == 1 and found[0]["level"] == "error"
    assert "fails on 20 of 20 row(s) — on every row" in found[0]["message"]

    result = run_cli(sample, "--now", DAY0, "sync")
    assert result.code == 1
    assert 'tags."신규" failed on every row' in result.out


def test_check_evaluates_goals_the_planner_would_reach_only_later(
        sample: Path, run_cli) -> None:
    # The goal is only evaluated for customers in the flow; check tries it on every row.
    edit_config(sample, 'goal = "reviewed"', 'goal = "reviewed and applied_at > 3"')
    found = [f for f in findings(run_cli, sample) if f["where"] == "flows.review.goal"]
    assert len(found) == 1
    assert found[0]["message"].startswith("fails on ")
    assert "'>' not supported" in found[0]["message"]


def test_check_renders_the_template_of_every_ab_variant(sample: Path, run_cli) -> None:
    (sample / "templates" / "payment_reviews.compare.j2").write_text(
        "{% block subject %}{{ course }}{% endblock %}"
        "{% block text %}{{ comparison_table }}{% endblock %}", encoding="utf-8")
    messages = [f["message"] for f in findings(run_cli, sample) if f["level"] == "error"]
    assert any("payment_reviews.compare.j2" in m and "comparison_table" in m
               for m in messages)


def test_check_connect_reaches_each_channel_without_sending(sample: Path, run_cli) -> None:
    ok = [f for f in findings(run_cli, sample, "--connect") if f["where"] == "channels.email"]
    assert ok == [{"level": "info", "where": "channels.email",
                   "message": f"folder {sample / 'outbox'} is writable"}]
    assert not any((sample / "outbox").iterdir())  # nothing was sent

    edit_config(sample, 'path = "outbox"', 'path = "config.toml/outbox"')
    bad = [f for f in findings(run_cli, sample, "--connect") if f["where"] == "channels.email"]
    assert bad[0]["level"] == "error" and "cannot write into" in bad[0]["message"]


def test_check_warns_of_a_condition_over_a_signal_nothing_hears(sample: Path, run_cli) -> None:
    # The sample's churn rule reads clicks and replies; it ships without [server] and [mailbox].
    churn = [f for f in findings(run_cli, sample) if f["where"] == 'tags."이탈 가능"']
    assert churn == [
        {"level": "warning", "where": 'tags."이탈 가능"',
         "message": "clicked() is always false here: clicks are heard only with [server] and "
                    "track_clicks = true (docs/server.md, docs/mailbox.md)"},
        {"level": "warning", "where": 'tags."이탈 가능"',
         "message": "replied() is always false here: replies are read only with [mailbox] "
                    "(docs/server.md, docs/mailbox.md)"}]

    edit_config(sample, "# [server]", "[server]\npublic_url = \"https://crm.example.com\"\n"
                "secret = \"a-long-secret-for-signing-links-0123456789\"\n# [server]")
    churn = [f for f in findings(run_cli, sample) if f["where"] == 'tags."이탈 가능"']
    assert [f["message"].split(":")[0] for f in churn] == ["replied() is always false here"]


def test_check_warns_when_the_footer_asks_for_a_reply_nobody_reads(
        sample: Path, run_cli) -> None:
    # The sample's footer: "…이 메일에 "수신거부"라고 답장해 주세요."; it ships without [mailbox].
    warned = [f for f in findings(run_cli, sample) if f["where"] == "sending.opt_out"]
    assert [f["level"] for f in warned] == ["warning"]
    assert "no [mailbox] reads the replies" in warned[0]["message"]

    edit_config(sample, "답장해 주세요", "080-123-4567로 전화해 주세요")
    assert not [f for f in findings(run_cli, sample) if f["where"] == "sending.opt_out"]


def test_check_says_when_ledger_keep_forgets_what_a_rule_reads(sample: Path, run_cli) -> None:
    # The sample's "이탈 가능" counts messages of the last 21 days; keep only 14 of them
    # and sync would refuse to run: check says so first, naming the rule.
    config = sample / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + '\n[ledger]\nkeep = "14d"\n',
                      encoding="utf-8")
    found = [f for f in findings(run_cli, sample) if "[ledger] keep" in f["message"]]
    assert [(f["level"], f["where"]) for f in found] == [("error", 'tags."이탈 가능"')]
    assert "21 days back" in found[0]["message"] and "14d" in found[0]["message"]
