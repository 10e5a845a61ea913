"""The outbox's messages written line by line (``EmailBuilder.build_bytes``) read as the
ones the standard library builds: the same headers, the same Korean subject, the same
body, every line within 78 columns."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest

from sheetcrm.channels.base import Message
from sheetcrm.channels.email import EmailBuilder, EmailSettings, email_bytes
from sheetcrm.errors import ChannelError

SETTINGS = EmailSettings.model_validate({
    "from": "마이클래스 <hello@example.com>", "reply_to": "help@example.com",
    "unsubscribe_mailto": "mailto:unsubscribe@example.com"})
DATE = "Mon, 02 Mar 2026 09:00:00 +0900"
LONG_SUBJECT = ("[공지] 확인해 [공지] [공지] 12월 시작됩니다! 김철수 (무료) 안내 VOD 시작됩니다! "
                "안내 abc (무료) 2026년 시작됩니다! 시작됩니다! 1일 주세요 고객님, 1일 [공지]")


def message(**changes: object) -> Message:
    fields: dict = {"idempotency_key": "sc-payment-e1-s1-0a1b2c",
                    "recipient": "kim@example.com", "subject": "결제를 기다리고 있어요",
                    "text": "안녕하세요, 김철수님.\n결제 링크: https://example.com/pay",
                    "meta": {"date": DATE}}
    fields.update(changes)
    return Message(**fields)


def parsed(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def headers(m: EmailMessage) -> list[tuple[str, str]]:
    """Each header as read; a multipart boundary (random in every message) left out."""
    return [(k, str(v) if k != "Content-Type" else v.content_type) for k, v in m.items()]


def contents(m: EmailMessage) -> list[str]:
    return [part.get_content() for part in m.walk() if not part.is_multipart()]


def same_message(builder: EmailBuilder, m: Message) -> bytes:
    """build_bytes's message read back equals the standard library's, header by header."""
    raw, message_id = builder.build_bytes(m)
    built = builder.build(m)
    old, new = parsed(email_bytes(built)), parsed(raw)
    assert headers(new) == headers(old)
    assert contents(new) == contents(old)
    assert message_id == str(built["Message-ID"]) == new["Message-ID"]
    # Every line within 78 columns but the unsubscribe header's (never folded).
    assert all(len(line) <= 78 for line in raw.split(b"\n")
               if not line.startswith(b"List-Unsubscribe:"))
    return raw


USUAL = [
    message(),
    message(subject=LONG_SUBJECT),
    message(subject="Your payment is waiting", text="Hello Kim,\nthe link: https://x.example"),
    message(subject="", text=""),
    message(kind="ad", unsubscribe="https://crm.example.com/u/eyJpIjoiayJ9.Yq3W8f1d2kYc0H3vK9Jx6A"),
    message(kind="ad", subject="(광고) 봄맞이 할인 — 오늘만 30% " * 3),
    message(recipient="  a.b+c@sub.example.co.kr ", text="안녕하세요.\n" * 40),
    message(subject="Hello  there ", meta={"date": "Tue, 24 Nov 2026 10:00:00 +0900"}),
]
UNUSUAL = [  # built by the standard library, header by header or whole
    message(recipient="김철수 <kim@example.com>"),
    message(recipient="kim@예시.한국"),
    message(idempotency_key="sc-결제안내-e1-s1-0a1b2c"),
    message(idempotency_key="k" * 90),
    message(subject="A long English subject line " * 4),
    message(text="x" * 100),
    message(html="<p>안녕하세요</p>"),
    message(subject="줄\n바꿈 =?utf-8?q?=0A?= 주입"),
]


@pytest.mark.parametrize("m", USUAL + UNUSUAL)
def test_a_written_message_reads_as_the_one_the_standard_library_builds(m: Message) -> None:
    same_message(EmailBuilder(SETTINGS), m)
    same_message(EmailBuilder(EmailSettings.model_validate({"from": "bench@example.com"})), m)


@pytest.mark.parametrize("m", USUAL)
def test_the_usual_message_is_written_without_the_standard_librarys_message(m: Message) -> None:
    assert EmailBuilder(SETTINGS)._written(m) is not None


def test_a_long_korean_subject_decodes_to_the_same_text_folded_under_78() -> None:
    raw = same_message(EmailBuilder(SETTINGS), message(subject=LONG_SUBJECT))
    assert parsed(raw)["Subject"] == LONG_SUBJECT
    header = raw.split(b"Subject:")[1].split(b"Date:")[0]
    assert header.count(b"=?utf-8?b?") >= 3
    assert all(len(line) <= 78 for line in raw.split(b"\n"))


def test_korean_subjects_of_every_length_read_back_whole() -> None:
    words = ["김철수", "고객님,", "결제", "안내", "VOD", "2026년", "[공지]", "시작됩니다!", "abc",
             "(무료)", "12월", "🎉"]
    builder = EmailBuilder(SETTINGS)
    for n in range(1, 80):
        subject = " ".join(words[(i * 7 + n) % len(words)] for i in range(n))
        raw, _ = builder.build_bytes(message(subject=subject))
        assert parsed(raw)["Subject"] == subject
        assert all(len(line) <= 78 for line in raw.split(b"\n"))


@pytest.mark.parametrize("changes", [{"recipient": "a@b.example, c@d.example"},
                                     {"recipient": "not an address"},
                                     {"meta": {"date": "yesterday"}}])
def test_what_build_refuses_build_bytes_refuses(changes: dict) -> None:
    builder = EmailBuilder(SETTINGS)
    with pytest.raises(ChannelError) as built:
        builder.build(message(**changes))
    with pytest.raises(ChannelError) as written:
        builder.build_bytes(message(**changes))
    assert str(written.value) == str(built.value)
