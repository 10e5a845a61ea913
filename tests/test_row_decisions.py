"""A row is read one way everywhere: the planner, ``preview``, the re-check right
before a send and ``check`` evaluate its tags, triggers and goals alike, and build a
step's send (its due time, idempotency key and A/B variant) alike."""

from __future__ import annotations

from pathlib import Path

from sheetcrm.app.checks import run_checks
from sheetcrm.app.explain import explain
from tests.support.journeys import World

# A tag that builds on the tag above it, used as the payment flow's trigger.
CHAINED_TAGS = ('"결제 대기" = "not paid and days_since(applied_at) >= 1"',
                '"미결제" = "not paid"\n"결제 대기" = "tagged(\'미결제\') and '
                'days_since(applied_at) >= 1"')


def chain_tags(w: World) -> None:
    config = w.folder / "config.toml"
    text = config.read_text(encoding="utf-8")
    old, new = CHAINED_TAGS
    assert old in text
    config.write_text(text.replace(old, new), encoding="utf-8")


def test_the_recheck_before_sending_sees_tags_built_on_tags(tmp_path: Path) -> None:
    w = World.create(tmp_path, {}, sending='recheck_after = "0s"')  # re-read before each send
    chain_tags(w)
    w.customers = {"a@x.com": {"applied": w.date(-1)}}
    w.write_sheet()
    result = w.sync(0)
    assert [(o.send.key, o.send.flow, o.status) for o in result.outcomes] == [
        ("a@x.com", "payment", "sent")]
    assert w.statuses()[("a@x.com", "payment")] == "active"


def test_preview_and_plan_read_tags_built_on_tags_alike(tmp_path: Path) -> None:
    w = World.create(tmp_path, {})
    chain_tags(w)
    w.customers = {"a@x.com": {"applied": w.date(-1)}}
    w.write_sheet()
    shown = explain(w.config, w.day(0), "a@x.com", "payment")
    assert shown.tags == {"미결제": True, "결제 대기": True, "첫 수강 전": False, "휴면": False}
    assert shown.flows[0].trail[0] == "trigger '결제 대기' is True"
    assert shown.flows[0].decision.startswith("sends now: step 1/3")


def test_preview_of_a_waiting_step_shows_the_variant_the_customer_will_get(
        tmp_path: Path) -> None:
    w = World.create(tmp_path, {})
    w.customers = {f"c{i}@x.com": {"applied": w.date(-1)} for i in range(6)}
    w.write_sheet()
    w.sync(0)
    waiting = {key: explain(w.config, w.day(1), key, "payment").flows[0]
               for key in w.customers}
    assert all(t.decision.startswith("waiting: step 2/3") for t in waiting.values())
    w.sync(2)
    received = {r.to: r.subject for r in w.received if r.step == 2}
    assert {key: t.subject for key, t in waiting.items()} == received
    assert {subject for subject in received.values()} == {"p2-a", "p2-b"}


def test_check_reports_each_failing_condition_with_its_path(tmp_path: Path) -> None:
    w = World.create(tmp_path, {})
    config = w.folder / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('goal = "paid"', 'goal = "applied_at > 3"'),
                      encoding="utf-8")
    w.customers = {"a@x.com": {"applied": w.date(-1)}, "b@x.com": {"paid": "O"}}
    w.write_sheet()
    findings = [f for f in run_checks(w.config, w.day(0)) if f.where.startswith("flows.")]
    assert [(f.level, f.where) for f in findings] == [("error", "flows.payment.goal")]
    assert findings[0].message.startswith("fails on 1 of 2 row(s); first: row 2 (a@x.com): ")
