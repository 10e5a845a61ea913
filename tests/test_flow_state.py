"""No surprise send from flow state: what the sheet shows is trusted only on a new ledger
(or when asked), and a flow that disappears from the config never lets a new one
start its customers over without the operator's say-so."""

from __future__ import annotations

import csv
from pathlib import Path

from sheetcrm.app.runner import RunOptions
from tests.support.journeys import HEADER, World


def add_row(world: World, row: dict[str, str]) -> None:
    """The operator adds (or pastes) a row, owned cells included, at the end."""
    with open(world.folder / "customers.csv", "a", encoding="utf-8", newline="") as f:
        csv.writer(f).writerow([row.get(column, "") for column in HEADER])


def rename_payment_flow(world: World, extra: str = "") -> None:
    config = world.folder / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[flows.payment]", f"[flows.reminders]\n{extra}"),
                      encoding="utf-8")


# -- restoring from the sheet ------------------------------------------------------------


def test_a_row_copied_with_its_flow_cell_is_a_new_customer(tmp_path: Path) -> None:
    w = World.create(tmp_path, {})
    w.customers = {"a@x.com": {"applied": w.date(-1)}}
    w.write_sheet()
    w.sync(0)
    w.sync(2)
    copied = dict(w.sheet()["a@x.com"], **{"이메일": "c@x.com"})
    assert copied["자동화 흐름"].startswith("payment 2/3")
    add_row(w, copied)
    result = w.sync(2, minute=30)
    assert [(s.key, s.flow, s.step) for s in result.plan.sends] == [("c@x.com", "payment", 0)]
    assert "restored" not in {m.action for m in result.plan.moves}
    assert w.sheet()["c@x.com"]["자동화 흐름"].startswith("payment 1/3 · next")


def test_restoring_on_a_new_ledger_skips_steps_overdue_beyond_grace(tmp_path: Path) -> None:
    w = World.create(tmp_path, {})
    add_row(w, {"이메일": "a@x.com", "결제 여부": "X", "신청일": w.date(-12),
                "자동화 흐름": f"payment 1/3 · 다음 {w.date(-10)} 10:00"})
    result = w.sync(0)
    # Steps 2 and 3 fell due 10 and 8 days ago, beyond the 1-day grace: not sent now.
    assert result.plan.sends == []
    assert [m.action for m in result.plan.moves] == ["restored", "skip"]
    assert w.statuses()[("a@x.com", "payment")] == "finished"


def test_an_unreadable_flow_cell_is_that_rows_error_and_is_left_as_typed(
        tmp_path: Path) -> None:
    w = World.create(tmp_path, {})
    typed = "payment 1/3 · 다음 2026-02-30 10:00"
    add_row(w, {"이메일": "a@x.com", "결제 여부": "X", "신청일": w.date(-1),
                "자동화 흐름": typed})
    add_row(w, {"이메일": "b@x.com", "결제 여부": "X", "신청일": w.date(-1)})
    result = w.sync(0)
    assert [e.key for e in result.plan.errors] == ["a@x.com"]
    assert result.plan.errors[0].message.startswith(f"자동화 흐름: cannot read {typed!r}")
    assert "clear the cell" in result.plan.errors[0].message
    assert [s.key for s in result.plan.sends] == ["b@x.com"]
    assert w.sheet()["a@x.com"]["자동화 흐름"] == typed


def test_restore_from_sheet_on_a_ledger_in_use_only_when_asked(tmp_path: Path) -> None:
    w = World.create(tmp_path, {})
    w.customers = {"b@x.com": {"applied": w.date(-1)}}
    w.write_sheet()
    w.sync(0)
    # A row moved over from another sheet, with the state sheetcrm wrote there.
    add_row(w, {"이메일": "a@x.com", "결제 여부": "X", "신청일": w.date(-3), "수신 동의": "O",
                "자동화 흐름": f"payment 2/3 · 다음 {w.date(1)} 10:00"})
    asked = w.sync(1, options=RunOptions(restore_from_sheet=True))
    assert [(s.key, s.step) for s in asked.plan.sends] == [("a@x.com", 2)]  # step 3


# -- flows removed, renamed, replaced ----------------------------------------------------


def test_a_renamed_flow_is_held_until_the_operator_says_what_happened(
        tmp_path: Path) -> None:
    w = World.create(tmp_path, {})
    w.customers = {"a@x.com": {"applied": w.date(-1)}}
    w.write_sheet()
    w.sync(0)
    assert w.messages("a@x.com") == [("payment", 1, 0)]

    rename_payment_flow(w)  # edited the name, nothing else
    for minute in (0, 5):  # held, and still held on the next run: nothing re-sent
        result = w.sync(1, minute=minute)
        assert result.plan.sends == [] and result.status == "sending_stopped"
        assert result.plan.held[0].reason.startswith(
            "flow change: new flow reminders would message customers that removed flow "
            "payment already messaged")
    assert any("'payment' is no longer in the config but 1 customer(s)" in n
               for n in result.plan.notes)

    rename_payment_flow_back = (tmp_path / "config.toml").read_text(encoding="utf-8")
    (tmp_path / "config.toml").write_text(rename_payment_flow_back.replace(
        "[flows.reminders]\n", '[flows.reminders]\nrenamed_from = "payment"\n'),
        encoding="utf-8")
    result = w.sync(2)
    assert result.status == "ok"
    # The customer carries on at step 2 under the new name; step 1 is never sent again.
    assert w.messages("a@x.com") == [("payment", 1, 0), ("reminders", 2, 2)]
    assert w.statuses() == {("a@x.com", "reminders"): "active"}


def test_a_flow_meant_to_start_over_goes_ahead_when_allowed(tmp_path: Path) -> None:
    w = World.create(tmp_path, {})
    w.customers = {"a@x.com": {"applied": w.date(-1)}}
    w.write_sheet()
    w.sync(0)
    rename_payment_flow(w)
    result = w.sync(1, options=RunOptions(allow_flow_change=True))
    assert [(s.flow, s.step) for s in result.plan.sends] == [("reminders", 0)]
    assert w.statuses()[("a@x.com", "payment")] == "left"  # the removed flow is closed
    assert w.sync(1, minute=5).status == "ok"  # and the change is not raised again


def test_check_and_plan_tell_of_a_flow_removed_with_customers_in_it(
        tmp_path: Path, run_cli) -> None:
    w = World.create(tmp_path, {})
    w.customers = {"a@x.com": {"applied": w.date(-1)}}
    w.write_sheet()
    w.sync(0)
    config = tmp_path / "config.toml"
    text = config.read_text(encoding="utf-8")
    start = text.index("[flows.payment]")
    config.write_text(text[:start] + text[text.index("[flows.onboarding]"):],
                      encoding="utf-8")
    now = f"{w.day(1):%Y-%m-%dT%H:%M}"
    check = run_cli(tmp_path, "--now", now, "check")
    assert "flow 'payment' is no longer in the config but 1 customer(s) are still in it" \
        in check.out
    plan = run_cli(tmp_path, "--now", now, "plan")
    assert plan.code == 0 and "note: flow 'payment' is no longer in the config" in plan.out
