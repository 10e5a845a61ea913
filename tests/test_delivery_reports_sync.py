"""Delivery reports end to end: a real ``sheetcrm sync`` sends AlimTalks through the Solapi
or NHN Cloud emulator, the emulator posts its delivery reports to the real endpoint on
loopback, and the next sync writes what they said into the customer's row, asking NHN
Cloud about what its webhook left open; forged, altered and replayed reports change
nothing, and ``report`` counts delivered and failed per step."""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sheetcrm.app import deliveries as follow_up
from sheetcrm.app.report import read_report
from sheetcrm.app.report.html import render_html
from sheetcrm.app.report.sheet import summary_rows
from sheetcrm.app.report.words import Words
from sheetcrm.core.projection import delivery_text, written_by_sheetcrm
from sheetcrm.ledger import Ledger
from sheetcrm.model import DeliveryState, LedgerState, Record, SendRecord, SendStatus
from sheetcrm.texting import parse_nhn_reports
from tests.support.emulators.nhn import NhnEmulator
from tests.support.emulators.solapi import SolapiEmulator
from tests.support.events import Listening
from tests.support.kakao import use_nhn, use_solapi
from tests.support.reports import (
    NHN_SIGNATURE,
    SOLAPI_SECRET,
    config_of,
    deliveries,
    hear_reports,
    refused,
)
from tests.support.sample import CSV, DAY0
from tests.support.servers import Fault, Reply

SOOHYUN, JIHOON, CHAERIN = ("soohyun.kim@example.com", "jihoon.lee@example.com",
                            "chaerin.park@example.com")
PHONES = {SOOHYUN: "01023456789", JIHOON: "01034567890", CHAERIN: "01045678901"}
HOUR_LATER = "2026-11-23T11:00"


def sync(run_cli: Any, folder: Path, when: str) -> dict[str, Any]:
    result = run_cli(folder, "--now", when, "--json", "sync")
    assert result.code == 0, result.err
    return json.loads(result.out)


def errors(folder: Path) -> dict[str, str]:
    """The error column (오류) of every row, by email."""
    text = (folder / CSV).read_text(encoding="utf-8-sig")
    return {r["이메일"]: r.get("오류") or "" for r in csv.DictReader(io.StringIO(text))}


def queries(nhn: NhnEmulator) -> list[Any]:
    """NHN Cloud single-message queries (GET …/messages/{requestId}/{recipientSeq})."""
    return [r for r in nhn.requests if r.method == "GET" and "/messages/" in r.path]


@pytest.fixture
def sample(sample: Path) -> Path:
    """The shipped sample without ``min_gap``: every message due on day 0 goes at once,
    so the later syncs here send nothing new and only settle the reports."""
    config = sample / "config.toml"
    text = config.read_text(encoding="utf-8")
    assert 'min_gap = "1h"' in text
    config.write_text(text.replace('min_gap = "1h"', "# min_gap", 1), encoding="utf-8")
    return sample


@pytest.fixture
def solapi() -> Iterator[SolapiEmulator]:
    with SolapiEmulator() as emulator:
        yield emulator


@pytest.fixture
def nhn() -> Iterator[NhnEmulator]:
    with NhnEmulator() as emulator:
        yield emulator


def test_solapis_reports_reach_the_customers_row_with_the_next_sync(
        run_cli: Any, sample: Path, solapi: SolapiEmulator) -> None:
    use_solapi(sample, solapi, alimtalk=True, extra="fallback = false\n")
    solapi.not_on_kakao.add(PHONES[SOOHYUN])
    hear_reports(sample, "solapi", SOLAPI_SECRET)
    sent = sync(run_cli, sample, DAY0)["summary"]["sent"]
    config = config_of(sample)
    with Listening(config) as server:
        url = f"{server.url}/e/kakao?secret={SOLAPI_SECRET}"
        answers = [solapi.post_report(m.message_id, url) for m in list(solapi.received)]
    assert {a.status_code for a in answers} == {200}
    assert deliveries(config) == {"accepted": 0, "delivered": sent - 1, "failed": 1}
    assert errors(sample)[SOOHYUN] == ""  # the endpoint stores; the next sync writes
    sync(run_cli, sample, HOUR_LATER)
    cells = errors(sample)
    assert cells[SOOHYUN] == "2026-11-25 AlimTalk not delivered (3104): 카카오톡 미사용자"
    assert [k for k, v in cells.items() if "not delivered" in v] == [SOOHYUN]  # delivered: no note
    status = json.loads(run_cli(sample, "--json", "status").out)["deliveries"]
    assert status["counts"] == {"accepted": 0, "delivered": sent - 1, "failed": 1}

    # Replayed, forged and altered reports afterwards change nothing, in the ledger or
    # in the sheet.
    message = next(m.message_id for m in solapi.received if m.to == PHONES[SOOHYUN])
    altered = solapi.report(message)
    altered[0]["data"].update(statusCode="4000", statusMessage="수신완료")
    with Listening(config) as server:
        replays = [solapi.post_report(m.message_id, f"{server.url}/e/kakao?secret="
                                      f"{SOLAPI_SECRET}") for m in solapi.received]
        forged = server.post("kakao?secret=guessed-secret-0000000000", json.dumps(altered)
                             .encode())
        altered_answer = server.post(f"kakao?secret={SOLAPI_SECRET}", json.dumps(altered)
                                     .encode())
    assert {r.status_code for r in replays} == {200} and forged.status_code == 401
    assert altered_answer.status_code == 200
    assert deliveries(config) == {"accepted": 0, "delivered": sent - 1, "failed": 1}
    assert refused(config)[("kakao", "already stored (a retry or a replay)")] == (
        200, sent + 1)
    sync(run_cli, sample, "2026-11-23T12:00")
    assert errors(sample) == cells


def test_nhn_reports_and_the_next_syncs_queries_settle_every_alimtalk(
        run_cli: Any, sample: Path, nhn: NhnEmulator) -> None:
    use_nhn(sample, nhn)  # with SMS/LMS in place of an AlimTalk that cannot arrive
    nhn.not_on_kakao.update(PHONES.values())
    nhn.sms_fails.add(PHONES[SOOHYUN])  # neither reaches her
    nhn.sms_on_the_way.add(PHONES[CHAERIN])  # her SMS is still on its way
    hear_reports(sample, "nhn", NHN_SIGNATURE)
    sent = sync(run_cli, sample, DAY0)["summary"]["sent"]
    config = config_of(sample)
    texted = [m for m in nhn.received if m.to in PHONES.values()]
    with Listening(config) as server:
        hooks = [nhn.post_hook(m.message_id, f"{server.url}/e/kakao", NHN_SIGNATURE)
                 for m in nhn.received]
    assert {h.text for h in hooks} == {"1 stored\n", "1 not final yet\n"}
    assert deliveries(config) == {"accepted": len(texted), "delivered": sent - len(texted),
                                  "failed": 0}

    sync(run_cli, sample, "2026-11-23T10:02")  # too soon to ask
    assert queries(nhn) == []
    nhn.add_fault(Fault(Reply(503, body=b"<html>busy</html>"),
                        matches=lambda r: r.method == "GET" and "/messages/" in r.path))
    sync(run_cli, sample, HOUR_LATER)
    asked = queries(nhn)
    assert [r.status for r in asked[:2]] == [503, 200]  # the shared retry, then the answer
    assert len(asked) == len(texted) + 1
    counts = deliveries(config)
    assert counts["failed"] == 1 and counts["accepted"] == sum(
        1 for m in texted if m.to == PHONES[CHAERIN])
    assert errors(sample)[SOOHYUN] == \
        "2026-11-25 AlimTalk and its SMS substitute not delivered (3020): 카카오톡 유저가 아님"
    assert errors(sample)[JIHOON] == ""  # delivered by SMS instead
    assert errors(sample)[CHAERIN] == ""  # not known yet

    nhn.clear_log()
    sync(run_cli, sample, "2026-11-23T18:00")  # still open: asked again
    assert len(queries(nhn)) == counts["accepted"]
    nhn.clear_log()
    sync(run_cli, sample, "2026-11-25T11:00")  # a day on: given up (and new sends too new)
    assert queries(nhn) == []
    ledger = Ledger.open_readonly(config.state_path)
    try:
        assert {ledger.delivery_of(m.message_id) for m in texted if m.to == PHONES[CHAERIN]
                } == {("email", "accepted")}
    finally:
        ledger.close()

    with Listening(config) as server:  # the same hooks again, and one forged
        again = [nhn.post_hook(m.message_id, f"{server.url}/e/kakao", NHN_SIGNATURE)
                 for m in texted]
        forged = nhn.post_hook(texted[0].message_id, f"{server.url}/e/kakao", "guess")
    assert forged.status_code == 401 and {a.status_code for a in again} == {200}
    assert deliveries(config)["failed"] == 1


def test_the_follow_up_asks_at_most_its_limit_per_run(
        run_cli: Any, sample: Path, nhn: NhnEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    use_nhn(sample, nhn)
    nhn.not_on_kakao.update(PHONES.values())
    sync(run_cli, sample, DAY0)  # no webhook at all: the queries alone settle them
    waiting = deliveries(config_of(sample))["accepted"]
    assert waiting > 2
    monkeypatch.setattr(follow_up, "LIMIT", 2)
    sync(run_cli, sample, HOUR_LATER)
    assert len(queries(nhn)) == 2
    assert deliveries(config_of(sample))["accepted"] == waiting - 2


def test_report_counts_delivered_and_failed_per_step(
        run_cli: Any, sample: Path, solapi: SolapiEmulator) -> None:
    use_solapi(sample, solapi, alimtalk=True, extra="fallback = false\n")
    solapi.not_on_kakao.add(PHONES[SOOHYUN])
    sync(run_cli, sample, DAY0)
    payment = [m for m in solapi.received if m.to in (PHONES[SOOHYUN], "01098765432")]
    hear_reports(sample, "solapi", SOLAPI_SECRET)
    config = config_of(sample)
    with Listening(config) as server:
        for message in payment:
            solapi.post_report(message.message_id,
                               f"{server.url}/e/kakao?secret={SOLAPI_SECRET}")
    result = run_cli(sample, "--json", "report")
    assert result.code == 0, result.err
    flows = {f["flow"]: f for f in json.loads(result.out)["flows"]}
    step = flows["payment"]["deliveries"]["step 1"]
    assert step["failed"] == 1 and step["delivered"] == 1 and step["awaiting_report"] > 0
    assert step["delivered"] + step["failed"] + step["awaiting_report"] == \
        flows["payment"]["steps"]["step 1"]["sent"]
    assert "deliveries" not in flows["payment"]["steps"]["step 1"]  # its table is apart
    report = read_report(config, datetime(2026, 11, 24, tzinfo=UTC))
    html = render_html(report, Words("ko"), config.tz)
    assert "문자·알림톡 전달" in html and "미전달" in html
    rows = summary_rows(report, Words("ko"), "now")
    assert ["payment", "1단계", step["delivered"], 1, step["awaiting_report"]] in rows


def test_a_delivery_note_in_the_error_column_is_recognised_as_sheetcrms_own(
        run_cli: Any, sample: Path, solapi: SolapiEmulator, tmp_path: Path) -> None:
    use_solapi(sample, solapi, alimtalk=True, extra="fallback = false\n")
    solapi.not_on_kakao.add(PHONES[SOOHYUN])
    hear_reports(sample, "solapi", SOLAPI_SECRET)
    sync(run_cli, sample, DAY0)
    with Listening(config_of(sample)) as server:
        for m in list(solapi.received):
            solapi.post_report(m.message_id, f"{server.url}/e/kakao?secret={SOLAPI_SECRET}")
    sync(run_cli, sample, HOUR_LATER)
    assert "not delivered" in errors(sample)[SOOHYUN]
    shutil.rmtree(sample / ".sheetcrm")  # a lost ledger: the column must be told by its text
    result = run_cli(sample, "--now", HOUR_LATER, "plan")
    assert result.code == 0, result.err
    assert "already holds values sheetcrm did not write" not in result.out + result.err


def _send(channel: str, delivery: DeliveryState, at: datetime, detail: str) -> SendRecord:
    return SendRecord(idem_key=f"k{at:%H%M}", key=SOOHYUN, flow="payment", entry=1, step=0,
                      channel=channel, template="payment_reminder", kind="transactional",
                      status=SendStatus.SENT, created_at=at, finished_at=at,
                      delivery=delivery, delivered_at=at, delivery_detail=detail)


def test_the_delivery_note_says_the_channel_first_and_goes_once_a_later_message_arrives(
        sample: Path, solapi: SolapiEmulator) -> None:
    use_solapi(sample, solapi)  # SMS/LMS: a text message
    config = config_of(sample)
    state = LedgerState()
    first = datetime(2026, 11, 23, 1, tzinfo=UTC)
    state.sends_by_key[SOOHYUN].append(
        _send("email", DeliveryState.FAILED, first, "3059 변작된 발신번호"))
    assert delivery_text(SOOHYUN, state, config) == (
        "2026-11-23 text message not delivered (3059): 변작된 발신번호")
    state.sends_by_key[SOOHYUN].append(_send(
        "email", DeliveryState.DELIVERED, first.replace(hour=5), "4000 수신완료"))
    assert delivery_text(SOOHYUN, state, config) == ""
    state.sends_by_key[SOOHYUN].append(_send(
        "email", DeliveryState.FAILED, first.replace(day=24), "reason without a code"))
    assert delivery_text(SOOHYUN, state, config) == (
        "2026-11-24 text message not delivered: reason without a code")


def test_an_error_cell_is_sheetcrms_with_a_bounce_and_a_delivery_note_after_its_errors(
        sample: Path) -> None:
    config = config_of(sample)
    bounce = "2026-11-28 메일 반송(5.1.1): 550 5.1.1 User unknown"
    text = "2026-11-25 알림톡·대체 문자 미전달(3020): 카카오톡 유저가 아님"
    row = Record(line=1, key=SOOHYUN, values={}, current={})
    broken = Record(line=2, key=JIHOON, values={}, current={}, errors=["no email"])
    assert written_by_sheetcrm("error", text, row, config)
    assert written_by_sheetcrm("error", f"{bounce}; {text}", row, config)
    assert written_by_sheetcrm("error", f"no email; {bounce}; {text}", broken, config)
    assert not written_by_sheetcrm("error", f"메모; {text}", row, config)
    assert not written_by_sheetcrm("error", "2026-11-25 알림톡 미전달 - 번호 확인", row, config)


def test_nhn_cloud_report_times_are_korean_time_whatever_the_machines_zone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/Los_Angeles")  # a machine far from Seoul
    time.tzset()
    try:
        [report] = parse_nhn_reports({"message": {
            "requestId": "R1", "recipientSeq": 1, "resultCode": "1000",
            "receiveDate": "2026-11-25 10:00:05"}})
    finally:
        monkeypatch.undo()
        time.tzset()
    assert report.at == datetime(2026, 11, 25, 1, 0, 5, tzinfo=UTC)  # 10:00 in Seoul
