"""What ``sheetcrm init`` writes works: for the shipped sample (as a CSV file and as a
Google Sheet) like the hand-written sample (check finds nothing but the sample's own
bad cells; the same messages are due and the same tags written at the same clock),
and for a CP949 Excel export with other column names (check clean, rows tagged).
Through the rules reader (the tabs as init wrote them) and through the TOML form (the
tabs turned into [tags], [flows] and template files by the column meanings
RULES_SPEC.md gives: the starter set itself, apart from the reader)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.init import (
    EXPORT,
    NOW,
    SAMPLE_CSV,
    findings,
    sends,
    tag_cells,
    toml_form,
    write_cp949,
)


def ready(folder: Path, form: str) -> None:
    """The set-up init wrote in ``folder``, in English (as the tests read), read through
    the rules reader (``tabs``) or turned into the TOML form (``toml``)."""
    if form == "toml":
        toml_form(folder)
    config = folder / "config.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        'language = "ko"', 'language = "en"'), encoding="utf-8")


FORMS = pytest.mark.parametrize("form", ["tabs", "toml"])


@FORMS
def test_the_sample_set_up_by_init_checks_plans_and_tags_as_the_hand_written_one(
        sheet: Path, sample: Path, run_cli: Any, tmp_path: Path, form: str) -> None:
    assert run_cli(sheet, "init", "customers.csv", "--yes").code == 0
    ready(sheet, form)
    # check finds nothing wrong in the set-up: its errors are the sample's own bad cells
    # and duplicate keys, reported by the hand-written sample's check the same way.
    _code, ours = findings(run_cli, sheet)
    _code, theirs = findings(run_cli, sample)
    assert ours.get("error") == theirs.get("error")
    assert all(re.match(r"row \d+", where) for where in ours["error"]), ours
    # The same messages are due (or held back, for the same reasons) for the same rows.
    planned = sends(run_cli, sheet)
    assert planned == sends(run_cli, sample) and len(planned) >= 10
    assert run_cli(sheet, "--now", NOW, "sync").code in (0, 1)
    assert run_cli(sample, "--now", NOW, "sync").code in (0, 1)
    ours_tags = tag_cells(sheet / "customers.csv")
    assert ours_tags == tag_cells(sample / "sample_sheets" / "customers.csv")
    assert sum(1 for cell in ours_tags.values() if cell) >= 10


@FORMS
@pytest.mark.usefixtures("no_stdin")
def test_the_excel_export_set_up_by_init_checks_clean_and_tags_its_rows(
        tmp_path: Path, run_cli: Any, form: str) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    write_cp949(folder / "고객.csv", EXPORT)
    assert run_cli(folder, "init", "고객.csv", "--yes").code == 0
    ready(folder, form)
    code, found = findings(run_cli, folder)
    assert code == 0 and "error" not in found, found
    assert run_cli(folder, "--now", NOW, "sync").code == 0
    rows = list(csv.reader(io.StringIO((folder / "고객.csv").read_bytes().decode("cp949"))))
    column = rows[0].index("상태 태그")
    tags = {row[1]: row[column] if column < len(row) else "" for row in rows[1:]}
    assert tags == {"soohyun@example.com": "", "jihoon@example.com": "결제 대기",
                    "chaerin@example.com": "이탈 가능", "minjun@example.com": "결제 대기"}


@pytest.mark.usefixtures("loopback_only", "fast_retries", "no_stdin")
def test_the_google_sheet_set_up_by_init_tags_as_the_hand_written_sample(
        tmp_path: Path, sample: Path, run_cli: Any, emulator: Any, account: Any) -> None:
    from tests.support.gsheets import KEY, SHEET, URL

    emulator.add_spreadsheet(KEY)
    emulator.add_sheet(KEY, SHEET)
    rows = list(csv.reader(io.StringIO(SAMPLE_CSV.read_text(encoding="utf-8-sig"))))
    emulator.put(KEY, SHEET, rows, input="RAW")
    folder = tmp_path / "gs"
    folder.mkdir()
    assert run_cli(folder, "init", URL, "--worksheet", SHEET, "--credentials",
                   str(account.path), "--endpoint", emulator.url, "--yes").code == 0
    ready(folder, "tabs")
    _code, ours = findings(run_cli, folder)
    _code, theirs = findings(run_cli, sample)
    assert ours.get("error") == theirs.get("error")
    assert run_cli(folder, "--now", NOW, "sync").code in (0, 1)
    assert run_cli(sample, "--now", NOW, "sync").code in (0, 1)
    shown = emulator.display(KEY, SHEET)
    key, column = shown[0].index("이메일"), shown[0].index("상태 태그")
    ours_tags = {(n, row[key]): row[column] for n, row in enumerate(shown[1:], start=2)}
    assert ours_tags == tag_cells(sample / "sample_sheets" / "customers.csv")
    assert emulator.display(KEY, "태그")[1][-1] == "✅"  # 상태, written by the rules reader


@pytest.mark.usefixtures("virtual_time", "no_stdin")
def test_the_airtable_set_up_by_init_tags_as_the_hand_written_sample(
        tmp_path: Path, sample: Path, run_cli: Any, emu: Any) -> None:
    from tests.support.airtable import BASE, OWNED, TABLE, sample_records

    types, records = sample_records()
    for name in OWNED:
        types.pop(name)
        for record in records:
            record.pop(name, None)
    emu.add_table(BASE, TABLE, types, records)
    folder = tmp_path / "at"
    folder.mkdir()
    assert run_cli(folder, "init", f"{BASE}/{TABLE}", "--endpoint", emu.url,
                   "--yes").code == 0
    ready(folder, "tabs")
    assert run_cli(folder, "--now", NOW, "sync").code in (0, 1)
    assert run_cli(sample, "--now", NOW, "sync").code in (0, 1)
    theirs = {key: tags for (_line, key), tags in
              tag_cells(sample / "sample_sheets" / "customers.csv").items() if key}
    ours = {r["fields"].get("이메일", ""): r["fields"].get("상태 태그", "")
            for r in emu.records(BASE, TABLE)}
    assert {k: v for k, v in ours.items() if k} == theirs and any(theirs.values())
