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


# --------------------------------------------------------------------------- typed sections


@pytest.mark.parametrize("change, expected", [
    (('path = "c.csv"\n', 'path = "c.csv"\nspreadsheet = "https://docs.google.com/x"\n'),
     r"^table\.spreadsheet: unknown key for backend 'csv' \(it belongs to backend 'gsheets'\);"
     r" valid keys are: backend, key, path, encoding, delimiter$"),
    (('path = "c.csv"\n', 'backend = "airtable"\nbase = "appAbcdefghijklmn"\ntable = "고객"\n'
                          'path = "c.csv"\n'),
     r"^table\.path: unknown key for backend 'airtable' \(it belongs to backend 'csv'\)"),
])
def test_a_key_of_another_backend_is_an_unknown_key_naming_its_path(
        tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    assert re.search(expected, error_of(tmp_path, BASE.replace(*change)))


@pytest.mark.parametrize("table, expected", [
    ('backend = "gsheets"\nspreadsheet = "고객 관리"',
     "table.spreadsheet: '고객 관리' is not a spreadsheet key; expected the long id"),
    ('backend = "gsheets"\nspreadsheet = "x" \nworksheet = " "', "table.spreadsheet: 'x'"),
    ('backend = "gsheets"', "table.spreadsheet: the gsheets backend needs the spreadsheet's"),
    ('backend = "gsheets"\nspreadsheet = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"\n'
     'worksheet = " "', "table.worksheet: '' is blank; expected a worksheet title"),
    ('backend = "gsheets"\nspreadsheet = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"\n'
     'endpoint = "http://proxy.example.com"', "table.endpoint: 'http://proxy.example.com' "
     "would send credentials in clear text"),
    ('backend = "airtable"\nbase = "my base"\ntable = "고객"',
     "table.base: 'my base' is not an Airtable base id"),
    ('backend = "airtable"\nbase = "appAbcdefghijklmn"',
     "table.table: the airtable backend needs the table's name or id"),
    ('backend = "airtable"\nbase = "appAbcdefghijklmn"\ntable = "고객"\nview = ""',
     "table.view: is blank; remove it or name a view"),
    ('path = "c.csv"\ndelimiter = ";;"', "table.delimiter: ';;' is invalid: a CSV delimiter"),
    ('path = "c.csv"\nencoding = "utf-9"', "table.encoding: unknown encoding 'utf-9'"),
    ('backend = "excel"', "table.backend: 'excel' is not a table backend; expected one of: "
     "csv, gsheets, airtable"),
])
def test_each_backend_checks_its_own_keys_when_the_file_loads(
        tmp_path: Path, table: str, expected: str) -> None:
    text = BASE.replace('path = "c.csv"', table)
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)  # the table is not opened: nothing reads a file or the network
    assert str(caught.value).startswith(expected)


def test_each_backend_gets_only_its_own_settings_class(tmp_path: Path) -> None:
    from sheetcrm.config import AirtableSettings, CsvTableSettings, GoogleSheetsSettings

    assert isinstance(load(tmp_path, BASE).table, CsvTableSettings)
    sheet = load(tmp_path, BASE.replace('path = "c.csv"', 'backend = "gsheets"\nspreadsheet = '
                                         '"https://docs.google.com/spreadsheets/d/'
                                         '1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms/edit"'))
    assert isinstance(sheet.table, GoogleSheetsSettings) and sheet.table.header_row == 1
    base = load(tmp_path, BASE.replace('path = "c.csv"', 'backend = "airtable"\nbase = '
                                        '"https://airtable.com/appAbcdefghijklmn/tbl1"\n'
                                        'table = " 고객 "'))
    assert isinstance(base.table, AirtableSettings)
    assert (base.table.base, base.table.table) == ("appAbcdefghijklmn", "고객")


HOOK = '\n[channels.hook]\ntype = "webhook"\nurl = "https://h.example.com/T0/s3cret-path"\n'


def test_channel_settings_are_typed_and_name_the_field_holding_the_recipient(
        tmp_path: Path) -> None:
    from sheetcrm.config import OutboxSettings, WebhookSettings

    config = load(tmp_path, BASE + HOOK)
    email, hook = config.channels["email"], config.channels["hook"]
    assert isinstance(email, OutboxSettings) and email.recipient_field == "email"
    assert isinstance(hook, WebhookSettings) and hook.recipient_field is None
    unset = load(tmp_path, BASE.replace('to = "email"\n', ""))
    assert unset.channels["email"].recipient_field is None  # the row key is the address


@pytest.mark.parametrize("channel, path, secret", [
    ('type = "smtp"\nfrom = "a@example.com"\nhost = "smtp.example.com"\nusername = "u"\n'
     'password = 12345678', "channels.mail.password", "12345678"),
    ('type = "smtp"\nfrom = "a@example.com"\nhost = "smtp.example.com"\nsecurity = "none"\n'
     'username = "u"\npassword = "hunter2-pw"', "channels.mail.security", "hunter2-pw"),
    ('type = "webhook"\nurl = "ftp://h.example.com/T0/s3cret-path"', "channels.mail.url",
     "s3cret"),
    ('type = "webhook"\nurl = "https://h.example.com"\nheaders = { X-Key = "zq7\\r\\nvalue" }',
     "channels.mail.headers", "zq7"),
    ('type = "webhook"\nurl = "https://h.example.com"\nsecrett = "whsec_abc"',
     "channels.mail.secrett", "whsec_abc"),
])
def test_channel_errors_at_load_name_the_key_and_hide_secrets(
        tmp_path: Path, channel: str, path: str, secret: str) -> None:
    message = error_of(tmp_path, BASE + f"\n[channels.mail]\n{channel}\n")
    assert message.startswith(f"{path}: ") and secret not in message


def test_a_table_token_is_never_shown(tmp_path: Path) -> None:
    text = BASE.replace('path = "c.csv"', 'backend = "airtable"\nbase = "appAbcdefghijklmn"\n'
                        'table = "고객"\ntoken = ["patSecret.1"]')
    message = error_of(tmp_path, text)
    assert message.startswith("table.token: (hidden) is invalid") and "patSecret" not in message


def test_several_problems_make_one_line_naming_each_key() -> None:
    from sheetcrm.config import parse_channel_settings

    with pytest.raises(ConfigError) as caught:
        parse_channel_settings("crm", {"type": "webhook", "url": "ftp://x", "retries": -1})
    message = str(caught.value)
    assert "\n" not in message and caught.value.path == "channels.crm.url"
    assert message.startswith("channels.crm.url: ") and "; channels.crm.retries: " in message


def test_an_unknown_key_lists_the_keys_of_its_section(tmp_path: Path) -> None:
    message = error_of(tmp_path, BASE + '[sending]\npasued = true\n')
    assert message.startswith("sending.pasued: unknown key (check the spelling); valid keys "
                              "are: paused, consent")


# --------------------------------------------------------------------------- the registries


def test_every_backend_and_channel_type_has_a_class_registered_under_its_name() -> None:
    from sheetcrm.channels import CHANNEL_TYPES, channel_class
    from sheetcrm.config import CHANNEL_SETTINGS, TABLE_SETTINGS
    from sheetcrm.table import BACKENDS, backend_class

    assert list(BACKENDS) == list(TABLE_SETTINGS)
    assert list(CHANNEL_TYPES) == list(CHANNEL_SETTINGS)
    for name in BACKENDS:
        assert callable(backend_class(name).from_settings)
    for name in CHANNEL_TYPES:
        assert callable(channel_class(name).from_settings)


def test_open_table_gives_the_backend_its_settings_and_the_config_folder(
        tmp_path: Path) -> None:
    from sheetcrm.table import open_table
    from sheetcrm.table.csv import CsvTable

    folder = tmp_path / "crm"
    folder.mkdir()
    config = load(folder, BASE.replace('path = "c.csv"', 'path = "c.csv"\ndelimiter = ";"'))
    (folder / "c.csv").write_text("이메일;결제 여부\na@example.com;O\n", encoding="utf-8")
    table = open_table(config)
    assert isinstance(table, CsvTable) and table.path == folder / "c.csv"
    assert table.read().rows == [["a@example.com", "O"]]


def test_config_imports_nothing_from_the_layers_above_it() -> None:
    """config sits under the adapters and the planner: they read it, it reads none of them."""
    import ast

    import sheetcrm.config

    allowed = ("sheetcrm.config", "sheetcrm.errors", "sheetcrm.fields", "sheetcrm.i18n",
               "sheetcrm.model", "sheetcrm.redact", "sheetcrm.texting")
    package = Path(sheetcrm.config.__file__).parent
    imported = set()
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    ours = {name for name in imported if name.split(".")[0] == "sheetcrm"}
    assert ours and all(name.startswith(allowed) for name in ours), sorted(ours)
