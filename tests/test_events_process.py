"""Outside events end to end, every part a real process: ``sheetcrm serve`` answers a
provider's signed webhook at ``/e/NAME`` (the events routes are mounted beside the
others), and the next ``sheetcrm sync`` writes the field into the sheet, once, planning
with it in the same run."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.daemon import read_sheet
from tests.support.endpoint import ServeProcess, cli, free_port, request, with_server
from tests.support.events import STRIPE_SECRET, body_of, stripe_event, stripe_headers
from tests.support.sample import DAY0

SOOHYUN = "soohyun.kim@example.com"  # 김수현: applied, not paid (X): due a payment reminder
PAID = f"""
[events.paid]
source = "stripe"
secret = "{STRIPE_SECRET}"
key = "data.object.customer_details.email"
set = {{ paid = "O" }}
"""


def test_a_payment_posted_to_sheetcrm_serve_is_written_by_the_next_sync_once(
        sample: Path) -> None:
    port = free_port()
    with_server(sample, port)
    with open(sample / "config.toml", "a", encoding="utf-8") as f:
        f.write(PAID)
    body = body_of(stripe_event("evt_1QX", SOOHYUN))
    url = f"http://127.0.0.1:{port}/e/paid"
    server = ServeProcess(sample, port, now=None)  # Stripe's timestamp: the real clock
    try:
        first = request(url, "POST", body, stripe_headers(body))
        again = request(url, "POST", body, stripe_headers(body))
        forged = request(url, "POST", body, stripe_headers(body, secret="whsec_guessed"))
    finally:
        assert server.terminate() == 0
    assert [(a[0], a[2]) for a in (first, again, forged)] == [
        (200, b"stored\n"), (200, b"already stored\n"),
        (401, b"signature does not match\n")]
    assert SOOHYUN not in server.log() and "evt_1QX" not in server.log()

    synced = cli(sample, "--now", DAY0, "--json", "sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    data = json.loads(synced.stdout)
    assert data["summary"]["events_applied"] == 1
    assert read_sheet(sample)[1][SOOHYUN]["결제 여부"] == "O"
    # Planned with the payment: a paying customer's welcome instead of the payment
    # reminder (no review request: she has not opened the course yet).
    assert {s["flow"] for s in data["sends"] if s["key"] == SOOHYUN} == {"onboarding"}
    again_synced = cli(sample, "--now", "2026-11-23T10:05", "--json", "sync")
    assert json.loads(again_synced.stdout)["summary"]["events_applied"] == 0

    shown = cli(sample, "status")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "paid: 1 stored" in shown.stdout and "waiting" not in shown.stdout
    assert "paid: 1 × 401 signature does not match" in shown.stdout
    assert "paid: 1 × 200 already stored (a retry or a replay)" in shown.stdout
