"""The solapi channel against a loopback Solapi (``tests.support.emulators.solapi``):
signed requests, AlimTalk and SMS/LMS, and every answer Solapi documents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sheetcrm.channels.solapi import SolapiChannel, authorization, iso_date
from sheetcrm.config.channels import SolapiSettings, parse_channel_settings
from sheetcrm.errors import ChannelError
from sheetcrm.model import DeliveryState, Message
from sheetcrm.texting import parse_solapi_reports
from tests.support.emulators.solapi import SolapiEmulator
from tests.support.servers import Fault, Reply

TEMPLATE = "#{고객명}님, #{강의} 결제가 아직 완료되지 않았어요."
TEMPLATES = {"KA01TP0000000001": TEMPLATE}


@pytest.fixture
def solapi() -> Iterator[SolapiEmulator]:
    with SolapiEmulator(templates=TEMPLATES) as emulator:
        yield emulator


def settings(emulator: SolapiEmulator, **extra: Any) -> SolapiSettings:
    raw = {"type": "solapi", "api_key": emulator.api_key, "api_secret": emulator.api_secret,
           "to": "phone", "sender": "02-123-4567", "endpoint": emulator.url, "timeout": 5,
           "backoff": 0, **extra}
    result = parse_channel_settings("kakao", raw)
    assert isinstance(result, SolapiSettings)
    return result


def channel(emulator: SolapiEmulator, **extra: Any) -> SolapiChannel:
    return SolapiChannel("kakao", settings(emulator, **extra), sleep=lambda s: None)


def alimtalk(to: str = "01012345678", key: str = "k1") -> Message:
    variables = {"#{고객명}": "김수현", "#{강의}": "엑셀 기초"}
    return Message(key, to, "결제 안내", "김수현님, 엑셀 기초 결제가 아직 완료되지 않았어요.",
                   payload={"alimtalk": {"template": "KA01TP0000000001",
                                         "variables": variables}},
                   meta={"type": "ATA"})


def sms(text: str, to: str = "01012345678", subject: str = "안내") -> Message:
    return Message("k2", to, subject, text)


def sent_json(emulator: SolapiEmulator, index: int = -1) -> dict[str, Any]:
    return json.loads(emulator.requests[index].body)


def test_an_alimtalk_goes_out_signed_with_its_template_and_is_accepted_not_delivered(
        solapi: SolapiEmulator) -> None:
    delivery = channel(solapi, pf_id="KA01PF0000000001").send(alimtalk())
    assert delivery.accepted and delivery.message_id.startswith("M4V")
    assert "accepted" in delivery.detail and "delivered" not in delivery.detail.split(";")[0]
    request = solapi.requests[-1]
    assert request.path == "/messages/v4/send-many/detail"
    assert request.headers["authorization"].startswith(f"HMAC-SHA256 apiKey={solapi.api_key}, ")
    message = sent_json(solapi)["messages"][0]
    assert message["to"] == "01012345678" and message["from"] == "021234567"
    assert message["kakaoOptions"] == {"pfId": "KA01PF0000000001",
                                       "templateId": "KA01TP0000000001",
                                       "variables": {"#{고객명}": "김수현", "#{강의}": "엑셀 기초"},
                                       "disableSms": False}
    assert solapi.received[0].text == "김수현님, 엑셀 기초 결제가 아직 완료되지 않았어요."


def test_every_attempt_is_signed_afresh_so_a_retry_is_not_a_reused_signature(
        solapi: SolapiEmulator) -> None:
    solapi.add_fault(Fault(Reply(429, headers={"Retry-After": "0"}), times=2))
    delivery = channel(solapi, retries=2).send(sms("결제 안내"))
    assert delivery.accepted
    salts = {r.headers["authorization"].split("salt=")[1].split(",")[0] for r in solapi.requests}
    assert len(solapi.requests) == 3 and len(salts) == 3


def test_the_emulator_refuses_a_reused_signature(solapi: SolapiEmulator) -> None:
    header = authorization(solapi.api_key, solapi.api_secret, iso_date(solapi.wall()),
                           "salt-used-twice")
    body = {"message": {"to": "01012345678", "from": "021234567", "text": "안내"}}
    first = requests.post(f"{solapi.url}/messages/v4/send", json=body,
                          headers={"Authorization": header}, timeout=5)
    again = requests.post(f"{solapi.url}/messages/v4/send", json=body,
                          headers={"Authorization": header}, timeout=5)
    assert first.status_code == 200 and first.json()["statusCode"] == "2000"
    assert again.status_code == 403 and again.json()["errorCode"] == "DuplicatedSignature"
    assert len(solapi.received) == 1


def test_the_emulator_takes_the_sdk_spelling_of_the_header_too(solapi: SolapiEmulator) -> None:
    date = "2026-11-25T10:00:00.000000+09:00"
    solapi.wall = lambda: 1795568400.0  # that moment
    header = authorization(solapi.api_key, solapi.api_secret, date, "abcdefabcdef1234")
    header = header.replace("apiKey=", "ApiKey=").replace("date=", "Date=")
    answer = requests.post(f"{solapi.url}/messages/v4/send",
                           json={"message": {"to": "01012345678", "from": "021234567",
                                             "text": "안내"}},
                           headers={"Authorization": header}, timeout=5)
    assert answer.status_code == 200, answer.text


def test_sms_up_to_90_bytes_lms_beyond_with_a_subject(solapi: SolapiEmulator) -> None:
    ch = channel(solapi)
    ch.send(sms("가" * 45))
    short = sent_json(solapi)["messages"][0]
    assert short["type"] == "SMS" and "subject" not in short
    ch.send(sms("가" * 45 + "!", subject="결제 안내"))
    long = sent_json(solapi)["messages"][0]
    assert long["type"] == "LMS" and long["subject"] == "결제 안내"
    assert [m.type for m in solapi.received] == ["SMS", "LMS"]


def test_a_refused_recipient_fails_that_customer_with_solapis_words(
        solapi: SolapiEmulator) -> None:
    solapi.refuse("01099990000", "1060", "차단된 수신번호")
    with pytest.raises(ChannelError) as refused:
        channel(solapi).send(sms("안내", to="010-9999-0000"))
    error = refused.value
    assert not error.channel_down and not error.retryable and not error.uncertain
    assert "010-****-0000" in str(error) and "1060 차단된 수신번호" in str(error)
    assert "9999" not in str(error)


def test_a_number_that_is_no_mobile_is_refused_before_anything_is_sent(
        solapi: SolapiEmulator) -> None:
    with pytest.raises(ChannelError, match="a Korean mobile number") as refused:
        channel(solapi).send(sms("안내", to="02-555-1234"))
    assert not refused.value.channel_down
    assert solapi.requests == []


def test_an_unregistered_sender_takes_the_channel_down_with_the_fix(
        solapi: SolapiEmulator) -> None:
    solapi.senders = {"0299998888"}
    with pytest.raises(ChannelError, match="register it in Solapi") as down:
        channel(solapi).send(sms("안내"))
    assert down.value.channel_down


@pytest.mark.parametrize("change, words", [
    ({"api_secret": "wrong-secret-000000"}, "api_secret does not belong to api_key"),
    ({"api_key": "NCSWRONGKEY"}, "api_key is not a valid Solapi API key"),
])
def test_a_wrong_key_or_secret_takes_the_channel_down(solapi: SolapiEmulator,
                                                      change: dict[str, str], words: str) -> None:
    with pytest.raises(ChannelError, match=words) as down:
        channel(solapi, **change).send(sms("안내"))
    assert down.value.channel_down
    assert "wrong-secret" not in str(down.value)
    assert solapi.received == []


def test_clock_skew_takes_the_channel_down_saying_to_set_the_clock(
        solapi: SolapiEmulator) -> None:
    wall = solapi.wall
    solapi.wall = lambda: wall() + 16 * 60
    with pytest.raises(ChannelError, match=r"403 RequestTimeTooSkewed: this machine's clock"):
        channel(solapi).send(sms("안내"))


def test_a_server_ip_not_allowed_takes_the_channel_down_saying_where_to_add_it(
        solapi: SolapiEmulator) -> None:
    solapi.allowed_ips = {"203.0.113.10"}
    with pytest.raises(ChannelError, match="IP address is not allowed") as down:
        channel(solapi).send(sms("안내"))
    assert down.value.channel_down


def test_a_5xx_html_page_is_retried_then_takes_the_channel_down_without_a_traceback(
        solapi: SolapiEmulator) -> None:
    page = Reply(503, headers={"Content-Type": "text/html"},
                 body=b"<html><body>503 Service Temporarily Unavailable</body></html>")
    solapi.add_fault(Fault(page, times=None))
    with pytest.raises(ChannelError) as down:
        channel(solapi, retries=2).send(sms("안내"))
    text = str(down.value)
    assert down.value.channel_down
    assert "HTTP 503" in text and "text/html" in text and "after 3 tries" in text
    assert len(solapi.requests) == 3 and solapi.received == []


def test_a_500_is_not_retried_the_message_may_have_been_taken(solapi: SolapiEmulator) -> None:
    solapi.add_fault(Fault(Reply(500, body=b"oops"), times=None))
    with pytest.raises(ChannelError, match="HTTP 500") as down:
        channel(solapi, retries=2).send(sms("안내"))
    assert down.value.channel_down and len(solapi.requests) == 1


def test_a_429_that_lasts_takes_the_channel_down(solapi: SolapiEmulator) -> None:
    solapi.add_fault(Fault(Reply(429, headers={"Retry-After": "0"}), times=None))
    with pytest.raises(ChannelError, match="HTTP 429.*after 2 tries") as down:
        channel(solapi, retries=1).send(sms("안내"))
    assert down.value.channel_down


def test_a_lost_answer_is_uncertain_and_never_retried(solapi: SolapiEmulator) -> None:
    solapi.add_fault(Fault(Reply(drop=True)))  # the request arrived; no answer came back
    with pytest.raises(ChannelError, match="not sent again") as lost:
        channel(solapi, retries=3).send(sms("안내"))
    assert lost.value.uncertain
    assert len(solapi.requests) == 1


def test_no_answer_within_the_timeout_is_uncertain(solapi: SolapiEmulator) -> None:
    solapi.add_fault(Fault(Reply(0, delay=3)))
    with pytest.raises(ChannelError, match="no answer within 1 s") as lost:
        channel(solapi, timeout=1, retries=3).send(sms("안내"))
    assert lost.value.uncertain and len(solapi.requests) == 1


def test_a_refused_connection_is_retried_then_takes_the_channel_down() -> None:
    with SolapiEmulator() as gone:
        ch = channel(gone, retries=1)
    with pytest.raises(ChannelError, match="connection failed after 2 tries") as down:
        ch.send(sms("안내"))
    assert down.value.channel_down and not down.value.uncertain


def test_an_alimtalk_that_cannot_be_delivered_comes_as_an_sms_instead(
        solapi: SolapiEmulator) -> None:
    solapi.not_on_kakao.add("01012345678")
    delivery = channel(solapi, pf_id="KA01PF0000000001").send(alimtalk())
    [report] = parse_solapi_reports(solapi.report(delivery.message_id))
    assert report.state is DeliveryState.DELIVERED and "substituted" in report.reason
    assert report.message_id == delivery.message_id


def test_without_fallback_an_alimtalk_to_a_non_kakao_user_fails_in_the_report(
        solapi: SolapiEmulator) -> None:
    solapi.not_on_kakao.add("01012345678")
    delivery = channel(solapi, pf_id="KA01PF0000000001", fallback=False).send(alimtalk())
    assert sent_json(solapi)["messages"][0]["kakaoOptions"]["disableSms"] is True
    [report] = parse_solapi_reports(solapi.report(delivery.message_id))
    assert report.state is DeliveryState.FAILED and report.reason.startswith("3104")


def test_an_unknown_template_id_takes_the_channel_down(solapi: SolapiEmulator) -> None:
    solapi.templates.clear()
    with pytest.raises(ChannelError, match="template id is not valid") as down:
        channel(solapi, pf_id="KA01PF0000000001").send(alimtalk())
    assert down.value.channel_down


def test_probe_reads_the_balance_and_sends_nothing(solapi: SolapiEmulator) -> None:
    assert "API key accepted" in channel(solapi).probe()
    assert [r.path for r in solapi.requests] == ["/cash/v1/balance"]
    with pytest.raises(ChannelError, match="SignatureDoesNotMatch"):
        channel(solapi, api_secret="nope-nope-nope").probe()
    assert solapi.received == []
