"""An outside event reaches the sheet once, through the run's batched write: its fields
count in the run that writes them, the operator's later edit wins, a form's answer for a
new key adds a row (CSV: every other byte of the file kept), and an event for a key on
no row waits and is reported."""

from __future__ import annotations

import codecs
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from sheetcrm.app.runner import preview
from sheetcrm.app.status import status_report
from sheetcrm.cli import cli
from sheetcrm.config import config_from_dict
from sheetcrm.errors import ConfigError
from sheetcrm.ledger import Ledger
from sheetcrm.model import CellUpdate, EventKind
from sheetcrm.table.csv import CsvTable
from tests.support.alerts import TOKEN as ALERT_TOKEN
from tests.support.alerts import add_alerts, receiver, titles
from tests.support.events import (
    Listening,
    body_of,
    make_world,
    stripe_event,
    stripe_headers,
    tally_headers,
    tally_submission,
)
from tests.support.journeys import World


def post_paid(world: World, event_id: str, email: str) -> None:
    body = body_of(stripe_event(event_id, email))
    with Listening(world.config) as server:
        assert server.post("paid", body, stripe_headers(body)).status_code == 200


def post_signup(world: World, response_id: str, email: str) -> None:
    body = body_of(tally_submission(response_id, email))
    with Listening(world.config) as server:
        assert server.post("signup", body, tally_headers(body)).status_code == 200


def unapplied(world: World) -> list[str]:
    ledger = Ledger.open(world.folder / "state.db")
    try:
        return [e.event_id for e in ledger.unapplied_events([EventKind.EXTERNAL])]
    finally:
        ledger.close()


def test_a_payment_sets_its_field_once_counts_at_once_and_the_operators_edit_wins(
        tmp_path: Path) -> None:
    w = make_world(tmp_path, {"kim@x.com": {"applied": "2026-02-27"}})
    post_paid(w, "evt_1", "Kim@X.com")  # the provider's spelling of the address
    first = w.sync(0)
    assert w.sheet()["kim@x.com"]["결제 여부"] == "TRUE"
    assert first.events_applied == 1 and first.summary()["events_applied"] == 1
    # Planned with the payment: no payment reminder goes to a customer who just paid,
    # the onboarding of paying customers starts in the same run.
    assert w.messages("kim@x.com") == [("onboarding", 1, 0)]
    assert unapplied(w) == []
    w.customers["kim@x.com"]["paid"] = "X"  # the operator corrects it (a refund)
    w.write_sheet()
    second = w.sync(1)
    assert second.events_applied == 0
    assert w.sheet()["kim@x.com"]["결제 여부"] == "X"  # never written again
    assert w.messages("kim@x.com") == [("onboarding", 1, 0), ("payment", 1, 1)]


def test_a_payment_still_counts_when_the_rows_are_read_again_right_before_sending(
        tmp_path: Path) -> None:
    # recheck_after = 0: the table is read again before the sends, and its payment cell
    # is not written yet; the stored payment still counts on the rows read again.
    w = make_world(tmp_path, {"kim@x.com": {"applied": "2026-02-27"}},
                   sending='recheck_after = "0s"')
    post_paid(w, "evt_1", "kim@x.com")
    run = w.sync(0)
    assert w.messages("kim@x.com") == [("onboarding", 1, 0)]
    assert run.events_applied == 1 and w.sheet()["kim@x.com"]["결제 여부"] == "TRUE"
    assert w.statuses()[("kim@x.com", "onboarding")] == "active"


def test_plan_shows_the_cells_an_event_would_set_and_applies_nothing(tmp_path: Path) -> None:
    w = make_world(tmp_path, {"kim@x.com": {"applied": "2026-02-27"}})
    post_paid(w, "evt_1", "kim@x.com")
    result = preview(w.config, w.day(0))
    assert CellUpdate("kim@x.com", "결제 여부", "TRUE") in result.updates
    assert w.sheet()["kim@x.com"]["결제 여부"] == "X"
    assert unapplied(w) == ["evt_1"]


def test_an_event_for_a_key_on_no_row_waits_is_reported_and_lands_once_the_row_is_there(
        tmp_path: Path) -> None:
    w = make_world(tmp_path, {"kim@x.com": {"applied": "2026-03-02"}})
    post_paid(w, "evt_lee", "lee@x.com")
    waiting = w.sync(0)
    assert waiting.events_applied == 0 and waiting.summary()["events_waiting"] == 1
    assert ("events.paid: 1 event(s) wait: their keys are on no row (append = true adds "
            "one)") in waiting.plan.notes
    assert "lee@x.com" not in " ".join(waiting.plan.notes)
    events = status_report(w.config, w.day(0))["events"]
    assert events["waiting"] == {"paid": 1}
    assert events["waiting_why"] == {"paid": "their keys are on no row (append = true adds one)"}
    shown = CliRunner().invoke(cli, ["--config", str(w.folder / "config.toml"), "status"],
                               env={"COLUMNS": "200"})
    assert ("paid: 1 stored, 1 waiting to be written: their keys are on no row (append = true "
            "adds one)") in shown.output
    assert "lee@x.com" not in w.sheet()
    w.customers["lee@x.com"] = {"applied": "2026-03-02"}  # the operator adds the row
    w.write_sheet()
    landed = w.sync(0, hour=11)
    assert landed.events_applied == 1
    assert w.sheet()["lee@x.com"]["결제 여부"] == "TRUE"
    assert status_report(w.config, w.day(0))["events"]["waiting"] == {}


def test_a_form_answer_for_a_new_key_adds_one_row_and_keeps_every_other_byte(
        tmp_path: Path) -> None:
    w = make_world(tmp_path, {"kim@x.com": {"applied": "2026-03-02"}})
    w.sync(0)  # settled: nothing more to write for the rows there
    before = (tmp_path / "customers.csv").read_bytes()
    post_signup(w, "2wgx4n", "new@x.com")
    post_signup(w, "3xhy5p", "Kim@x.com")  # a known customer answering again
    added = w.sync(0, hour=11)
    after = (tmp_path / "customers.csv").read_bytes()
    assert added.events_applied == 2 and added.write is not None
    assert added.write.added_keys == ["new@x.com"]
    assert after == before.replace(b"2026-03-02,,O", b"2026-11-28T01:00:21.000Z,,O") + (
        "new@x.com,,2026-11-28T01:00:21.000Z,,예,,,,\r\n".encode())
    again = w.sync(0, hour=12)
    assert again.events_applied == 0 and again.summary()["rows_added"] == 0
    assert [line.split(b",")[0] for line in
            (tmp_path / "customers.csv").read_bytes().splitlines()].count(b"new@x.com") == 1


def test_two_answers_from_one_new_address_in_another_case_add_one_row(tmp_path: Path) -> None:
    w = make_world(tmp_path, {"kim@x.com": {"applied": "2026-03-02"}})
    for response_id, email, consent in (("4aa", "New@x.com", "예"), ("5bb", "new@X.com", "아니오")):
        body = body_of(tally_submission(response_id, email, consent=consent))
        with Listening(w.config) as server:
            assert server.post("signup", body, tally_headers(body)).status_code == 200
    added = w.sync(0)
    assert added.events_applied == 2 and added.write is not None
    assert added.write.added_keys == ["New@x.com"]  # spelled as first heard
    rows = w.sheet()
    assert [k for k in rows if k.casefold() == "new@x.com"] == ["New@x.com"]
    assert rows["New@x.com"]["수신 동의"] == "아니오"  # the later answer wins


def test_a_row_is_added_in_the_files_own_encoding_and_line_ending(tmp_path: Path) -> None:
    path = tmp_path / "고객.csv"
    original = '이메일;이름;메모\n"a@x.com";"김, 철수";"첫 줄\n둘째 줄"'.encode("cp949")
    path.write_bytes(original)  # CP949, LF, quoted cells, no newline at the end
    table = CsvTable(path, delimiter=";")
    table.read()
    report = table.write("이메일", [CellUpdate("b@x.com", "이름", "이, 영희"),
                                   CellUpdate("a@x.com", "이름", "김, 철수")],
                         append=["b@x.com", "a@x.com"])
    assert report.added_keys == ["b@x.com"] and report.missing_keys == []
    assert path.read_bytes() == original + '\nb@x.com;이, 영희;'.encode("cp949")
    bom = tmp_path / "bom.csv"
    bom.write_bytes(codecs.BOM_UTF8 + "이메일,이름\r\na@x.com,김\r\n".encode())
    CsvTable(bom).write("이메일", [CellUpdate("b@x.com", "이름", '"이"')], append=["b@x.com"])
    assert bom.read_bytes() == codecs.BOM_UTF8 + (
        '이메일,이름\r\na@x.com,김\r\nb@x.com,"""이"""\r\n').encode()


def test_a_row_added_by_the_operator_meanwhile_is_written_not_added_twice(
        tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes("이메일,이름\r\na@x.com,김\r\n".encode())
    table = CsvTable(path)
    table.read()
    path.write_bytes("이메일,이름\r\na@x.com,김\r\nb@x.com,\r\n".encode())  # typed in
    report = table.write("이메일", [CellUpdate("b@x.com", "이름", "이")], append=["b@x.com"])
    assert report.added_keys == [] and report.cells_written == 1
    assert path.read_bytes() == "이메일,이름\r\na@x.com,김\r\nb@x.com,이\r\n".encode()


def test_events_that_cannot_be_applied_are_refused_when_the_config_loads(
        tmp_path: Path) -> None:
    w = make_world(tmp_path, {})
    raw = tomllib.loads((tmp_path / "config.toml").read_text(encoding="utf-8"))
    sheets = {**raw, "table": {"backend": "gsheets", "key": "email",
                               "spreadsheet": "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"}}
    airtable = {**raw, "table": {"backend": "airtable", "key": "email",
                                 "base": "appAbcdefghijklmn", "table": "고객"}}
    for table in (sheets, airtable):
        with pytest.raises(ConfigError, match=r"events\.signup\.append: append = true adds "
                                              r"rows, which only the csv backend does"):
            config_from_dict(table, {}, path=tmp_path / "config.toml")
    bad = {**raw, "events": {**raw["events"], "paid": {**raw["events"]["paid"],
                                                        "set": {"paid": "maybe"}}}}
    with pytest.raises(ConfigError, match=r"events\.paid\.set: paid: 'maybe' is not yes or no"):
        config_from_dict(bad, {}, path=tmp_path / "config.toml")
    keyed = {**raw, "events": {"paid": {**raw["events"]["paid"], "set": {"email": "x@y.z"}}}}
    with pytest.raises(ConfigError, match=r"'email' is the key"):
        config_from_dict(keyed, {}, path=tmp_path / "config.toml")
    unserved = {k: v for k, v in raw.items() if k != "server"}
    with pytest.raises(ConfigError, match=r"events\.paid: events arrive at the endpoint"):
        config_from_dict(unserved, {}, path=tmp_path / "config.toml")
    assert w.config.events["signup"].append


def test_events_waiting_for_a_row_are_alerted_once_and_their_end_too(
        tmp_path: Path) -> None:
    w = make_world(tmp_path, {"kim@x.com": {"applied": "2026-03-02"}})
    with receiver() as alerts:
        add_alerts(w.folder, f"json://127.0.0.1:{alerts.port}/hook/{ALERT_TOKEN}")
        post_paid(w, "evt_lee", "lee@x.com")
        w.sync(0)
        w.sync(0, hour=11)  # still waiting: told once
        assert titles(alerts) == ["sheetcrm: events from [events.paid] match no row"]
        message = alerts.requests[0].json()["message"]
        assert "1 event(s) wait: their keys are on no row" in message
        assert "lee@x.com" not in message  # the text leaves the machine: no row key
        w.customers["lee@x.com"] = {"applied": "2026-03-02"}
        w.write_sheet()
        w.sync(0, hour=12)
        assert titles(alerts)[1:] == ["sheetcrm: events from [events.paid] are written again"]
