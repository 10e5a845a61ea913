"""The planner is pure: records + ledger state + time + config -> Plan. No I/O here."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sheetcrm.config import Config, config_from_dict
from sheetcrm.core.engine import make_plan
from sheetcrm.core.rules import compile_rules
from sheetcrm.core.schema import read_records
from sheetcrm.core.steps import idempotency_key
from sheetcrm.model import Enrollment, Event, EventKind, LedgerState, Plan, Snapshot

SEOUL = ZoneInfo("Asia/Seoul")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SEOUL)
HEADER = ["이메일", "결제 여부", "신청일", "수신 동의", "점수"]


def make_config(raw_change: Callable[[dict[str, Any]], None] | None = None,
                **flow_overrides: object) -> Config:
    flow = {
        "trigger": "결제 대기",
        "goal": "paid",
        "steps": [
            {"after": "0d", "channel": "email", "template": "a"},
            {"after": "2d", "channel": "email", "template": "b", "kind": "ad"},
            {"after": "4d", "channel": "email", "template": "c", "kind": "ad"},
        ],
        **flow_overrides,
    }
    raw = {
        "table": {"path": "x.csv", "key": "email"},
        "fields": {
            "email": {"column": "이메일", "type": "email"},
            "paid": {"column": "결제 여부", "type": "bool"},
            "applied_at": {"column": "신청일", "type": "date"},
            "consent": {"column": "수신 동의", "type": "bool"},
            "score": {"column": "점수", "type": "int"},
        },
        "writeback": {"tags": "상태 태그", "flow": "자동화 흐름", "error": "오류"},
        "tags": {"결제 대기": "not paid and days_since(applied_at) >= 1",
                 "고득점": "score * 2 > 10"},
        "sending": {"consent": "consent"},
        "channels": {"email": {"type": "outbox", "from": "S <s@example.com>", "to": "email"}},
        "flows": {"payment": flow},
    }
    if raw_change:
        raw_change(raw)
    return config_from_dict(raw, {}, path=Path("/tmp/config.toml"))


def plan_for(rows: list[list[str]], state: LedgerState | None = None, now: datetime = NOW,
             config: Config | None = None) -> Plan:
    config = config or make_config()
    table = read_records(Snapshot(HEADER, rows), config)
    return make_plan(table, state or LedgerState(), now, config, compile_rules(config))


def enrolled(key: str, entered: datetime, next_step: int = 0, **kw: object) -> LedgerState:
    state = LedgerState()
    state.enrollments[(key, "payment")] = Enrollment(
        key=key, flow="payment", entry=1, entered_at=entered, anchor_at=None,
        next_step=next_step, id=1, **kw)  # type: ignore[arg-type]
    return state


def test_tags_are_evaluated_and_changes_listed() -> None:
    plan = plan_for([["a@x.com", "X", "2026-11-01", "O", "6"],
                     ["b@x.com", "O", "2026-11-01", "O", "1"]])
    assert plan.tags == {"a@x.com": ["결제 대기", "고득점"], "b@x.com": []}
    assert [(c.key, c.after) for c in plan.tag_changes] == [("a@x.com", ["결제 대기", "고득점"])]


def test_entry_sends_the_first_step_when_it_is_due_at_entry() -> None:
    plan = plan_for([["a@x.com", "X", "2026-11-01", "O", ""]])
    assert [(m.key, m.action) for m in plan.moves] == [("a@x.com", "enter")]
    (send,) = plan.sends
    assert (send.step, send.template, send.due_at) == (0, "a", NOW)
    assert send.idem_key == idempotency_key("a@x.com", "payment", 1, 0)


def test_next_step_waits_for_its_offset() -> None:
    state = enrolled("a@x.com", NOW - timedelta(days=1), next_step=1)
    assert plan_for([["a@x.com", "X", "2026-11-01", "O", ""]], state).sends == []
    state = enrolled("a@x.com", NOW - timedelta(days=2), next_step=1)
    (send,) = plan_for([["a@x.com", "X", "2026-11-01", "O", ""]], state).sends
    assert send.template == "b"


def test_at_most_one_step_per_flow_per_run_even_when_several_are_overdue() -> None:
    state = enrolled("a@x.com", NOW - timedelta(days=30), next_step=0)
    plan = plan_for([["a@x.com", "X", "2026-11-01", "O", ""]], state)
    assert [s.step for s in plan.sends] == [0]


def test_goal_met_exits_as_converted_and_nothing_is_sent() -> None:
    state = enrolled("a@x.com", NOW - timedelta(days=2), next_step=1)
    plan = plan_for([["a@x.com", "O", "2026-11-01", "O", ""]], state)
    assert plan.sends == []
    assert [(m.action, m.detail) for m in plan.moves] == [("converted", "goal met")]
    assert plan.enrollments[0].status == "converted"
    # The state handed in is not modified: the plan holds copies.
    assert state.enrollments[("a@x.com", "payment")].status == "active"


def test_trigger_no_longer_true_exits_as_left() -> None:
    config = make_config(goal=None)
    state = enrolled("a@x.com", NOW - timedelta(days=2), next_step=1)
    # paid now, so "결제 대기" is off; without a goal this is "left", not "converted"
    plan = plan_for([["a@x.com", "O", "2026-11-01", "O", ""]], state, config=config)
    assert [m.action for m in plan.moves] == ["left"]


def test_no_reentry_after_an_exit() -> None:
    state = enrolled("a@x.com", NOW - timedelta(days=9), next_step=3, status="finished")
    plan = plan_for([["a@x.com", "X", "2026-11-01", "O", ""]], state)
    assert plan.moves == [] and plan.sends == []


def test_ads_need_consent_transactional_messages_do_not() -> None:
    rows = [["a@x.com", "X", "2026-11-01", "X", ""]]
    assert len(plan_for(rows).sends) == 1  # step 1 is transactional
    state = enrolled("a@x.com", NOW - timedelta(days=2), next_step=1)
    plan = plan_for(rows, state)
    assert plan.sends == []
    assert plan.held[0].reason == "no consent to advertising (consent is not true)"


def test_kill_switch_holds_everything() -> None:
    paused = make_config(lambda raw: raw["sending"].update(paused=True))
    plan = plan_for([["a@x.com", "X", "2026-11-01", "O", ""]], config=paused)
    assert plan.sends == []
    assert [h.reason for h in plan.held] == ["paused (sending.paused = true)"]
    assert plan.tags["a@x.com"] == ["결제 대기"]  # tags still update


def test_anchored_flow_skips_steps_overdue_beyond_grace_at_entry() -> None:
    config = make_config(anchor="applied_at", grace="1d")
    # applied 2026-11-21 00:00: step 1 (0d) is 2d10h overdue at 11-23 10:00, beyond the
    # grace; step 2 (2d) is 10h overdue, within it, so it goes now.
    plan = plan_for([["a@x.com", "X", "2026-11-21", "O", ""]], config=config)
    assert [(m.action, m.detail) for m in plan.moves] == [
        ("enter", ""), ("skip", "step 1 overdue by more than 1d at entry")]
    assert [s.template for s in plan.sends] == ["b"]


def test_anchored_flow_over_an_old_list_sends_nothing() -> None:
    config = make_config(anchor="applied_at")
    plan = plan_for([["a@x.com", "X", "2025-01-01", "O", ""]], config=config)
    assert plan.sends == []
    assert plan.enrollments[0].status == "finished"


def test_a_bad_cell_makes_the_row_inert_and_the_others_go_on() -> None:
    plan = plan_for([["a@x.com", "X", "2026-02-30", "O", ""],
                     ["b@x.com", "X", "2026-11-01", "O", ""]])
    assert [s.key for s in plan.sends] == ["b@x.com"]
    (error,) = plan.errors
    assert error.key == "a@x.com" and "신청일: '2026-02-30' is not a date" in error.message


def test_blank_and_duplicate_keys_are_never_acted_on() -> None:
    plan = plan_for([["", "X", "2026-11-01", "O", ""],
                     ["d@x.com", "X", "2026-11-01", "O", ""],
                     ["d@x.com", "X", "2026-11-02", "O", ""],
                     ["ok@x.com", "X", "2026-11-01", "O", ""]])
    assert [s.key for s in plan.sends] == ["ok@x.com"]
    assert [e.line for e in plan.errors] == [2, 3, 4]  # the header is row 1


def test_a_rule_failing_at_run_time_marks_only_that_row() -> None:
    config = make_config()
    rules = compile_rules(config)
    table = read_records(Snapshot(HEADER, [["a@x.com", "X", "2026-11-01", "O", "3"],
                                           ["b@x.com", "X", "2026-11-01", "O", "4"]]), config)
    table.records[0].values["score"] = "three"  # as if a text slipped through
    plan = make_plan(table, LedgerState(), NOW, config, rules)
    assert [s.key for s in plan.sends] == ["b@x.com"]
    assert plan.errors[0].key == "a@x.com" and plan.errors[0].message.startswith("rule")


def test_a_blank_recipient_is_held_with_its_reason() -> None:
    def use_contact(raw: dict[str, Any]) -> None:
        raw["fields"]["contact"] = {"column": "점수"}
        raw["channels"]["email"]["to"] = "contact"

    config = make_config(use_contact)
    plan = plan_for([["a@x.com", "X", "2026-11-01", "O", ""]], config=config)
    assert plan.held[0].reason == "no recipient: field 'contact' is blank"


@pytest.mark.parametrize("key", ["a@x.com", "김수현", "a,b;c\r\n"])
def test_idempotency_keys_are_stable_and_header_safe(key: str) -> None:
    first = idempotency_key(key, "payment", 2, 1)
    assert first == idempotency_key(key, "payment", 2, 1)
    assert first != idempotency_key(key, "payment", 2, 2)
    assert first != idempotency_key(key, "payment", 3, 1)
    assert first.isascii() and "\r" not in first and "\n" not in first


def test_a_bounce_holds_mail_to_that_address_not_the_customer_for_good() -> None:
    def use_contact(raw: dict[str, Any]) -> None:
        raw["fields"]["contact"] = {"column": "연락처"}
        raw["channels"]["email"]["to"] = "contact"
        raw["channels"]["hook"] = {"type": "webhook", "url": "https://hooks.example.com/x"}

    def by_webhook(raw: dict[str, Any]) -> None:
        use_contact(raw)
        raw["flows"]["payment"]["steps"][0]["channel"] = "hook"

    state = LedgerState()
    state.events_by_key["a@x.com"] = [Event(
        source="mailbox", event_id="m1", kind=EventKind.BOUNCE, key="a@x.com",
        at=NOW - timedelta(days=1), data={"address": "Old@X.com", "status": "5.1.1"})]

    def plan(contact: str, config: Config) -> Plan:
        rows = [["a@x.com", "X", "2026-11-01", "O", "4", contact]]
        table = read_records(Snapshot([*HEADER, "연락처"], rows), config)
        return make_plan(table, state, NOW, config, compile_rules(config))

    held = plan("old@x.com", make_config(use_contact))
    assert [(h.send.key, h.reason, h.skip) for h in held.held] == [
        ("a@x.com", "the address bounced for good: nothing more is sent to it", True)]
    corrected = plan("new@x.com", make_config(use_contact))
    assert [s.key for s in corrected.sends] == ["a@x.com"] and not corrected.held
    hooked = plan("old@x.com", make_config(by_webhook))
    assert [(s.key, s.channel) for s in hooked.sends] == [("a@x.com", "hook")]
