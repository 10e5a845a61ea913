"""Particles after English words, as Korean writes the word (슬랙은, not 슬랙는 read
by the letter K): where the spelling tells the ending for certain, the particle it
takes; where it does not (Chat 챗 but Set 세트), both forms. Acronyms are read letter
by letter, as before (SQL은, CSS는, ChatGPT는).

Rendered through the real template folder and sandbox, as a customer's mail is.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sheetcrm.templates import Templates

# word, then the word with 은/는, 이/가, 을/를, 과/와, (으)로
ENGLISH = [
    ("Slack", "은", "이", "을", "과", "으로"),  # 슬랙
    ("Facebook", "은", "이", "을", "과", "으로"),  # 페이스북
    ("App", "은", "이", "을", "과", "으로"),  # 앱
    ("Shop", "은", "이", "을", "과", "으로"),  # 숍
    ("Mac", "은", "이", "을", "과", "으로"),  # 맥
    ("Chrome", "은", "이", "을", "과", "으로"),  # 크롬
    ("Phone", "은", "이", "을", "과", "으로"),  # 폰
    ("Spring", "은", "이", "을", "과", "으로"),  # 스프링
    ("LinkedIn", "은", "이", "을", "과", "으로"),  # 링크드인
    ("Google", "은", "이", "을", "과", "로"),  # 구글: ㄹ
    ("Airtable", "은", "이", "을", "과", "로"),  # 에어테이블
    ("Gmail", "은", "이", "을", "과", "로"),  # 지메일
    ("Desk", "는", "가", "를", "와", "로"),  # 데스크
    ("Help", "는", "가", "를", "와", "로"),  # 헬프
    ("JavaScript", "는", "가", "를", "와", "로"),  # 자바스크립트
    ("Office", "는", "가", "를", "와", "로"),  # 오피스
    ("Shopify", "는", "가", "를", "와", "로"),  # 쇼피파이
    ("Docker", "는", "가", "를", "와", "로"),  # 도커: the final r is not read
    ("Docs", "는", "가", "를", "와", "로"),  # 독스
    ("Word", "는", "가", "를", "와", "로"),  # 워드
    ("Canva", "는", "가", "를", "와", "로"),  # 캔바
    ("ChatGPT", "는", "가", "를", "와", "로"),  # 챗지피티: GPT letter by letter
    ("iOS", "는", "가", "를", "와", "로"),  # 아이오에스
    ("AWS", "는", "가", "를", "와", "로"),  # 에이더블유에스
    ("HTML", "은", "이", "을", "과", "로"),  # 에이치티엠엘
]

# Words whose ending the spelling does not tell: both forms.
UNKNOWN = ["KakaoTalk", "GitHub", "Chat", "Git", "Group"]


def render(tmp_path: Path, text: str, **context: object) -> str:
    (tmp_path / "t.j2").write_text(
        "{% block subject %}s{% endblock %}{% block text %}" + text + "{% endblock %}",
        encoding="utf-8")
    return Templates(tmp_path).render("t", context).text.strip()


PARTICLES = ('{{ w|josa("은/는") }} {{ w|josa("이/가") }} {{ w|josa("을/를") }} '
             '{{ w|josa("과/와") }} {{ w|josa("(으)로") }}')


@pytest.mark.parametrize(("word", "eun", "i", "eul", "gwa", "ro"), ENGLISH)
def test_an_english_word_takes_the_particle_of_its_korean_ending(
        tmp_path: Path, word: str, eun: str, i: str, eul: str, gwa: str, ro: str) -> None:
    text = render(tmp_path, PARTICLES, w=word)
    assert text == f"{word}{eun} {word}{i} {word}{eul} {word}{gwa} {word}{ro}"


@pytest.mark.parametrize("word", UNKNOWN)
def test_an_english_word_whose_ending_cannot_be_told_gets_both_forms(
        tmp_path: Path, word: str) -> None:
    text = render(tmp_path, PARTICLES, w=word)
    assert text == f"{word}은(는) {word}이(가) {word}을(를) {word}과(와) {word}(으)로"


def test_the_last_english_word_of_a_name_decides(tmp_path: Path) -> None:
    assert render(tmp_path, '{{ w|josa("은/는") }}', w="Google Sheets") == "Google Sheets는"
    assert render(tmp_path, '{{ w|josa("을/를") }}', w="노션과 Slack") == "노션과 Slack을"
