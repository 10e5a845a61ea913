"""POST /e/NAME: a provider's webhook is proved over its raw bytes, read, stored once and
answered at once; whatever is turned away gets its status and a line in ``status``."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sheetcrm.app.status import status_report
from sheetcrm.cli import cli
from sheetcrm.ledger import Ledger
from sheetcrm.model import Event, EventKind
from sheetcrm.server.events import DUPLICATE
from tests.support.events import (
    MAX_BODY,
    ROTATED_SECRET,
    STRIPE_SECRET,
    Listening,
    body_of,
    event_sections,
    standard_event,
    standard_headers,
    stripe_event,
    stripe_headers,
    tally_headers,
    tally_submission,
)
from tests.support.journeys import World


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World.create(tmp_path, {"a@x.com": {"applied": "2026-03-01"}})
    with open(tmp_path / "config.toml", "a", encoding="utf-8") as f:
        f.write(event_sections())
    return w


def stored(world: World) -> list[Event]:
    ledger = Ledger.open(world.folder / "state.db")
    try:
        return ledger.unapplied_events([EventKind.EXTERNAL])
    finally:
        ledger.close()


def refused(world: World) -> dict[tuple[str, str], tuple[int, int]]:
    """(name, reason) -> (status, count), as the ledger counted them."""
    ledger = Ledger.open(world.folder / "state.db")
    try:
        return {(r["name"], r["reason"]): (r["status"], r["count"])
                for r in ledger.refusals()}
    finally:
        ledger.close()


# -- Standard Webhooks ------------------------------------------------------------------------


def test_a_signed_standard_webhook_is_stored_once_however_often_it_is_delivered(
        world: World) -> None:
    body = body_of(standard_event("a@x.com"))
    with Listening(world.config) as server:
        first = server.post("order", body, standard_headers(body, "msg_2Kq"))
        again = server.post("order", body, standard_headers(body, "msg_2Kq"))  # a retry
        rotated = server.post("order", body, standard_headers(body, "msg_3Lr",
                                                              also=(ROTATED_SECRET,)))
    assert (first.status_code, first.text) == (200, "stored\n")
    assert (again.status_code, again.text) == (200, "already stored\n")
    assert rotated.status_code == 200  # several signatures: the one that matches counts
    events = stored(world)
    assert [(e.source, e.event_id, e.name, e.key) for e in events] == [
        ("events.order", "msg_2Kq", "order", "a@x.com"),
        ("events.order", "msg_3Lr", "order", "a@x.com")]
    assert events[0].data == {"set": {"paid": "O", "last_login": "2026-11-28 10:00"}}
    assert refused(world) == {("order", DUPLICATE): (200, 1)}  # a line in status


def test_a_standard_webhook_with_a_bad_signature_or_a_stale_timestamp_stores_nothing(
        world: World) -> None:
    body = body_of(standard_event("a@x.com"))
    good = standard_headers(body, "msg_1")
    forged = {**good, "webhook-signature": standard_headers(
        body, "msg_1", secret=ROTATED_SECRET)["webhook-signature"]}
    with Listening(world.config) as server:
        answers = {
            "forged": server.post("order", body, forged),
            "altered body": server.post("order", body.replace(b"a@x.com", b"b@x.com"), good),
            "other id": server.post("order", body, {**good, "webhook-id": "msg_2"}),
            "no signature": server.post("order", body, {"webhook-id": "msg_1"}),
            "garbled": server.post("order", body, {**good, "webhook-signature": "v1"}),
            "stale": server.post("order", body, standard_headers(
                body, "msg_1", at=time.time() - 6 * 60)),
            "future": server.post("order", body, standard_headers(
                body, "msg_1", at=time.time() + 6 * 60)),
        }
    assert {k: r.status_code for k, r in answers.items()} == dict.fromkeys(answers, 401)
    assert answers["stale"].text.startswith("timestamp too old or too new")
    assert stored(world) == []
    assert refused(world) == {
        ("order", "signature does not match"): (401, 4),
        ("order", "signature headers missing"): (401, 1),
        ("order", "timestamp too old or too new"): (401, 2)}


# -- Tally ------------------------------------------------------------------------------------


def test_a_tally_answer_is_read_by_its_labels_and_stored_once_per_response(
        world: World) -> None:
    first = body_of(tally_submission("2wgx4n", "new@x.com", consent="아니오"))
    # Tally delivers the same response again with another delivery id: one event.
    again = body_of(tally_submission("2wgx4n", "new@x.com", consent="아니오", event_id="e2"))
    with Listening(world.config) as server:
        answers = [server.post("signup", b, tally_headers(b)) for b in (first, again)]
    assert [(a.status_code, a.text) for a in answers] == [(200, "stored\n"),
                                                          (200, "already stored\n")]
    [event] = stored(world)
    assert (event.event_id, event.key) == ("2wgx4n", "new@x.com")
    assert refused(world) == {("signup", DUPLICATE): (200, 1)}
    # the choice's option id reads as its text; the date as the field's type reads it
    assert event.data == {"set": {"applied_at": "2026-11-28T01:00:21.000Z",
                                  "consent": "아니오"}}


def test_a_tally_answer_with_a_wrong_or_missing_signature_stores_nothing(
        world: World) -> None:
    body = body_of(tally_submission("3xhy5p", "new@x.com"))
    with Listening(world.config) as server:
        wrong = server.post("signup", body, tally_headers(body, secret="another secret"))
        missing = server.post("signup", body, {"content-type": "application/json"})
        altered = server.post("signup", body.replace(b"new@x.com", b"evil@x.com"),
                              tally_headers(body))
    assert [r.status_code for r in (wrong, missing, altered)] == [401, 401, 401]
    assert stored(world) == []


# -- Stripe -----------------------------------------------------------------------------------


def test_a_stripe_event_is_checked_with_its_timestamp_and_stored_once(world: World) -> None:
    body = body_of(stripe_event("evt_1Q", "a@x.com"))
    with Listening(world.config) as server:
        ok = server.post("paid", body, stripe_headers(body))
        replay = server.post("paid", body, stripe_headers(body))
        rolling = server.post("paid", body_of(stripe_event("evt_2R", "a@x.com")),
                              stripe_headers(body_of(stripe_event("evt_2R", "a@x.com")),
                                             also=("whsec_the_old_one",)))
        stale = server.post("paid", body, stripe_headers(body, at=time.time() - 301))
        wrong = server.post("paid", body, stripe_headers(body, secret=STRIPE_SECRET + "x"))
        tampered = server.post("paid", body.replace(b"a@x.com", b"b@x.com"),
                               stripe_headers(body))
        no_v1 = server.post("paid", body, {"stripe-signature": f"t={int(time.time())}"})
    assert [(r.status_code, r.text) for r in (ok, replay)] == [(200, "stored\n"),
                                                               (200, "already stored\n")]
    assert rolling.status_code == 200
    assert [r.status_code for r in (stale, wrong, tampered, no_v1)] == [401] * 4
    events = stored(world)
    assert [(e.event_id, e.key, e.data) for e in events] == [
        ("evt_1Q", "a@x.com", {"set": {"paid": "TRUE"}}),
        ("evt_2R", "a@x.com", {"set": {"paid": "TRUE"}})]
    assert refused(world)[("paid", "timestamp too old or too new")] == (401, 1)
    assert refused(world)[("paid", "signature does not match")] == (401, 2)
    assert refused(world)[("paid", DUPLICATE)] == (200, 1)


# -- what is turned away ------------------------------------------------------------------------


def raw_post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """A request as a client that streams its body may send it (chunked, no length)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=iter([body]), headers=headers,
                     encode_chunked=True)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def test_oversized_malformed_and_unreadable_webhooks_get_their_status_and_are_counted(
        world: World) -> None:
    def signed(payload: Any, msg_id: str) -> tuple[bytes, dict[str, str]]:
        body = payload if isinstance(payload, bytes) else body_of(payload)
        return body, standard_headers(body, msg_id)

    big = body_of({**standard_event("a@x.com"), "pad": "x" * MAX_BODY})
    no_key = {"type": "payment.succeeded", "data": {"customer": {}}}
    bad_key = standard_event("not an email")
    bad_value = standard_event("a@x.com", paid_at="sometime soon")
    with Listening(world.config) as server:
        answers = {
            "too large": server.post("order", *signed(big, "m1")),
            "too large, chunked": raw_post(server.endpoint.port, "/e/order",
                                           *signed(big, "m2")),
            "not JSON": server.post("order", *signed(b"{'data': 1", "m3")),
            "not an object": server.post("order", *signed(b"[1, 2]", "m4")),
            "no key": server.post("order", *signed(no_key, "m5")),
            "bad key": server.post("order", *signed(bad_key, "m6")),
            "bad value": server.post("order", *signed(bad_value, "m7")),
            "unknown name": server.post("nope", *signed(standard_event("a@x.com"), "m8")),
        }
        get = server.session.get(f"{server.url}/e/order", timeout=10)
    statuses = {k: (r.status_code if not isinstance(r, tuple) else r[0])
                for k, r in answers.items()}
    assert statuses == {"too large": 413, "too large, chunked": 413, "not JSON": 400,
                        "not an object": 400, "no key": 400, "bad key": 400,
                        "bad value": 400, "unknown name": 404}
    assert answers["no key"].text == (  # type: ignore[union-attr]
        "key path not in payload: 'data.customer.email' is not in the payload\n")
    assert answers["bad value"].text.startswith(  # type: ignore[union-attr]
        "a set value does not fit its field: field 'last_login' takes a date and time")
    assert get.status_code == 405
    assert stored(world) == []  # nothing half-stored
    counts = refused(world)
    assert counts == {
        ("order", "body too large"): (413, 2), ("order", "body is not JSON"): (400, 1),
        ("order", "body is not a JSON object"): (400, 1),
        ("order", "key path not in payload"): (400, 1),
        ("order", "key does not fit its field"): (400, 1),
        ("order", "a set value does not fit its field"): (400, 1),
        ("?", "no such event name"): (404, 1)}
    with sqlite3.connect(world.folder / "state.db") as db:  # no customer data is kept
        dump = json.dumps(db.execute("SELECT * FROM refused_events").fetchall())
    assert "a@x.com" not in dump and "not an email" not in dump


def test_status_shows_what_was_stored_waiting_and_turned_away(world: World) -> None:
    body = body_of(stripe_event("evt_9", "a@x.com"))
    with Listening(world.config) as server:
        server.post("paid", body, stripe_headers(body))
        server.post("paid", body, stripe_headers(body, secret="whsec_wrong"))
        server.post("paid", body, stripe_headers(body, secret="whsec_wrong"))
    report = status_report(world.config, world.day(0))
    assert report["events"]["stored"] == {"paid": 1}
    assert report["events"]["waiting"] == {"paid": 1}
    [line] = report["events"]["refused"]
    assert (line["name"], line["reason"], line["status"], line["count"]) == (
        "paid", "signature does not match", 401, 2)
    out = CliRunner().invoke(cli, ["--config", str(world.folder / "config.toml"), "status"],
                             env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "paid: 1 stored, 1 waiting to be written" in out.output
    assert "events refused or ignored: 2" in out.output
    assert "paid: 2 × 401 signature does not match" in out.output
    assert "a@x.com" not in out.output.split("events")[1]


# -- the endpoint's own clock, odd timestamps and bodies -----------------------------------------


def test_a_standard_webhook_is_judged_by_the_endpoints_clock_not_the_machines(
        world: World) -> None:
    heard_at = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)  # sheetcrm serve --now …
    body = body_of(standard_event("a@x.com"))
    with Listening(world.config, now=lambda: heard_at) as server:
        on_time = server.post("order", body, standard_headers(
            body, "msg_clock", at=heard_at.timestamp() - 60))
        by_the_wall = server.post("order", body, standard_headers(body, "msg_wall"))
    assert (on_time.status_code, on_time.text) == (200, "stored\n")
    assert by_the_wall.status_code == 401
    assert by_the_wall.text.startswith("timestamp too old or too new")
    assert [e.event_id for e in stored(world)] == ["msg_clock"]


def test_a_signed_timestamp_that_is_not_whole_seconds_is_refused(world: World) -> None:
    body = body_of(stripe_event("evt_nan", "a@x.com"))
    with Listening(world.config) as server:
        answers = []
        for t in ("nan", "1.7e9", "-1", f"{time.time():.3f}"):
            digest = hmac.new(STRIPE_SECRET.encode(), f"{t}.".encode() + body,
                              hashlib.sha256).hexdigest()
            answers.append(server.post("paid", body, {"stripe-signature": f"t={t},v1={digest}"}))
    assert [(a.status_code, a.text) for a in answers] == [
        (401, "timestamp is not a number\n")] * 4
    assert stored(world) == []


def test_a_body_nested_thousands_deep_is_malformed_not_a_server_error(world: World) -> None:
    deep = b"[" * 2000 + b"]" * 2000  # under max_body; json's C parser gives up on it
    with Listening(world.config) as server:
        answer = server.post("order", deep, standard_headers(deep, "msg_deep"))
    assert (answer.status_code, answer.text) == (400, "body is not JSON\n")
    assert refused(world) == {("order", "body is not JSON"): (400, 1)}


def test_status_reads_a_ledger_written_before_refusals_were_counted(world: World) -> None:
    Ledger.open(world.folder / "state.db").close()
    with sqlite3.connect(world.folder / "state.db") as db:  # as the version before wrote it
        db.execute("DROP TABLE refused_events")
        db.execute("UPDATE meta SET value = '4' WHERE name = 'schema_version'")
    report = status_report(world.config, world.day(0))
    assert report["events"]["refused"] == [] and report["events"]["stored"] == {}
