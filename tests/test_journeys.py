"""Flows over time: a 30-day simulation, every exit path, re-entry, hand-off,
experiments and every sending guard, with an injected clock."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from sheetcrm.app.runner import RunOptions
from sheetcrm.config import config_from_dict
from sheetcrm.core.engine import make_plan
from sheetcrm.core.rules import compile_rules
from sheetcrm.core.schema import read_records
from sheetcrm.core.steps import bucket, variant_for
from sheetcrm.model import LedgerState, Snapshot
from tests.support.journeys import SEOUL, World
from tests.support.sample import tree_digest
from tests.support.servers import WebhookServer


def test_thirty_days_of_daily_syncs(tmp_path: Path) -> None:
    w = World.create(tmp_path, {})
    w.customers = {
        # unpaid; pays before the day-3 run
        "pays@x.com": {"applied": w.date(-1)},
        # unpaid, no consent to ads: only the transactional reminder
        "noads@x.com": {"applied": w.date(-1), "consent": "X"},
        # paid, never opened the course; logs in on day 4
        "starts@x.com": {"applied": w.date(-1), "paid": "O"},
        # paid, last seen 20 days ago; comes back on day 9
        "returns@x.com": {"applied": w.date(-40), "paid": "O",
                          "login": f"{w.date(-20)} 09:00"},
        # unpaid; opts out on day 1
        "optout@x.com": {"applied": w.date(-1)},
        # paid and active every day: never messaged
        "active@x.com": {"applied": w.date(-30), "paid": "O", "login": f"{w.date(0)} 08:00"},
    }
    w.write_sheet()
    for day in range(30):
        if day == 1:
            w.customers["optout@x.com"]["unsub"] = "O"
        if day == 3:
            w.customers["pays@x.com"]["paid"] = "O"
        if day == 4:
            w.customers["starts@x.com"]["login"] = f"{w.date(4)} 09:00"
        if day == 9:
            w.customers["returns@x.com"]["login"] = f"{w.date(9)} 09:00"
        w.customers["active@x.com"]["login"] = f"{w.date(day)} 08:00"
        w.write_sheet()
        w.sync(day)

    # payment d0, d2 -> paid on d3 (converted) -> onboarding d3, d5, d7 (finished)
    # -> handed to dormant on d8: d8, d15, d22 (finished)
    assert w.messages("pays@x.com") == [
        ("payment", 1, 0), ("payment", 2, 2),
        ("onboarding", 1, 3), ("onboarding", 2, 5), ("onboarding", 3, 7),
        ("dormant", 1, 8), ("dormant", 2, 15), ("dormant", 3, 22)]
    # steps 2 and 3 are ads: skipped without consent, and the flow finishes
    assert w.messages("noads@x.com") == [("payment", 1, 0)]
    # onboarding until the first login (converted); 14 days later dormant begins
    assert w.messages("starts@x.com") == [
        ("onboarding", 1, 0), ("onboarding", 2, 2), ("dormant", 1, 18), ("dormant", 2, 25)]
    # dormant d0, d7; back on d9 (converted); never re-enters (reentry = never)
    assert w.messages("returns@x.com") == [("dormant", 1, 0), ("dormant", 2, 7)]
    # the opt-out on day 1 stops the ads; the transactional reminder came before it
    assert w.messages("optout@x.com") == [("payment", 1, 0)]
    assert w.messages("active@x.com") == []

    assert w.statuses() == {
        ("pays@x.com", "payment"): "converted",
        ("pays@x.com", "onboarding"): "finished",
        ("pays@x.com", "dormant"): "finished",
        ("noads@x.com", "payment"): "finished",
        ("starts@x.com", "onboarding"): "converted",
        ("starts@x.com", "dormant"): "active",
        ("returns@x.com", "dormant"): "converted",
        ("optout@x.com", "payment"): "finished",
    }
    # The A/B step's subject carries the customer's stable variant.
    (p2,) = [r for r in w.received if r.to == "pays@x.com" and r.flow == "payment" and r.step == 2]
    assert p2.subject == f"p2-{variant_for('pays@x.com', 'payment', 1, {'a': 1, 'b': 1})}"
    sheet = w.sheet()
    assert sheet["pays@x.com"]["자동화 흐름"] == (
        "payment 2/3 converted (goal met) 2026-03-05 | onboarding 3/3 done 2026-03-09"
        " | dormant 3/3 done 2026-03-24")


def test_left_when_the_trigger_stops_and_reentry_after_the_gap(tmp_path: Path) -> None:
    w = World.create(tmp_path, {}, payment='reentry = "5d"')
    w.customers = {"a@x.com": {"applied": w.date(-1)}}
    w.write_sheet()
    w.sync(0)
    # The operator fixes the date (not yet due for a reminder): the trigger stops.
    w.customers["a@x.com"]["applied"] = w.date(1)
    w.write_sheet()
    w.sync(1)
    assert w.statuses()[("a@x.com", "payment")] == "left"
    w.sync(3)  # trigger true again (applied 2 days ago), but within the 5-day gap
    assert w.messages("a@x.com") == [("payment", 1, 0)]
    w.sync(6)  # 5 days after leaving: enters again, as entry 2, from step 1
    assert w.messages("a@x.com") == [("payment", 1, 0), ("payment", 1, 6)]
    assert len(list((tmp_path / "outbox").glob("sc-payment-e2-s1-*.eml"))) == 1


def test_quiet_hours_defer_ads_to_the_window_edge_in_seoul(tmp_path: Path) -> None:
    w = World.create(tmp_path, {})
    w.customers = {"a@x.com": {"applied": w.date(-1)}}
    w.write_sheet()
    w.sync(0, hour=10)  # transactional step 1
    # Step 2 (an ad) is due from day 2 10:00.
    result = w.sync(2, hour=21, minute=0)
    assert [h.reason for h in result.plan.held] == [
        "quiet hours 21:00–08:00 (Asia/Seoul): deferred to 2026-03-05 08:00"]
    result = w.sync(3, hour=7, minute=59)
    assert result.plan.held[0].reason.endswith("deferred to 2026-03-05 08:00")
    assert w.messages("a@x.com") == [("payment", 1, 0)]
    w.sync(3, hour=8, minute=0)
    assert w.messages("a@x.com") == [("payment", 1, 0), ("payment", 2, 3)]


def test_quiet_hours_let_ads_out_until_2059_and_transactional_at_night(tmp_path: Path) -> None:
    w = World.create(tmp_path, {})
    w.customers = {"a@x.com": {"applied": w.date(-1)}}
    w.write_sheet()
    w.sync(0, hour=20, minute=0)  # enters; step 2 (an ad) falls due on day 2 at 20:00
    w.sync(2, hour=20, minute=59)  # one minute before the window: it goes
    assert w.messages("a@x.com") == [("payment", 1, 0), ("payment", 2, 2)]


def test_transactional_messages_go_during_quiet_hours(tmp_path: Path) -> None:
    w = World.create(tmp_path, {})
    w.customers = {"a@x.com": {"applied": w.date(-1)}}
    w.write_sheet()
    w.sync(0, hour=23)  # quiet hours apply to ads only
    assert w.messages("a@x.com") == [("payment", 1, 0)]


def test_public_holiday_defers_ads_to_the_next_working_morning(tmp_path: Path) -> None:
    from datetime import datetime

    from tests.support.journeys import SEOUL

    w = World.create(tmp_path, {}, sending="skip_holidays = true",
                     start=datetime(2025, 12, 30, 10, 0, tzinfo=SEOUL))
    w.customers = {"a@x.com": {"applied": w.date(-1)}}
    w.write_sheet()
    w.sync(0)
    result = w.sync(2)  # 2026-01-01, New Year's Day
    assert result.plan.held[0].reason == (
        "public holiday (New Year's Day): deferred to 2026-01-02 08:00")
    w.sync(3)
    assert w.messages("a@x.com") == [("payment", 1, 0), ("payment", 2, 3)]


def test_frequency_cap_across_flows(tmp_path: Path) -> None:
    w = World.create(tmp_path, {}, sending='frequency_cap = "2/7d"')
    w.customers = {"a@x.com": {"applied": w.date(-1)}}
    w.write_sheet()
    w.sync(0)
    w.sync(2)  # payment 1 and 2: the cap is reached
    w.customers["a@x.com"]["paid"] = "O"  # converts, and enters onboarding
    w.write_sheet()
    result = w.sync(3)
    assert [h.reason for h in result.plan.held] == ["frequency cap 2/7d reached"]
    w.sync(7)  # payment 1 (day 0) left the window: one slot free again
    assert w.messages("a@x.com") == [("payment", 1, 0), ("payment", 2, 2), ("onboarding", 1, 7)]


def test_blast_radius_stops_the_run_unless_allowed(tmp_path: Path) -> None:
    w = World.create(tmp_path, {}, sending="max_sends_per_run = 3")
    w.customers = {f"c{i}@x.com": {"applied": w.date(-1)} for i in range(5)}
    w.write_sheet()
    result = w.sync(0)
    assert result.plan.sends == [] and len(result.plan.held) == 5
    assert result.plan.stopped.startswith("blast-radius stop: 5 sends due")
    assert w.received == []
    result = w.sync(0, minute=5, options=RunOptions(allow_blast=True))
    assert len(w.received) == 5


def test_suppression_list_stops_ads_not_transactional(tmp_path: Path) -> None:
    (tmp_path / "suppressed.txt").write_text("# complaints\nA@X.com\n", encoding="utf-8")
    w = World.create(tmp_path, {}, sending='suppression = "suppressed.txt"')
    w.customers = {"a@x.com": {"applied": w.date(-1)}, "b@x.com": {"applied": w.date(-1)}}
    w.write_sheet()
    w.sync(0)
    result = w.sync(2)
    assert [(h.send.key, h.reason, h.skip) for h in result.plan.held] == [
        ("a@x.com", "opted out: only transactional messages", True)]
    assert w.messages("a@x.com") == [("payment", 1, 0)]
    assert w.messages("b@x.com") == [("payment", 1, 0), ("payment", 2, 2)]


def test_goal_rechecked_on_fresh_rows_right_before_each_send(tmp_path: Path) -> None:
    """The first customer's webhook makes the second one pay, mid-run."""
    w = World.create(tmp_path, {}, sending='recheck_after = "0s"')
    w.customers = {"a@x.com": {"applied": w.date(-1)}, "b@x.com": {"applied": w.date(-1)}}
    w.write_sheet()

    def pay_b() -> None:
        w.customers["b@x.com"]["paid"] = "O"
        w.write_sheet()

    with WebhookServer(on_request=lambda _request: pay_b()) as server:
        config = tmp_path / "config.toml"
        text = config.read_text(encoding="utf-8").replace(
            'type = "outbox"\nfrom = "Shop <shop@example.com>"\nto = "email"',
            f'type = "webhook"\nurl = "{server.url}"\nretries = 0')
        config.write_text(text, encoding="utf-8")
        result = w.sync(0)
        keys = [r.headers["webhook-id"] for r in server.requests]
    assert len(keys) == 1 and "payment-e1-s1" in keys[0]
    assert [(o.send.key, o.status, o.detail) for o in result.outcomes] == [
        ("a@x.com", "sent", "HTTP 200"), ("b@x.com", "exited", "goal met")]
    assert w.statuses()[("b@x.com", "payment")] == "converted"


def test_korean_ad_marker_and_footer(tmp_path: Path) -> None:
    w = World.create(tmp_path, {}, sending=(
        'compliance = "kr"\nsender_name = "가게"\nsender_contact = "02-1234-5678"\n'
        'opt_out = "수신거부: 답장으로 \\"거부\\""'))
    w.customers = {"a@x.com": {"applied": w.date(-1)}}
    w.write_sheet()
    w.sync(0)
    w.sync(2)
    first, second = sorted(w.received, key=lambda r: r.step)
    assert not first.subject.startswith("(광고)")  # transactional
    assert second.subject.startswith("(광고) p2-")
    eml = next(p for p in (tmp_path / "outbox").glob("sc-payment-e1-s2-*.eml"))
    import email
    import email.policy

    body = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    text = body.get_content()
    assert "보낸 곳: 가게 (02-1234-5678)" in text and '수신거부: 답장으로 "거부"' in text


def test_fresh_ledger_does_not_resend_what_the_sheet_shows(tmp_path: Path) -> None:
    w = World.create(tmp_path, {})
    w.customers = {"a@x.com": {"applied": w.date(-1)}, "b@x.com": {"applied": w.date(-1)}}
    w.write_sheet()
    w.sync(0)
    w.sync(2)
    assert len(w.received) == 4
    (tmp_path / "state.db").unlink()  # the ledger is lost
    result = w.sync(2, minute=30)
    assert result.plan.sends == []
    assert {m.action for m in result.plan.moves} == {"restored"}
    w.sync(6)  # step 3 is sent once, steps 1 and 2 never again
    assert [(r.to, r.step) for r in w.received] == [
        ("a@x.com", 1), ("b@x.com", 1), ("a@x.com", 2), ("b@x.com", 2),
        ("a@x.com", 3), ("b@x.com", 3)]


# -- experiments: deterministic, stable, and in proportion ---------------------------

def test_variant_and_holdout_assignment_is_stable_and_proportional() -> None:
    keys = [f"customer{i}@example.com" for i in range(10_000)]
    holdout = sum(bucket(k, "payment", "holdout") < 0.1 for k in keys) / len(keys)
    assert 0.09 < holdout < 0.11
    even = [variant_for(k, "payment", 1, {"a": 1, "b": 1}) for k in keys]
    assert 0.48 < even.count("a") / len(keys) < 0.52
    weighted = [variant_for(k, "payment", 1, {"big": 3, "small": 1}) for k in keys]
    assert 0.73 < weighted.count("big") / len(keys) < 0.77
    # Same key, same answer; another flow or step is an independent draw.
    assert even == [variant_for(k, "payment", 1, {"a": 1, "b": 1}) for k in keys]
    other = [variant_for(k, "onboarding", 1, {"a": 1, "b": 1}) for k in keys]
    agree = sum(x == y for x, y in zip(even, other, strict=True)) / len(keys)
    assert 0.47 < agree < 0.53


def test_holdout_rows_are_tracked_but_sent_nothing(tmp_path: Path) -> None:
    raw = {
        "table": {"path": "x.csv", "key": "email"},
        "fields": {"email": {"column": "e", "type": "email"}, "paid": {"column": "p",
                                                                        "type": "bool"}},
        "channels": {"email": {"type": "outbox", "from": "S <s@x.com>", "to": "email"}},
        "flows": {"payment": {"trigger": "not paid", "goal": "paid", "holdout": 0.2,
                              "steps": [{"after": "0d", "channel": "email",
                                         "template": "t"}]}},
    }
    config = config_from_dict(raw, {}, path=tmp_path / "c.toml")
    rows = [[f"c{i}@x.com", "X"] for i in range(2000)]
    table = read_records(Snapshot(["e", "p"], rows), config)
    from datetime import datetime

    from tests.support.journeys import SEOUL
    plan = make_plan(table, LedgerState(), datetime(2026, 3, 2, tzinfo=SEOUL), config,
                     compile_rules(config), options=RunOptions(allow_blast=True))
    held = [h for h in plan.held if h.reason.startswith("holdout")]
    assert len(held) + len(plan.sends) == 2000
    assert 0.17 < len(held) / 2000 < 0.23
    assert all(h.skip and h.send.enrollment.holdout for h in held)
    assert not any(s.enrollment.holdout for s in plan.sends)


@pytest.mark.parametrize("subject, bad", [
    ("(광고) 신상품", False), ("[광고] 신상품", True), ("( 광고 ) 신상품", True),
    ("광고) 신상품", True), ("신상품 안내", False),
])
def test_misspelled_ad_marker_is_detected(subject: str, bad: bool) -> None:
    from sheetcrm.core.messages import misspelled_marker

    assert misspelled_marker(subject) is bad


def test_report_and_preview_through_the_cli(tmp_path: Path, run_cli) -> None:
    w = World.create(tmp_path, {}, payment="holdout = 0.5")
    w.customers = {f"c{i}@x.com": {"applied": w.date(-1)} for i in range(40)}
    w.write_sheet()
    w.sync(0)
    w.sync(2)
    for i in range(0, 40, 2):  # every other customer pays
        w.customers[f"c{i}@x.com"]["paid"] = "O"
    w.write_sheet()
    w.sync(3)

    result = run_cli(tmp_path, "--json", "report")
    assert result.code == 0, result.err
    (payment,) = [f for f in json.loads(result.out)["flows"] if f["flow"] == "payment"]
    assert payment["entered"] + payment["holdout_entered"] == 40
    assert payment["converted"] + payment["holdout_converted"] == 20
    assert sum(v["sent"] for v in payment["variants"].values()) == payment["entered"]
    assert set(payment["variants"]) == {"step 2: a", "step 2: b"}

    unpaid = next(k for k, c in w.customers.items() if c.get("paid") != "O")
    before = tree_digest(tmp_path)
    result = run_cli(tmp_path, "--now", f"{w.day(3):%Y-%m-%dT%H:%M}", "preview", unpaid,
                     "--flow", "payment")
    assert result.code == 0, result.err
    assert "trigger '결제 대기' is True" in result.out
    assert "goal 'paid' is False" in result.out
    assert "waiting: step 3/3 is due 2026-03-06 10:00" in result.out
    assert tree_digest(tmp_path) == before  # preview changes nothing

    result = run_cli(tmp_path, "preview", "nobody@x.com")
    assert result.code == 1 and "no row has the key 'nobody@x.com'" in result.err


def test_a_hand_off_respects_the_target_flows_reentry(tmp_path: Path) -> None:
    # Dormant first: no login for 14 days, three win-back mails, finished.
    w = World.create(tmp_path, {}, start=datetime(2026, 3, 2, 10, 0, tzinfo=SEOUL))
    w.customers = {"a@x.com": {"paid": "O", "login": w.date(-14)}}
    w.write_sheet()
    for day in (0, 7, 14):
        w.sync(day)
    assert w.statuses()[("a@x.com", "dormant")] == "finished"
    # The operator clears the login cell: onboarding starts, finishes, hands over to
    # dormant, whose default reentry is "never": the customer is not handed over again.
    w.customers["a@x.com"]["login"] = ""
    w.write_sheet()
    for day in (15, 17, 19, 40):
        w.sync(day)
    assert [m[:2] for m in w.messages("a@x.com")] == [
        ("dormant", 1), ("dormant", 2), ("dormant", 3),
        ("onboarding", 1), ("onboarding", 2), ("onboarding", 3)]
