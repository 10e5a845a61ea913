"""What came back is stored once and used at once: the ledger's events, the tokens in
links, the expression helpers over events, the guards and the sheet's columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sheetcrm.core.projection import engagement_text, opt_out_text
from sheetcrm.core.rules import RowContext, compile_rules
from sheetcrm.ledger import Ledger
from sheetcrm.model import Event, EventKind, LedgerState
from sheetcrm.tokens import make_token, read_token
from tests.support.journeys import SEOUL, World

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=SEOUL)
SECRET = b"a secret of at least sixteen characters"


def event(kind: EventKind, key: str = "a@x.com", *, at: datetime = NOW, event_id: str = "1",
          machine: bool = False, name: str = "") -> Event:
    return Event(source=str(kind), event_id=event_id, kind=kind, key=key, at=at,
                 name=name, machine=machine)


# -- the ledger ----------------------------------------------------------------------------


def test_an_event_is_stored_once_however_often_it_is_delivered(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "state.db")
    assert ledger.record_event(event(EventKind.CLICK, event_id="e1")) is True
    assert ledger.record_event(event(EventKind.CLICK, event_id="e1")) is False
    assert ledger.record_event(event(EventKind.CLICK, event_id="e2")) is True
    state = ledger.load_state()
    assert [e.event_id for e in state.events_for("a@x.com")] == ["e1", "e2"]
    unapplied = ledger.unapplied_events([EventKind.CLICK])
    ledger.mark_applied([e.id for e in unapplied[:1] if e.id is not None], NOW)
    assert [e.event_id for e in ledger.unapplied_events([EventKind.CLICK])] == ["e2"]
    ledger.close()


# -- tokens --------------------------------------------------------------------------------


def test_a_token_reads_back_only_with_its_secret_and_purpose() -> None:
    token = make_token(SECRET, "u", {"i": "sc-payment-e1-s2-abc"})
    assert "@" not in token and read_token(SECRET, "u", token) == {"i": "sc-payment-e1-s2-abc"}
    assert read_token(b"another secret of sixteen chars", "u", token) is None
    assert read_token(SECRET, "c", token) is None  # made for another purpose
    body, mac = token.split(".")
    forged = make_token(SECRET, "u", {"i": "sc-payment-e1-s2-other"}).split(".")[0]
    for bad in (f"{forged}.{mac}", f"{body}.{mac[:-2]}AA", body, "", "a.b.c", "x" * 5000):
        assert read_token(SECRET, "u", bad) is None


# -- helpers, guards and the sheet -----------------------------------------------------------


def context(events: list[Event]) -> RowContext:
    state = LedgerState()
    for e in events:
        state.events_by_key[e.key].append(e)
    ctx = RowContext(NOW, SEOUL, state)
    ctx.key = "a@x.com"
    return ctx


def test_the_helpers_count_what_people_did_not_what_machines_did(tmp_path: Path) -> None:
    from sheetcrm.core import rules

    ctx = context([
        event(EventKind.CLICK, at=NOW - timedelta(days=10), event_id="old"),
        event(EventKind.CLICK, machine=True, event_id="scanner"),
        event(EventKind.REPLY, at=NOW - timedelta(days=1)),
        event(EventKind.EXTERNAL, name="paid", event_id="p1"),
        event(EventKind.EXTERNAL, name="paid", event_id="p2", at=NOW - timedelta(days=40)),
    ])
    assert rules.clicked(ctx) and not rules.clicked(ctx, days=7)  # the scanner's is no click
    assert rules.replied(ctx, days=2) and not rules.opened(ctx) and not rules.bounced(ctx)
    assert rules.event_count(ctx, "paid") == 2 and rules.event_count(ctx, "paid", days=30) == 1
    assert rules.last_event(ctx, "paid") == NOW
    assert not rules.unsubscribed(ctx)
    ctx.state.events_by_key["a@x.com"].append(event(EventKind.OPT_OUT, event_id="o"))
    assert rules.unsubscribed(ctx)
    ctx.state.events_by_key["a@x.com"].append(event(EventKind.OPT_IN, event_id="undo"))
    assert not rules.unsubscribed(ctx)


def test_an_unknown_event_name_in_a_condition_is_refused_at_load(tmp_path: Path) -> None:
    world = World.create(tmp_path, {})
    config_path = tmp_path / "config.toml"
    text = config_path.read_text(encoding="utf-8")
    config_path.write_text(text.replace('"휴면" = ', '"결제함" = "event_count(\'payed\') > 0"\n'
                                        '"휴면" = ', 1), encoding="utf-8")
    with pytest.raises(Exception, match="payed"):
        compile_rules(world.config)


def test_an_opt_out_heard_back_holds_ads_at_once_and_fills_the_opt_out_column(
        tmp_path: Path) -> None:
    w = World.create(tmp_path, {})
    w.customers = {"a@x.com": {"applied": w.date(-3)}}
    w.write_sheet()
    w.sync(0)  # payment step 1 (transactional)
    ledger = Ledger.open(tmp_path / "state.db")
    ledger.record_event(Event(source="unsubscribe", event_id="t1", kind=EventKind.OPT_OUT,
                              key="a@x.com", at=w.day(1).astimezone(UTC)))
    ledger.close()
    result = w.sync(2)  # step 2 is an ad: skipped for good, nothing sent
    assert [(h.send.step, h.reason, h.skip) for h in result.plan.held] == [
        (1, "opted out: only transactional messages", True)]
    assert w.messages("a@x.com") == [("payment", 1, 0)]


def test_the_opt_out_and_engagement_cells_say_what_came_back() -> None:
    state = LedgerState()
    for e in (event(EventKind.CLICK, event_id="1", at=NOW - timedelta(days=2)),
              event(EventKind.CLICK, event_id="2"),
              event(EventKind.CLICK, event_id="3", machine=True),
              event(EventKind.OPEN, event_id="4"),
              event(EventKind.REPLY, event_id="5", at=NOW - timedelta(days=1)),
              event(EventKind.OPT_OUT, event_id="6")):
        state.events_by_key[e.key].append(e)
    assert engagement_text("a@x.com", state, SEOUL, "ko") == "클릭 2 · 답장 1 · 최근 2026-11-28"
    assert opt_out_text("a@x.com", state, SEOUL, "ko") == "2026-11-28 수신 거부"
    assert engagement_text("a@x.com", state, SEOUL, "en") == (
        "clicks 2 · replies 1 · latest 2026-11-28")
    assert opt_out_text("a@x.com", state, SEOUL, "en") == "2026-11-28 opted out"
    assert engagement_text("b@x.com", state, SEOUL, "en") == ""
    assert opt_out_text("b@x.com", state, SEOUL, "en") == ""
