"""What ``sheetcrm init`` writes for the shipped sample works like the hand-written
sample: check finds nothing but the sample's own bad cells, and the same messages are
due and the same tags written at the same clock. Once through the rules reader (the
tabs as init wrote them), once through the TOML form (the tabs turned into [tags],
[flows] and template files by the column meanings RULES_SPEC.md gives)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.init import (
    NOW,
    close_stdin,
    copy_sheet,
    findings,
    rules_accepted,
    sends,
    tag_cells,
    toml_form,
)


@pytest.fixture
def sheet(tmp_path: Path) -> Path:
    return copy_sheet(tmp_path)


@pytest.fixture
def no_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    close_stdin(monkeypatch)


def test_what_init_writes_checks_out_and_tags_the_sample_as_the_hand_written_config(
        sheet: Path, sample: Path, run_cli: Any, tmp_path: Path) -> None:
    if not rules_accepted(tmp_path):
        pytest.skip("config loading does not take [rules] yet: the rules reader "
                    "(rule tabs read with the customers) has not landed on this branch")
    assert run_cli(sheet, "init", "customers.csv", "--yes").code == 0
    config = sheet / "config.toml"  # the tests read English; the sample's copy speaks it
    config.write_text(config.read_text(encoding="utf-8").replace(
        'language = "ko"', 'language = "en"'), encoding="utf-8")
    # check finds no problem in what init wrote: its errors are the sample's own bad
    # cells and duplicate keys, which the hand-written sample's check reports the same.
    _code, ours = findings(run_cli, sheet)
    _code, theirs = findings(run_cli, sample)
    assert ours.get("error") == theirs.get("error")
    assert all(re.match(r"row \d+", where) for where in ours["error"]), ours
    assert sends(run_cli, sheet) == sends(run_cli, sample)
    assert run_cli(sheet, "--now", NOW, "sync").code in (0, 1)
    assert run_cli(sample, "--now", NOW, "sync").code in (0, 1)
    ours_tags = tag_cells(sheet / "customers.csv")
    assert ours_tags == tag_cells(sample / "sample_sheets" / "customers.csv")
    assert any(ours_tags.values())  # the comparison compares tags, not blanks


def test_the_starter_set_in_the_toml_form_checks_tags_and_sends_as_the_hand_written_one(
        sheet: Path, sample: Path, run_cli: Any) -> None:
    assert run_cli(sheet, "init", "customers.csv", "--yes").code == 0
    toml_form(sheet)
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
