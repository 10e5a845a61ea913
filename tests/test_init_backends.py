"""``sheetcrm init`` on a Google Sheet (the Sheets emulator) and an Airtable table (the
Airtable emulator, its schema routes): the real clients on loopback, the rule tabs
written into the same spreadsheet or base, nothing replaced."""

from __future__ import annotations

import csv
import io
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.support.init import (
    RENAMED,
    SAMPLE_CSV,
    as_dicts,
    config_of,
    loaded,
    renamed,
    shipped,
)


@pytest.mark.usefixtures("loopback_only", "fast_retries", "no_stdin")
def test_init_on_a_google_sheet_writes_the_rule_tabs_into_the_spreadsheet(
        tmp_path: Path, run_cli: Any, emulator: Any, account: Any) -> None:
    from tests.support.gsheets import KEY, SHEET, URL

    emulator.add_spreadsheet(KEY)
    emulator.add_sheet(KEY, SHEET)
    rows = list(csv.reader(io.StringIO(SAMPLE_CSV.read_text(encoding="utf-8-sig"))))
    emulator.put(KEY, SHEET, rows, input="RAW")  # the sample's cells, as typed text
    folder = tmp_path / "gs"
    folder.mkdir()
    args = ("init", URL, "--worksheet", SHEET, "--credentials", str(account.path),
            "--endpoint", emulator.url, "--yes")
    result = run_cli(folder, *args)
    assert result.code == 0, result.err
    config = config_of(folder)
    assert config["table"] == {"backend": "gsheets", "spreadsheet": URL, "worksheet": SHEET,
                               "credentials": "../service-account.json",
                               "endpoint": emulator.url, "key": "이메일"}
    sample = shipped()["fields"]
    for old, new in RENAMED.items():
        assert config["fields"][new].get("type", "text") == sample[old].get("type", "text")
    tags = as_dicts(emulator.display(KEY, "태그"))
    assert {t["이름"]: t["조건"] for t in tags} == {
        name: renamed(condition) for name, condition in shipped()["tags"].items()}
    flows = as_dicts(emulator.display(KEY, "흐름"))
    assert list(dict.fromkeys(f["흐름"] for f in flows)) == list(shipped()["flows"])
    templates = as_dicts(emulator.display(KEY, "템플릿"))
    assert templates[0]["이름"] == "onboarding_welcome"
    assert templates[0]["제목"] == "{{ 고객명 }}님, {{ 강의 }} 수강을 환영합니다"
    assert emulator.display(KEY, SHEET) == [r + [""] * (len(rows[0]) - len(r)) for r in rows]
    loaded(folder / "config.toml")

    emulator.put(KEY, "태그", [["내 태그", "true"]], start="A30")
    mine = emulator.display(KEY, "태그")
    (folder / "config.toml").unlink()
    again = run_cli(folder, *args)
    assert again.code == 2 and "tab '태그'" in again.err and "--force" in again.err
    assert emulator.display(KEY, "태그") == mine
    assert not (folder / "config.toml").exists()


# --------------------------------------------------------------------------- Airtable


@pytest.mark.usefixtures("virtual_time", "no_stdin")
def test_init_on_an_airtable_table_creates_the_rule_tables_and_the_written_fields(
        tmp_path: Path, run_cli: Any, emu: Any) -> None:
    from tests.support.airtable import BASE, OWNED, TABLE, sample_records

    types, records = sample_records()
    for name in OWNED:  # the operator's table, before sheetcrm: no columns of its own
        types.pop(name)
        for record in records:
            record.pop(name, None)
    emu.add_table(BASE, TABLE, types, records)
    folder = tmp_path / "at"
    folder.mkdir()
    args = ("init", f"https://airtable.com/{BASE}/{TABLE}", "--endpoint", emu.url, "--yes")
    result = run_cli(folder, *args)
    assert result.code == 0, result.err
    text = (folder / "config.toml").read_text(encoding="utf-8")
    config = tomllib.loads(text)
    assert config["table"] == {"backend": "airtable", "base": BASE, "table": TABLE,
                               "token": "${AIRTABLE_TOKEN}", "endpoint": emu.url,
                               "key": "이메일"}
    assert "patSheetcrmTest" not in text  # the token stays in the environment
    sample = shipped()["fields"]
    for old, new in RENAMED.items():
        assert config["fields"][new].get("type", "text") == sample[old].get("type", "text"), old
    tags = {r["fields"]["이름"]: r["fields"]["조건"] for r in emu.records(BASE, "태그")}
    assert tags == {name: renamed(c) for name, c in shipped()["tags"].items()}
    assert list(emu.table(BASE, "흐름").fields)[:3] == ["흐름", "시작 조건", "목표"]
    steps = [r["fields"] for r in emu.records(BASE, "흐름")]
    assert [s["템플릿"] for s in steps][:3] == [
        "onboarding_welcome", "onboarding_guide", "onboarding_offer"]
    welcome = emu.records(BASE, "템플릿")[0]["fields"]
    assert welcome["제목"] == "{{ 고객명 }}님, {{ 강의 }} 수강을 환영합니다"
    assert set(OWNED) <= set(emu.table(BASE, TABLE).fields)  # sync can write them
    assert loaded(folder / "config.toml").table.backend == "airtable"

    (folder / "config.toml").unlink()
    again = run_cli(folder, *args)
    assert again.code == 2 and "Airtable table '태그'" in again.err and "--force" in again.err
    forced = run_cli(folder, *args, "--force")
    assert forced.code == 2 and "delete or rename it in Airtable" in forced.err
    assert not (folder / "config.toml").exists()
    assert len(emu.records(BASE, "태그")) == len(tags)


@pytest.mark.usefixtures("loopback_only", "fast_retries", "no_stdin")
def test_a_key_file_from_the_environment_stays_an_environment_reference(
        tmp_path: Path, run_cli: Any, book: Any, account: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.gsheets import KEY, SHEET

    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(account.path))
    folder = tmp_path / "gs"
    folder.mkdir()
    result = run_cli(folder, "init", KEY, "--worksheet", SHEET, "--endpoint", book.url,
                     "--yes", "--key", "이메일")
    assert result.code == 0, result.err
    text = (folder / "config.toml").read_text(encoding="utf-8")
    assert 'credentials = "${GOOGLE_APPLICATION_CREDENTIALS}"' in text
    assert str(account.path) not in text
    assert loaded(folder / "config.toml").table.backend == "gsheets"
    # The customers' 상태 태그 holds the operator's values: sheetcrm writes beside it.
    assert config_of(folder)["writeback"]["tags"] == "상태 태그 2"
