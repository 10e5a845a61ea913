"""The ``[table]`` settings of an Airtable config: each error naming its key, the
token from the config or the environment (never shown), and the shipped config
switched to Airtable.

The harness (the emulator on a virtual clock, the sample as an Airtable table) is
described in ``tests.support.airtable``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sheetcrm.config import load_config
from sheetcrm.errors import ConfigError
from tests.support.airtable import BASE, TABLE, TOKEN, from_config, make_config
from tests.support.emulators.airtable import AirtableEmulator
from tests.support.sample import ROOT

# Every AirtableTable here paces on the virtual clock (the fixture is in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("virtual_time")


@pytest.mark.parametrize(("settings", "path", "says"), [
    ({"base": None}, "table.base", "needs the base id"),
    ({"base": "my base"}, "table.base", "'my base' is not an Airtable base id; expected 'app'"),
    ({"table": "  "}, "table.table", "needs the table's name or id"),
    ({"view": ""}, "table.view", "is blank"),
    ({"endpoint": "ftp://x"}, "table.endpoint", "expected e.g. 'https://api.airtable.com'"),
    ({"endpoint": "http://proxy.example"}, "table.endpoint", "in clear text"),
])
def test_config_errors_name_the_key(tmp_path: Path, settings: dict, path: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_config(make_config(tmp_path, **settings))
    assert caught.value.path == path and says in str(caught.value)


def test_token_from_config_or_environment_never_shown(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    with pytest.raises(ConfigError, match="set the environment variable AIRTABLE_TOKEN") as no:
        from_config(config, env={})
    assert no.value.path == "table.token"
    assert from_config(config, env={"AIRTABLE_TOKEN": " patA.b \n"})
    with pytest.raises(ConfigError) as bad:
        from_config(config, env={"AIRTABLE_TOKEN": "pat secret\r\nX: y"})
    assert "secret" not in str(bad.value) and bad.value.path == "table.token"

    from_file = make_config(tmp_path, token="${MY_TOKEN}", env={"MY_TOKEN": "patFromFile.1"})
    table = from_config(from_file, env={})
    assert table._api_table.api.api_key == "patFromFile.1"
    assert "patFromFile" not in repr(table)


def test_from_config_reads_the_settings(tmp_path: Path, emu: AirtableEmulator) -> None:
    url_base = f"https://airtable.com/{BASE}/tblAbcdefghijklmn/viwAbcdefghijklmn"
    config = make_config(tmp_path, emu, base=url_base, view=" 활성 고객 ",
                         fields={"email": {"column": "이메일"}, "name": {"column": "고객명"}})
    table = from_config(config)
    assert (table.base, table.table, table.view) == (BASE, TABLE, "활성 고객")
    assert table.columns == ["이메일", "고객명", "상태 태그"]
    assert table.owned == {"상태 태그": "single line text"}
    assert table.timeout == (5.0, 30.0) and table._api_table.api.timeout == (5.0, 30.0)
    assert table.endpoint == emu.url


def test_the_shipped_config_switched_to_airtable_loads(tmp_path: Path) -> None:
    text = (ROOT / "config.toml").read_text(encoding="utf-8").replace(
        'backend = "csv"', f'backend = "airtable"\nbase = "{BASE}"\ntable = "{TABLE}"'
    ).replace('path = "sample_sheets/customers.csv"\n', "")  # a CSV key: refused for airtable
    (tmp_path / "config.toml").write_text(text, encoding="utf-8")
    table = from_config(load_config(tmp_path / "config.toml", {}), env={"AIRTABLE_TOKEN": TOKEN})
    assert table.owned == {"상태 태그": "single line text", "자동화 흐름": "long text",
                           "최근 발송": "single line text", "오류": "long text"}
