"""The nhn channel against a loopback NHN Cloud AlimTalk API v2.3
(``tests.support.emulators.nhn``): the secret key, the idempotency key, the SMS/LMS
substitute and every documented answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from sheetcrm.channels.nhn import NhnChannel
from sheetcrm.config.channels import NhnSettings, parse_channel_settings
from sheetcrm.errors import ChannelError
from sheetcrm.model import DeliveryState, Message
from sheetcrm.texting import parse_nhn_reports
from tests.support.emulators.nhn import NhnEmulator
from tests.support.servers import Fault, Reply

TEMPLATES = {"payment01": "#{고객명}님, #{강의} 결제가 아직 완료되지 않았어요."}


@pytest.fixture
def nhn() -> Iterator[NhnEmulator]:
    with NhnEmulator(templates=TEMPLATES) as emulator:
        yield emulator


def channel(emulator: NhnEmulator, **extra: Any) -> NhnChannel:
    raw = {"type": "nhn", "app_key": emulator.app_key, "secret_key": emulator.secret_key,
           "sender_key": "a" * 40, "to": "phone", "sender": "02-123-4567",
           "endpoint": emulator.url, "timeout": 5, "backoff": 0, **extra}
    settings = parse_channel_settings("kakao", raw)
    assert isinstance(settings, NhnSettings)
    return NhnChannel("kakao", settings, sleep=lambda s: None)


def alimtalk(key: str = "hong@example.com\x1fpayment\x1f1\x1f0", to: str = "010-1234-5678",
             text: str = "김수현님, 엑셀 기초 결제가 아직 완료되지 않았어요.") -> Message:
    return Message(key, to, "결제 안내", text,
                   payload={"alimtalk": {"template": "payment01",
                                         "variables": {"#{고객명}": "김수현",
                                                       "#{강의}": "엑셀 기초"}}})


def sent(emulator: NhnEmulator) -> dict[str, Any]:
    return json.loads(emulator.requests[-1].body)


def test_an_alimtalk_carries_the_secret_and_idempotency_keys_and_is_accepted(
        nhn: NhnEmulator) -> None:
    message = alimtalk(text="김수현님, 엑셀 기초 결제가 아직 완료되지 않았어요. 신청 내용은 그대로 "
                            "저장해 두었으니 이어서 진행해 주세요.")
    delivery = channel(nhn).send(message)
    assert delivery.accepted and delivery.message_id == f"{nhn.received[0].request_id}:1"
    request = nhn.requests[-1]
    assert request.path == f"/alimtalk/v2.3/appkeys/{nhn.app_key}/messages"
    assert request.headers["x-secret-key"] == nhn.secret_key
    assert request.headers["x-nc-api-idempotency-key"] == "hong@example.com%1Fpayment%1F1%1F0"
    body = sent(nhn)
    assert body["senderKey"] == "a" * 40 and body["templateCode"] == "payment01"
    recipient = body["recipientList"][0]
    assert recipient["recipientNo"] == "01012345678"
    assert recipient["templateParameter"] == {"고객명": "김수현", "강의": "엑셀 기초"}
    assert recipient["resendParameter"] == {
        "isResend": True, "resendType": "LMS", "resendContent": message.text,
        "resendSendNo": "021234567", "resendTitle": "결제 안내"}
    assert nhn.received[0].text == "김수현님, 엑셀 기초 결제가 아직 완료되지 않았어요."


def test_a_short_text_substitutes_as_sms_and_no_fallback_asks_for_none(nhn: NhnEmulator) -> None:
    channel(nhn).send(alimtalk(key="k1", text="결제 안내"))
    assert sent(nhn)["recipientList"][0]["resendParameter"]["resendType"] == "SMS"
    channel(nhn, fallback=False).send(alimtalk(key="k2"))
    assert sent(nhn)["recipientList"][0]["resendParameter"] == {"isResend": False}


def test_a_second_copy_is_refused_by_the_provider_and_recorded_uncertain(
        nhn: NhnEmulator) -> None:
    channel(nhn).send(alimtalk(key="same"))
    with pytest.raises(ChannelError, match="-1005") as again:
        channel(nhn).send(alimtalk(key="same"))
    assert again.value.uncertain
    assert len(nhn.received) == 1


def test_a_retry_after_a_5xx_whose_first_attempt_got_through_sends_no_second_copy(
        nhn: NhnEmulator) -> None:
    # The first answer is lost behind a 502 after NHN took the message: the retry
    # carries the same key and is refused, so the customer gets one message.
    nhn.add_fault(Fault(Reply(502, headers={"Content-Type": "text/html"}, body=b"<html/>"),
                        after_apply=True))
    with pytest.raises(ChannelError) as error:
        channel(nhn, retries=2).send(alimtalk(key="k"))
    assert error.value.uncertain
    assert len(nhn.requests) == 2 and len(nhn.received) == 1


def test_a_5xx_html_page_that_lasts_takes_the_channel_down(nhn: NhnEmulator) -> None:
    nhn.add_fault(Fault(Reply(503, headers={"Content-Type": "text/html; charset=utf-8"},
                              body=b"<html>maintenance</html>"), times=None))
    with pytest.raises(ChannelError, match=r"HTTP 503.*text/html.*after 3 tries") as down:
        channel(nhn, retries=2).send(alimtalk())
    assert down.value.channel_down and nhn.received == []


def test_a_429_is_retried(nhn: NhnEmulator) -> None:
    nhn.add_fault(Fault(Reply(429, headers={"Retry-After": "0"})))
    assert channel(nhn, retries=1).send(alimtalk()).accepted
    assert [r.status for r in nhn.requests] == [429, 200]


def test_a_refused_recipient_fails_that_customer(nhn: NhnEmulator) -> None:
    nhn.refuse("01055556666", -2006, "Invalid recipientNo")
    with pytest.raises(ChannelError, match=r"010-\*\*\*\*-6666: -2006 Invalid") as refused:
        channel(nhn).send(alimtalk(to="01055556666"))
    assert not refused.value.channel_down and not refused.value.retryable


@pytest.mark.parametrize("change, words", [
    ({"secret_key": "wrong"}, "secret key is not valid: check secret_key"),
    ({"app_key": "wrong"}, "app key is not valid: check app_key"),
    ({"sender_key": "b" * 40}, "check sender_key"),
    ({"sender": "0299998888"}, "not registered for SMS"),
])
def test_what_is_wrong_for_every_message_takes_the_channel_down(
        nhn: NhnEmulator, change: dict[str, str], words: str) -> None:
    with pytest.raises(ChannelError, match=words) as down:
        channel(nhn, **change).send(alimtalk())
    assert down.value.channel_down
    assert "wrong" not in str(down.value)


def test_an_unknown_template_takes_the_channel_down(nhn: NhnEmulator) -> None:
    nhn.templates.clear()
    with pytest.raises(ChannelError, match="template does not exist") as down:
        channel(nhn).send(alimtalk())
    assert down.value.channel_down


def test_delivery_comes_by_webhook_and_by_query(nhn: NhnEmulator) -> None:
    ch = channel(nhn)
    delivered = ch.send(alimtalk(key="a"))
    [report] = parse_nhn_reports(nhn.hook(delivered.message_id))
    assert report.state is DeliveryState.DELIVERED and report.message_id == delivered.message_id
    nhn.not_on_kakao.add("01087654321")
    by_sms = ch.send(alimtalk(key="b", to="010-8765-4321"))
    [pending] = parse_nhn_reports(nhn.hook(by_sms.message_id))
    assert pending.state is None  # the hook does not say what became of the substitute
    queried = ch.query(by_sms.message_id)
    assert queried is not None and queried.state is DeliveryState.DELIVERED
    assert "delivered by SMS/LMS" in queried.reason


def test_probe_looks_up_the_sender_key_and_sends_nothing(nhn: NhnEmulator) -> None:
    assert "accepted" in channel(nhn).probe()
    with pytest.raises(ChannelError, match="check sender_key"):
        channel(nhn, sender_key="c" * 40).probe()
    assert nhn.received == []
