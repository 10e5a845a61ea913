"""Filters that make a template read as Korean: particles, dates, won.

``{{ 강의|josa("은/는") }}`` writes the word with the particle its last sound takes:
``파이썬 입문은``, ``엑셀 기초는``. The rule, for the last character that can be read
(closing brackets, quotes, spaces and other marks after it are passed over):

- a Hangul syllable: its final consonant (받침), if any;
- a digit: the number as read in Sino-Korean, by its last word: 1 일, 2 이, 3 삼, 4 사,
  5 오, 6 육, 7 칠, 8 팔, 9 구, 0 영, and a number ending in zeros by its unit (10 십,
  100 백, 1,000 천, 10,000 만, 10^8 억, 10^12 조); after a decimal point the last digit;
- Latin letters in capitals (an acronym: ``SQL``, ``CRM``, or ``ChatGPT``'s ``GPT``):
  the last letter's name as read in Korean (A 에이, B 비, ... L 엘, M 엠, N 엔, R 알, ...):
  only L, M, N and R end in a consonant (SQL은, CSS는);
- an English word (``Slack``, ``Excel``): its ending as Korean writes the word
  (외래어 표기법), where the spelling tells it for certain (``_ENGLISH_ENDINGS``): l 엑셀,
  m/n/ng 줌·파이선·스프링, -ck and -ook 슬랙·페이스북, a short vowel and p or c 숍·맥; a
  vowel, y, w, r, s, x, d, f, h, v, z or a consonant before a final p/t/k 자바·서버·
  데스크·스타트: none. Where it does not (``Chat`` 챗 but ``Set`` 세트, ``KakaoTalk``
  카카오톡 but ``Talk`` 토크), both forms;
- anything else (or nothing): both forms, ``은(는)``, as Korean writes an unknown case.

Pairs: 은/는, 이/가, 을/를, 과/와, 아/야, (으)로, (이)나, (이)랑, (이)라, (이)며, (이)여,
이에요/예요, either order. (으)로 takes 로 after ㄹ as after a vowel (서울로, 파일로).

The rule is hand-written: the josa libraries on PyPI are unmaintained (tossi's last
release was in 2018, pyjosa's in 2021) and the rule fits on one screen.

``{{ d|kdate }}`` writes ``11월 1일 (일)`` (no zero padding; ``kdate(year=True)`` adds the
year, ``kdate(weekday=False)`` leaves out the day of the week), and ``{{ n|won }}``
``39,000원``.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from sheetcrm.i18n import _

__all__ = ["josa", "kdate", "won"]

# (form after a final consonant, form after a vowel)
_PAIRS = [("은", "는"), ("이", "가"), ("을", "를"), ("과", "와"), ("아", "야"), ("으로", "로"),
          ("이나", "나"), ("이랑", "랑"), ("이라", "라"), ("이며", "며"), ("이여", "여"),
          ("이에요", "예요")]
_BY_SPEC: dict[str, tuple[str, str]] = {}
for _consonant, _vowel in _PAIRS:
    _BY_SPEC[f"{_consonant}/{_vowel}"] = _BY_SPEC[f"{_vowel}/{_consonant}"] = (_consonant,
                                                                            _vowel)
    if _consonant.endswith(_vowel):  # (으)로, (이)나: the optional part in brackets
        _BY_SPEC[f"({_consonant[: -len(_vowel)]}){_vowel}"] = (_consonant, _vowel)

_NONE, _RIEUL, _OTHER = 0, 1, 2  # no final consonant, ㄹ, another one
_DIGITS = {"0": _OTHER, "1": _RIEUL, "2": _NONE, "3": _OTHER, "4": _NONE, "5": _NONE,
           "6": _OTHER, "7": _RIEUL, "8": _RIEUL, "9": _NONE}
# 십, 백, 천 for one to three zeros; 만, 억, 조, 경 per group of four.
_TENS = {1: _OTHER, 2: _OTHER, 3: _OTHER}
_MYRIADS = {1: _OTHER, 2: _OTHER, 3: _NONE, 4: _OTHER}
_LETTERS = {"l": _RIEUL, "r": _RIEUL, "m": _OTHER, "n": _OTHER}
_NUMBER_AT_END = re.compile(r"(\.?)(\d[\d,]*)$")
_LATIN_AT_END = re.compile(r"[A-Za-z]+$")
_CAPITALS_AT_END = re.compile(r"[A-Z]*$")
# How an English word ends as Korean writes it, where its spelling tells for certain:
# (the end of the lowercased word, its final sound or None when it cannot be told);
# the first that matches decides, and a word none matches is unknown.
_ENGLISH_ENDINGS = [(re.compile(end), sound) for end, sound in (
    (r"(?:ck|ook)$", _OTHER),  # Slack 슬랙, Facebook 페이스북
    (r"lk$", None),  # Talk 토크, but KakaoTalk 카카오톡
    (r"pp$", _OTHER),  # App 앱
    (r"(?:^|[^aeiou])[aeiou][pc]$", _OTHER),  # Shop 숍, Setup 셋업, Mac 맥, Music 뮤직
    (r"[bcdfghjklmnpqrsvwxz][ptk]$", _NONE),  # Desk 데스크, Start 스타트, Script 스크립트
    (r"(?:ng|[mn]|[mn]e)$", _OTHER),  # Spring 스프링, Zoom 줌, Python 파이선, Chrome 크롬
    (r"(?:l|le)$", _RIEUL),  # Excel 엑셀, Google 구글
    (r"[aeiouywrsxzdfhv]$", _NONE),  # Java 자바, Shopify, Flow, Docker, Docs, Word, Office
)]


def josa(word: Any, pair: str) -> str:
    """``word`` followed by the form of ``pair`` its last sound takes."""
    forms = _BY_SPEC.get(str(pair).replace(" ", ""))
    if forms is None:
        raise ValueError(_("josa({pair}): not a particle pair; write one like 은/는, 이/가, "
                           "을/를, 과/와 or (으)로", pair=repr(pair)))
    if word is None:
        return ""
    text = str(word)
    final = _final(text)
    consonant, vowel = forms
    if final is None:
        optional = consonant[: -len(vowel)] if consonant.endswith(vowel) else ""
        return f"{text}({optional}){vowel}" if optional else f"{text}{consonant}({vowel})"
    if final == _NONE or (final == _RIEUL and consonant == "으로"):
        return text + vowel
    return text + consonant


def _final(text: str) -> int | None:
    """How ``text`` ends when read aloud: no final consonant, ㄹ, another; None: unknown."""
    end = len(text)
    while end and not (text[end - 1].isalnum()):
        end -= 1
    if not end:
        return None
    last = text[end - 1]
    if "가" <= last <= "힣":
        jong = (ord(last) - 0xAC00) % 28
        return _NONE if jong == 0 else _RIEUL if jong == 8 else _OTHER
    if last.isascii() and last.isdigit():
        return _number(text[:end])
    if last.isascii() and last.isalpha():
        return _latin(text[:end])
    return None


def _latin(text: str) -> int | None:
    """How Latin letters at the end of ``text`` end when read aloud (None: unknown)."""
    match = _LATIN_AT_END.search(text)
    assert match is not None  # text ends in a Latin letter
    word = match.group()
    capitals = _CAPITALS_AT_END.search(word)
    if word.isupper() or (capitals is not None and len(capitals.group()) >= 2):
        return _LETTERS.get(word[-1].lower(), _NONE)  # read letter by letter
    lowered = word.lower()
    return next((sound for end, sound in _ENGLISH_ENDINGS if end.search(lowered)), None)


def _number(text: str) -> int | None:
    match = _NUMBER_AT_END.search(text)
    assert match is not None  # text ends in a digit
    point, digits = match.groups()
    digits = digits.replace(",", "")
    if point or int(digits) == 0:
        return _DIGITS[digits[-1]]  # 3.5: 오; 0: 영
    zeros = len(digits) - len(digits.rstrip("0"))
    if zeros == 0:
        return _DIGITS[digits[-1]]
    if zeros < 4:
        return _TENS[zeros]
    return _MYRIADS.get(zeros // 4)


_WEEKDAYS = "월화수목금토일"


def kdate(value: Any, year: bool = False, weekday: bool = True) -> str:
    """``11월 1일 (일)``: a date as Korean writes it, without zero padding."""
    if value is None or value == "":
        return ""
    if not isinstance(value, (date, datetime)):
        raise ValueError(_("kdate formats a date or datetime field, not {value}",
                           value=repr(value)))
    day = f"{value.month}월 {value.day}일"
    if weekday:
        day += f" ({_WEEKDAYS[value.weekday()]})"
    return f"{value.year}년 {day}" if year else day


def won(value: Any) -> str:
    """``39000`` -> ``39,000원``."""
    if value is None or value == "":
        return ""
    return f"{float(value):,.0f}원"
