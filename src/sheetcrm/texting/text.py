"""SMS, LMS and AlimTalk texts: sizes as carriers count them, the §50 ad form, variables.

**Bytes.** Carriers size a text in EUC-KR: an ASCII character is 1 byte, Hangul and
every other character of KS X 1001 is 2. A character outside EUC-KR (an emoji, a
Hangul syllable only CP949 has, such as 똠) is counted as 2 bytes too, so the choice
of SMS or LMS never underestimates; ``outside_euc_kr`` lists them, because a carrier
may refuse such a text or show ``?`` for them (``check`` warns). A line break is 1.

**SMS or LMS.** Up to 90 bytes is an SMS; beyond, up to 2,000 bytes, an LMS, which
also has a subject (at most 40 bytes: a longer one is cut at a character boundary).
Past 2,000 bytes a text cannot be sent.

**Ads (정보통신망법 §50).** An ad by SMS/LMS reads ``(광고)`` then the sender's name
first, and ends with the free opt-out number: ``(광고)소담 클래스`` … ``무료수신거부
080-123-4567``. ``ad_text`` builds that from the template's text; a text that marks
itself otherwise (``[광고]``, ``(광 고)``) is refused rather than marked twice.

**AlimTalk.** The text is the template Kakao approved, with ``#{변수}`` placeholders;
each variable's value comes from the template's ``json`` block when it names it,
else from the field (or template variable) of that name. At most 1,300 characters
once filled and 40 variables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sheetcrm.i18n import _

AD_MARKER = "(광고)"
OPT_OUT_WORDS = "무료수신거부"
SMS_MAX_BYTES = 90
LMS_MAX_BYTES = 2000
SUBJECT_MAX_BYTES = 40
ALIMTALK_MAX_CHARS = 1300
ALIMTALK_MAX_VARIABLES = 40

_PLACEHOLDER = re.compile(r"#\{([^{}#\r\n]{1,50})\}")
# Spellings of the marker the law does not accept: [광고], 광고), ( 광고 ), <광고>...
_MISSPELLED_MARKER = re.compile(r"^\s*[\[(<{【]?\s*광\s*고\s*[\])>}】]?")


class TextProblem(ValueError):
    """The text cannot be sent as it is; the message says why and what to change."""


def carrier_bytes(text: str) -> int:
    """The size carriers count: 1 byte per ASCII character, 2 for any other."""
    ascii_count = sum(1 for c in text if c < "\x80")
    return ascii_count + 2 * (len(text) - ascii_count)


def outside_euc_kr(text: str) -> list[str]:
    """The distinct characters of ``text`` that EUC-KR cannot write, in order."""
    seen: list[str] = []
    for char in text:
        if char >= "\x80" and char not in seen:
            try:  # Python's codec writes a syllable KS X 1001 lacks as an 8-byte sequence
                fits = len(char.encode("euc-kr")) == 2
            except UnicodeEncodeError:
                fits = False
            if not fits:
                seen.append(char)
    return seen


def sms_type(text: str) -> str:
    """``SMS`` up to 90 bytes, ``LMS`` up to 2,000; TextProblem past that."""
    size = carrier_bytes(text)
    if size <= SMS_MAX_BYTES:
        return "SMS"
    if size <= LMS_MAX_BYTES:
        return "LMS"
    raise TextProblem(_("the text is {size:,} bytes; an LMS holds at most {most:,} (Hangul "
                        "counts 2 bytes): shorten the template", size=size, most=LMS_MAX_BYTES))


def subject_for(subject: str) -> str:
    """An LMS subject: one line, cut to 40 bytes at a character boundary."""
    line = " ".join(subject.split())
    while carrier_bytes(line) > SUBJECT_MAX_BYTES:
        line = line[:-1]
    return line.rstrip()


def opt_out_line(number: str) -> str:
    return f"{OPT_OUT_WORDS} {number}"


def ad_text(body: str, sender_name: str, opt_out_number: str) -> str:
    """The §50 form of an ad: ``(광고)<sender>`` first, the free opt-out number last."""
    text = body.strip()
    if text.startswith(AD_MARKER):
        text = text[len(AD_MARKER):].lstrip()
        if text.startswith(sender_name):
            text = text[len(sender_name):].lstrip()
    elif _MISSPELLED_MARKER.match(text):
        shown = text.split("\n", 1)[0][:20]
        raise TextProblem(_("the text starts {shown!r}: the law accepts only '{marker}' "
                            "exactly; remove the marker from the template (it is added for "
                            "you)", shown=shown, marker=AD_MARKER))
    closing = opt_out_line(opt_out_number)
    if text.endswith(closing):
        text = text[: -len(closing)].rstrip()
    return f"{AD_MARKER}{sender_name}\n{text}\n{closing}"


def alimtalk_variables(template_text: str) -> list[str]:
    """The ``#{변수}`` names of an AlimTalk text, each once, in order."""
    names: list[str] = []
    for name in _PLACEHOLDER.findall(template_text):
        if name not in names:
            names.append(name)
    return names


def _shown(value: Any) -> str:
    """A value as the message shows it: dates as 2026-11-25, whole numbers without .0."""
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "예" if value else "아니오"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def fill_alimtalk(template_text: str, given: Mapping[str, Any] | None,
                  context: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """The filled text and ``{"#{name}": value}`` for the provider.

    A value comes from ``given`` (the template's json block) first, then ``context``
    (the row's fields and the template variables). A variable with no value, or a
    blank one, raises TextProblem naming it; so does a text over the limits.
    """
    names = alimtalk_variables(template_text)
    if len(names) > ALIMTALK_MAX_VARIABLES:
        raise TextProblem(_("the AlimTalk text has {count} variables; Kakao allows at most "
                            "{most}", count=len(names), most=ALIMTALK_MAX_VARIABLES))
    values: dict[str, str] = {}
    for name in names:
        source = given if given is not None and name in given else context
        value = source.get(name)
        if value is None or value == "":
            if name in context or (given and name in given):
                raise TextProblem(_("AlimTalk variable #{{{name}}} is blank for this row",
                                    name=name))
            raise TextProblem(_("AlimTalk variable #{{{name}}} has no value: name a field so, "
                                "or set it in the json block", name=name))
        values[f"#{{{name}}}"] = _shown(value)
    text = _PLACEHOLDER.sub(lambda m: values[f"#{{{m.group(1)}}}"], template_text)
    if len(text) > ALIMTALK_MAX_CHARS:
        raise TextProblem(_("the AlimTalk text is {count:,} characters once filled; Kakao "
                            "allows at most {most:,}", count=len(text), most=ALIMTALK_MAX_CHARS))
    return text, values
