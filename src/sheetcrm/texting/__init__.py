"""Text messages to Korean phones: numbers, SMS/LMS sizes, §50 ad rules, AlimTalk, reports.

Plain functions with no I/O, low in the layers, so the planner (which builds the
messages), the channels (which send them), ``check`` (which tries them on every row)
and the endpoint (which reads providers' delivery reports) share one definition:

- ``phone``: a recipient's mobile number in one form, and the sender number;
- ``text``: bytes as carriers count them, SMS or LMS, the §50 ad text, AlimTalk
  variables and limits;
- ``reports``: Solapi's and NHN Cloud's delivery reports read into ``DeliveryReport``.
"""

from sheetcrm.texting.phone import masked, normalize_mobile, normalize_sender
from sheetcrm.texting.reports import parse_nhn_reports, parse_reports, parse_solapi_reports
from sheetcrm.texting.text import (
    AD_MARKER,
    ALIMTALK_MAX_CHARS,
    ALIMTALK_MAX_VARIABLES,
    LMS_MAX_BYTES,
    SMS_MAX_BYTES,
    SUBJECT_MAX_BYTES,
    TextProblem,
    ad_text,
    alimtalk_variables,
    carrier_bytes,
    fill_alimtalk,
    outside_euc_kr,
    sms_type,
    subject_for,
)

__all__ = [
    "AD_MARKER",
    "ALIMTALK_MAX_CHARS",
    "ALIMTALK_MAX_VARIABLES",
    "LMS_MAX_BYTES",
    "SMS_MAX_BYTES",
    "SUBJECT_MAX_BYTES",
    "TextProblem",
    "ad_text",
    "alimtalk_variables",
    "carrier_bytes",
    "fill_alimtalk",
    "masked",
    "normalize_mobile",
    "normalize_sender",
    "outside_euc_kr",
    "parse_nhn_reports",
    "parse_reports",
    "parse_solapi_reports",
    "sms_type",
    "subject_for",
]
