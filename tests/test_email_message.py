"""Building RFC 5322 messages: encoding, header injection, Message-ID, unsubscribe headers."""

from __future__ import annotations

import email
import email.policy

import pytest

from sheetcrm.channels import parse_channel_settings
from sheetcrm.channels.base import Message
from sheetcrm.channels.email import (
    EmailSettings,
    build_email,
    clean_header_value,
    email_bytes,
    needs_smtputf8,
)
from sheetcrm.errors import ChannelError, ConfigError

SETTINGS = EmailSettings.model_validate(
    {
        "from": "마이클래스 <hello@example.com>",
        "reply_to": "help@example.com",
        "unsubscribe_mailto": "mailto:unsubscribe@example.com",
    }
)
DATE = "Mon, 02 Mar 2026 09:00:00 +0900"
# An ad's opt-out page, as core.messages makes it with [server] (a signed token).
PAGE = "https://crm.example.com/u/eyJpIjoia2ltQGV4YW1wbGUuY29tOnBheW1lbnQ6MjAyNi0wMy0w" \
       "MToyIn0.Yq3W8f1d2kYc0H3vK9Jx6A"


def make(**changes: object) -> Message:
    fields: dict = {
        "idempotency_key": "kim@example.com:payment:2026-03-01:1",
        "recipient": "김철수 <kim@example.com>",
        "subject": "결제를 기다리고 있어요",
        "text": "안녕하세요, 김철수님.\n결제 링크: https://example.com/pay",
        "meta": {"key": "kim@example.com", "date": DATE},
    }
    fields.update(changes)
    return Message(**fields)


def roundtrip(message: Message, settings: EmailSettings = SETTINGS) -> email.message.EmailMessage:
    raw = build_email(message, settings).as_bytes()
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_korean_subject_and_body_round_trip() -> None:
    parsed = roundtrip(make(subject="(광고) 봄맞이 할인 — 오늘만 30% " * 3))
    assert parsed["Subject"] == ("(광고) 봄맞이 할인 — 오늘만 30% " * 3).strip()
    assert parsed["From"].addresses[0].display_name == "마이클래스"
    assert parsed["To"].addresses[0].addr_spec == "kim@example.com"
    assert parsed["Reply-To"] == "help@example.com"
    assert parsed["Date"] == DATE
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content() == make().text + "\n"


def test_raw_bytes_are_seven_bit_clean() -> None:
    raw = build_email(make(html="<p>안녕하세요</p>"), SETTINGS).as_bytes()
    assert raw.isascii()


@pytest.mark.parametrize(
    "subject",
    [
        "안녕\r\nBcc: evil@x.com",
        "안녕\nBcc: evil@x.com",
        "=?UTF-8?Q?=0A?=Bcc: evil@x.com",
        "==??UTF-8?Q?=0A?=Bcc: evil@x.com",
        "안녕\x00\u2028Bcc: evil@x.com",
    ],
)
def test_header_injection_through_subject_is_neutralised(subject: str) -> None:
    parsed = roundtrip(make(subject=subject))
    assert parsed["Bcc"] is None
    assert len(parsed.get_all("Subject")) == 1
    assert "\n" not in parsed["Subject"]
    assert "=?" not in parsed["Subject"]


@pytest.mark.parametrize(
    "recipient",
    ["kim@example.com\r\nBcc: evil@x.com", "kim@example.com, evil@x.com", "not an address", ""],
)
def test_recipient_must_be_one_clean_address(recipient: str) -> None:
    with pytest.raises(ChannelError) as caught:
        build_email(make(recipient=recipient), SETTINGS)
    assert caught.value.retryable is False


def test_a_hangul_domain_is_written_in_its_idna_form() -> None:
    msg = build_email(make(recipient="김철수 <kim@예시.한국>"), SETTINGS)
    raw = email_bytes(msg)
    assert raw.isascii() and not needs_smtputf8(msg)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["To"].addresses[0].addr_spec == "kim@xn--vv4b11d.xn--3e0b707e"
    assert parsed["To"].addresses[0].display_name == "김철수"


def test_a_korean_local_part_is_written_as_utf8_not_as_an_encoded_word() -> None:
    msg = build_email(make(recipient="김철수 <김철수@example.com>"), SETTINGS)
    assert needs_smtputf8(msg)
    raw = email_bytes(msg, linesep="\r\n")
    assert "To: 김철수 <김철수@example.com>\r\n".encode() in raw
    assert b"=?utf-8?" not in raw.split(b"\r\nTo: ")[1].split(b"\r\n")[0]
    parsed = email.message_from_string(raw.decode("utf-8"), policy=email.policy.default)
    assert parsed["To"].addresses[0].username == "김철수"
    assert parsed["Subject"] == make().subject


@pytest.mark.parametrize("recipient", ["kim@" + "가" * 70 + ".한국", "kim@예시.\u3002한국"])
def test_a_domain_idna_cannot_encode_is_that_recipients_error(recipient: str) -> None:
    with pytest.raises(ChannelError, match="not a valid domain name") as caught:
        build_email(make(recipient=recipient), SETTINGS)
    assert caught.value.retryable is False


def test_injection_through_key_and_date_is_neutralised() -> None:
    parsed = roundtrip(
        make(
            idempotency_key="k1\r\nBcc: evil@x.com",
            meta={"date": DATE + "\r\nBcc: evil@x.com"},
        )
    )
    assert parsed["Bcc"] is None
    assert parsed["X-Sheetcrm-Key"] == "k1 Bcc: evil@x.com"
    assert parsed["Date"] == DATE


def test_a_date_that_does_not_parse_is_an_error() -> None:
    with pytest.raises(ChannelError, match="RFC 2822") as caught:
        build_email(make(meta={"date": "next tuesday"}), SETTINGS)
    assert caught.value.retryable is False


def test_clean_header_value() -> None:
    assert clean_header_value(" a\r\n\tb\x00c ") == "a b c"
    assert clean_header_value("==??=") == "="  # removing one "=?" never forms another
    assert clean_header_value("=?utf-8?b?7JWI64WV?=") == "utf-8?b?7JWI64WV?="
    assert clean_header_value("안녕하세요") == "안녕하세요"


def test_message_id_is_deterministic_per_key() -> None:
    first = roundtrip(make())["Message-ID"]
    again = roundtrip(make(subject="something else"))["Message-ID"]
    other = roundtrip(make(idempotency_key="kim@example.com:payment:2026-03-01:2"))["Message-ID"]
    assert first == again != other
    assert first.startswith("<") and first.endswith("@example.com>")
    assert len(first.split("@")[0]) == 1 + 32


def test_date_defaults_to_now_when_not_given() -> None:
    parsed = roundtrip(make(meta={"key": "kim@example.com"}))
    assert parsed["Date"].datetime is not None


def test_html_makes_multipart_alternative() -> None:
    parsed = roundtrip(make(html="<p>안녕하세요, <b>김철수</b>님</p>"))
    assert parsed.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in parsed.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert "<b>김철수</b>" in parsed.get_body(preferencelist=("html",)).get_content()
    assert "김철수님." in parsed.get_body(preferencelist=("plain",)).get_content()


def test_list_unsubscribe_only_on_ads() -> None:
    ad = roundtrip(make(kind="ad", unsubscribe=PAGE))
    assert ad["List-Unsubscribe"] == f"<{PAGE}>, <mailto:unsubscribe@example.com>"
    assert ad["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    notice = roundtrip(make(kind="transactional"))
    assert notice["List-Unsubscribe"] is None
    assert notice["List-Unsubscribe-Post"] is None


def test_one_click_header_needs_an_https_url() -> None:
    mailto_only = EmailSettings.model_validate(
        {"from": "hello@example.com", "unsubscribe_mailto": "mailto:unsubscribe@example.com"}
    )
    ad = roundtrip(make(kind="ad"), mailto_only)
    assert ad["List-Unsubscribe"] == "<mailto:unsubscribe@example.com>"
    assert ad["List-Unsubscribe-Post"] is None


@pytest.mark.parametrize("linesep", ["\n", "\r\n"])
def test_list_unsubscribe_is_one_line_however_long_the_url(linesep: str) -> None:
    page = PAGE + "A" * 200  # the standard library would fold this into encoded words
    raw = email_bytes(build_email(make(kind="ad", unsubscribe=page), SETTINGS), linesep)
    lines = raw.decode("ascii").split(linesep)
    header = [line for line in lines if line.startswith("List-Unsubscribe:")]
    assert header == [f"List-Unsubscribe: <{page}>, <mailto:unsubscribe@example.com>"]
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in lines
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["List-Unsubscribe"] == f"<{page}>, <mailto:unsubscribe@example.com>"


def test_the_old_unsubscribe_url_with_the_row_key_is_refused_pointing_at_server() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_channel_settings("mail", {"type": "outbox", "from": "a@example.com",
                                        "unsubscribe_url": "https://x.com/u?k={key}"})
    assert caught.value.path == "channels.mail.unsubscribe_url"
    assert "let anyone unsubscribe anyone" in str(caught.value)
    assert "[server] public_url and secret" in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"from": "not an address"}, "channels.mail.from"),
        ({"from": "a@example.com\r\nBcc: evil@x.com"}, "channels.mail.from"),
        ({"from": "a@example.com", "reply_to": "x@"}, "channels.mail.reply_to"),
        (
            {"from": "a@example.com", "unsubscribe_mailto": "u@x.com"},
            "channels.mail.unsubscribe_mailto",
        ),
        (
            {"from": "a@example.com", "unsubscribe_url": "http://x.com"},
            "channels.mail.unsubscribe_url",
        ),
        ({}, "channels.mail.from"),
    ],
)
def test_bad_email_settings_name_the_key(raw: dict, path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_channel_settings("mail", {"type": "outbox", **raw})
    assert caught.value.path == path
