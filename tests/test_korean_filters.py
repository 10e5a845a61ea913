"""Templates that read as Korean: particles after the word's last sound, dates without
zero padding and with the day of the week, amounts in won.

Rendered through the real template folder and sandbox, as a customer's mail is.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from sheetcrm.errors import TemplateError
from sheetcrm.templates import Templates


def render(tmp_path: Path, text: str, **context: object) -> str:
    (tmp_path / "t.j2").write_text(
        "{% block subject %}s{% endblock %}{% block text %}" + text + "{% endblock %}",
        encoding="utf-8")
    return Templates(tmp_path).render("t", context).text.strip()


# word, then the word with 은/는, 이/가, 을/를, 과/와, (으)로
WORDS = [
    ("파이썬 입문", "은", "이", "을", "과", "으로"),  # ㄴ
    ("엑셀 기초", "는", "가", "를", "와", "로"),  # no final consonant
    ("데이터 분석", "은", "이", "을", "과", "으로"),  # ㄱ
    ("서울", "은", "이", "을", "과", "로"),  # ㄹ: 로, not 으로
    ("강의 (기초)", "는", "가", "를", "와", "로"),  # a closing bracket is passed over
    ("“후기”", "는", "가", "를", "와", "로"),
    # numbers, by their Sino-Korean reading
    ("1", "은", "이", "을", "과", "로"),  # 일: ㄹ
    ("2", "는", "가", "를", "와", "로"),  # 이
    ("3", "은", "이", "을", "과", "으로"),  # 삼
    ("4", "는", "가", "를", "와", "로"),  # 사
    ("6", "은", "이", "을", "과", "으로"),  # 육
    ("7", "은", "이", "을", "과", "로"),  # 칠
    ("8", "은", "이", "을", "과", "로"),  # 팔
    ("9", "는", "가", "를", "와", "로"),  # 구
    ("0", "은", "이", "을", "과", "으로"),  # 영
    ("10", "은", "이", "을", "과", "으로"),  # 십
    ("100", "은", "이", "을", "과", "으로"),  # 백
    ("1,000", "은", "이", "을", "과", "으로"),  # 천
    ("10000", "은", "이", "을", "과", "으로"),  # 만
    ("300000", "은", "이", "을", "과", "으로"),  # 삼십만
    ("100000000", "은", "이", "을", "과", "으로"),  # 억
    ("1000000000000", "는", "가", "를", "와", "로"),  # 조
    ("12", "는", "가", "를", "와", "로"),  # 십이
    ("3.5", "는", "가", "를", "와", "로"),  # 삼점오
    ("2026년", "은", "이", "을", "과", "으로"),
    # Latin letters, by the letter's Korean name
    ("SQL", "은", "이", "을", "과", "로"),  # 엘
    ("Excel", "은", "이", "을", "과", "로"),  # 엘
    ("Python", "은", "이", "을", "과", "으로"),  # 엔
    ("Zoom", "은", "이", "을", "과", "으로"),  # 엠
    ("R", "은", "이", "을", "과", "로"),  # 알
    ("Java", "는", "가", "를", "와", "로"),  # 에이
    ("C", "는", "가", "를", "와", "로"),  # 씨
    ("Figma", "는", "가", "를", "와", "로"),
    ("Notion 2", "는", "가", "를", "와", "로"),
]


@pytest.mark.parametrize(("word", "eun", "i", "eul", "gwa", "ro"), WORDS)
def test_particles_follow_the_last_sound_of_the_word(tmp_path: Path, word: str, eun: str,
                                                      i: str, eul: str, gwa: str,
                                                      ro: str) -> None:
    text = render(tmp_path, '{{ w|josa("은/는") }} {{ w|josa("이/가") }} {{ w|josa("을/를") }} '
                  '{{ w|josa("과/와") }} {{ w|josa("(으)로") }}', w=word)
    assert text == f"{word}{eun} {word}{i} {word}{eul} {word}{gwa} {word}{ro}"


def test_a_pair_may_be_written_in_either_order(tmp_path: Path) -> None:
    text = render(tmp_path, '{{ a|josa("와/과") }} {{ b|josa("는/은") }} {{ a|josa("로/으로") }} '
                  '{{ b|josa("가/이") }} {{ a|josa("(이)나") }} {{ b|josa("이에요/예요") }}',
                  a="파이썬", b="입문")
    assert text == "파이썬과 입문은 파이썬으로 입문이 파이썬이나 입문이에요"


def test_the_samples_embarrassing_subject_reads_right(tmp_path: Path) -> None:
    assert render(tmp_path, '{{ 강의|josa("은/는") }} 어떠셨나요?',
                  강의="파이썬 입문") == "파이썬 입문은 어떠셨나요?"


def test_a_word_that_cannot_be_read_gets_both_forms(tmp_path: Path) -> None:
    text = render(tmp_path, '{{ w|josa("은/는") }} {{ w|josa("(으)로") }}', w="日本")
    assert text == "日本은(는) 日本(으)로"


def test_a_blank_value_gives_nothing(tmp_path: Path) -> None:
    assert render(tmp_path, '[{{ w|josa("은/는") }}]', w=None) == "[]"


def test_an_unknown_pair_is_a_template_error_saying_what_pairs_look_like(tmp_path: Path) -> None:
    with pytest.raises(TemplateError) as caught:
        render(tmp_path, '{{ w|josa("은는") }}', w="강의")
    assert "josa('은는'): not a particle pair; write one like 은/는, 이/가" in str(caught.value)


@pytest.mark.parametrize(("value", "shown"), [
    (dt.date(2026, 11, 1), "11월 1일 (일)"),
    (dt.date(2025, 11, 1), "11월 1일 (토)"),
    (dt.date(2026, 3, 9), "3월 9일 (월)"),
    (dt.datetime(2026, 12, 25, 9, 30), "12월 25일 (금)"),
])
def test_kdate_writes_month_and_day_without_zero_padding(tmp_path: Path, value: object,
                                                         shown: str) -> None:
    assert render(tmp_path, "{{ d|kdate }}", d=value) == shown


def test_kdate_with_the_year_or_without_the_weekday(tmp_path: Path) -> None:
    d = dt.date(2026, 11, 1)
    text = render(tmp_path, "{{ d|kdate(year=True) }} / {{ d|kdate(weekday=False) }}", d=d)
    assert text == "2026년 11월 1일 (일) / 11월 1일"


def test_kdate_of_a_blank_is_blank_and_of_text_is_an_error(tmp_path: Path) -> None:
    assert render(tmp_path, "[{{ d|kdate }}]", d=None) == "[]"
    with pytest.raises(TemplateError, match="kdate formats a date or datetime field"):
        render(tmp_path, "{{ d|kdate }}", d="11월 1일")


@pytest.mark.parametrize(("value", "shown"), [
    (39000, "39,000원"), (39000.0, "39,000원"), (1234567, "1,234,567원"), (0, "0원"),
    (-5000, "-5,000원"), (None, ""),
])
def test_won_writes_the_amount_with_separators(tmp_path: Path, value: object, shown: str) -> None:
    assert render(tmp_path, "{{ n|won }}", n=value) == shown
