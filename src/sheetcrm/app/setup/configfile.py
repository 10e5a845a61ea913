"""The ``config.toml`` that ``init`` writes: only what must stay out of the sheet.

Where the table is and how to open it, the fields, the columns sheetcrm writes, the
sending guards, the channel and the time zone; the rules live in the sheet's tabs
(``[rules]``). Secrets never appear: a key file or a token is named by the
environment variable that holds it (``${GOOGLE_APPLICATION_CREDENTIALS}``). The
comments speak Korean, the operator's language; what the operator must fill in (who
sends the ads) is marked ``채워 주세요``. Values are written as JSON strings, which
TOML reads the same way (quotes and backslashes escaped), and keys as
``config.base.quote_key`` writes them.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass

from sheetcrm.app.setup.infer import Column
from sheetcrm.app.setup.source import Place
from sheetcrm.app.setup.survey import RULE_TABS, Survey
from sheetcrm.config.base import quote_key

FILL_IN = "채워 주세요"
#: [sending] as the sample sets it.
SENDING = {"quiet_hours": "21:00-08:00", "frequency_cap": "3/7d", "min_gap": "1h"}
MAX_SENDS_PER_RUN = 200
SENDER_NAME = "보내는 곳 이름"
SENDER_CONTACT = "hello@example.com, 02-000-0000"
SENDER_FROM = "보내는 곳 <hello@example.com>"
OPT_OUT = '수신을 원하지 않으시면 이 메일에 "수신거부"라고 답장해 주세요. 무료로 처리됩니다.'


@dataclass(frozen=True)
class Choices:
    """What the operator decided (or took by default)."""

    key: str  # a field name
    timezone: str = "Asia/Seoul"


def _s(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _width(text: str) -> int:
    """Columns ``text`` takes in an editor: Hangul and other wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _line(text: str, comment: str = "", width: int = 36) -> str:
    """``text``, then ``# comment`` lined up at ``width`` columns (one space at least)."""
    if not comment:
        return text
    return f"{text}{' ' * max(width - _width(text), 1)}# {comment}"


def config_text(place: Place, found: Survey, choices: Choices) -> str:
    """The whole file."""
    parts = [_head(found), _table(place, choices), _fields(found.columns),
             _writeback(found), _sending(found), _channel(found), _rules()]
    return "\n".join(parts)


def _head(found: Survey) -> str:
    return (
        f"# sheetcrm 설정: `sheetcrm init`이 {found.snapshot.source}을(를) 보고 만들었습니다.\n"
        "# 태그, 흐름, 메시지는 시트의 '태그', '흐름', '템플릿' 탭에서 고칩니다\n"
        "# (CSV는 같은 폴더의 태그.csv, 흐름.csv, 템플릿.csv). 이 파일에는 시트 밖에\n"
        "# 있어야 하는 것만 있습니다: 표의 위치, 열, 보내는 방법, 시간대.\n"
        "# 보내기 전에: sheetcrm check, sheetcrm plan\n")


def _top(choices: Choices) -> str:
    return "\n".join([
        _line('language = "ko"', "메시지, 오류, 시트에 쓰는 말: \"ko\" 또는 \"en\""),
        _line(f"timezone = {_s(choices.timezone)}"),
        _line('state = ".sheetcrm/state.db"', "원장: 흐름 상태, 발송 기록, 실행 이력"),
    ]) + "\n"


def _table(place: Place, choices: Choices) -> str:
    lines = [_top(choices), "[table]"]
    for name, value in place.table.items():
        lines.append(f"{name} = {_s(value)}")
    if place.table.get("backend") == "gsheets" and "credentials" not in place.table:
        lines.append(_line('credentials = "${GOOGLE_APPLICATION_CREDENTIALS}"',
                           "서비스 계정 키 파일의 경로를 담은 환경 변수"))
    lines.append(_line(f"key = {_s(choices.key)}", "행을 구별하는 항목"))
    return "\n".join(lines) + "\n"


def _fields(columns: list[Column]) -> str:
    lines = ["# 시트의 열과 그 종류: init이 값을 보고 정했습니다. 조건과 메시지에서는",
             "# 항목 이름(열 이름의 띄어쓰기를 _로 바꾼 것)으로 씁니다: 결제_여부, {{ 고객명 }}.",
             "[fields]"]
    for c in columns:
        settings = [f"column = {_s(c.name)}"]
        if c.type != "text":
            settings.append(f"type = {_s(c.type)}")
        if c.date_order:
            settings.append(f"date_order = {_s(c.date_order)}")
        note = _note(c)
        if note:
            lines.append(f"# {note}")
        lines.append(f"{quote_key(c.field)} = {{ {', '.join(settings)} }}")
    return "\n".join(lines) + "\n"


def _note(c: Column) -> str:
    if c.unread_count:
        cells = ", ".join(f"{line}행 {cell!r}" for line, cell in c.unread)
        more = f" 외 {c.unread_count - len(c.unread)}개" if c.unread_count > len(c.unread) else ""
        return f"아래 항목의 종류로 읽히지 않는 칸: {cells}{more} (고쳐 주세요)"
    if c.orders:
        return "날짜 순서(월/일, 일/월)를 알 수 없어 글자로 둡니다: date_order를 정해 주세요"
    return ""


def _writeback(found: Survey) -> str:
    lines = [_line("[writeback]", "sheetcrm이 쓰는 열은 이것뿐입니다")]
    lines += [f"{role} = {_s(column)}" for role, column in found.writeback.items()]
    return "\n".join(lines) + "\n"


def _sending(found: Survey) -> str:
    consent = found.consent()
    lines = ["[sending]",
             _line("paused = false", "true면 아무것도 보내지 않습니다 (태그와 상태는 갱신)")]
    if consent:
        lines.append(_line(f"consent = {_s(consent)}", "광고는 이 항목이 참인 고객에게만 갑니다"))
    else:
        lines.append("# 수신 동의 열을 찾지 못했습니다: 광고를 보내려면 동의 열을 만들고")
        lines.append('# consent = "수신_동의"처럼 그 항목을 적어 주세요.')
    lines += [
        _line(f"quiet_hours = {_s(SENDING['quiet_hours'])}", "광고는 밤에 보내지 않습니다"),
        _line(f"frequency_cap = {_s(SENDING['frequency_cap'])}", "고객당 7일에 3통까지"),
        _line(f"min_gap = {_s(SENDING['min_gap'])}", "메시지 사이 최소 간격"),
        _line(f"max_sends_per_run = {MAX_SENDS_PER_RUN}", "한 번에 이보다 많으면 멈춥니다"),
        _line('compliance = "kr"', "광고: 제목의 (광고) 표시와 아래 안내문"),
        f"# {FILL_IN}: 광고 메일 끝에 붙는 보내는 곳 정보입니다 (정보통신망법).",
        f"sender_name = {_s(SENDER_NAME)}",
        f"sender_contact = {_s(SENDER_CONTACT)}",
        f"opt_out = {_s(OPT_OUT)}",
    ]
    return "\n".join(lines) + "\n"


def _channel(found: Survey) -> str:
    lines = ["# 메일은 outbox 폴더에 .eml 파일로 쌓입니다 (밖으로 나가지 않음). 실제로 보내려면",
             '# type = "smtp"로 바꾸세요: README.ko.md의 "진짜 이메일 보내기 (SMTP)"를 보세요.',
             "[channels.email]", 'type = "outbox"', 'path = "outbox"',
             _line(f"from = {_s(SENDER_FROM)}", FILL_IN)]
    email = found.email()
    if email:
        lines.append(_line(f"to = {_s(email)}", "주소가 든 항목"))
    return "\n".join(lines) + "\n"


def _rules() -> str:
    return "\n".join([
        _line("[rules]", "태그, 흐름, 메시지는 시트의 이 탭들에 있습니다"),
        *(f"{kind} = {_s(tab)}" for kind, tab in RULE_TABS.items()),
    ]) + "\n"
