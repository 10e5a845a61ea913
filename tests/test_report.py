"""``sheetcrm report``: verdicts in plain words that never call a winner too early, the
lift's interval and its warning, the filters, ``--json``, revenue, and every word of
the report in both catalogs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sheetcrm.app.report import ABTest, FlowReport, Group
from sheetcrm.app.report.sentences import ab_sentence, lift_sentence, warning_sentence
from sheetcrm.app.report.verdict import judge, judge_ab
from sheetcrm.app.report.words import EN, KO, Words, josa
from tests.support.journeys import World
from tests.support.sample import DAY0, DAY2

KO_WORDS, EN_WORDS = Words("ko"), Words("en")


def test_a_small_ab_difference_is_too_early_in_plain_words() -> None:
    test = ABTest(2, {"A": Group(10, 2), "B": Group(10, 5)})
    test.verdict = judge_ab(test)
    assert (test.verdict.code, test.verdict.leader, test.verdict.other) == ("too_early", "B", "A")
    assert test.verdict.p_value == pytest.approx(0.3498, abs=1e-4)  # Fisher, two-sided
    assert ab_sentence(KO_WORDS, test) == (
        "B가 낫다고 보기에는 아직 표본이 부족합니다 (피셔 정확검정 p = 0.350).")
    assert ab_sentence(EN_WORDS, test).startswith("too early to say B is better")


def test_a_clear_ab_difference_names_the_better_variant_with_its_interval() -> None:
    test = ABTest(2, {"reviews": Group(20, 2), "compare": Group(20, 12)})
    test.verdict = judge_ab(test)
    assert (test.verdict.code, test.verdict.leader) == ("better", "compare")
    said = ab_sentence(KO_WORDS, test)
    assert said.startswith("compare가 reviews보다 낫습니다: 전환율 차이 +50.0%p (95% 구간 ")
    assert said.endswith("피셔 정확검정 p = 0.002).")


@pytest.mark.parametrize("variants, code, words", [
    ({"a": Group(5, 0), "b": Group(5, 0)}, "too_early", "아직 어느 변형이 낫다고"),
    ({"a": Group(0, 0), "b": Group(3, 1)}, "no_data", "아직 모든 변형이 발송되지"),
    ({"a": Group(1, 1), "b": Group(1, 0)}, "too_early", "a가 낫다고 보기에는"),
])
def test_zero_and_tiny_counts_never_crown_a_winner(variants: dict[str, Group], code: str,
                                                   words: str) -> None:
    test = ABTest(1, variants)
    test.verdict = judge_ab(test)
    assert test.verdict.code == code
    assert words in ab_sentence(KO_WORDS, test)


def test_three_variants_pay_for_picking_the_leader_after_looking() -> None:
    two = judge_ab(ABTest(1, {"a": Group(30, 6), "b": Group(30, 15)}))
    three = judge_ab(ABTest(1, {"a": Group(30, 5), "b": Group(30, 15), "c": Group(30, 6)}))
    assert (two.code, two.leader, two.other) == ("better", "b", "a")
    assert (three.leader, three.other) == ("b", "c")  # against the runner-up
    assert two.p_value is not None and three.p_value is not None
    assert three.p_value == pytest.approx(2 * two.p_value)  # Bonferroni: 2 comparisons
    assert three.code == ("better" if three.p_value < 0.05 else "too_early")


def test_a_lift_on_a_holdout_of_one_is_too_early_with_a_warning() -> None:
    # The "+16.7 pt" measured on a holdout of one customer.
    flow = FlowReport("payment", treated=Group(6, 1), holdout=Group(1, 0), holdout_share=0.1)
    judge(flow)
    assert flow.lift == pytest.approx(1 / 6)
    assert flow.lift_verdict.code == "too_early"
    said = lift_sentence(KO_WORDS, flow)
    assert said.startswith("메시지에 효과가 있다고 보기에는 아직 표본이 부족합니다: "
                           "+16.7%p (95% 구간 ")
    assert [w.code for w in flow.warnings] == ["small_holdout"]
    assert warning_sentence(KO_WORDS, flow, flow.warnings[0]).startswith("대조군이 1명뿐입니다")


def test_a_lift_whose_interval_is_above_zero_helped() -> None:
    flow = FlowReport("payment", treated=Group(200, 80), holdout=Group(40, 4), holdout_share=0.2)
    judge(flow)
    assert flow.lift_verdict.code == "helped" and flow.warnings == []
    assert lift_sentence(EN_WORDS, flow).startswith("the messages raised conversion: +30.0 pt")


def test_both_catalogs_have_every_word_and_particles_follow_the_last_sound() -> None:
    assert set(KO) == set(EN)
    assert [josa(w, "이", "가") for w in ("B", "L", "compare", "plan", "3", "2", "변형", "리뷰")] \
        == ["가", "이", "가", "이", "이", "가", "이", "가"]


def _world(tmp_path: Path) -> World:
    w = World.create(tmp_path, {}, payment="holdout = 0.2")
    w.customers = {f"c{i}@x.com": {"applied": w.date(-1)} for i in range(30)}
    w.write_sheet()
    w.sync(0)
    w.sync(2)
    for i in range(0, 30, 3):
        w.customers[f"c{i}@x.com"]["paid"] = "O"
    w.write_sheet()
    w.sync(3)
    return w


def test_json_carries_intervals_verdicts_funnel_and_activity(tmp_path: Path, run_cli) -> None:
    w = _world(tmp_path)
    result = run_cli(tmp_path, "--now", f"{w.day(3):%Y-%m-%dT%H:%M}", "report", "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    payment = next(f for f in data["flows"] if f["flow"] == "payment")
    treated = payment["conversion"]
    assert treated["customers"] == payment["entered"]
    assert treated["converted"] == payment["converted"]
    assert 0 <= treated["interval"]["low"] <= treated["rate"] <= treated["interval"]["high"] <= 1
    assert payment["lift_interval"]["low"] < payment["lift"] < payment["lift_interval"]["high"]
    assert payment["lift_verdict"]["code"] in ("too_early", "helped", "hurt")
    (ab,) = payment["ab_tests"]
    assert ab["step"] == 2 and set(ab["variants"]) == {"a", "b"} and ab["test"] == "fisher_exact"
    funnel = payment["funnel"]
    assert funnel["entered"] == funnel["reached_step"][0] == payment["entered"]
    assert funnel["outcomes"]["converted"] == payment["converted"]
    assert len(payment["days_to_convert"]["each"]) == payment["converted"]
    assert sum(v["e · transactional"] for v in data["messages_per_day"].values()
               if "e · transactional" in v) > 0
    holdouts = sum(v.get("holdout", 0) for v in data["held_per_day"].values())
    assert holdouts >= payment["holdout_entered"] > 0  # each step a holdout did not get


def test_since_and_flow_narrow_the_report(tmp_path: Path, run_cli) -> None:
    w = _world(tmp_path)
    now = f"{w.day(3):%Y-%m-%dT%H:%M}"
    everything = json.loads(run_cli(tmp_path, "--now", now, "--json", "report").out)
    assert {f["flow"] for f in everything["flows"]} == {"onboarding", "payment"}
    only = json.loads(run_cli(tmp_path, "--now", now, "--json", "report", "--flow",
                              "payment").out)
    assert only["flow_filter"] == "payment"
    assert only["flows"] == [f for f in everything["flows"] if f["flow"] == "payment"]
    later = json.loads(run_cli(tmp_path, "--now", now, "--json", "report", "--since",
                               f"{w.day(1):%Y-%m-%d}").out)
    assert [f["flow"] for f in later["flows"]] == ["onboarding"]  # entered on day 3
    assert list(later["messages_per_day"]) == [f"{w.day(2):%Y-%m-%d}", f"{w.day(3):%Y-%m-%d}"]
    recent = json.loads(run_cli(tmp_path, "--now", now, "--json", "report", "--since", "5d").out)
    assert recent["flows"] == everything["flows"]

    bad = run_cli(tmp_path, "report", "--flow", "nope")
    assert bad.code == 2 and "'nope' is not a flow of the config" in bad.err
    bad = run_cli(tmp_path, "report", "--since", "last week")
    assert bad.code == 2 and "'last week' is neither a date like 2026-11-01" in bad.err


def test_the_terminal_shows_intervals_verdicts_and_warnings(sample: Path, run_cli) -> None:
    for now in (DAY0, DAY2):
        assert run_cli(sample, "--now", now, "sync").code == 0
    shown = run_cli(sample, "--now", DAY2, "report").out
    assert "95% interval" in shown and "% to " in shown
    assert "lift: too early to say the messages work" in shown
    assert "warning: the holdout has only 1 customer(s)" in shown
    assert "A/B step 2:" in shown
    assert "Fisher's exact test" in shown


def test_revenue_sums_the_money_column_over_converted_customers(sample: Path, run_cli) -> None:
    assert run_cli(sample, "--now", DAY0, "sync").code == 0
    csv_path = sample / "sample_sheets" / "customers.csv"
    text = csv_path.read_bytes().decode("utf-8-sig")
    # 김수현 (payment flow) pays 99,000.
    row = "김수현,soohyun.kim@example.com,010-2345-6789,2026-11-01,엑셀 기초,"
    text = text.replace(row + ",X", row + '"99,000",O')
    csv_path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert run_cli(sample, "--now", DAY2, "sync").code == 0
    data = json.loads(run_cli(sample, "--now", DAY2, "--json", "report").out)
    assert data["value_field"] == "결제 금액"
    payment = next(f for f in data["flows"] if f["flow"] == "payment")
    assert payment["converted"] >= 1
    assert payment["revenue"]["converted_total"] >= 99_000
    churn = next(f for f in data["flows"] if f["flow"] == "churn")
    assert churn["has_goal"] is False and churn["revenue"] is None


def test_a_value_that_is_not_a_number_field_is_a_config_error(sample: Path, run_cli) -> None:
    config = sample / "config.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        'value = "결제 금액"', 'value = "강의"'), encoding="utf-8")
    result = run_cli(sample, "report")
    assert result.code == 2
    assert "report.value: '강의' is a 'text' field" in result.err
