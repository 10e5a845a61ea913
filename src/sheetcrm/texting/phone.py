"""Korean phone numbers in one form: ``01012345678``, the digits providers take.

A recipient is a mobile number (AlimTalk and SMS go to phones): ``010-1234-5678``,
``01012345678``, ``010 1234 5678``, ``+82 10-1234-5678``, ``82-10-1234-5678`` and
``(+82) 010-1234-5678`` all become ``01012345678``. A cell that a spreadsheet read as
a number lost its leading zero (``1012345678``, or ``1012345678.0`` from a float):
the zero is put back, since no Korean number starts with ``1`` once written in full
(numbers like 1588-xxxx are not mobile numbers). Anything else (a landline, a number
of another country, too few or too many digits, ``1.01E+09``) raises ValueError with
what was expected.

A sender is a number registered with the provider: a mobile, a landline
(``02-123-4567``) or a company number (``1588-1234``).

``masked`` is how a number appears in any message: ``010-****-5678``.
"""

from __future__ import annotations

import re
from typing import Any

from sheetcrm.i18n import N_, _

EXPECTED_MOBILE = N_("a Korean mobile number like 010-1234-5678 or +82 10-1234-5678")
EXPECTED_SENDER = N_(
    "a phone number registered with the provider, like 02-123-4567 or 1588-1234")

_ALLOWED = re.compile(r"[\d\s().+\-]+", re.ASCII)
_MOBILE = re.compile(r"01[016789]\d{7,8}", re.ASCII)
_SENDER = re.compile(r"(?:0\d{8,10}|1[5-9]\d{6})", re.ASCII)


def _text_of(value: Any) -> str:
    """A cell's value as text; a number a sheet typed keeps all its digits."""
    if isinstance(value, bool):
        raise ValueError(_(EXPECTED_MOBILE))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(_(EXPECTED_MOBILE))
        return str(int(value))
    text = str(value).strip()
    integral = re.fullmatch(r"(\d+)\.0+", text)  # 1012345678.0 from a float cell
    return integral.group(1) if integral else text


def normalize_mobile(value: Any) -> str:
    """``01012345678`` for any way a Korean mobile number is written; ValueError if none."""
    text = _text_of(value)
    if not text or _ALLOWED.fullmatch(text) is None:
        raise ValueError(_(EXPECTED_MOBILE))
    digits = re.sub(r"\D", "", text)
    international = text.lstrip("( ").startswith("+")
    if international or (digits.startswith("82") and len(digits) in (11, 12, 13)):
        if not digits.startswith("82"):
            raise ValueError(_("{expected} (only Korean numbers can be sent to)",
                               expected=_(EXPECTED_MOBILE)))
        digits = "0" + digits[2:].removeprefix("0")
    elif digits.startswith("1") and len(digits) in (9, 10):
        digits = "0" + digits  # the zero a number-typed cell dropped
    if _MOBILE.fullmatch(digits) is None or (digits.startswith("010") and len(digits) != 11):
        raise ValueError(_(EXPECTED_MOBILE))
    return digits


def normalize_sender(value: str) -> str:
    """The registered sender number as digits; ValueError if it is not a phone number."""
    text = str(value).strip()
    if not text or _ALLOWED.fullmatch(text) is None or "+" in text:
        raise ValueError(_(EXPECTED_SENDER))
    digits = re.sub(r"\D", "", text)
    if _SENDER.fullmatch(digits) is None:
        raise ValueError(_(EXPECTED_SENDER))
    return digits


def masked(value: Any) -> str:
    """A number as messages show it: the middle digits hidden (``010-****-5678``)."""
    try:
        digits = normalize_mobile(value)
    except ValueError:
        raw = re.sub(r"\D", "", str(value))
        return f"***{raw[-2:]}" if len(raw) >= 4 else "***"
    return f"{digits[:3]}-{'*' * (len(digits) - 7)}-{digits[-4:]}"
