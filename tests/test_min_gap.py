"""``[sending] min_gap``: one customer never gets two messages closer than the gap.

Across all flows: a send waits (deferred, never skipped) while the customer's last
message is younger than the gap, or while another message to them goes out in the
same run. The flows written first in the config go first.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sheetcrm.config import Config, config_from_dict
from sheetcrm.core.engine import make_plan
from sheetcrm.core.rules import compile_rules
from sheetcrm.core.schema import read_records
from sheetcrm.errors import ConfigError
from sheetcrm.model import LedgerState, Plan, SendRecord, SendStatus, Snapshot

SEOUL = ZoneInfo("Asia/Seoul")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SEOUL)
HEADER = ["이메일", "결제 여부"]


def make_config(**sending: Any) -> Config:
    step = {"after": "0d", "channel": "email", "template": "t"}
    return config_from_dict({
        "table": {"path": "x.csv", "key": "email"},
        "fields": {"email": {"column": "이메일", "type": "email"},
                   "paid": {"column": "결제 여부", "type": "bool"}},
        "sending": sending,
        "channels": {"email": {"type": "outbox", "from": "S <s@example.com>", "to": "email"}},
        "flows": {"welcome": {"trigger": "paid", "steps": [step]},
                  "review": {"trigger": "paid", "steps": [step]}},
    }, {}, path=Path("/tmp/config.toml"))


def plan_for(config: Config, state: LedgerState | None = None,
             now: datetime = NOW) -> Plan:
    table = read_records(Snapshot(HEADER, [["a@x.com", "O"], ["b@x.com", "O"]]), config)
    return make_plan(table, state or LedgerState(), now, config, compile_rules(config))


def delivered(at: datetime, key: str = "a@x.com") -> LedgerState:
    state = LedgerState()
    state.sends_by_key[key].append(SendRecord(
        idem_key="sc-old", key=key, flow="other", entry=1, step=0, channel="email",
        template="t", kind="transactional", status=SendStatus.SENT, created_at=at,
        finished_at=at))
    return state


def test_two_flows_due_together_send_one_message_and_the_other_waits() -> None:
    plan = plan_for(make_config(min_gap="1h"))
    assert sorted((s.key, s.flow) for s in plan.sends) == [("a@x.com", "welcome"),
                                                           ("b@x.com", "welcome")]
    held = {(h.send.key, h.send.flow): h for h in plan.held}
    assert set(held) == {("a@x.com", "review"), ("b@x.com", "review")}
    hold = held["a@x.com", "review"]
    assert not hold.skip  # deferred: the review request still goes, later
    assert hold.reason == ("min_gap 1h: another message goes to this customer in this run; "
                           "this one waits for a later run")


def test_without_min_gap_both_go_in_the_same_run() -> None:
    plan = plan_for(make_config())
    assert len(plan.sends) == 4 and plan.held == []


def test_a_message_waits_while_the_last_one_is_younger_than_the_gap() -> None:
    config = make_config(min_gap="1h")
    plan = plan_for(config, delivered(NOW - timedelta(minutes=30)))
    assert {s.key for s in plan.sends} == {"b@x.com"}  # the other customer is not held
    reasons = {h.reason for h in plan.held if h.send.key == "a@x.com"}
    assert reasons == {"min_gap 1h: the last message to this customer went out 2026-11-23 "
                       "09:30; this one waits until 2026-11-23 10:30"}


def test_once_the_gap_has_passed_the_next_message_goes() -> None:
    config = make_config(min_gap="1h")
    plan = plan_for(config, delivered(NOW - timedelta(hours=1)))
    assert ("a@x.com", "welcome") in {(s.key, s.flow) for s in plan.sends}


def test_a_failed_send_does_not_count_as_the_last_message() -> None:
    state = delivered(NOW - timedelta(minutes=5))
    state.sends_by_key["a@x.com"][0].status = SendStatus.FAILED
    plan = plan_for(make_config(min_gap="1h"), state)
    assert ("a@x.com", "welcome") in {(s.key, s.flow) for s in plan.sends}


@pytest.mark.parametrize("value", ["0", "off", ""])
def test_min_gap_can_be_turned_off(value: str) -> None:
    assert make_config(min_gap=value).sending.min_gap is None


def test_a_min_gap_that_is_not_a_duration_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"sending\.min_gap: .*'1 hour'.* is not a duration"):
        make_config(min_gap="1 hour")
