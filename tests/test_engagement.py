"""Using what came back: a flow that ends when the customer replies, the report's clicks,
replies, opt-outs and bounces per flow, step and variant, and the shipped sample's
churn rule over real signals."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sheetcrm.ledger import Ledger
from sheetcrm.model import Event, EventKind
from tests.support.journeys import World
from tests.support.sample import DAY0, DAY2, rows_by_key


def reply(world: World, key: str, at: datetime, *, event_id: str = "r1",
          machine: bool = False, idem_key: str | None = None) -> None:
    ledger = Ledger.open(world.folder / "state.db")
    try:
        ledger.record_event(Event(source="mailbox", event_id=event_id, kind=EventKind.REPLY,
                                  key=key, at=at.astimezone(UTC), idem_key=idem_key,
                                  machine=machine))
    finally:
        ledger.close()


def test_a_reply_ends_a_flow_with_exit_on_reply_and_nothing_more_is_sent(
        tmp_path: Path) -> None:
    w = World.create(tmp_path, {}, payment="exit_on_reply = true")
    w.customers = {"a@x.com": {"applied": w.date(-3)}, "b@x.com": {"applied": w.date(-3)}}
    w.write_sheet()
    w.sync(0)  # payment step 1 to both
    reply(w, "a@x.com", w.day(1))
    reply(w, "b@x.com", w.day(1), event_id="auto", machine=True)  # kept, not a reply
    result = w.sync(2)
    assert [(m.key, m.flow, m.action, m.detail) for m in result.plan.moves] == [
        ("a@x.com", "payment", "replied", "replied")]
    assert w.messages("a@x.com") == [("payment", 1, 0)]
    assert w.messages("b@x.com") == [("payment", 1, 0), ("payment", 2, 2)]
    assert w.statuses()[("a@x.com", "payment")] == "replied"
    assert w.sheet()["a@x.com"]["자동화 흐름"] == "payment 1/3 ended (replied) 2026-03-04"
    assert result.summary()["exited"] == 1


def test_without_exit_on_reply_or_with_a_reply_from_before_the_entry_the_flow_goes_on(
        tmp_path: Path) -> None:
    (tmp_path / "off").mkdir()
    w = World.create(tmp_path / "off", {})
    w.customers = {"a@x.com": {"applied": w.date(-3)}}
    w.write_sheet()
    w.sync(0)
    reply(w, "a@x.com", w.day(1))
    w.sync(2)
    assert w.messages("a@x.com") == [("payment", 1, 0), ("payment", 2, 2)]

    (tmp_path / "on").mkdir()
    w = World.create(tmp_path / "on", {}, payment="exit_on_reply = true")
    w.customers = {"a@x.com": {"applied": w.date(-3)}}
    w.write_sheet()
    reply(w, "a@x.com", w.day(-1))  # answered something else before entering
    w.sync(0)
    w.sync(2)
    assert w.messages("a@x.com") == [("payment", 1, 0), ("payment", 2, 2)]


def test_the_report_counts_what_each_step_heard_back_and_keeps_opens_apart(
        tmp_path: Path, run_cli) -> None:
    w = World.create(tmp_path, {})
    w.customers = {f"c{i}@x.com": {"applied": w.date(-3)} for i in range(4)}
    w.write_sheet()
    w.sync(0)  # payment step 1 to all four
    w.sync(2)  # step 2, an A/B test: variants a and b
    ledger = Ledger.open(tmp_path / "state.db")
    sends = {(r.key, r.step): r for rs in ledger.load_state().sends_by_key.values() for r in rs}
    at = w.day(2, 12).astimezone(UTC)

    def heard(kind: EventKind, key: str, step: int, n: int, machine: bool = False) -> None:
        ledger.record_event(Event(source=str(kind), event_id=f"{kind}{key}{step}{n}{machine}",
                                  kind=kind, key=key, at=at, machine=machine,
                                  idem_key=sends[(key, step)].idem_key))

    heard(EventKind.CLICK, "c0@x.com", 0, 1)
    heard(EventKind.CLICK, "c0@x.com", 0, 2)  # a second click on the same message
    heard(EventKind.CLICK, "c1@x.com", 0, 1, machine=True)  # a scanner's: not counted
    heard(EventKind.REPLY, "c1@x.com", 0, 1)
    heard(EventKind.OPT_OUT, "c2@x.com", 1, 1)
    heard(EventKind.BOUNCE, "c3@x.com", 0, 1)
    heard(EventKind.OPEN, "c0@x.com", 0, 1)
    ledger.close()

    result = run_cli(tmp_path, "--json", "report")
    assert result.code == 0, result.err
    (payment,) = [f for f in json.loads(result.out)["flows"] if f["flow"] == "payment"]
    step2 = {k: v for k, v in payment["steps"].items() if k.startswith("step 2")}
    assert payment["steps"]["step 1"] == {"sent": 4, "clicked": 1, "replied": 1,
                                          "opted_out": 0, "bounced": 1, "automatic_hits": 1}
    assert set(step2) == {"step 2: a", "step 2: b"}
    assert sum(v["sent"] for v in step2.values()) == 4
    assert sum(v["opted_out"] for v in step2.values()) == 1
    assert payment["opens"]["unreliable"].startswith("unreliable")
    assert payment["opens"]["steps"]["step 1"] == {"sent": 4, "opened": 1}
    assert "opened" not in payment["steps"]["step 1"]  # never beside the reliable counts

    shown = run_cli(tmp_path, "report").out
    assert "what came back" in shown and "1 (25%)" in shown
    assert "opens (unreliable" in shown


def test_the_sample_churn_rule_counts_mails_without_a_click_not_a_typed_column(
        sample: Path, run_cli) -> None:
    # Onboarding 1, 2 and 3: three mails (no review request: they have not opened the
    # course yet).
    for now in (DAY0, DAY2, "2026-11-27T10:00"):
        assert run_cli(sample, "--now", now, "--json", "sync").code == 0
    ledger = Ledger.open(sample / ".sheetcrm" / "state.db")
    state = ledger.load_state()
    for key, machine in (("junseo.oh@example.com", False), ("jaeseok.yoo@example.com", True)):
        [first, *_] = state.sends_for(key)
        ledger.record_event(Event(source="click", event_id=key, kind=EventKind.CLICK, key=key,
                                  at=datetime(2026, 11, 25, 12, tzinfo=UTC),
                                  idem_key=first.idem_key, machine=machine))
    ledger.close()

    result = run_cli(sample, "--now", "2026-11-28T10:00", "--json", "sync")
    entered = {m["key"] for m in json.loads(result.out)["moves"]
               if m["flow"] == "churn" and m["action"] == "enter"}
    _, rows = rows_by_key(sample)
    for key in ("jihoon.lee@example.com", "jaeseok.yoo@example.com"):  # a scanner's click
        assert "이탈 가능" in rows[key]["상태 태그"] and key in entered  # is no click
    assert "이탈 가능" not in rows["junseo.oh@example.com"]["상태 태그"]
    assert "junseo.oh@example.com" not in entered
