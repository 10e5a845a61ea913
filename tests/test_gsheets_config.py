"""The ``[table]`` settings of a Google Sheets config: the spreadsheet key or URL, the
endpoint, the service-account key file (from the config or the environment), each
error naming the key, the value and the form, never the key file's secret.

The harness is described in ``tests.support.gsheets``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sheetcrm.errors import ConfigError
from sheetcrm.table import gsheets
from sheetcrm.table.gsheets import GoogleSheetsTable
from tests.support.emulators.sheets import SheetsEmulator
from tests.support.gsheets import HEADER, URL, Account, config

# Tests here must not reach past 127.0.0.1; tables built from a config retry on the
# virtual clock (both fixtures are in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("loopback_only", "fast_retries")


def load(folder: Path, emu: SheetsEmulator, creds: Path | None, **kwargs: Any) -> Any:
    from sheetcrm.config import load_config

    return load_config(config(folder, emu, creds, **kwargs), {})


@pytest.mark.parametrize(("spreadsheet", "message"), [
    ("고객 관리", "not a spreadsheet key"),
    ("https://example.com/sheet", "not a Google Sheets URL"),
])
def test_config_errors_name_the_key_the_value_and_the_form(
        sample: Path, emulator: SheetsEmulator, account: Account, spreadsheet: str,
        message: str) -> None:
    from sheetcrm.table import open_table

    with pytest.raises(ConfigError) as err:
        open_table(load(sample, emulator, account.path, spreadsheet=spreadsheet))
    assert err.value.path == "table.spreadsheet"
    assert message in str(err.value) and spreadsheet in str(err.value)
    assert "docs.google.com/spreadsheets/d/KEY" in str(err.value)


def check_endpoint(value: str) -> str | None:
    """``[table] endpoint`` of a gsheets config, as loading the config checks it."""
    from sheetcrm.config import parse_table_settings

    settings = parse_table_settings({"backend": "gsheets", "key": "email",
                                     "spreadsheet": URL, "endpoint": value})
    return settings.endpoint  # type: ignore[union-attr]


def test_endpoint_must_be_https_unless_loopback(sample: Path, emulator: SheetsEmulator,
                                               account: Account) -> None:
    assert check_endpoint("http://localhost:8080/") == "http://localhost:8080"
    assert check_endpoint("https://proxy.example.com") == "https://proxy.example.com"
    for bad in ("http://proxy.example.com", "ftp://x", "sheets.example.com"):
        with pytest.raises(ConfigError) as err:
            check_endpoint(bad)
        assert err.value.path == "table.endpoint" and bad in str(err.value)


def test_credentials_default_to_the_environment_variable(
        sample: Path, emulator: SheetsEmulator, account: Account, book: SheetsEmulator,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from sheetcrm.table import open_table

    cfg = load(sample, emulator, None)
    monkeypatch.delenv(gsheets.CREDENTIALS_ENV, raising=False)
    with pytest.raises(ConfigError) as err:
        open_table(cfg)
    assert err.value.path == "table.credentials" and gsheets.CREDENTIALS_ENV in str(err.value)
    monkeypatch.setenv(gsheets.CREDENTIALS_ENV, str(account.path))
    table = open_table(cfg)
    assert isinstance(table, GoogleSheetsTable) and table.read().header == HEADER


@pytest.mark.parametrize("broken", ["missing", "not json", "user", "no email", "bad key"])
def test_bad_key_files_are_config_errors_that_never_show_the_key(
        sample: Path, emulator: SheetsEmulator, account: Account, broken: str) -> None:
    from sheetcrm.table import open_table

    info = dict(account.info)
    path = sample / "key.json"
    if broken == "not json":
        path.write_text("{" + info["private_key"], encoding="utf-8")
    elif broken != "missing":
        if broken == "user":
            info["type"] = "authorized_user"
        elif broken == "no email":
            del info["client_email"]
        else:
            info["private_key"] = info["private_key"].replace("MII", "XXX")
        path.write_text(json.dumps(info), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        open_table(load(sample, emulator, path))
    assert err.value.path == "table.credentials" and str(path) in str(err.value)
    assert "PRIVATE KEY" not in str(err.value) and "MII" not in str(err.value)
