"""``sheetcrm history KEY``: one customer's tag changes, flow moves, messages with their
outcome, what came back and test sends, newest first, from daily syncs with an injected
clock (``tests.support.journeys.World``); and the tags each sync records for it."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from rich.cells import cell_len

from sheetcrm.app.history import UnknownKeyError, customer_history
from sheetcrm.app.runner import preview
from sheetcrm.app.test_send import TrialOrder, send_test
from sheetcrm.ledger import SCHEMA_VERSION, Ledger
from sheetcrm.model import (
    DeliveryReport,
    DeliveryState,
    Event,
    EventKind,
    SendRecord,
    SendStatus,
)
from tests.support.journeys import World


def lines(w: World, key: str) -> list[tuple[str, str, str, str]]:
    """(day and time, kind, what, text) of each item, newest first."""
    return [(f"{i.at:%m-%d %H:%M}", str(i.kind), i.what, i.text)
            for i in customer_history(w.config, key).items]


def tag_rows(w: World) -> list[tuple[str, str, str]]:
    with sqlite3.connect(w.folder / "state.db") as db:
        return db.execute("SELECT key, added, removed FROM tag_changes ORDER BY id").fetchall()


def heard(w: World, key: str, kind: EventKind, at_day: int, **data: object) -> None:
    """Record what came back the way the endpoint and the mailbox reader do."""
    ledger = Ledger.open(w.folder / "state.db")
    try:
        idem_key = ledger.load_state().sends_for(key)[0].idem_key  # the first message's link
        machine = bool(data.pop("machine", False))
        at = w.day(at_day, 13) + timedelta(seconds=5 if machine else 0)
        ledger.record_event(Event(source=str(kind), event_id=f"{kind}-{at_day}-{machine}",
                                  kind=kind, key=key, at=at, idem_key=idem_key,
                                  data={k: str(v) for k, v in data.items()}, machine=machine))
    finally:
        ledger.close()


@pytest.fixture
def journey(tmp_path: Path) -> World:
    """Two customers through five daily syncs: one pays on day 3 (payment converted,
    onboarding begins), one gave no consent to ads (steps 2 and 3 skipped, finished)."""
    w = World.create(tmp_path, {
        "pays@x.com": {"applied": "2026-03-01"},
        "noads@x.com": {"applied": "2026-03-01", "consent": "X"},
    })
    for day in range(5):
        if day == 3:
            w.customers["pays@x.com"]["paid"] = "O"
            w.write_sheet()
        if day == 1:
            heard(w, "pays@x.com", EventKind.CLICK, 1, url="https://shop.example.com/pay")
            heard(w, "pays@x.com", EventKind.CLICK, 1, url="https://shop.example.com/pay",
                  automatic="scanner or HTTP library", machine=True)
        w.sync(day)
    return w


def test_a_customer_moved_through_a_flow_shows_every_item_in_order(journey: World) -> None:
    w = journey
    send_test(w.config, w.day(4, 11), TrialOrder("onboarding", "2", "me@example.org",
                                                  row="pays@x.com"))
    variant = _variant(w, "pays@x.com")

    assert lines(w, "pays@x.com") == [
        ("03-06 11:00", "test", "sent", "Test of onboarding 2/3 (o2) sent to me@example.org, "
                                        "rendered for this customer."),
        ("03-05 10:00", "message", "sent", "Sent onboarding 1/3 (o1) by e."),
        ("03-05 10:00", "flow", "entered", "Entered the flow onboarding."),
        ("03-05 10:00", "flow", "converted", "Left the flow payment as converted: goal met."),
        ("03-05 10:00", "tags", "tags", "Tags added: 첫 수강 전. Tags removed: 결제 대기."),
        ("03-04 10:00", "message", "sent", f"Sent payment 2/3 (p2, variant {variant}) by e."),
        ("03-03 13:00", "event", "click", "An automatic visit to https://shop.example.com/pay "
                                          "was not counted as a click: scanner or HTTP library."),
        ("03-03 13:00", "event", "click", "Clicked https://shop.example.com/pay."),
        ("03-02 10:00", "message", "sent", "Sent payment 1/3 (p1) by e."),
        ("03-02 10:00", "flow", "entered", "Entered the flow payment."),
        ("03-02 10:00", "tags", "tags", "Tags added: 결제 대기."),
    ]
    no_consent = "no consent to advertising (consent is not true)"
    assert lines(w, "noads@x.com") == [
        ("03-06 10:00", "flow", "finished", "Finished the flow payment: last step done."),
        ("03-06 10:00", "message", "skipped", f"Skipped payment 3/3 (p3) for good: {no_consent}."),
        ("03-04 10:00", "message", "skipped",
         f"Skipped payment 2/3 (p2, variant {_variant(w, 'noads@x.com')}) for good: "
         f"{no_consent}."),
        ("03-02 10:00", "message", "sent", "Sent payment 1/3 (p1) by e."),
        ("03-02 10:00", "flow", "entered", "Entered the flow payment."),
        ("03-02 10:00", "tags", "tags", "Tags added: 결제 대기."),
    ]


def _variant(w: World, key: str) -> str:
    with sqlite3.connect(w.folder / "state.db") as db:
        (variant,) = db.execute("SELECT variant FROM sends WHERE key = ? AND step = 1",
                                (key,)).fetchone()
    return str(variant)


def test_each_sync_records_only_the_tags_that_changed(journey: World) -> None:
    w = journey
    assert tag_rows(w) == [
        ("pays@x.com", '["결제 대기"]', "[]"), ("noads@x.com", '["결제 대기"]', "[]"),
        ("pays@x.com", '["첫 수강 전"]', '["결제 대기"]'),
    ]
    w.sync(4, 12)  # nothing changed since
    w.customers["noads@x.com"]["applied"] = "2026-02-30"  # unreadable: nothing evaluated
    w.write_sheet()
    w.sync(4, 13)
    preview(w.config, w.day(5))  # plan records nothing
    assert len(tag_rows(w)) == 3


def test_messages_report_how_they_went_and_events_what_came_back(tmp_path: Path) -> None:
    w = World.create(tmp_path, {"a@x.com": {"applied": "2026-03-01"}})
    ledger = Ledger.open(w.folder / "state.db")

    def claim(name: str, flow: str, step: int, day: int, hour: int = 10) -> str:
        at = w.day(day, hour)
        ledger.claim_send(SendRecord(name, "a@x.com", flow, 1, step, "e", f"{flow[0]}{step + 1}",
                                     "ad", SendStatus.PENDING, at), run_id=1)
        return name

    try:  # each outcome as the runner and the delivery reports record it
        ledger.finish_send(claim("k1", "payment", 0, 0), SendStatus.FAILED, w.day(0),
                           detail="recipient refused: 550 5.1.1 No such user.")
        ledger.finish_send(claim("k2", "payment", 1, 1), SendStatus.SENT, w.day(1),
                           message_id="M2", accepted=True)
        ledger.apply_delivery(DeliveryReport("solapi", "M2", DeliveryState.FAILED,
                                             "3104 카카오톡 미사용자", w.day(1, 10) +
                                             timedelta(minutes=2)), w.day(1, 11))
        ledger.finish_send(claim("k3", "payment", 2, 2), SendStatus.UNCERTAIN, w.day(2),
                           detail="interrupted by a crash; not re-sent")
        for _ in range(3):
            ledger.finish_send(claim("k4", "onboarding", 0, 2, 11), SendStatus.RETRY,
                               w.day(2, 11), detail="connection refused")
        for kind, day, data in ((EventKind.BOUNCE, 5, {"reason": "mailbox full for good"}),
                                (EventKind.OPT_OUT, 5, {"via": "one-click"}),
                                (EventKind.EXTERNAL, 6, {"set": {"paid": True}})):
            ledger.record_event(Event(source="t", event_id=f"{kind}", kind=kind, key="a@x.com",
                                      at=w.day(day, 9), name="order", data=data))
    finally:
        ledger.close()

    assert [text for _, _, _, text in lines(w, "a@x.com")] == [
        "The event order arrived and sets paid = True.",
        "Opted out (through one-click).",
        "A message bounced: mailbox full for good.",
        "Sending onboarding 1/3 (o1) by e failed and will be tried again: connection "
        "refused. Tried 3 times.",
        "Sending payment 3/3 (p3) by e may have reached the customer, so it is never sent "
        "again: interrupted by a crash; not re-sent.",
        "Sent payment 2/3 (p2) by e. The provider reported it not delivered at 2026-03-03 "
        "10:02: 3104 카카오톡 미사용자.",
        "Sending payment 1/3 (p1) by e failed: recipient refused: 550 5.1.1 No such user.",
    ]


def test_history_json_and_limit(journey: World, run_cli) -> None:
    w = journey
    result = run_cli(w.folder, "history", "pays@x.com", "--json", "--limit", "3")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert (data["key"], data["timezone"], data["total"], data["shown"]) == (
        "pays@x.com", "Asia/Seoul", 10, 3)
    first = data["items"][0]
    assert first["at"] == "2026-03-05T10:00:00+09:00"
    assert (first["kind"], first["what"], first["flow"], first["step"], first["status"]) == (
        "message", "sent", "onboarding", 1, "sent")
    assert [i["what"] for i in data["items"]] == ["sent", "entered", "converted"]

    text = run_cli(w.folder, "history", "pays@x.com", "--limit", "3")
    assert text.out.splitlines()[-1] == "7 older item(s) are not shown; --limit 10 shows all."


def test_history_reads_at_80_columns_with_reasons_wrapped_not_cut(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sheetcrm.cli import main

    w = World.create(tmp_path, {"a@x.com": {"applied": "2026-03-01", "consent": "X"}})
    for day in (0, 2):
        w.sync(day)
    monkeypatch.chdir(w.folder)
    monkeypatch.setenv("COLUMNS", "80")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["history", "a@x.com"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert max(cell_len(line) for line in out.splitlines()) <= 80
    assert all(line == line.rstrip() for line in out.splitlines())
    words = " ".join(part.strip() for part in out.splitlines())
    assert "for good: no consent to advertising (consent is not true)." in words
    assert out.splitlines()[0] == ("History of a@x.com, newest first, times in Asia/Seoul:")
    assert out.splitlines()[1].startswith("2026-03-04 10:00  message  Skipped payment 2/3")


def test_an_unknown_key_is_one_line_with_the_closest_key(journey: World, run_cli) -> None:
    w = journey
    result = run_cli(w.folder, "history", "pays@x.cmo")
    assert (result.code, result.out) == (2, "")
    assert result.err == ("sheetcrm: UnknownKeyError: no customer has the key 'pays@x.cmo'; "
                          "did you mean 'pays@x.com'?\n")
    assert "did you mean 'pays@x.com'" in run_cli(w.folder, "history", "PAYS@X.COM").err
    nothing = run_cli(w.folder, "history", "zzz")
    assert nothing.err == ("sheetcrm: UnknownKeyError: no customer has the key 'zzz', in the "
                           "ledger or in the sheet\n")

    w.customers["new@x.com"] = {"applied": "2026-03-06", "paid": "O", "login": "2026-03-06"}
    w.write_sheet()  # on the sheet, not synced yet
    fresh = run_cli(w.folder, "history", "new@x.com")
    assert fresh.code == 0
    assert fresh.out == ("No history yet for new@x.com: sheetcrm has recorded nothing about "
                         "this customer.\n")
    with pytest.raises(UnknownKeyError):
        customer_history(w.config, "pays@x.co")


def test_status_shows_test_sends_apart_from_customers_sends(journey: World, run_cli) -> None:
    w = journey
    send_test(w.config, w.day(4, 11), TrialOrder("onboarding", "2", "me@example.org",
                                                  row="pays@x.com"))
    result = run_cli(w.folder, "--now", w.day(4, 12).isoformat(), "status")
    assert "Test sends: 1, to the operator only; customers' counts leave them out." in result.out
    assert "onboarding 2 (o2) for pays@x.com, to me@example.org" in result.out
    data = json.loads(run_cli(w.folder, "--now", w.day(4, 12).isoformat(), "--json",
                              "status").out)
    assert data["test_sends"]["counts"] == {"sent": 1}
    assert data["sends"]["counts"] == {"pending": 0, "uncertain": 0, "retry": 0, "failed": 0}


def test_a_ledger_from_before_history_is_upgraded(journey: World) -> None:
    w = journey
    with sqlite3.connect(w.folder / "state.db") as db:  # as version 6 left it
        for table in ("customer_tags", "tag_changes", "test_sends"):
            db.execute(f"DROP TABLE {table}")
        db.execute("UPDATE meta SET value = '6' WHERE name = 'schema_version'")
    # read-only (history, plan): an upgraded copy; the file is left as it was
    assert [i.kind for i in customer_history(w.config, "pays@x.com").items][:2] == [
        "message", "flow"]
    with sqlite3.connect(w.folder / "state.db") as db:
        assert db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone() \
            == ("6",)
    w.sync(5)
    with sqlite3.connect(w.folder / "state.db") as db:
        assert db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone() \
            == (str(SCHEMA_VERSION),)
        assert db.execute("SELECT COUNT(*) FROM customer_tags").fetchone() == (2,)
