"""What a mail is, from its headers and its report: which marks make it automatic (and
which do not), and which message each delivery report is about."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from sheetcrm.mailbox.parse import Kind, asks_to_stop, read_headers, read_reply, read_report
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


def written(body: str, subtype: str = "plain") -> email.message.Message:
    """A customer's reply to our message whose body is ``body`` (UTF-8, base64 as most send)."""
    msg = EmailMessage()
    msg["From"] = "김하나 <a@x.com>"
    msg["Subject"] = "Re: (광고) 12월 특강 안내"
    msg["In-Reply-To"] = OURS
    msg.set_content(body, subtype=subtype, charset="utf-8", cte="base64")
    return email.message_from_bytes(msg.as_bytes())


OUR_FOOTER = ("> (광고) 소담 클래스\n"
              "> 수신을 원하지 않으시면 이 메일에 \"수신거부\"라고 답장해 주세요.")


@pytest.mark.parametrize("body, stop", [
    (f"수신거부\n\n2026. 3. 2. 오전 10:00, Shop <shop@example.com> 작성:\n{OUR_FOOTER}", True),
    (f"광고 그만 보내 주세요. 수신 거부합니다.\n\n{OUR_FOOTER}", True),
    (f"네, 확인했습니다. 결제는 내일 할게요.\n\n2026. 3. 2. 오전 10:00, Shop 작성:\n{OUR_FOOTER}",
     False),
    ("Please unsubscribe me.\n\n-----Original Message-----\nFrom: Shop\n무료수신거부 080-000-0000",
     True),
    ("감사합니다!\n\n-----Original Message-----\nFrom: Shop\n무료수신거부 080-000-0000", False),
    ("Thanks!\n\nOn Mon, Mar 2, 2026 at 10:00 AM Shop <shop@example.com> wrote:\n> unsubscribe",
     False),
    ("수신거부를 하면 수업 공지도 안 오나요?\n", True),  # asks about it: read as asking to stop
])
def test_a_reply_asks_to_stop_by_its_own_words_never_by_the_quote(body: str, stop: bool) -> None:
    mail = read_reply(read_headers(1, written(body)), written(body))
    assert mail.kind is Kind.PERSONAL and mail.refers_to == (OURS,)
    assert mail.asks_to_stop is stop


@pytest.mark.parametrize("html, stop", [
    ('<div dir="ltr">수신거부</div><br><div class="gmail_quote"><blockquote>(광고)</blockquote>'
     "</div>", True),
    ('<div dir="ltr">좋아요, 신청할게요</div><div class="gmail_quote"><blockquote>수신거부는 '
     "이 메일에 답장</blockquote></div>", False),
    ("<p>확인했습니다</p><div id=\"divRplyFwdMsg\"><b>From:</b> Shop</div><p>무료수신거부</p>",
     False),
])
def test_an_html_only_reply_is_read_above_its_quote(html: str, stop: bool) -> None:
    assert asks_to_stop(written(html, "html")) is stop
