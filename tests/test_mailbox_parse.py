"""What a mail is, from its headers and its report: which marks make it automatic (and
which do not), and which message each delivery report is about."""

from __future__ import annotations

import email
from datetime import UTC, datetime

import pytest

from sheetcrm.mailbox.parse import Kind, read_headers, read_report
from tests.support.imap import sample

AT = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
OURS = "<3f9a0c1d2b4e5f60718293a4b5c6d7e8@example.com>"
ORIGINAL = (f"From: Shop <shop@example.com>\nTo: a@x.com\nSubject: p1\nMessage-ID: {OURS}\n"
            "Date: Mon, 02 Mar 2026 10:00:00 +0900\n\nhello a@x.com, b@x.com\n").encode()


def reply_with(line: str = "", subject: str = "") -> email.message.Message:
    """The customer's reply, with one header added or the subject replaced."""
    raw = sample("reply", at=AT, recipient="a@x.com", message_id=OURS, original=ORIGINAL)
    text = raw.decode()
    if subject:
        text = text.replace("Subject: Re: p1", f"Subject: {subject}")
    if line:
        name = line.split(":")[0]
        text = "\r\n".join(x for x in text.split("\r\n") if not x.startswith(f"{name}:"))
        text = f"{line}\r\n{text}"
    return email.message_from_string(text)


@pytest.mark.parametrize("line, subject", [
    ("Auto-Submitted: auto-replied", ""),
    ("Auto-Submitted: auto-generated", ""),
    ("X-Autoreply: yes", ""),
    ("X-Autorespond: vacation", ""),
    ("Precedence: auto_reply", ""),
    ("Precedence: bulk", ""),
    ("Return-Path: <>", ""),
    ("List-Id: Shop news <news.example.com>", ""),
    ("", "Automatic reply: p1"),
    ("", "Out of Office: p1"),
    ("", "자동 회신: p1"),
    ("", "[자동응답] 휴가 중입니다"),
    ("", "부재중 알림: p1"),
])
def test_each_mark_of_a_machine_makes_a_mail_automatic(line: str, subject: str) -> None:
    mail = read_headers(1, reply_with(line, subject))
    assert mail.kind is Kind.AUTOMATIC
    assert mail.refers_to == (OURS,)  # it does answer our message: it is just no reply


@pytest.mark.parametrize("line, subject", [
    ("", ""),
    ("Auto-Submitted: no", ""),
    ("", "Re: 자동응답 설정 문의"),
    ("", "부재중 전화 드렸어요"),
    ("", "RE: Out of office 기간에도 수강 가능한가요?"),
])
def test_a_person_is_not_taken_for_a_machine(line: str, subject: str) -> None:
    mail = read_headers(1, reply_with(line, subject))
    assert (mail.kind, mail.refers_to, mail.sender) == (Kind.PERSONAL, (OURS,), "a@x.com")


@pytest.mark.parametrize("name", ["postfix_bounce", "postfix_delayed", "postfix_expired",
                                  "exim_bounce", "exchange_ndr", "gmail_bounce",
                                  "gmail_delay"])
def test_every_delivery_report_names_the_message_it_is_about(name: str) -> None:
    msg = email.message_from_bytes(sample(name, at=AT, recipient="a@x.com",
                                          message_id=OURS, original=ORIGINAL))
    head = read_headers(7, msg)
    assert head.kind is Kind.REPORT and head.bounces == ()  # headers alone tell no failure
    assert read_report(head, msg).refers_to[0] == OURS.lower()


def test_only_a_failure_for_good_is_a_bounce_and_only_for_the_failed_recipient() -> None:
    def bounces(name: str) -> list[tuple[str, str]]:
        msg = email.message_from_bytes(sample(name, at=AT, recipient="a@x.com",
                                              message_id=OURS, original=ORIGINAL))
        return [(b.address, b.status) for b in read_report(read_headers(1, msg), msg).bounces]

    assert bounces("postfix_bounce") == [("a@x.com", "5.1.1")]  # b@x.com is only quoted
    assert bounces("exchange_ndr") == [("a@x.com", "5.1.10")]
    assert bounces("postfix_delayed") == bounces("gmail_delay") == []
    assert bounces("postfix_expired") == []  # gave up retrying, but on a 4.4.1
