"""``sheetcrm test-send``: a step rendered for one customer goes to the operator only,
through the step's real channel (a local SMTP server, a webhook receiver, the Solapi
emulator), and counts for no customer: no send of theirs, no enrollment, no cap."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from sheetcrm import tokens
from sheetcrm.app.runner import preview, sync
from sheetcrm.app.status import status_report
from sheetcrm.app.test_send import TEST_MARKER, TrialError, TrialOrder, send_test
from sheetcrm.config import Config, load_config
from sheetcrm.errors import ConfigError
from sheetcrm.ledger import Ledger
from sheetcrm.model import SendStatus
from tests.support.emulators.solapi import SolapiEmulator
from tests.support.servers import WebhookServer
from tests.support.smtp import SmtpServer

SEOUL = ZoneInfo("Asia/Seoul")
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=SEOUL)
ME = "me@example.org"

CONFIG = """
timezone = "Asia/Seoul"
state = "state.db"
templates = "templates"

[table]
path = "customers.csv"
key = "email"

[fields]
email = {{ column = "이메일", type = "email" }}
name = {{ column = "이름" }}
phone = {{ column = "연락처", type = "phone" }}
paid = {{ column = "결제 여부", type = "bool" }}
consent = {{ column = "수신 동의", type = "bool" }}

[writeback]
tags = "상태 태그"
flow = "자동화 흐름"

[tags]
"결제 대기" = "not paid"
"VIP" = "paid and consent"

[sending]
consent = "consent"
frequency_cap = "1/7d"
{sending}

[channels.email]
type = "smtp"
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "Shop <shop@example.com>"
to = "email"

[channels.hook]
type = "webhook"
url = "{hook_url}"
retries = 0
timeout = 5

[channels.sms]
type = "solapi"
api_key = "{solapi_key}"
api_secret = "{solapi_secret}"
endpoint = "{solapi_url}"
to = "phone"
sender = "02-123-4567"
timeout = 5
retries = 0

[channels.kakao]
type = "solapi"
api_key = "{solapi_key}"
api_secret = "{solapi_secret}"
endpoint = "{solapi_url}"
pf_id = "KA01PF0000000001"
templates = {{ k1 = "T1" }}
to = "phone"
sender = "02-123-4567"
timeout = 5
retries = 0

[flows.kakao]
trigger = "결제 대기"
steps = [{{ after = "0d", channel = "kakao", template = "k1" }}]

[flows.payment]
trigger = "결제 대기"
goal = "paid"
steps = [
  {{ after = "0d", channel = "email", template = "p1" }},
  {{ after = "2d", channel = "email", template = "p2", kind = "ad", variants = {{a = 1, b = 1}} }},
  {{ after = "4d", channel = "hook", template = "p3" }},
  {{ after = "6d", channel = "sms", template = "p4" }},
]

[flows.vip]
trigger = "VIP"
steps = [{{ after = "0d", channel = "email", template = "v1" }}]
"""

ALIMTALK = "#{name}님, 결제가 아직 완료되지 않았어요."
HEADER = "이메일,이름,연락처,결제 여부,수신 동의,상태 태그,자동화 흐름\n"
ROWS = (
    "lee@example.com,이영희,010-3333-4444,O,X,,\n"  # paid, no consent: in no flow
    "kim@example.com,김철수,01011112222,X,O,,\n"  # unpaid: in the payment flow
    "park@,박지민,010-5555-6666,X,O,,\n"  # not an email: her email waits, her AlimTalk goes
)


@dataclass
class Shop:
    folder: Path
    smtp: SmtpServer
    hook: WebhookServer
    solapi: SolapiEmulator

    @property
    def config(self) -> Config:
        return load_config(self.folder / "config.toml", {})

    def write_config(self, sending: str = "", rows: str = ROWS) -> None:
        (self.folder / "config.toml").write_text(CONFIG.format(
            sending=sending, smtp_port=self.smtp.port, hook_url=self.hook.url,
            solapi_key=self.solapi.api_key, solapi_secret=self.solapi.api_secret,
            solapi_url=self.solapi.url), encoding="utf-8")
        (self.folder / "customers.csv").write_text(HEADER + rows, encoding="utf-8")

    def ledger_rows(self, table: str, columns: str = "*") -> list[tuple[object, ...]]:
        with sqlite3.connect(self.folder / "state.db") as db:
            return db.execute(f"SELECT {columns} FROM {table} ORDER BY rowid").fetchall()


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    (tmp_path / "templates").mkdir()
    for name in ("p1", "p2", "p3", "p4", "v1"):
        (tmp_path / "templates" / f"{name}.j2").write_text(
            "{% block subject %}" + name + "{% if variant %}-{{ variant }}{% endif %}"
            "{% endblock %}{% block text %}{{ name }}님 안내: " + name + "{% endblock %}",
            encoding="utf-8")
    (tmp_path / "templates" / "k1.j2").write_text(
        "{% block subject %}결제 안내{% endblock %}{% block text %}" + ALIMTALK
        + "{% endblock %}", encoding="utf-8")
    with SmtpServer() as smtp, WebhookServer() as hook, SolapiEmulator(
            templates={"T1": ALIMTALK}) as solapi:
        world = Shop(tmp_path, smtp, hook, solapi)
        world.write_config()
        yield world


def test_a_test_goes_through_smtp_to_the_operator_only(shop: Shop) -> None:
    result = send_test(shop.config, NOW, TrialOrder("payment", "1", ME))

    assert (result.status, result.key, result.chosen) == (SendStatus.SENT, "kim@example.com",
                                                          "in flow")
    [mail] = shop.smtp.messages
    assert mail.rcpt_tos == [ME] and mail.message["To"] == ME
    assert mail.message["Subject"] == f"{TEST_MARKER} p1"
    assert "김철수님 안내: p1" in mail.message.get_body().get_content()  # kim's row
    assert str(mail.message["X-Sheetcrm-Key"]).startswith("sc-test-payment-s1-")
    # Recorded apart: a test row, and nothing of the customer's.
    [test] = shop.ledger_rows("test_sends", "key, flow, step, status, message_id, recipient")
    assert test == ("kim@example.com", "payment", 0, "sent", mail.message["Message-ID"], ME)
    assert shop.ledger_rows("sends") == [] and shop.ledger_rows("enrollments") == []


def test_a_test_counts_for_no_customer(shop: Shop) -> None:
    send_test(shop.config, NOW, TrialOrder("payment", "1", ME))
    send_test(shop.config, NOW, TrialOrder("vip", "1", ME, row="lee@example.com"))

    # The frequency cap (1 a week) is untouched by the tests: kim's own first message
    # goes, and only her second one this run waits for it. (park@'s unreadable address
    # holds only her email: the AlimTalk goes to her phone.)
    plan = preview(shop.config, NOW).plan
    assert [(s.key, s.flow) for s in plan.sends] == [("kim@example.com", "kakao"),
                                                      ("park@", "kakao")]
    assert [(h.send.key, h.send.flow, h.reason) for h in plan.held
            if h.send.key == "kim@example.com"] == [
        ("kim@example.com", "payment", "frequency cap 1/7d reached")]
    result = sync(shop.config, NOW)
    assert result.summary()["sent"] == 2
    assert [m.rcpt_tos for m in shop.smtp.messages] == [[ME], [ME]]
    assert [m.to for m in shop.solapi.received] == ["01011112222", "01055556666"]
    report = status_report(shop.config, NOW)
    assert report["test_sends"]["counts"] == {"sent": 2}
    assert report["last_runs"][0]["summary"]["sent"] == 2
    ledger = Ledger.open_readonly(shop.folder / "state.db")
    try:
        state = ledger.load_state()
        assert [s.flow for s in state.sends_for("kim@example.com")] == ["kakao"]
        assert state.sends_for("lee@example.com") == []
        assert ("lee@example.com", "vip") not in state.enrollments
    finally:
        ledger.close()


def test_guards_for_customers_do_not_hold_a_test_but_the_kill_switch_does(shop: Shop) -> None:
    late = NOW.replace(hour=22)  # quiet hours for ads; lee gave no consent to ads
    result = send_test(shop.config, late, TrialOrder("payment", "2", ME,
                                                      row="lee@example.com", variant="b"))
    assert result.status is SendStatus.SENT
    assert shop.smtp.messages[0].message["Subject"] == f"{TEST_MARKER} p2-b"

    shop.write_config(sending="paused = true")
    with pytest.raises(ConfigError, match="sending.paused: sending is paused"):
        send_test(shop.config, NOW, TrialOrder("payment", "1", ME))
    assert len(shop.smtp.messages) == 1
    assert len(shop.ledger_rows("test_sends")) == 1


@pytest.mark.parametrize(("step", "to"), [
    ("1", "kim@example.com"), ("1", "KIM@Example.COM"), ("1", "김철수 <kim@example.com>"),
    ("1", "lee@example.com"), ("4", "010-1111-2222"), ("4", "+82 10-3333-4444"),
])
def test_an_address_or_number_of_a_customer_is_refused(shop: Shop, step: str, to: str) -> None:
    with pytest.raises(TrialError, match="of the customer on row .*never to a customer"):
        send_test(shop.config, NOW, TrialOrder("payment", step, to))
    assert shop.smtp.messages == [] and shop.solapi.received == []
    assert not (shop.folder / "state.db").exists()


def test_a_webhook_test_says_it_is_a_test_and_names_the_operator(shop: Shop) -> None:
    result = send_test(shop.config, NOW, TrialOrder("payment", "p3", "ops-team"))

    [request] = shop.hook.requests
    body = request.json()
    assert body["test"] is True and body["recipient"] == "ops-team"
    assert body["subject"] == f"{TEST_MARKER} p3" and body["text"].strip() == "김철수님 안내: p3"
    assert body["id"] == request.headers["webhook-id"] == result.idem_key
    assert result.idem_key.startswith("sc-test-payment-s3-")
    assert shop.ledger_rows("sends") == []


def test_a_text_test_goes_to_the_operators_number(shop: Shop) -> None:
    result = send_test(shop.config, NOW, TrialOrder("payment", "4", "010-9999-8888"))

    [accepted] = shop.solapi.received
    assert accepted.to == "01099998888" and result.to == "01099998888"
    assert accepted.text == f"{TEST_MARKER} 김철수님 안내: p4"
    assert result.status is SendStatus.SENT and shop.ledger_rows("sends") == []
    with pytest.raises(TrialError, match="not a number this channel can text"):
        send_test(shop.config, NOW, TrialOrder("payment", "4", ME))


def test_an_alimtalk_test_keeps_its_approved_text_and_says_so(shop: Shop, run_cli) -> None:
    result = run_cli(shop.folder, "--now", NOW.isoformat(), "test-send", "kakao", "1",
                     "--to", "010-9999-8888")
    assert result.code == 0, result.err
    [accepted] = shop.solapi.received
    assert (accepted.type, accepted.to) == ("ATA", "01099998888")
    assert accepted.text == "김철수님, 결제가 아직 완료되지 않았어요."  # word for word
    assert "its text carries no test mark; the ledger records it as a test" in " ".join(
        result.out.split())
    assert shop.ledger_rows("test_sends", "channel, status") == [("kakao", "sent")]


def test_the_customer_and_the_variant_can_be_chosen(shop: Shop) -> None:
    result = send_test(shop.config, NOW, TrialOrder("payment", "2", ME, row="lee@example.com",
                                                    variant="a"))
    assert (result.key, result.line, result.chosen, result.variant) == (
        "lee@example.com", 2, "given", "a")  # the sheet's row: header is 1
    assert "이영희님" in shop.smtp.messages[0].message.get_body().get_content()

    with pytest.raises(TrialError, match="unknown variant 'c'"):
        send_test(shop.config, NOW, TrialOrder("payment", "2", ME, variant="c"))
    with pytest.raises(TrialError, match="this step has no A/B variants"):
        send_test(shop.config, NOW, TrialOrder("payment", "1", ME, variant="a"))
    with pytest.raises(TrialError, match="did you mean 'payment'"):
        send_test(shop.config, NOW, TrialOrder("paymnt", "1", ME))
    with pytest.raises(TrialError, match="give its number, 1 to 4, or its template"):
        send_test(shop.config, NOW, TrialOrder("payment", "5", ME))


def test_rows_that_cannot_receive_the_step_are_passed_over_or_refused(shop: Shop) -> None:
    # Nobody is in the vip flow: the first row that can receive it, said so.
    result = send_test(shop.config, NOW, TrialOrder("vip", "1", ME))
    assert (result.key, result.chosen) == ("lee@example.com", "any")

    with pytest.raises(TrialError, match=r"--row 'park@': .* has errors"):
        send_test(shop.config, NOW, TrialOrder("payment", "1", ME, row="park@"))
    with pytest.raises(TrialError, match="did you mean 'kim@example.com'"):
        send_test(shop.config, NOW, TrialOrder("payment", "1", ME, row="kim@exmaple.com"))
    assert len(shop.smtp.messages) == 1


def test_the_unsubscribe_link_of_a_test_ad_opts_nobody_out(shop: Shop) -> None:
    shop.write_config(sending='compliance = "kr"\nsender_name = "Shop"\n'
                              'sender_contact = "02-123-4567"\nopt_out = "reply STOP"\n')
    config_file = shop.folder / "config.toml"
    config_file.write_text(config_file.read_text(encoding="utf-8") + (
        '\n[server]\npublic_url = "https://crm.example.com"\nsecret = "s3cret-s3cret-s3cret"\n'),
        encoding="utf-8")
    result = send_test(shop.config, NOW, TrialOrder("payment", "2", ME))

    message = shop.smtp.messages[0].message
    assert message["Subject"].startswith(f"{TEST_MARKER} (광고) ")
    link = str(message["List-Unsubscribe"]).strip("<>").split(">")[0]
    token = urlsplit(link).path.rsplit("/", 1)[1]
    payload = tokens.read_token(b"s3cret-s3cret-s3cret", "u", token)
    assert payload == {"i": result.idem_key}
    ledger = Ledger.open_readonly(shop.folder / "state.db")
    try:
        assert ledger.send_of(result.idem_key) is None  # the endpoint finds nobody
    finally:
        ledger.close()


def test_the_cli_says_what_went_where_and_exits_by_the_outcome(shop: Shop, run_cli) -> None:
    ok = run_cli(shop.folder, "--now", NOW.isoformat(), "test-send", "payment", "1",
                 "--to", ME)
    assert ok.code == 0, ok.err
    assert "Sent a test of payment 1/4 (p1) to me@example.org through the channel email" \
        in ok.out
    assert "rendered for row 3 (kim@example.com), the first row in this flow" in ok.out
    assert f"Subject: {TEST_MARKER} p1" in ok.out

    shop.smtp.refuse[ME] = "550 5.1.1 No such user"
    failed = run_cli(shop.folder, "--now", NOW.isoformat(), "test-send", "payment", "1",
                     "--to", ME, "--json")
    assert failed.code == 1
    answer = json.loads(failed.out)
    assert (answer["status"], answer["key"], answer["step"]) == ("failed", "kim@example.com", 1)
    assert "550" in answer["detail"]
    assert shop.ledger_rows("test_sends", "status") == [("sent",), ("failed",)]

    refused = run_cli(shop.folder, "test-send", "payment", "1", "--to", "kim@example.com")
    assert refused.code == 2 and refused.out == ""
    assert refused.err.count("\n") == 1 and "never to a customer" in refused.err
