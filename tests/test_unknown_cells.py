"""A cell that cannot be read makes only its field unknown on that row.

What reads the field waits (a tag, a flow's trigger or goal, a template, a guard that
needs the cell); everything else about the row goes on, and the row's error cell
names the column and what waits for it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sheetcrm.config import Config, config_from_dict
from sheetcrm.core.engine import make_plan
from sheetcrm.core.messages import build_message
from sheetcrm.core.rules import compile_rules
from sheetcrm.core.schema import read_records
from sheetcrm.core.steps import next_send
from sheetcrm.errors import TemplateError
from sheetcrm.model import Enrollment, LedgerState, Plan, Snapshot
from sheetcrm.templates import Templates

SEOUL = ZoneInfo("Asia/Seoul")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SEOUL)
HEADER = ["이메일", "결제 여부", "신청일", "수신 동의", "점수", "강의", "상태 태그"]


def make_config(change: Any = None) -> Config:
    raw: dict[str, Any] = {
        "table": {"path": "x.csv", "key": "email"},
        "fields": {
            "email": {"column": "이메일", "type": "email"},
            "paid": {"column": "결제 여부", "type": "bool"},
            "applied_at": {"column": "신청일", "type": "date"},
            "consent": {"column": "수신 동의", "type": "bool"},
            "score": {"column": "점수", "type": "int"},
            "course": {"column": "강의"},
        },
        "writeback": {"tags": "상태 태그", "error": "오류"},
        "tags": {"결제 대기": "not paid and days_since(applied_at) >= 1",
                 "고득점": "score > 5",
                 "우수 결제자": "paid and tagged('고득점')"},
        "sending": {"consent": "consent"},
        "channels": {"email": {"type": "outbox", "from": "S <s@example.com>", "to": "email"}},
        "flows": {
            "payment": {"trigger": "결제 대기", "goal": "paid",
                        "steps": [{"after": "0d", "channel": "email", "template": "remind"}]},
            "welcome": {"trigger": "paid",
                        "steps": [{"after": "0d", "channel": "email", "template": "welcome"}]},
        },
    }
    if change:
        change(raw)
    return config_from_dict(raw, {}, path=Path("/tmp/config.toml"))


def row(email: str = "a@x.com", paid: str = "X", applied: str = "2026-11-01",
        consent: str = "O", score: str = "", course: str = "파이썬 입문",
        tags: str = "") -> list[str]:
    return [email, paid, applied, consent, score, course, tags]


def plan_for(rows: list[list[str]], config: Config | None = None,
             state: LedgerState | None = None, templates: Templates | None = None) -> Plan:
    config = config or make_config()
    table = read_records(Snapshot(HEADER, rows), config)
    return make_plan(table, state or LedgerState(), NOW, config, compile_rules(config),
                     templates=templates)


def sent(plan: Plan) -> set[tuple[str, str]]:
    return {(s.key, s.flow) for s in plan.sends}


def test_a_bad_cell_in_a_column_no_rule_uses_blocks_nothing() -> None:
    config = make_config(lambda raw: raw["fields"].update(
        {"memo_date": {"column": "강의", "type": "date"}}))  # 강의 read as a date: bad
    plan = plan_for([row()], config)
    assert sent(plan) == {("a@x.com", "payment")}
    assert plan.tags["a@x.com"] == ["결제 대기"]
    (error,) = plan.errors
    assert error.message.startswith("강의: '파이썬 입문' is not a date")
    assert "these wait" not in error.message  # nothing reads it


def test_a_bad_cell_in_a_used_column_blocks_only_the_flows_that_read_it() -> None:
    plan = plan_for([row(paid="O", score="many")])
    # 점수 feeds the tags 고득점 and 우수 결제자 (through tagged()); the welcome flow
    # reads only paid, so it goes on.
    assert sent(plan) == {("a@x.com", "welcome")}
    assert plan.tags["a@x.com"] == []
    (error,) = plan.errors
    assert error.message == ("점수: 'many' is not a whole number like 42, 007 or 1,234; "
                             "until it is fixed, these wait: tags '고득점', '우수 결제자'")


def test_the_flow_that_reads_the_bad_cell_waits_and_the_error_cell_says_so() -> None:
    plan = plan_for([row(applied="2026-02-30"), row("b@x.com")])
    assert sent(plan) == {("b@x.com", "payment")}
    assert not [m for m in plan.moves if m.key == "a@x.com"]  # not entered on a guess
    (error,) = plan.errors
    assert error.key == "a@x.com"
    assert error.message.startswith("신청일: '2026-02-30' is not a date like")
    assert error.message.endswith(
        "until it is fixed, these wait: tags '결제 대기' and flows 'payment'")
    rec = plan.records[0]
    assert rec.errors == [error.message]  # what the row's error cell shows


def test_a_rule_that_gets_its_answer_without_the_bad_cell_is_known() -> None:
    # Paid: "not paid and days_since(applied_at) >= 1" is false whatever the date is.
    plan = plan_for([row(paid="O", applied="someday")])
    assert sent(plan) == {("a@x.com", "welcome")}
    (error,) = plan.errors
    assert "these wait" not in error.message


def test_a_tag_that_is_not_known_stays_as_the_sheet_shows_it() -> None:
    plan = plan_for([row(score="lots", tags="고득점"), row("b@x.com", score="lots")])
    assert plan.tags == {"a@x.com": ["결제 대기", "고득점"], "b@x.com": ["결제 대기"]}
    changes = {c.key: (c.before, c.after) for c in plan.tag_changes}
    assert changes == {"a@x.com": (["고득점"], ["결제 대기", "고득점"]),
                       "b@x.com": ([], ["결제 대기"])}


def test_a_customer_in_a_flow_whose_goal_cell_is_unreadable_is_left_as_they_are() -> None:
    state = LedgerState()
    state.enrollments[("a@x.com", "payment")] = Enrollment(
        key="a@x.com", flow="payment", entry=1, entered_at=datetime(2026, 11, 20, tzinfo=SEOUL),
        anchor_at=None, next_step=0, id=1)
    # The goal reads 점수 (a first lesson scored); 점수 cannot be read: the customer may
    # have converted. Nothing is sent, nobody exits, on a guess.
    config = make_config(lambda raw: raw["flows"]["payment"].update(goal="score >= 1"))
    plan = plan_for([row(score="?")], config, state=state)
    assert plan.sends == [] and plan.moves == [] and plan.enrollments == []
    (error,) = plan.errors
    assert error.message.endswith(
        "until it is fixed, these wait: tags '고득점' and flows 'payment'")


def test_an_unreadable_recipient_holds_the_send_and_names_the_column() -> None:
    plan = plan_for([row("suzy.bae@")])
    assert plan.sends == []
    (held,) = plan.held
    assert held.send.key == "suzy.bae@" and not held.skip
    assert held.reason == ("the cell '이메일' could not be read and this message needs it; "
                           "it waits until the cell is fixed")


def test_an_ad_waits_when_the_consent_cell_is_unreadable_instead_of_being_skipped() -> None:
    def ad(raw: dict[str, Any]) -> None:
        raw["flows"]["payment"]["steps"][0]["kind"] = "ad"

    plan = plan_for([row(consent="글쎄")], make_config(ad))
    (held,) = plan.held
    assert "'수신 동의' could not be read" in held.reason and not held.skip


def write_templates(folder: Path) -> Templates:
    folder.mkdir(exist_ok=True)
    (folder / "remind.j2").write_text(
        "{% block subject %}결제 안내{% endblock %}"
        "{% block text %}{% include 'course.j2' %}{% endblock %}", encoding="utf-8")
    (folder / "course.j2").write_text("{{ course }} 결제가 남았어요", encoding="utf-8")
    (folder / "welcome.j2").write_text(
        "{% block subject %}환영합니다{% endblock %}{% block text %}반가워요{% endblock %}",
        encoding="utf-8")
    return Templates(folder)


def test_a_template_that_uses_the_bad_cell_waits_and_others_go(tmp_path: Path) -> None:
    config = make_config(lambda raw: raw["fields"]["course"].update({"type": "int"}))
    templates = write_templates(tmp_path / "templates")
    # 강의 is not a number here: remind.j2 uses it (through the file it includes).
    plan = plan_for([row(), row("b@x.com", paid="O")], config, templates=templates)
    assert sent(plan) == {("b@x.com", "welcome")}
    (held,) = plan.held
    assert held.send.key == "a@x.com" and not held.skip
    assert held.reason == ("template 'remind' uses '강의', which could not be read on this row; "
                           "the message waits until the cell is fixed")


def test_a_message_is_never_rendered_with_an_unreadable_cell(tmp_path: Path) -> None:
    config = make_config(lambda raw: raw["fields"]["course"].update({"type": "int"}))
    templates = write_templates(tmp_path / "templates")
    table = read_records(Snapshot(HEADER, [row()]), config)
    rec = table.records[0]
    e = Enrollment(key="a@x.com", flow="payment", entry=1, entered_at=NOW, anchor_at=None)
    send = next_send(e, config.flows["payment"])
    with pytest.raises(TemplateError, match="'강의', which could not be read"):
        build_message(rec, send, [], NOW, config, templates)
    assert templates.reads("remind") >= {"course"}
    assert "course" not in templates.reads("welcome")


def test_a_rule_failing_wherever_it_is_known_is_still_broken() -> None:
    # 'applied_at >= 14' compares a date with a number: it fails on every row where
    # the date can be read; the row where it cannot does not hide that.
    config = make_config(lambda raw: raw["tags"].update({"신규": "applied_at >= 14"}))
    plan = plan_for([row(), row("b@x.com", applied="someday")], config)
    assert plan.broken_rules == ['tags."신규"']
