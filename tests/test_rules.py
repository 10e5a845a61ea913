"""Rules compiled from the config: names a helper looks up must exist, and a hostile
or mistaken condition is a clean error naming the key path, never a traceback."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sheetcrm.config import Config, load_config
from sheetcrm.core.rules import RowContext, compile_rules
from sheetcrm.errors import RuleError
from sheetcrm.model import Enrollment, EnrollmentStatus, LedgerState
from tests.support.sample import DAY0

SEOUL = ZoneInfo("Asia/Seoul")


def edit(sample: Path, old: str, new: str) -> Path:
    """The sample's config.toml with ``old`` replaced by ``new`` (which must be there)."""
    path = sample / "config.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def add_tag(sample: Path, line: str) -> Path:
    return edit(sample, '"정리 대상"   = "finished(\'dormant\')"',
                f'"정리 대상"   = "finished(\'dormant\')"\n{line}')


def rule_error(path: Path) -> str:
    with pytest.raises(RuleError) as caught:
        compile_rules(load_config(path, {}))
    return str(caught.value)


# --- names a helper looks up ------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('"x" = "in_flow(\'paymnt\')"',
         "in_flow(): unknown flow 'paymnt'; did you mean 'payment'?"),
        ('"x" = "finished(\'dormnt\')"',
         "finished(): unknown flow 'dormnt'; did you mean 'dormant'?"),
        ('"x" = "paid and tagged(\'결제대기\')"',
         "tagged(): unknown tag '결제대기'; did you mean '결제 대기'?"),
        ('"x" = "sent_count(flow=\'review_\') > 0"', "sent_count(): unknown flow 'review_'"),
        ('"x" = "in_flow(flow=\'nothing like it\')"', "known flows: 'onboarding', 'payment'"),
    ],
)
def test_an_unknown_flow_or_tag_name_is_refused_at_load(
    sample: Path, line: str, problem: str
) -> None:
    error = rule_error(add_tag(sample, line))
    assert error.startswith('tags.x: ')
    assert problem in error


def test_the_same_check_applies_to_triggers_and_goals(sample: Path) -> None:
    path = edit(sample, 'goal = "reviewed"', 'goal = "reviewed or finished(\'reveiw\')"')
    error = rule_error(path)
    assert error.startswith("flows.review.goal: ")
    assert "did you mean 'review'?" in error

    path = edit(sample, 'goal = "reviewed or finished(\'reveiw\')"', 'goal = "reviewed"')
    path = edit(sample, 'trigger = "후기 미작성"', 'trigger = "paid and tagged(\'후기미작성\')"')
    error = rule_error(path)
    assert error.startswith("flows.review.trigger: ")
    assert "did you mean '후기 미작성'?" in error


def test_a_tag_may_ask_only_for_the_tags_above_it(sample: Path) -> None:
    path = edit(sample, '"결제 유도"   = "not paid and clicked"',
                '"결제 유도"   = "not paid and clicked and not tagged(\'휴면\')"')
    error = rule_error(path)
    assert error.startswith('tags."결제 유도": ')
    assert "the tag '휴면' is worked out after this one" in error and "move it above" in error

    path = edit(sample, "and not tagged('휴면')", "and not tagged('결제 유도')")
    assert "cannot depend on itself" in rule_error(path)

    path = edit(sample, "and not tagged('결제 유도')", "and not tagged('결제 대기')")
    rules = compile_rules(load_config(path, {}))  # the tag above: fine
    assert [tag for tag, _ in rules.tags][:2] == ["결제 대기", "결제 유도"]


def test_names_computed_from_a_cell_stay_allowed_and_work(sample: Path) -> None:
    path = add_tag(sample, '"수강 흐름" = "in_flow(course) or tagged(name)"')
    rules = compile_rules(load_config(path, {}))
    condition = dict(rules.tags)["수강 흐름"]
    now = datetime(2026, 11, 23, 10, tzinfo=SEOUL)
    state = LedgerState()
    state.enrollments[("a@example.com", "payment")] = Enrollment(
        key="a@example.com", flow="payment", entry=1, entered_at=now, anchor_at=None,
        status=EnrollmentStatus.ACTIVE)
    ctx = RowContext(now, SEOUL, state)
    ctx.key = "a@example.com"
    assert condition({"course": "payment", "name": "김"}, ctx) is True
    assert condition({"course": "nothing", "name": "김"}, ctx) is False


def test_sent_count_days_must_be_a_sensible_number(sample: Path) -> None:
    error = rule_error(add_tag(sample, '"x" = "sent_count(days=100000000) > 0"'))
    assert "days must be a number from 0 to 36,500, not 100000000" in error
    error = rule_error(edit(sample, "days=100000000", "days=-1"))
    assert "days must be a number" in error
    compile_rules(load_config(edit(sample, "days=-1", "days=30"), {}))


def test_a_trigger_that_is_almost_a_tag_suggests_it(sample: Path) -> None:
    error = rule_error(edit(sample, 'trigger = "결제 대기"', 'trigger = "결제 대기 "'))
    assert error.startswith("flows.payment.trigger: ")  # a RuleError, with its path
    assert "did you mean the tag '결제 대기'?" in error


def test_the_shipped_rules_pass_every_check(sample: Path) -> None:
    config: Config = load_config(sample / "config.toml", {})
    rules = compile_rules(config)
    assert len(rules.tags) == len(config.tags) and set(rules.flows) == set(config.flows)


# --- hostile or mistaken conditions, through the command line ---------------------------


LONG_NUMBER = "9" * 5000


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        (f"amount == {LONG_NUMBER}", "a number of 5,000 digits is too long"),
        ("name ~ ('x' * 1000000000) == ''", "would build a value longer than 100,000"),
        ("[1, 2] * 1000000000", "would build a value longer than 100,000"),
        ("amount|round(1000000000, 'ceil') > 0", "precision must be a whole number"),
        ("'x' * 10**9", "the power operator (**)"),
        ("finished('dormnt')", "did you mean 'dormant'?"),
    ],
)
def test_check_reports_a_bad_condition_with_its_key_path(
    sample: Path, run_cli, condition: str, problem: str
) -> None:
    edit(sample, "finished('dormant')", condition)
    result = run_cli(sample, "--now", DAY0, "--json", "check")
    assert result.code == 1
    assert "Traceback" not in result.out + result.err
    (finding,) = json.loads(result.out)["findings"]
    assert finding["where"] == "rules"
    assert finding["message"].startswith('tags."정리 대상": ')
    assert problem in finding["message"]
    assert len(finding["message"]) < 600


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        (f"amount == {LONG_NUMBER}", "a number of 5,000 digits is too long"),
        ("[1, 2] * 1000000000", "would build a value longer than 100,000"),
        ("in_flow('paymnt')", "did you mean 'payment'?"),
    ],
)
def test_plan_stops_on_a_bad_condition_with_a_clean_error(
    sample: Path, run_cli, condition: str, problem: str
) -> None:
    edit(sample, "finished('dormant')", condition)
    result = run_cli(sample, "--now", DAY0, "plan")
    assert result.code == 2
    assert "Traceback" not in result.out + result.err
    assert result.err.startswith('sheetcrm: RuleError: tags."정리 대상": ')
    assert problem in result.err


def test_a_cell_that_would_blow_up_marks_only_its_row(sample: Path, run_cli) -> None:
    edit(sample, "finished('dormant')", "name * (unopened or 0) == 'x'")
    csv = sample / "sample_sheets" / "customers.csv"
    lines = csv.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index("메일 미열람")] = "1000000000"
    csv.write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n", encoding="utf-8")

    result = run_cli(sample, "--now", DAY0, "--json", "plan")
    assert "Traceback" not in result.out + result.err
    assert result.code == 0
    plan = json.loads(result.out)
    errors = [e for e in plan["errors"] if "longer than" in e["message"]]
    assert [e["key"] for e in errors] == ["soohyun.kim@example.com"]
    assert plan["sends"]  # the other rows were planned as usual
    assert "expression \"name * (unopened or 0) == 'x'\"" in errors[0]["message"]
