"""Filters that make a template read as Korean: particles, dates, won.

``{{ 강의|josa("은/는") }}`` writes the word with the particle its last sound takes:
``파이썬 입문은``, ``엑셀 기초는``. The rule, for the last character that can be read
(closing brackets, quotes, spaces and other marks after it are passed over):

- a Hangul syllable: its final consonant (받침), if any;
- a digit: the number as read in Sino-Korean, by its last word: 1 일, 2 이, 3 삼, 4 사,
  5 오, 6 육, 7 칠, 8 팔, 9 구, 0 영, and a number ending in zeros by its unit (10 십,
  100 백, 1,000 천, 10,000 만, 10^8 억, 10^12 조); after a decimal point the last digit;
- a Latin letter: its name as read in Korean (A 에이, B 비, ... L 엘, M 엠, N 엔,
  R 알, ...): only L, M, N and R end in a consonant. A word is read by its last
  letter, which fits acronyms (SQL은) and many words (Excel은, Python은, Java는) but
  not all (Slack: 슬랙은, read by K as 케이는); write the particle out for such a word;
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
        return _LETTERS.get(last.lower(), _NONE)
    return None


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
