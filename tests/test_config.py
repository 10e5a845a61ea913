"""Config loading: every mistake names the key path, the bad value and the expected form."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sheetcrm.config import load_config, parse_duration
from sheetcrm.core.rules import compile_rules
from sheetcrm.errors import ConfigError

BASE = """
[table]
path = "c.csv"
key = "email"

[fields]
email = { column = "이메일", type = "email" }
paid = { column = "결제 여부", type = "bool" }
applied_at = { column = "신청일", type = "date" }

[writeback]
tags = "상태 태그"

[tags]
"결제 대기" = "not paid and days_since(applied_at) >= 1"

[channels.email]
type = "outbox"
from = "Shop <hi@example.com>"
to = "email"

[flows.payment]
trigger = "결제 대기"
goal = "paid"
steps = [{ after = "1d", channel = "email", template = "t" }]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None):
    return load_config(write(tmp_path, text), env or {})


def error_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        config = load(tmp_path, text, env)
        compile_rules(config)
    return str(info.value)


def test_the_base_config_loads_with_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, BASE)
    assert config.table.backend == "csv"
    assert config.key_column == "이메일"
    assert str(config.tz) == "Asia/Seoul"
    assert config.state_path == tmp_path / ".sheetcrm" / "state.db"
    assert config.flows["payment"].steps[0].after.days == 1
    assert config.flows["payment"].steps[0].kind == "transactional"


def test_shipped_config_loads_and_compiles() -> None:
    root = Path(__file__).resolve().parents[1]
    compile_rules(load_config(root / "config.toml", {}))


@pytest.mark.parametrize("text, expected", [
    ("1d", 86400), ("36h", 129600), ("1d12h", 129600), ("30m", 1800), ("2w", 1209600),
    ("0", 0), ("0d", 0),
])
def test_durations(text: str, expected: int) -> None:
    assert parse_duration(text).total_seconds() == expected


@pytest.mark.parametrize("text", ["1x", "d1", "", "1.5d", "-1d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration like 1d"):
        parse_duration(text)


@pytest.mark.parametrize("change, expected", [
    (('type = "bool"', 'type = "boolean"'), r"fields\.paid\.type: 'boolean' is invalid.*text, int"),
    (('key = "email"', 'key = "mail"'), r"table\.key: 'mail' is not a field"),
    (('after = "1d"', 'after = "tomorrow"'),
     r"flows\.payment\.steps\.0\.after: 'tomorrow' is invalid.*duration like 1d"),
    (('channel = "email"', 'channel = "sms"'),
     r"flows\.payment\.steps\[0\]\.channel: unknown channel 'sms'; defined: \['email'\]"),
    (('tags = "상태 태그"', 'tags = "신청일"'), r"writeback column"),
    (('[table]\n', '[table]\nbackned = "csv"\n'), r"table\.backned: unknown key"),
    (('to = "email"', 'to = "mail"'), r"channels\.email\.to: 'mail' is not a field"),
    (('path = "c.csv"\n', ''), r"table\.path: the csv backend needs a path"),
])
def test_errors_name_the_key_path_value_and_form(tmp_path: Path, change: tuple[str, str],
                                                 expected: str) -> None:
    text = BASE.replace(*change)
    assert text != BASE
    assert re.search(expected, error_of(tmp_path, text))


def test_unknown_time_zone(tmp_path: Path) -> None:
    message = error_of(tmp_path, 'timezone = "Asia/Busan"\n' + BASE)
    assert "timezone" in message and "'Asia/Busan'" in message and "IANA" in message


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    message = error_of(tmp_path, BASE + "\n[broken\n")
    assert "config.toml" in message and "not valid TOML" in message


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--config"):
        load_config(tmp_path / "nope.toml", {})


def test_unknown_name_in_a_tag_is_an_error_at_load(tmp_path: Path) -> None:
    text = BASE.replace("not paid and", "not payed and")
    message = error_of(tmp_path, text)
    assert 'tags."결제 대기"' in message and "payed" in message


def test_syntax_error_in_a_rule_shows_the_position(tmp_path: Path) -> None:
    text = BASE.replace("days_since(applied_at) >= 1", "days_since(applied_at >= 1")
    message = error_of(tmp_path, text)
    assert 'tags."결제 대기"' in message
    assert "column" in message or "^" in message


def test_a_trigger_that_is_neither_tag_nor_expression(tmp_path: Path) -> None:
    message = error_of(tmp_path, BASE.replace('trigger = "결제 대기"', 'trigger = "결제대기"'))
    assert "flows.payment.trigger" in message and "결제 대기" in message


def test_env_references_are_expanded(tmp_path: Path) -> None:
    text = BASE.replace('type = "outbox"', 'type = "outbox"\nreply_to = "${REPLY}"')
    config = load(tmp_path, text, {"REPLY": "help@example.com"})
    assert config.channels["email"].reply_to == "help@example.com"  # type: ignore[attr-defined]


def test_missing_env_variable_names_key_and_variable(tmp_path: Path) -> None:
    text = BASE + '\n[channels.hook]\ntype = "webhook"\nurl = "https://h.example.com"\n' \
        'secret = "${HOOK_SECRET}"\n'
    message = error_of(tmp_path, text)
    assert "channels.hook.secret" in message and "HOOK_SECRET" in message


def test_a_bad_secret_is_never_shown(tmp_path: Path) -> None:
    text = BASE + '\n[channels.hook]\ntype = "webhook"\nurl = "https://h.example.com"\n' \
        'secret = "${HOOK_SECRET}"\n'
    message = error_of(tmp_path, text, {"HOOK_SECRET": "hunter2-not-base64"})
    assert "channels.hook.secret" in message
    assert "hunter2" not in message


def test_a_bad_cron_line_is_a_config_error(tmp_path: Path) -> None:
    message = error_of(tmp_path, BASE + '\n[schedule]\ncron = "every monday"\n')
    assert "schedule.cron" in message and "'every monday'" in message and "crontab" in message
    load(tmp_path, BASE + '\n[schedule]\ncron = "0 9 * * mon-fri"\n')


@pytest.mark.parametrize("flows", [
    # a flow handing off to itself
    '[flows.a]\ntrigger = "paid"\nthen = "a"\nsteps = [{ after = "0d", channel = "email", '
    'template = "t" }]\n',
    # through another flow
    '[flows.a]\ntrigger = "paid"\nthen = "b"\nsteps = [{ after = "0d", channel = "email", '
    'template = "t" }]\n[flows.b]\ntrigger = "paid"\nthen = "a"\nsteps = [{ after = "0d", '
    'channel = "email", template = "t" }]\n',
], ids=["itself", "through-another"])
def test_a_circle_of_hand_offs_is_a_config_error(tmp_path: Path, flows: str) -> None:
    message = error_of(tmp_path, BASE + flows)
    assert re.match(r"flows\.a\.then: hand-offs go round in a circle \(a → (b → )?a\)", message)


@pytest.mark.parametrize("window", ["25:00-08:00", "21:00-08:60", "24:30-08:00", "21:00-21:00"])
def test_quiet_hours_outside_the_clock_or_empty_are_refused(tmp_path: Path, window: str) -> None:
    message = error_of(tmp_path, BASE + f'[sending]\nquiet_hours = "{window}"\n')
    assert message.startswith(f"sending.quiet_hours: '{window}' is invalid:")


def test_quiet_hours_may_end_at_midnight_written_24_00(tmp_path: Path) -> None:
    config = load(tmp_path, BASE + '[sending]\nquiet_hours = "21:00-24:00"\n')
    window = config.sending.quiet_hours
    assert window is not None and f"{window.start:%H:%M}-{window.end:%H:%M}" == "21:00-00:00"


@pytest.mark.parametrize("cap", ["0/7d", "2/0d", "2/0"])
def test_a_frequency_cap_that_allows_nothing_is_refused(tmp_path: Path, cap: str) -> None:
    message = error_of(tmp_path, BASE + f'[sending]\nfrequency_cap = "{cap}"\n')
    assert message.startswith(f"sending.frequency_cap: '{cap}' is invalid:")
    assert "must be more than 0" in message
