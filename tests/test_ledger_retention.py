"""``[ledger] keep``: history older than the window is forgotten at the end of a sync,
and nothing a run reads or a guarantee rests on goes with it.

Real ledger files throughout: two months of the shipped sample (``support.month``),
pruned to 30 days, plan exactly as before; an old opt-out still holds; a pending or
uncertain send stays; a claim killed mid-way long ago is still recovered; a config
whose rules read further back than ``keep`` is refused; a run loads no event it no
longer needs; and the unsubscribe link of a forgotten message still works.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sheetcrm.app.runner import preview
from sheetcrm.config import Config, config_from_dict, load_config
from sheetcrm.core.steps import idempotency_key
from sheetcrm.errors import ConfigError
from sheetcrm.ledger import Ledger, history_scope
from sheetcrm.ledger.schema import iso
from sheetcrm.model import EnrollmentStatus, Event, EventKind, SendRecord, SendStatus
from sheetcrm.table import open_table
from sheetcrm.tokens import make_token
from tests.support.endpoint import (
    ENV,
    FORM,
    HEARD_AT,
    ONE_CLICK,
    SECRET,
    opt_events,
    request,
    serving,
    synced_sample,
)
from tests.support.month import START, simulate_month
from tests.support.sample import DAY0, use_webhook
from tests.support.servers import WebhookServer
from tests.test_crash_safety import received_ids
from tests.test_ledger_history import enroll, raw_config, sent
from tests.test_unsubscribe_endpoint import SOHEE

DAYS = 60
NOW = START + timedelta(days=DAYS)  # the morning after two months of syncs
KEEP = '\n[ledger]\nkeep = "30d"\n'


@pytest.fixture(scope="module")
def two_months(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two months of the sample's daily syncs, kept whole (no ``keep`` yet)."""
    folder = tmp_path_factory.mktemp("months")
    simulate_month(folder, days=DAYS)
    return folder


@pytest.fixture
def history(two_months: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of the two months, with ``keep = "30d"`` in its config."""
    folder = tmp_path / "sample"
    shutil.copytree(two_months, folder)
    with (folder / "config.toml").open("a", encoding="utf-8") as f:
        f.write(KEEP)
    yield folder


def planned(config: Config) -> dict[str, Any]:
    """Everything ``plan`` shows: sends, held sends and why, flow moves, tags, cells."""
    result = preview(config, NOW, open_table(config))
    plan = result.plan
    return {
        "sends": [(s.key, s.flow, s.step, s.idem_key, s.variant, s.kind) for s in plan.sends],
        "held": [(h.send.key, h.send.flow, h.send.step, h.reason, h.skip) for h in plan.held],
        "moves": [(m.key, m.flow, m.action, m.detail) for m in plan.moves],
        "tags": dict(plan.tags),
        "cells": [(u.key, u.column, u.value) for u in result.updates],
    }


def count(folder: Path, sql: str) -> int:
    with sqlite3.connect(folder / ".sheetcrm/state.db") as db:
        return int(db.execute(sql).fetchone()[0])


def test_a_pruned_ledger_plans_exactly_the_same_sends_and_tags(history: Path) -> None:
    config = load_config(history / "config.toml", {})
    before = planned(config)
    assert before["sends"] and before["held"]  # a plan with something in it to compare
    sends_before = count(history, "SELECT COUNT(*) FROM sends")

    ledger = Ledger.open(config.state_path)
    pruned = ledger.prune(config, NOW)
    ledger.close()

    assert pruned.sends > 100 and pruned.events > 100 and pruned.tag_changes > 50
    assert count(history, "SELECT COUNT(*) FROM sends") == sends_before - pruned.sends
    assert planned(config) == before
    # Every customer's latest send is still the one latest_sends points at.
    assert count(history, "SELECT COUNT(*) FROM latest_sends l WHERE (l.delivered IS NOT NULL"
                          " AND l.delivered NOT IN (SELECT idem_key FROM sends))"
                          " OR (l.reported IS NOT NULL"
                          " AND l.reported NOT IN (SELECT idem_key FROM sends))") == 0
    cut = (NOW - timedelta(days=30)).astimezone(UTC).isoformat()
    assert count(history, f"SELECT COUNT(*) FROM tag_changes WHERE at < '{cut}'") == 0
    assert count(history, "SELECT COUNT(*) FROM enrollments") > 0


def test_opt_outs_and_bounces_older_than_the_window_are_kept_and_honoured(
        history: Path) -> None:
    config = load_config(history / "config.toml", {})
    ledger = Ledger.open(config.state_path)
    old = NOW - timedelta(days=50)
    ads = {s[0] for s in planned(config)["sends"] if s[5] == "ad"}
    assert ads
    key = sorted(ads)[0]
    ledger.record_event(Event(source="unsubscribe", event_id="old-opt-out",
                              kind=EventKind.OPT_OUT, key=key, at=old))
    kept = count(history, "SELECT COUNT(*) FROM events WHERE kind IN ('opt_out', 'bounce')")
    ledger.prune(config, NOW)
    state = ledger.load_state(scope=history_scope(config, NOW))
    ledger.close()

    assert count(history, "SELECT COUNT(*) FROM events WHERE kind IN ('opt_out', 'bounce')"
                 ) == kept
    assert count(history, "SELECT COUNT(*) FROM events WHERE kind IN ('opt_out', 'bounce')"
                          f" AND at < '{(NOW - timedelta(days=30)).astimezone(UTC).isoformat()}'"
                 ) >= 2  # the sample's own old ones, and this one
    assert state.opted_out(key) == old
    after = planned(config)
    assert key not in {s[0] for s in after["sends"] if s[5] == "ad"}


T = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def small_config(folder: Path, tags: dict[str, str] | None = None, *, keep: str | None = None,
                 events: bool = False, engagement: bool = False, **sending: Any) -> Config:
    """One flow, one tag; ``keep``, an ``[events.paid]`` webhook and the engagement
    column when asked."""
    raw = {**raw_config(tags, **sending), "state": "state.db"}
    if keep is not None:
        raw["ledger"] = {"keep": keep}
    if engagement:
        raw["writeback"] = {"engagement": "반응"}
    if events:
        raw["server"] = {"public_url": "https://crm.example.com", "secret": "s" * 32}
        raw["events"] = {"paid": {"source": "standard", "secret": "w" * 32,
                                  "key": "email", "set": {"paid": True}}}
    return config_from_dict(raw, {}, path=folder / "config.toml")


def test_a_pending_or_uncertain_send_is_never_pruned(tmp_path: Path) -> None:
    config = small_config(tmp_path, keep="7d")
    ledger = Ledger.open(config.state_path)
    long_ago = T - timedelta(days=90)
    for key, status in (("pending@x.com", SendStatus.PENDING),
                        ("unsure@x.com", SendStatus.UNCERTAIN),
                        ("retry@x.com", SendStatus.RETRY), ("sent@x.com", SendStatus.SENT)):
        enroll(ledger, key, 1, EnrollmentStatus.FINISHED)
        rec = SendRecord(idem_key=f"{key}-s0", key=key, flow="payment", entry=1, step=0,
                         channel="email", template="t", kind="transactional",
                         status=SendStatus.PENDING, created_at=long_ago)
        assert ledger.claim_send(rec, run_id=1)
        if status is not SendStatus.PENDING:
            ledger.finish_send(rec.idem_key, status, long_ago)
    sent(ledger, "sent@x.com", 1, 1, days_ago=80)  # now the latest: s0 may go
    enroll(ledger, "active@x.com", 1, EnrollmentStatus.ACTIVE)  # its next step is checked
    sent(ledger, "active@x.com", 1, 0, days_ago=90)  # against these idempotency keys
    sent(ledger, "active@x.com", 1, 1, days_ago=85)
    pruned = ledger.prune(config, T)
    ledger.close()
    with sqlite3.connect(config.state_path) as db:
        left = dict(db.execute("SELECT idem_key, status FROM sends").fetchall())
    assert pruned.sends == 1
    assert left == {"pending@x.com-s0": "pending", "unsure@x.com-s0": "uncertain",
                    "retry@x.com-s0": "retry", "sent@x.com-payment-e1-s1": "sent",
                    "active@x.com-payment-e1-s0": "sent", "active@x.com-payment-e1-s1": "sent"}


def run_at(folder: Path, now: str, kill_at: str | None = None) -> tuple[int, str, str]:
    """``sheetcrm sync`` at ``now`` in its own process, killed at ``kill_at`` if given."""
    env = {k: v for k, v in os.environ.items() if k != "SHEETCRM_KILL_AT"}
    if kill_at:
        env["SHEETCRM_KILL_AT"] = kill_at
    proc = subprocess.run(
        [sys.executable, "-m", "sheetcrm.cli", "--now", now, "--json", "sync"], cwd=folder,
        env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def test_a_claim_killed_long_ago_is_still_recovered_and_never_sent_twice(
        sample: Path) -> None:
    with WebhookServer() as server:
        use_webhook(sample, server.url)
        code, _, err = run_at(sample, DAY0, "after-send:1")  # left, never marked
        assert code == -signal.SIGKILL, err
        with (sample / "config.toml").open("a", encoding="utf-8") as f:
            f.write(KEEP)
        code, out, err = run_at(sample, "2027-01-22T10:00")  # two months later
        assert code == 0, err
        assert len(json.loads(out)["recovered"]) == 1
        counts = received_ids(server)
    assert max(counts.values()) == 1  # the interrupted one was not sent again
    with sqlite3.connect(sample / ".sheetcrm/state.db") as db:
        old = db.execute("SELECT status, COUNT(*) FROM sends WHERE created_at < '2026-12-01'"
                         " GROUP BY status").fetchall()
        pruned_at = db.execute("SELECT value FROM meta WHERE name = 'pruned_at'").fetchone()
    assert pruned_at is not None  # the sync pruned
    assert dict(old).get("uncertain") == 1  # older than the window, and kept


def test_rules_reading_further_back_than_keep_are_refused_naming_the_condition(
        tmp_path: Path) -> None:
    refused = [
        ({"자주 받음": "sent_count(days=60) >= 3"}, {}, "tags.\"자주 받음\"",
         "reads 60 days back, but [ledger] keep = 30d"),
        ({"새 고객": "sent_count() == 0"}, {}, "tags.\"새 고객\"", "reads the whole history"),
        ({"반응": "clicked(45)"}, {}, "tags.\"반응\"", "reads 45 days back"),
        ({"결제 대기": "not paid"}, {"frequency_cap": "2/60d"}, "ledger.keep",
         "sending.frequency_cap looks 60d back"),
    ]
    for tags, sending, path, words in refused:
        config = small_config(tmp_path, {**tags, "결제 대기": "not paid"}, keep="30d", **sending)
        with pytest.raises(ConfigError) as caught:
            history_scope(config, T)
        assert caught.value.path == path and words in str(caught.value), str(caught.value)
    fine = small_config(tmp_path, {"자주 받음": "sent_count(days=30) >= 3",
                                   "결제 대기": "not paid"}, keep="30d", frequency_cap="2/7d")
    assert history_scope(fine, T).since is not None
    unbounded = small_config(tmp_path, {"새 고객": "sent_count() == 0", "결제 대기": "not paid"})
    assert history_scope(unbounded, T).since is None  # without keep: as before


def test_a_condition_that_is_only_a_sent_count_call_loads_its_whole_window(
        tmp_path: Path) -> None:
    config = small_config(tmp_path, {"받은 적 있음": "sent_count(days=30)",
                                     "결제 대기": "not paid"})
    assert history_scope(config, T).since == T - timedelta(days=31)


def test_keep_shorter_than_a_week_or_not_a_duration_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"keep = '3d' is less than 7 days"):
        small_config(tmp_path, keep="3d")
    with pytest.raises(ConfigError, match=r"ledger\.keep.*'a year' is not a duration"):
        small_config(tmp_path, keep="a year")
    assert small_config(tmp_path, keep="8w").model.ledger.keep == timedelta(weeks=8)
    assert small_config(tmp_path).model.ledger.keep is None


def test_plan_refuses_a_window_longer_than_keep_in_korean_without_a_traceback(
        history: Path, korean: None) -> None:
    text = (history / "config.toml").read_text(encoding="utf-8")
    (history / "config.toml").write_text(text.replace('keep = "30d"', 'keep = "14d"'),
                                         encoding="utf-8")
    config = load_config(history / "config.toml", {})
    with pytest.raises(ConfigError) as caught:
        preview(config, NOW, open_table(config))
    message = str(caught.value)
    assert "21" in message and "14d" in message and "Traceback" not in message
    assert "[ledger] keep" in message and "보관" in message, message


def test_a_run_loads_no_event_applied_long_ago_nor_any_its_rules_do_not_read(
        tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "state.db")
    for i in range(300):  # payments written into the sheet long ago
        at = T - timedelta(days=100 - i % 50)
        ledger.record_event(Event(source="events.paid", event_id=f"old{i}", name="paid",
                                  kind=EventKind.EXTERNAL, key=f"c{i}@x.com", at=at,
                                  data={"set": {"paid": "O"}}))
    ledger.mark_applied(range(1, 301), T - timedelta(days=40))
    for i in range(3):  # waiting for their rows
        ledger.record_event(Event(source="events.paid", event_id=f"new{i}", name="paid",
                                  kind=EventKind.EXTERNAL, key=f"n{i}@x.com", at=T,
                                  data={"set": {"paid": "O"}}))
    ledger.record_event(Event(source="unsubscribe", event_id="u", kind=EventKind.OPT_OUT,
                              key="c1@x.com", at=T - timedelta(days=200)))
    ledger.record_event(Event(source="click", event_id="k", kind=EventKind.CLICK,
                              key="c2@x.com", at=T - timedelta(days=1)))
    for event_id, days in (("o", 1), ("o-old", 30)):
        ledger.record_event(Event(source="open", event_id=event_id, kind=EventKind.OPEN,
                                  key="c2@x.com", at=T - timedelta(days=days)))
    ledger.record_event(Event(source="mailbox", event_id="r", kind=EventKind.REPLY,
                              key="c3@x.com", at=T - timedelta(days=300)))

    def loaded(config: Config) -> list[str]:
        state = ledger.load_state(scope=history_scope(config, T))
        return sorted(e.event_id for events in state.events_by_key.values() for e in events)

    plain = loaded(small_config(tmp_path, events=True))
    counted = loaded(small_config(tmp_path, {"결제 대기": "event_count('paid', days=60) == 0"},
                                  events=True))
    everything = loaded(small_config(tmp_path, {"결제 대기": "last_event('paid') is none"},
                                     events=True))
    shown = loaded(small_config(tmp_path, {"결제 대기": "not paid and not opened(days=3)"},
                                engagement=True))
    whole = ledger.load_state()
    ledger.close()
    # Waiting for their rows, the opt-out and the reply: never the clicks and opens no
    # rule reads, nor the events written into the sheet long ago.
    assert plain == ["new0", "new1", "new2", "r", "u"]
    # Those of the last 61 days (the window and its day of margin): 61 to 51 days back.
    assert len(counted) == 5 + 300 // 50 * 11
    assert len(everything) == 5 + 300
    assert shown == ["k", "new0", "new1", "new2", "o", "r", "u"]  # clicks for the column
    assert len(whole.events_by_key) == 303 and sum(
        len(v) for v in whole.events_by_key.values()) == 308  # a load without a scope


def test_runs_and_old_rule_sets_go_but_the_last_ok_run_and_the_rules_in_force_stay(
        tmp_path: Path) -> None:
    config = small_config(tmp_path, keep="7d")
    ledger = Ledger.open(config.state_path)
    long_ago = T - timedelta(days=30)
    ok = ledger.start_run("sync", long_ago)
    ledger.finish_run(ok, long_ago, "ok", {})
    for day in range(3):  # failing since
        run = ledger.start_run("sync", long_ago + timedelta(days=day + 1))
        ledger.finish_run(run, long_ago + timedelta(days=day + 1), "channel_down", {})
    stalled = ledger.stalled_runs()
    for hash_ in ("aaaa1111", "cccc3333", "bbbb2222"):  # the last one is in force
        ledger.accept_rules(hash_, "{}", long_ago)
    enroll(ledger, "a@x.com", 1, EnrollmentStatus.FINISHED)
    sent(ledger, "a@x.com", 1, 0, days_ago=40)  # forgotten, with the rule set it names
    ledger.stamp_sends(1, "cccc3333")
    sent(ledger, "a@x.com", 1, 1, days_ago=1)  # kept: its rule set stays
    ledger.stamp_unnamed("aaaa1111", iso(T - timedelta(days=2)))
    pruned = ledger.prune(config, T)
    assert (pruned.sends, pruned.runs, pruned.rulesets) == (1, 0, 1)
    assert ledger.stalled_runs() == stalled
    ledger.close()
    with sqlite3.connect(config.state_path) as db:
        kept = [row[0] for row in db.execute("SELECT hash FROM rulesets ORDER BY id")]
    assert kept == ["aaaa1111", "bbbb2222"]


def test_a_second_prune_within_the_hour_walks_nothing_and_a_cut_short_one_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = small_config(tmp_path, keep="7d")
    ledger = Ledger.open(config.state_path)
    for i in range(5):
        enroll(ledger, f"c{i}@x.com", 1, EnrollmentStatus.FINISHED)
        sent(ledger, f"c{i}@x.com", 1, 0, days_ago=60)
        sent(ledger, f"c{i}@x.com", 1, 1, days_ago=59)
    monkeypatch.setattr("sheetcrm.ledger.retention.BATCH", 2)
    monkeypatch.setattr("sheetcrm.ledger.retention.MOST", 2)
    first = ledger.prune(config, T)  # one batch of two: the rest waits
    second = ledger.prune(config, T + timedelta(minutes=5))
    third = ledger.prune(config, T + timedelta(minutes=10))
    monkeypatch.setattr("sheetcrm.ledger.retention.MOST", 100)
    fourth = ledger.prune(config, T + timedelta(minutes=15))  # goes through to the end
    enroll(ledger, "late@x.com", 1, EnrollmentStatus.FINISHED)
    sent(ledger, "late@x.com", 1, 0, days_ago=60)
    sent(ledger, "late@x.com", 1, 1, days_ago=59)
    waits = ledger.prune(config, T + timedelta(minutes=20))  # walked through: waits an hour
    later = ledger.prune(config, T + timedelta(hours=2))
    ledger.close()
    # Oldest first, two rows a walk: five forgettable, then the five latest (kept).
    assert [p.sends for p in (first, second, third, fourth, waits, later)] == [2, 2, 1, 0, 0, 1]


def test_the_unsubscribe_link_of_a_forgotten_message_still_opts_its_customer_out(
        tmp_path: Path) -> None:
    folder = synced_sample(tmp_path / "sample")
    with (folder / "config.toml").open("a", encoding="utf-8") as f:
        f.write(KEEP)
    config = load_config(folder / "config.toml", ENV)
    heard_at = datetime.fromisoformat(HEARD_AT).replace(tzinfo=config.tz)
    ledger = Ledger.open(config.state_path)
    # An ad of a pass through the payment flow long ago, finished since.
    enroll(ledger, SOHEE, 9, EnrollmentStatus.FINISHED)
    idem = idempotency_key(SOHEE, "payment", 9, 1)
    long_ago = heard_at - timedelta(days=90)
    assert ledger.claim_send(SendRecord(idem_key=idem, key=SOHEE, flow="payment", entry=9,
                                        step=1, channel="email", template="payment_reviews",
                                        kind="ad", status=SendStatus.PENDING,
                                        created_at=long_ago), run_id=1)
    ledger.finish_send(idem, SendStatus.SENT, long_ago)
    assert ledger.prune(config, heard_at).sends >= 1
    ledger.close()
    assert count(folder, f"SELECT COUNT(*) FROM sends WHERE idem_key = '{idem}'") == 0

    token = make_token(SECRET.encode(), "u", {"i": idem})
    with serving(folder) as base:
        status, _, _ = request(f"{base}/u/{token}", "POST", ONE_CLICK, FORM)
    assert status == 200
    assert [(kind, key) for kind, key, _ in opt_events(folder)] == [("opt_out", SOHEE)]
