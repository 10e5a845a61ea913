"""POST /e/NAME with ``source = "solapi"`` / ``"nhn"``: providers' delivery reports come to
the real endpoint on loopback, are proved as each provider allows (Solapi: a secret in
the URL, then the message looked up in Solapi's message list; NHN Cloud: the console's
X-Toast-Webhook-Signature), settle ``accepted`` sends once, and whatever is turned away
or passed over is counted for ``status``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from solapi import SolapiMessageService
from solapi.model.request.messages.get_messages import GetMessagesRequest

from sheetcrm.config import Config
from sheetcrm.errors import ConfigError
from sheetcrm.ledger import Ledger
from sheetcrm.model import DeliveryState
from sheetcrm.server.reports import NOT_A_REPORT, UNKNOWN_MESSAGE
from sheetcrm.server.sources import DUPLICATE
from tests.support.emulators.nhn import NhnEmulator
from tests.support.emulators.solapi import SolapiEmulator
from tests.support.events import Listening
from tests.support.kakao import use_nhn, use_solapi
from tests.support.reports import (
    MAX_BODY,
    NHN_SIGNATURE,
    SERVER,
    SOLAPI_SECRET,
    config_of,
    deliveries,
    hear_reports,
    refused,
)
from tests.support.sample import DAY0
from tests.support.servers import Fault, Reply

NO_KAKAO = "01023456789"  # 김수현: no KakaoTalk (her payment reminder cannot arrive)
ON_KAKAO = "01034567890"  # 이지훈


def lookups(solapi: SolapiEmulator) -> list[Any]:
    return [r for r in solapi.requests if r.path == "/messages/v4/list"]


@pytest.fixture
def solapi() -> Iterator[SolapiEmulator]:
    with SolapiEmulator() as emulator:
        yield emulator


@pytest.fixture
def nhn() -> Iterator[NhnEmulator]:
    with NhnEmulator() as emulator:
        yield emulator


@pytest.fixture
def by_solapi(run_cli: Any, sample: Path, solapi: SolapiEmulator) -> Config:
    """The sample's first day sent as AlimTalk through Solapi (no SMS substitute), with
    the endpoint taking Solapi's reports at /e/kakao."""
    use_solapi(sample, solapi, alimtalk=True, extra="fallback = false\n")
    solapi.not_on_kakao.add(NO_KAKAO)
    hear_reports(sample, "solapi", SOLAPI_SECRET)
    assert run_cli(sample, "--now", DAY0, "sync").code == 0
    return config_of(sample)


@pytest.fixture
def by_nhn(run_cli: Any, sample: Path, nhn: NhnEmulator) -> Config:
    use_nhn(sample, nhn)
    nhn.not_on_kakao.add(NO_KAKAO)
    hear_reports(sample, "nhn", NHN_SIGNATURE)
    assert run_cli(sample, "--now", DAY0, "sync").code == 0
    return config_of(sample)


def message_to(emulator: SolapiEmulator | NhnEmulator, number: str) -> str:
    return next(m.message_id for m in emulator.received if m.to == number)


# -- Solapi -------------------------------------------------------------------------------


def test_a_solapi_report_is_confirmed_with_solapis_message_list_and_applied_once(
        by_solapi: Config, solapi: SolapiEmulator) -> None:
    accepted = deliveries(by_solapi)["accepted"]
    with Listening(by_solapi) as server:
        url = f"{server.url}/e/kakao?secret={SOLAPI_SECRET}"
        failed = solapi.post_report(message_to(solapi, NO_KAKAO), url)
        delivered = solapi.post_report(message_to(solapi, ON_KAKAO), url)
        asked = len(lookups(solapi))
        again = solapi.post_report(message_to(solapi, ON_KAKAO), url)  # Solapi's retry
    assert (failed.status_code, failed.text) == (200, "1 stored\n")
    assert (delivered.status_code, delivered.text) == (200, "1 stored\n")
    assert (again.status_code, again.text) == (200, f"1 {DUPLICATE}\n")
    assert deliveries(by_solapi) == {"accepted": accepted - 2, "delivered": 1, "failed": 1}
    assert asked == 2 and len(lookups(solapi)) == 2  # a settled message is not asked again
    for lookup in lookups(solapi):
        assert lookup.headers["authorization"].startswith(f"HMAC-SHA256 apiKey={solapi.api_key}")
        assert lookup.status == 200
    assert refused(by_solapi) == {("kakao", DUPLICATE): (200, 1)}


def test_a_solapi_report_without_the_urls_secret_is_refused_and_asks_solapi_nothing(
        by_solapi: Config, solapi: SolapiEmulator) -> None:
    message = message_to(solapi, ON_KAKAO)
    before = deliveries(by_solapi)
    with Listening(by_solapi) as server:
        body = json.dumps(solapi.report(message)).encode()
        answers = {
            "none": server.post("kakao", body),
            "wrong": server.post("kakao?secret=solapi-webhook-secret-0123456780", body),
            "prefix": server.post(f"kakao?secret={SOLAPI_SECRET[:-1]}", body),
            "header only": server.post("kakao", body, {"secret": SOLAPI_SECRET}),
        }
    assert {k: r.status_code for k, r in answers.items()} == dict.fromkeys(answers, 401)
    assert answers["none"].text.startswith("secret missing or wrong")
    assert SOLAPI_SECRET not in answers["none"].text
    assert lookups(solapi) == []
    assert deliveries(by_solapi) == before
    assert refused(by_solapi) == {("kakao", "secret missing or wrong"): (401, 4)}


def test_an_altered_solapi_report_counts_as_solapi_lists_the_message_not_as_posted(
        by_solapi: Config, solapi: SolapiEmulator) -> None:
    message = message_to(solapi, NO_KAKAO)
    altered = solapi.report(message)
    assert altered[0]["data"]["statusCode"] == "3104"
    altered[0]["data"].update(statusCode="4000", statusMessage="수신완료")
    with Listening(by_solapi) as server:
        answer = server.post(f"kakao?secret={SOLAPI_SECRET}", json.dumps(altered).encode())
    assert answer.status_code == 200
    ledger = Ledger.open_readonly(by_solapi.state_path)
    try:
        [failed] = ledger.latest_deliveries(DeliveryState.FAILED, 5)
    finally:
        ledger.close()
    assert failed.key == "soohyun.kim@example.com" and failed.reason == "3104 카카오톡 미사용자"
    assert deliveries(by_solapi)["delivered"] == 0


def test_a_report_solapis_list_does_not_show_yet_is_answered_503_so_solapi_posts_it_again(
        by_solapi: Config, solapi: SolapiEmulator) -> None:
    message = message_to(solapi, ON_KAKAO)
    early = [{"eventDataId": "E1", "data": {"messageId": message, "statusCode": "4000",
                                            "statusMessage": "수신완료"}}]
    with Listening(by_solapi) as server:
        first = server.post(f"kakao?secret={SOLAPI_SECRET}", json.dumps(early).encode())
        assert deliveries(by_solapi)["delivered"] == 0
        later = solapi.post_report(message, f"{server.url}/e/kakao?secret={SOLAPI_SECRET}")
    assert first.status_code == 503 and first.text.startswith(
        "report not final at the provider yet")
    assert later.status_code == 200 and deliveries(by_solapi)["delivered"] == 1


def test_solapi_unreachable_or_refusing_the_key_is_answered_503_and_applies_nothing(
        by_solapi: Config, solapi: SolapiEmulator) -> None:
    message = message_to(solapi, ON_KAKAO)
    solapi.add_fault(Fault(Reply(503, headers={"Content-Type": "text/html"},
                                 body=b"<html>busy</html>"),
                           matches=lambda r: r.path == "/messages/v4/list", times=None))
    with Listening(by_solapi) as server:
        url = f"{server.url}/e/kakao?secret={SOLAPI_SECRET}"
        down = solapi.post_report(message, url)
        tries = len(lookups(solapi))
        solapi.clear_faults()
        solapi.api_secret = "a secret the channel does not have"
        wrong_key = solapi.post_report(message, url)
    assert (down.status_code, tries) == (503, 3)  # the shared retry, then Solapi's own
    assert wrong_key.status_code == 503 and "api_key" in wrong_key.text
    assert deliveries(by_solapi)["delivered"] == 0
    assert refused(by_solapi) == {("kakao", "provider unreachable"): (503, 1),
                                  ("kakao", "provider refused our api_key"): (503, 1)}


def test_malformed_oversized_and_unknown_solapi_reports_are_answered_and_counted(
        by_solapi: Config, solapi: SolapiEmulator) -> None:
    before = deliveries(by_solapi)
    ghost = [{"eventDataId": "E9", "data": {"messageId": "M4VNOSUCHMESSAGE",
                                            "statusCode": "4000"}}]
    with Listening(by_solapi) as server:
        path = f"kakao?secret={SOLAPI_SECRET}"
        answers = {
            "not json": server.post(path, b"{not json"),
            "no report": server.post(path, b'[{"eventDataId": "E1"}]'),
            "a number": server.post(path, b"42"),
            "too large": server.post(path, b"[" + b" " * MAX_BODY + b"]"),
            "unknown": server.post(path, json.dumps(ghost).encode()),
        }
    assert {k: r.status_code for k, r in answers.items()} == {
        "not json": 400, "no report": 400, "a number": 400, "too large": 413, "unknown": 200}
    assert answers["unknown"].text == f"1 {UNKNOWN_MESSAGE}\n"
    assert lookups(solapi) == []  # an unknown message is not looked up
    assert deliveries(by_solapi) == before
    assert refused(by_solapi) == {
        ("kakao", "body is not JSON"): (400, 1),
        ("kakao", "no delivery report in the body"): (400, 2),
        ("kakao", "body too large"): (413, 1),
        ("kakao", UNKNOWN_MESSAGE): (200, 1)}


def test_the_official_sdk_reads_the_emulators_message_list(
        by_solapi: Config, solapi: SolapiEmulator) -> None:
    message = message_to(solapi, NO_KAKAO)
    sdk = SolapiMessageService(api_key=solapi.api_key, api_secret=solapi.api_secret)
    sdk.base_url = solapi.url
    before = sdk.get_messages(GetMessagesRequest(message_id=message))
    solapi.report(message)
    after = sdk.get_messages(GetMessagesRequest(message_id=message))
    assert list(before.message_list) == [message] == list(after.message_list)
    assert before.message_list[message].status_code == "3000"  # on its way
    assert after.message_list[message].status_code == "3104"
    assert solapi.requests[-1].path == "/messages/v4/list-old"  # the SDK's address


# -- NHN Cloud ----------------------------------------------------------------------------


def test_an_nhn_report_with_the_consoles_signature_settles_what_it_can_and_once(
        by_nhn: Config, nhn: NhnEmulator) -> None:
    accepted = deliveries(by_nhn)["accepted"]
    with Listening(by_nhn) as server:
        url = f"{server.url}/e/kakao"
        delivered = nhn.post_hook(message_to(nhn, ON_KAKAO), url, NHN_SIGNATURE)
        pending = nhn.post_hook(message_to(nhn, NO_KAKAO), url, NHN_SIGNATURE)
        replayed = nhn.post_hook(message_to(nhn, ON_KAKAO), url, NHN_SIGNATURE)
        template = server.post("kakao", json.dumps(
            {"hooksId": "H2", "event": "TEMPLATE_STATUS_UPDATE", "hooks": [
                {"senderKey": "a" * 40, "templateCode": "T001", "status": "TSC03"}]}).encode(),
            {"X-Toast-Webhook-Signature": NHN_SIGNATURE})
    assert (delivered.status_code, delivered.text) == (200, "1 stored\n")
    # The webhook does not say what became of the SMS sent in place: the next sync asks.
    assert (pending.status_code, pending.text) == (200, "1 not final yet\n")
    assert (replayed.status_code, replayed.text) == (200, f"1 {DUPLICATE}\n")
    assert (template.status_code, template.text) == (200, f"1 {NOT_A_REPORT}\n")
    assert deliveries(by_nhn) == {"accepted": accepted - 1, "delivered": 1, "failed": 0}
    assert refused(by_nhn) == {("kakao", DUPLICATE): (200, 1),
                               ("kakao", NOT_A_REPORT): (200, 1)}


def test_an_nhn_report_with_a_missing_or_altered_signature_records_nothing(
        by_nhn: Config, nhn: NhnEmulator) -> None:
    body = json.dumps(nhn.hook(message_to(nhn, ON_KAKAO))).encode()
    before = deliveries(by_nhn)
    with Listening(by_nhn) as server:
        answers = [server.post("kakao", body),
                   server.post("kakao", body, {"X-Toast-Webhook-Signature": "signature"}),
                   server.post("kakao", body,
                               {"X-Toast-Webhook-Signature": NHN_SIGNATURE + "x"}),
                   server.post(f"kakao?secret={NHN_SIGNATURE}", body)]
        malformed = server.post("kakao", b'{"event": "MESSAGE_RESULT_UPDATE", "hooks": 1}',
                                {"X-Toast-Webhook-Signature": NHN_SIGNATURE})
    assert [a.status_code for a in answers] == [401] * 4
    assert malformed.status_code == 400
    assert deliveries(by_nhn) == before
    assert refused(by_nhn) == {("kakao", "signature does not match"): (401, 4),
                               ("kakao", "no delivery report in the body"): (400, 1)}


def test_a_report_for_a_message_of_another_channel_is_not_applied(
        run_cli: Any, sample: Path, nhn: NhnEmulator) -> None:
    use_nhn(sample, nhn)
    with open(sample / "config.toml", "a", encoding="utf-8") as f:
        f.write('\n[channels.other]\ntype = "nhn"\napp_key = "k"\nsecret_key = "s"\n'
                f'sender_key = "{"b" * 40}"\nendpoint = "{nhn.url}"\nto = "phone"\n'
                'sender = "02-123-4567"\n')
    hear_reports(sample, "nhn", NHN_SIGNATURE, 'channel = "other"\n')
    assert run_cli(sample, "--now", DAY0, "sync").code == 0
    config = config_of(sample)
    with Listening(config) as server:
        answer = nhn.post_hook(message_to(nhn, ON_KAKAO), f"{server.url}/e/kakao",
                               NHN_SIGNATURE)
    assert (answer.status_code, answer.text) == (200, f"1 {UNKNOWN_MESSAGE}\n")
    assert deliveries(config)["delivered"] == 0


# -- the settings -------------------------------------------------------------------------


def reports_config(tmp_sample: Path, solapi: SolapiEmulator, event: str) -> str:
    use_solapi(tmp_sample, solapi)
    with open(tmp_sample / "config.toml", "a", encoding="utf-8") as f:
        f.write(f"{SERVER}\n[events.kakao]\n{event}")
    try:
        config_of(tmp_sample)
    except ConfigError as exc:
        return str(exc)
    return ""


@pytest.mark.parametrize(("event", "message"), [
    ('source = "solapi"\n', "Solapi does not sign its webhooks: set secret"),
    ('source = "solapi"\nsecret = "short"\n', "at least 16 letters, digits"),
    ('source = "solapi"\nsecret = "a secret with spaces in it"\n', "at least 16 letters"),
    (f'source = "solapi"\nsecret = "{SOLAPI_SECRET}"\nkey = "data.to"\n',
     "key: not used by solapi delivery reports"),
    (f'source = "solapi"\nsecret = "{SOLAPI_SECRET}"\nset = {{ paid = true }}\n',
     "set: not used by solapi delivery reports"),
    (f'source = "solapi"\nsecret = "{SOLAPI_SECRET}"\nchannel = "nope"\n',
     "'nope' is not a channel"),
    (f'source = "nhn"\nsecret = "{SOLAPI_SECRET}"\n',
     "the config has none: set channel"),
    (f'source = "nhn"\nsecret = "{SOLAPI_SECRET}"\nchannel = "email"\n',
     "channel 'email' is not a nhn channel"),
    ('source = "tally"\nsecret = "x"\n', "key is missing"),
    ('source = "tally"\nsecret = "x"\nkey = "data.a"\nchannel = "email"\n',
     "channel names the text channel of delivery reports"),
])
def test_delivery_report_settings_say_what_is_missing_or_unused(
        sample: Path, solapi: SolapiEmulator, event: str, message: str) -> None:
    error = reports_config(sample, solapi, event)
    assert message in error, error
    assert "events.kakao" in error
    assert SOLAPI_SECRET not in error


def test_solapi_reports_need_no_channel_when_the_config_has_one_solapi_channel(
        sample: Path, solapi: SolapiEmulator) -> None:
    assert reports_config(sample, solapi,
                          f'source = "solapi"\nsecret = "{SOLAPI_SECRET}"\n') == ""


def test_a_webhook_url_without_the_secret_reaches_nothing_else(
        by_solapi: Config, solapi: SolapiEmulator) -> None:
    with Listening(by_solapi) as server:
        answer = requests.get(f"{server.url}/e/kakao?secret={SOLAPI_SECRET}", timeout=10)
    assert answer.status_code == 405  # reports are POSTed; a GET changes nothing
    assert lookups(solapi) == []
