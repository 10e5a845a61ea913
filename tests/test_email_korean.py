"""Korean in mail: a long Korean subject keeps its spaces, and outbox file names keep
Hangul while staying valid on Windows."""

from __future__ import annotations

import email
import email.policy
import hashlib
import re

import pytest

from sheetcrm.channels.base import Message
from sheetcrm.channels.email import EmailSettings, build_email, email_bytes
from sheetcrm.channels.outbox import outbox_file_name

SETTINGS = EmailSettings.model_validate({"from": "마이클래스 <hello@example.com>"})
# Folded by the standard library, the space before 시작됩니다 fell between two encoded
# words and was lost: "12월시작됩니다!".
LONG_SUBJECT = ("[공지] 확인해 [공지] [공지] 12월 시작됩니다! 김철수 (무료) 안내 VOD 시작됩니다! "
                "안내 abc (무료) 2026년 시작됩니다! 시작됩니다! 1일 주세요 고객님, 1일 [공지]")


def message(subject: str) -> Message:
    return Message(idempotency_key="sc-결제안내-e1-s1-0a1b2c", recipient="kim@example.com",
                   subject=subject, text="안녕하세요.",
                   meta={"date": "Mon, 02 Mar 2026 09:00:00 +0900"})


@pytest.mark.parametrize("linesep", ["\n", "\r\n"])
def test_a_long_korean_subject_keeps_every_space_and_folds_under_78(linesep: str) -> None:
    raw = email_bytes(build_email(message(LONG_SUBJECT), SETTINGS), linesep)
    assert email.message_from_bytes(raw, policy=email.policy.default)["Subject"] == LONG_SUBJECT
    header = raw.split(b"Subject:")[1].split(b"Date:")[0]
    assert all(len(line) <= 78 for line in raw.split(linesep.encode()))
    assert header.count(b"=?utf-8?") >= 3  # folded into several encoded words


def test_outbox_file_names_keep_hangul_and_stay_valid_on_windows() -> None:
    name = outbox_file_name("sc-결제안내-e1-s1-0a1b2c")
    assert name.startswith("sc-결제안내-e1-s1-0a1b2c_") and name.endswith(".eml")
    hostile = outbox_file_name('고객<1>:"a/b\\c|d?e*f\x01. ')
    assert not re.search(r'[<>:"/\\|?*\x00-\x1f]', hostile)
    assert hostile.startswith("고객-1-a-b-c-d-e-f_")
    longest = outbox_file_name("결" * 300)
    assert len(longest.encode("utf-8")) <= 255 and len(longest) <= 255
    # Hangul typed decomposed (as macOS keeps names) reads as it is typed elsewhere.
    assert outbox_file_name("sc-\u1100\u1167\u11af-e1").startswith("sc-결-e1_")
    assert outbox_file_name("kim@example.com:1") == \
        "kim@example.com-1_" + hashlib.sha256(b"kim@example.com:1").hexdigest()[:32] + ".eml"




def test_korean_subjects_of_every_length_round_trip() -> None:
    words = ["김철수", "고객님,", "결제", "안내", "VOD", "2026년", "[공지]", "시작됩니다!", "abc",
             "(무료)", "12월", "🎉"]
    for n in range(1, 80):
        subject = " ".join(words[(i * 7 + n) % len(words)] for i in range(n))
        raw = email_bytes(build_email(message(subject), SETTINGS))
        assert email.message_from_bytes(raw, policy=email.policy.default)["Subject"] == subject
