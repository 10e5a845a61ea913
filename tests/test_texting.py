"""Text messages to Korean phones: numbers, SMS/LMS by size, the §50 ad form, AlimTalk
variables and limits, and the providers' delivery reports (``sheetcrm.texting``)."""

from __future__ import annotations

import datetime as dt

import pytest

from sheetcrm.model import DeliveryState
from sheetcrm.texting import (
    AD_MARKER,
    TextProblem,
    ad_text,
    carrier_bytes,
    fill_alimtalk,
    masked,
    normalize_mobile,
    normalize_sender,
    outside_euc_kr,
    parse_nhn_reports,
    parse_reports,
    parse_solapi_reports,
    sms_type,
    subject_for,
)


@pytest.mark.parametrize("written", [
    "010-1234-5678", "01012345678", "+82 10-1234-5678", "+82 010-1234-5678",
    "82-10-1234-5678", "(+82) 10 1234 5678", " 010.1234.5678 ", "010 1234 5678",
])
def test_every_way_of_writing_a_mobile_number_gives_one_form(written: str) -> None:
    assert normalize_mobile(written) == "01012345678"


@pytest.mark.parametrize("typed, expected", [
    (1012345678, "01012345678"),          # a cell typed as a number: the zero is back
    (1012345678.0, "01012345678"),
    ("1012345678", "01012345678"),
    ("1012345678.0", "01012345678"),
    ("111234567", "0111234567"),          # 011-123-4567
])
def test_a_leading_zero_lost_to_a_number_cell_survives(typed: object, expected: str) -> None:
    assert normalize_mobile(typed) == expected


@pytest.mark.parametrize("bad", [
    "02-123-4567",          # a landline: no AlimTalk or SMS reaches it
    "+1 415 555 0100",      # another country
    "010-1234-567",         # a digit short
    "010-1234-56789",
    "1.01235E+09",          # Excel's scientific notation: digits are gone
    "전화번호 없음", "", "O", True, 1012345678.5, "1588-1234",
])
def test_anything_else_is_refused_with_what_was_expected(bad: object) -> None:
    with pytest.raises(ValueError, match="010-1234-5678"):
        normalize_mobile(bad)


def test_a_sender_may_be_a_landline_or_a_company_number() -> None:
    assert normalize_sender("02-123-4567") == "021234567"
    assert normalize_sender("1588-1234") == "15881234"
    assert normalize_sender("010-1234-5678") == "01012345678"
    with pytest.raises(ValueError):
        normalize_sender("+82 2 123 4567")


def test_messages_show_a_number_masked() -> None:
    assert masked("+82 10-1234-5678") == "010-****-5678"
    assert masked("abc1234") == "***34"


def test_hangul_counts_two_bytes_ascii_one() -> None:
    assert carrier_bytes("abc") == 3
    assert carrier_bytes("가나다") == 6
    assert carrier_bytes("결제 안내\n") == 10


def test_sms_up_to_90_bytes_lms_beyond_at_the_exact_boundary() -> None:
    assert sms_type("가" * 45) == "SMS"          # 90 bytes
    assert sms_type("가" * 45 + "a") == "LMS"    # 91 bytes
    assert sms_type("a" * 90) == "SMS"
    assert sms_type("가" * 44 + "ab") == "SMS"
    assert sms_type("가" * 1000) == "LMS"        # 2,000 bytes
    with pytest.raises(TextProblem, match="2,001 bytes"):
        sms_type("가" * 1000 + "a")


def test_characters_outside_euc_kr_count_two_bytes_and_are_named() -> None:
    text = "안녕 똠 😀 고객님"
    assert carrier_bytes("😀") == 2 and carrier_bytes("똠") == 2
    assert outside_euc_kr(text) == ["똠", "😀"]
    assert outside_euc_kr("결제 안내 · ①") == []


def test_an_lms_subject_is_one_line_of_at_most_40_bytes() -> None:
    assert subject_for("결제\n안내") == "결제 안내"
    cut = subject_for("가" * 30)
    assert cut == "가" * 20 and carrier_bytes(cut) == 40


def test_an_ad_sms_starts_with_the_marker_and_sender_and_ends_with_the_080_opt_out() -> None:
    text = ad_text("이번 주 할인 20%\n", "소담 클래스", "080-123-4567")
    assert text == "(광고)소담 클래스\n이번 주 할인 20%\n무료수신거부 080-123-4567"
    assert text.startswith(AD_MARKER)


def test_an_ad_already_in_its_form_is_not_marked_twice() -> None:
    once = ad_text("할인", "소담 클래스", "080-123-4567")
    assert ad_text(once, "소담 클래스", "080-123-4567") == once


@pytest.mark.parametrize("marked", ["[광고] 할인", "(광 고) 할인", "광고) 할인", "<광고>할인"])
def test_an_ad_marked_otherwise_than_exactly_광고_is_refused(marked: str) -> None:
    with pytest.raises(TextProblem, match=r"only '\(광고\)'"):
        ad_text(marked, "소담 클래스", "080-123-4567")


def test_alimtalk_variables_fill_from_the_json_block_then_the_row() -> None:
    template = "#{고객명}님, #{강의} 결제가 #{신청일}에 접수되었어요. #{고객명}님 감사합니다."
    text, variables = fill_alimtalk(template, {"고객명": "김수현"},
                                    {"강의": "엑셀 기초", "신청일": dt.date(2026, 11, 1),
                                     "고객명": "무시됨"})
    assert text == "김수현님, 엑셀 기초 결제가 2026-11-01에 접수되었어요. 김수현님 감사합니다."
    assert variables == {"#{고객명}": "김수현", "#{강의}": "엑셀 기초", "#{신청일}": "2026-11-01"}


def test_a_variable_without_a_value_is_named() -> None:
    with pytest.raises(TextProblem, match=r"#\{금액\} has no value"):
        fill_alimtalk("#{금액}원", None, {"name": "x"})
    with pytest.raises(TextProblem, match=r"#\{금액\} is blank for this row"):
        fill_alimtalk("#{금액}원", None, {"금액": None})


def test_alimtalk_limits_are_1300_characters_and_40_variables() -> None:
    fill_alimtalk("가" * 1300, None, {})
    with pytest.raises(TextProblem, match="1,301 characters"):
        fill_alimtalk("가" * 1300 + "#{a}", None, {"a": "b"})
    many = " ".join(f"#{{v{i}}}" for i in range(41))
    with pytest.raises(TextProblem, match="41 variables"):
        fill_alimtalk(many, None, {f"v{i}": "x" for i in range(41)})


def test_solapi_reports_read_delivered_failed_and_on_the_way() -> None:
    payload = [
        {"eventDataId": "E1", "data": {"messageId": "M1", "statusCode": "4000",
                                       "statusMessage": "수신완료",
                                       "dateReceived": "2026-11-25T01:00:05.000Z"}},
        {"eventDataId": "E2", "data": {"messageId": "M2", "statusCode": "3104",
                                       "statusMessage": "카카오톡 미사용자"}},
        {"eventDataId": "E3", "data": {"messageId": "M3", "statusCode": "3000"}},
        {"eventDataId": "E4", "data": {"messageId": "M4", "statusCode": "4000", "type": "LMS",
                                       "replacement": True}},
        {"something": "else"},
    ]
    reports = parse_solapi_reports(payload)
    assert [(r.message_id, r.state) for r in reports] == [
        ("M1", DeliveryState.DELIVERED), ("M2", DeliveryState.FAILED), ("M3", None),
        ("M4", DeliveryState.DELIVERED)]
    assert reports[0].at == dt.datetime(2026, 11, 25, 1, 0, 5, tzinfo=dt.UTC)
    assert reports[1].reason == "3104 카카오톡 미사용자"
    assert "substituted" in reports[3].reason


def test_nhn_reports_read_hooks_and_the_single_message_answer() -> None:
    hooks = {"event": "MESSAGE_RESULT_UPDATE", "hooks": [
        {"requestId": "R1", "recipientSeq": 1, "resultCode": "1000"},
        {"requestId": "R1", "recipientSeq": 2, "resultCode": "3020"}]}
    first, second = parse_nhn_reports(hooks)
    assert (first.message_id, first.state) == ("R1:1", DeliveryState.DELIVERED)
    assert second.state is None and "not in this report" in second.reason
    by_sms = parse_reports("nhn", {"message": {"requestId": "R1", "recipientSeq": 2,
                                               "resultCode": "3020", "resendStatus": "RSC04"}})
    assert by_sms[0].state is DeliveryState.DELIVERED
    assert "delivered by SMS/LMS" in by_sms[0].reason
    lost = parse_reports("nhn", {"message": {"requestId": "R1", "recipientSeq": 3,
                                             "resultCode": "3020", "resendStatus": "RSC01"}})
    assert lost[0].state is DeliveryState.FAILED
    with pytest.raises(ValueError, match="unknown provider"):
        parse_reports("aligo", {})
