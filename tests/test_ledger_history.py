"""A run loads the sends its planner can read, not the whole history: the recent ones,
the current entry's, each customer's latest delivered and latest reported, and a
removed flow's; a config that counts every message ever sent loads them all."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sheetcrm.config import Config, config_from_dict
from sheetcrm.ledger import HistoryScope, Ledger, history_scope
from sheetcrm.ledger.recent import MARGIN
from sheetcrm.model import (
    DELIVERED,
    DeliveryReport,
    DeliveryState,
    Enrollment,
    EnrollmentStatus,
    LedgerState,
    SendRecord,
    SendStatus,
)
from tests.test_ledger import old_ledger

NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
WEEK = HistoryScope(NOW - timedelta(days=7) - MARGIN, frozenset({"payment"}))


def enroll(ledger: Ledger, key: str, entry: int, status: EnrollmentStatus,
           flow: str = "payment") -> None:
    ledger.save_enrollments([Enrollment(key=key, flow=flow, entry=entry, entered_at=NOW,
                                        anchor_at=None, status=status)])


def sent(ledger: Ledger, key: str, entry: int, step: int, days_ago: float,
         flow: str = "payment", message_id: str | None = None) -> str:
    at = NOW - timedelta(days=days_ago)
    rec = SendRecord(idem_key=f"{key}-{flow}-e{entry}-s{step}", key=key, flow=flow,
                     entry=entry, step=step, channel="email", template=f"t{step}",
                     kind="transactional", status=SendStatus.PENDING, created_at=at)
    assert ledger.claim_send(rec, run_id=1)
    ledger.finish_send(rec.idem_key, SendStatus.SENT, at, message_id=message_id,
                       accepted=message_id is not None)
    return rec.idem_key


def loaded(state: LedgerState) -> set[str]:
    return {r.idem_key for sends in state.sends_by_key.values() for r in sends}


def latest(state: LedgerState, key: str) -> str | None:
    delivered = [r for r in state.sends_for(key) if r.status in DELIVERED]
    return max(delivered, key=lambda r: r.finished_at or r.created_at).idem_key \
        if delivered else None


def history(tmp_path: Path) -> Ledger:
    ledger = Ledger.open(tmp_path / "state.db")
    enroll(ledger, "done@x.com", 1, EnrollmentStatus.FINISHED)
    sent(ledger, "done@x.com", 1, 0, days_ago=60)
    sent(ledger, "done@x.com", 1, 1, days_ago=59)  # the latest: shown in last_sent
    enroll(ledger, "again@x.com", 1, EnrollmentStatus.FINISHED)
    sent(ledger, "again@x.com", 1, 0, days_ago=80)
    enroll(ledger, "again@x.com", 2, EnrollmentStatus.ACTIVE)
    sent(ledger, "again@x.com", 2, 0, days_ago=40)  # the current entry: step 1 done
    enroll(ledger, "recent@x.com", 1, EnrollmentStatus.FINISHED)
    sent(ledger, "recent@x.com", 1, 0, days_ago=30)
    sent(ledger, "recent@x.com", 1, 1, days_ago=2)  # inside the week
    enroll(ledger, "sms@x.com", 1, EnrollmentStatus.FINISHED)
    sent(ledger, "sms@x.com", 1, 0, days_ago=50, message_id="M1")
    sent(ledger, "sms@x.com", 1, 1, days_ago=45, message_id="M2")
    sent(ledger, "sms@x.com", 1, 2, days_ago=44, message_id="M3")
    for message_id, days_ago in (("M1", 49), ("M2", 44)):
        ledger.apply_delivery(DeliveryReport("solapi", message_id, DeliveryState.FAILED,
                                             "3104", NOW - timedelta(days=days_ago)), NOW)
    return ledger


def test_a_scoped_load_leaves_old_history_out_but_keeps_what_the_planner_reads(
        tmp_path: Path) -> None:
    ledger = history(tmp_path)
    full = ledger.load_state()
    scoped = ledger.load_state(scope=WEEK)
    ledger.close()
    assert loaded(scoped) == {
        "done@x.com-payment-e1-s1",  # the latest delivered, 59 days back
        "again@x.com-payment-e2-s0",  # the active entry's, 40 days back
        "recent@x.com-payment-e1-s1",  # within the week
        "sms@x.com-payment-e1-s1",  # the latest reported on (failed)
        "sms@x.com-payment-e1-s2",  # the latest delivered
    }
    assert len(loaded(full)) == 9
    for key in ("done@x.com", "again@x.com", "recent@x.com", "sms@x.com"):
        assert latest(scoped, key) == latest(full, key)
    assert "again@x.com-payment-e2-s0" in scoped.sent_keys  # never sent twice
    assert scoped.enrollments.keys() == full.enrollments.keys()
    # In the order they were recorded, as a full load gives them.
    assert [r.idem_key for r in scoped.sends_for("sms@x.com")] == [
        "sms@x.com-payment-e1-s1", "sms@x.com-payment-e1-s2"]


def test_the_sends_of_a_flow_gone_from_the_config_all_load_while_it_is_gone(
        tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "state.db")
    enroll(ledger, "a@x.com", 1, EnrollmentStatus.FINISHED, flow="old")
    first = sent(ledger, "a@x.com", 1, 0, days_ago=90, flow="old")
    sent(ledger, "a@x.com", 1, 1, days_ago=89, flow="old")
    ledger.record_flows(["payment", "old"], [], NOW)
    assert first in loaded(ledger.load_state(scope=WEEK))
    renamed = ledger.load_state({"old": "payment"}, scope=WEEK)  # renamed, not gone
    ledger.record_flows(["payment"], [], NOW)
    settled = ledger.load_state(scope=WEEK)
    ledger.close()
    assert first not in loaded(renamed)
    assert first not in loaded(settled)


def test_an_older_ledger_learns_each_customers_latest_send_when_it_is_upgraded(
        tmp_path: Path) -> None:
    ledger = Ledger.open(old_ledger(tmp_path))  # one send, long ago
    scoped = ledger.load_state(scope=WEEK)
    ledger.close()
    assert loaded(scoped) == {"sc-payment-e1-s1-x"}
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("SELECT key, delivered FROM latest_sends").fetchall() == [
            ("a@x.com", "sc-payment-e1-s1-x")]


def test_a_newer_send_is_the_latest_and_an_older_one_finished_late_is_not(
        tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "state.db")
    enroll(ledger, "a@x.com", 1, EnrollmentStatus.FINISHED)
    sent(ledger, "a@x.com", 1, 1, days_ago=30)
    sent(ledger, "a@x.com", 1, 0, days_ago=31)  # recorded later, finished earlier
    scoped = ledger.load_state(scope=WEEK)
    ledger.close()
    assert loaded(scoped) == {"a@x.com-payment-e1-s1"}


def raw_config(tags: dict[str, str] | None = None, **sending: Any) -> dict[str, Any]:
    """One flow, one tag (or ``tags``), ``[sending]`` as given: the config's tables."""
    step = {"after": "1d", "channel": "email", "template": "t"}
    return {
        "table": {"path": "x.csv", "key": "email"},
        "fields": {"email": {"column": "이메일", "type": "email"},
                   "paid": {"column": "결제 여부", "type": "bool"}},
        "tags": tags or {"결제 대기": "not paid"},
        "sending": sending,
        "channels": {"email": {"type": "outbox", "from": "S <s@example.com>", "to": "email"}},
        "flows": {"payment": {"trigger": "결제 대기", "goal": "paid", "steps": [step]}},
    }


def config(tags: dict[str, str] | None = None, **sending: Any) -> Config:
    return config_from_dict(raw_config(tags, **sending), {}, path=Path("/tmp/config.toml"))


def test_the_scope_reaches_back_as_far_as_the_config_reads() -> None:
    assert history_scope(config(), NOW) == HistoryScope(NOW - MARGIN, frozenset({"payment"}))
    assert history_scope(config(frequency_cap="2/7d", min_gap="1h"), NOW).since == \
        NOW - timedelta(days=7) - MARGIN
    counted = config({"자주 받음": "sent_count(days=30) >= 3",
                      "최근": "sent_count(14, flow='payment') > 0",
                      "결제 대기": "not paid"}, min_gap="2d")
    assert history_scope(counted, NOW).since == NOW - timedelta(days=30) - MARGIN


def test_a_config_that_counts_every_message_ever_sent_loads_the_whole_history() -> None:
    for condition in ("sent_count() == 0", "sent_count(flow='payment') < 2",
                      "sent_count(days=(7 if paid else 30)) > 1",
                      "sent_count(flow='a, days=3, b') < 2"):
        scope = history_scope(config({"새 고객": condition, "결제 대기": "not paid"}), NOW)
        assert scope.since is None, condition
