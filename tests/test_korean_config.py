"""Field, tag and flow names in Korean: quoted where TOML needs it, bare in conditions
and templates, and a bare Korean key refused with the line as it should be written.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sheetcrm.config import load_config
from sheetcrm.core.engine import make_plan
from sheetcrm.core.messages import build_message
from sheetcrm.core.rules import compile_rules
from sheetcrm.core.schema import read_records
from sheetcrm.errors import ConfigError
from sheetcrm.model import LedgerState, Snapshot
from sheetcrm.templates import Templates

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Seoul"))

CONFIG = """\
[table]
path = "customers.csv"
key = "이메일"

[fields]
"이메일" = { column = "이메일", type = "email" }
"이름" = { column = "이름" }
"강의" = { column = "강의" }
"결제" = { column = "결제 여부", type = "bool" }

[tags]
"결제 대기" = "not 결제"

[channels.email]
type = "outbox"
from = "소담 <hello@example.com>"
to = "이메일"

[flows."결제안내"]
trigger = "결제 대기"
goal = "결제"
steps = [{ after = "0d", channel = "email", template = "결제안내" }]
"""


def error_of(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_quoted_korean_names_work_from_the_file_to_the_message(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "결제안내.j2").write_text(
        '{% block subject %}{{ 이름 }}님, {{ 강의|josa("이/가") }} 기다려요{% endblock %}'
        "{% block text %}결제를 마쳐 주세요{% endblock %}", encoding="utf-8")
    config = load_config(tmp_path / "config.toml", {})
    table = read_records(Snapshot(["이메일", "이름", "강의", "결제 여부"],
                                  [["a@x.com", "김수현", "파이썬 입문", "미동의"]]), config)
    plan = make_plan(table, LedgerState(), NOW, config, compile_rules(config))
    (send,) = plan.sends
    assert send.flow == "결제안내" and plan.tags == {"a@x.com": ["결제 대기"]}
    message = build_message(table.records[0], send, ["결제 대기"], NOW, config,
                            Templates(tmp_path / "templates"))
    assert message.subject == "김수현님, 파이썬 입문이 기다려요"


@pytest.mark.parametrize(("bare", "written"), [
    ('이름 = { column = "이름" }', '"이름" = { column = "이름" }'),
    ('결제 대기 = "not 결제"', '"결제 대기" = "not 결제"'),
])
def test_a_bare_korean_key_shows_the_quoted_form(tmp_path: Path, bare: str,
                                                 written: str) -> None:
    quoted = written.split(" = ")[0]
    text = CONFIG.replace(written, bare)
    line = text.splitlines().index(bare) + 1
    message = error_of(tmp_path, text)
    assert message == (f"{tmp_path / 'config.toml'}, line {line}: {quoted.strip(chr(34))!r} "
                       "needs quotes in TOML (a bare key is only letters A-Z, digits, '_' and "
                       f"'-'); write {written}")
    assert "Invalid statement" not in message


def test_a_bare_korean_flow_name_shows_the_quoted_table(tmp_path: Path) -> None:
    message = error_of(tmp_path, CONFIG.replace('[flows."결제안내"]', "[flows.결제안내]"))
    assert message.endswith("'결제안내' needs quotes in TOML (a bare key is only letters A-Z, "
                            "digits, '_' and '-'); write [flows.\"결제안내\"]")
    assert ", line 19: " in message


def test_other_toml_mistakes_still_name_the_file_and_the_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, CONFIG + '\n[broken\n')
    assert message.startswith(f"{tmp_path / 'config.toml'}, line 24: not valid TOML: ")
    assert message.endswith("[broken")
