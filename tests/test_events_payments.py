"""Toss and PortOne (V1) do not sign their payment webhooks: a payment counts only when
the provider's API, asked with the operator's key, confirms it paid at an expected
amount, and its key is read from that answer, never from the request."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from sheetcrm.ledger import Ledger
from sheetcrm.model import Event, EventKind
from tests.support.emulators.payments import PortOneEmulator, TossEmulator
from tests.support.events import Listening, body_of, event_sections
from tests.support.journeys import World
from tests.support.servers import Fault, Reply


@pytest.fixture
def toss() -> Iterator[TossEmulator]:
    with TossEmulator() as emulator:
        yield emulator


@pytest.fixture
def portone() -> Iterator[PortOneEmulator]:
    with PortOneEmulator() as emulator:
        yield emulator


@pytest.fixture
def world(tmp_path: Path, toss: TossEmulator, portone: PortOneEmulator) -> World:
    w = World.create(tmp_path, {"a@x.com": {"applied": "2026-03-01"}})
    with open(tmp_path / "config.toml", "a", encoding="utf-8") as f:
        f.write(event_sections(toss_url=toss.url, portone_url=portone.url))
    return w


def stored(world: World) -> list[Event]:
    ledger = Ledger.open(world.folder / "state.db")
    try:
        return ledger.unapplied_events([EventKind.EXTERNAL])
    finally:
        ledger.close()


def refusals(world: World) -> dict[tuple[str, str], tuple[int, int]]:
    ledger = Ledger.open(world.folder / "state.db")
    try:
        return {(r["name"], r["reason"]): (r["status"], r["count"])
                for r in ledger.refusals()}
    finally:
        ledger.close()


JSON = {"content-type": "application/json"}


# -- Toss Payments ------------------------------------------------------------------------------


def test_a_toss_payment_counts_once_toss_confirms_it(world: World, toss: TossEmulator) -> None:
    toss.add_payment("tgen_20261128a", amount=50000, metadata={"email": "a@x.com"})
    # The webhook's own copy of the payment is not believed: another customer's address
    # in it changes nothing, the key is what Toss's API says.
    forged_copy = toss.webhook("tgen_20261128a", metadata={"email": "evil@x.com"})
    with Listening(world.config) as server:
        first = server.post("toss", body_of(forged_copy), JSON)
        again = server.post("toss", body_of(toss.webhook("tgen_20261128a")), JSON)
    assert [(r.status_code, r.text) for r in (first, again)] == [(200, "stored\n"),
                                                                 (200, "already stored\n")]
    [event] = stored(world)
    assert (event.source, event.event_id, event.key, event.data) == (
        "events.toss", "tgen_20261128a", "a@x.com", {"set": {"paid": "TRUE"}})
    lookups = toss.requests_where("GET")
    assert [r.path for r in lookups] == ["/v1/payments/tgen_20261128a"] * 2
    secret = base64.b64encode(b"test_sk_sheetcrm_toss:").decode()
    assert {r.headers["authorization"] for r in lookups} == {f"Basic {secret}"}


def test_a_toss_webhook_toss_does_not_confirm_stores_nothing(
        world: World, toss: TossEmulator) -> None:
    toss.add_payment("tgen_waiting", amount=50000, status="WAITING_FOR_DEPOSIT",
                     metadata={"email": "a@x.com"})
    toss.add_payment("tgen_cheap", amount=100, metadata={"email": "a@x.com"})
    with Listening(world.config) as server:
        guessed = server.post("toss", body_of(toss.webhook("tgen_nobody_paid")), JSON)
        waiting = server.post("toss", body_of(toss.webhook("tgen_waiting", status="DONE")),
                              JSON)
        cheap = server.post("toss", body_of(toss.webhook("tgen_cheap")), JSON)
        no_key = server.post("toss", body_of({"eventType": "PAYMENT_STATUS_CHANGED",
                                              "data": {}}), JSON)
        toss.secret_key = "the key was rotated at Toss"
        refused_key = server.post("toss", body_of(toss.webhook("tgen_cheap")), JSON)
        toss.add_fault(Fault(Reply(503), times=None))
        down = server.post("toss", body_of(toss.webhook("tgen_cheap")), JSON)
    assert (guessed.status_code, guessed.text) == (
        401, "payment not found at the provider\n")
    assert (waiting.status_code, waiting.text) == (200, "ignored: payment not completed\n")
    assert (cheap.status_code, cheap.text) == (
        200, "ignored: amount not expected: amount is not one of [50000, 90000]\n")
    assert no_key.status_code == 400
    assert refused_key.status_code == down.status_code == 503  # Toss will try again
    assert stored(world) == []
    assert refusals(world) == {
        ("toss", "payment not found at the provider"): (401, 1),
        ("toss", "ignored: payment not completed"): (200, 1),
        ("toss", "ignored: amount not expected"): (200, 1),
        ("toss", "no event id"): (400, 1),
        ("toss", "provider refused our api_key"): (503, 1),
        ("toss", "provider unreachable"): (503, 1)}
    assert len(toss.requests_where("GET", 503)) == 3  # retried, within the deadline


# -- PortOne V1 (아임포트) -------------------------------------------------------------------------


def test_a_portone_payment_is_fetched_by_imp_uid_and_checked_for_status_and_amount(
        world: World, portone: PortOneEmulator) -> None:
    portone.add_payment("imp_448280090638", amount=50000, buyer_email="a@x.com")
    portone.add_payment("imp_cheap", amount=5000, buyer_email="a@x.com")
    portone.add_payment("imp_ready", amount=50000, status="ready", buyer_email="a@x.com")
    form = {"content-type": "application/x-www-form-urlencoded"}
    with Listening(world.config) as server:
        paid = server.post("portone", body_of(portone.webhook("imp_448280090638")), JSON)
        again = server.post("portone", b"imp_uid=imp_448280090638&merchant_uid=order-"
                                       b"imp_448280090638&status=paid", form)
        cheap = server.post("portone", body_of(portone.webhook("imp_cheap")), JSON)
        ready = server.post("portone", body_of(portone.webhook("imp_ready", "paid")), JSON)
        guessed = server.post("portone", body_of(portone.webhook("imp_000000000000")), JSON)
        portone.imp_secret = "changed in the console"
        refused_key = server.post("portone", body_of(portone.webhook("imp_cheap")), JSON)
    assert [(r.status_code, r.text) for r in (paid, again)] == [(200, "stored\n"),
                                                                (200, "already stored\n")]
    assert [r.status_code for r in (cheap, ready)] == [200, 200]
    assert cheap.text.startswith("ignored: amount not expected")
    assert ready.text == "ignored: payment not completed\n"
    assert guessed.status_code == 401 and refused_key.status_code == 503
    [event] = stored(world)
    assert (event.event_id, event.key, event.data) == (
        "imp_448280090638", "a@x.com", {"set": {"paid": "TRUE"}})
    logins = portone.requests_where("POST")
    assert logins[0].json() == {"imp_key": "1234567890123456",
                                "imp_secret": "portone-test-secret-of-the-shop"}
    lookups = portone.requests_where("GET", 200)
    assert all(r.headers["authorization"].startswith("Bearer ") for r in lookups)


def test_an_unsigned_body_nested_thousands_deep_is_refused_before_any_lookup(
        world: World, toss: TossEmulator) -> None:
    deep = b"[" * 4000 + b"]" * 4000  # under max_body; json's C parser gives up on it
    with Listening(world.config) as server:
        answer = server.post("toss", deep, JSON)
    assert (answer.status_code, answer.text) == (400, "body is not JSON\n")
    assert toss.requests == [] and stored(world) == []
    assert refusals(world) == {("toss", "body is not JSON"): (400, 1)}
