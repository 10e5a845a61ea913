"""Rules kept in tables of the same Airtable base (``[rules]``), against the emulator.

The shipped sample's customers are the Airtable table of ``tests.support.airtable``;
its tags, flows and templates are records of the tables ``태그``, ``흐름`` and
``템플릿`` of the same base. The runs must send what the TOML form sends, say ``✅``
in each rule's ``상태`` field, and keep the rules in force when an edit breaks them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.airtable import BASE, airtable_sample
from tests.support.emulators.airtable import AirtableEmulator
from tests.support.rule_tabs import sample_tabs, tabs_config
from tests.support.sample import DAY0

pytestmark = pytest.mark.usefixtures("virtual_time")

LATER = "2026-11-23T13:00"


def sync(run_cli: Any, folder: Path, now: str) -> dict[str, Any]:
    result = run_cli(folder, "--now", now, "--json", "sync")
    assert result.code == 0, result.out + result.err
    return json.loads(result.out)


def sent(data: dict[str, Any]) -> list[tuple[str, str, int, str]]:
    return sorted((s["key"], s["flow"], s["step"], s["template"]) for s in data["sends"]
                  if s["result"] == "sent")


def rule_tables(emu: AirtableEmulator) -> None:
    """The sample's rules as records of three tables of the base (text fields)."""
    for name, rows in sample_tabs().items():
        header, body = rows[0], rows[1:]
        types = {field: "multilineText" for field in header}
        emu.add_table(BASE, name, types, [
            {field: value for field, value in zip(header, row, strict=True) if value}
            for row in body])


def statuses(emu: AirtableEmulator, table: str) -> list[str]:
    return [r["fields"].get("상태", "") for r in emu.records(BASE, table)]


def test_rules_in_tables_of_the_base_run_like_the_toml_form(
        tmp_path: Path, emu: AirtableEmulator, run_cli: Any) -> None:
    reference = airtable_sample(tmp_path / "toml", emu)
    want = sync(run_cli, reference, DAY0)

    second = AirtableEmulator(tokens=list(emu.tokens), clock=emu.clock)
    with second:
        folder = airtable_sample(tmp_path / "tabs", second)
        rule_tables(second)
        config = folder / "config.toml"
        config.write_text(tabs_config(config.read_text(encoding="utf-8")), encoding="utf-8")
        shutil.rmtree(folder / "templates")
        got = sync(run_cli, folder, DAY0)
        assert sent(got) == sent(want) and len(sent(got)) >= 10
        for table in ("태그", "흐름", "템플릿"):
            assert set(statuses(second, table)) == {"✅"}, table

        # An edit that breaks a condition: the rules stay, the record says why.
        record = second.records(BASE, "태그")[0]
        second.table(BASE, "태그").records[0]["fields"]["조건"] = "not paidd"
        again = sync(run_cli, folder, LATER)
        assert again["rules"]["in_force"] == got["rules"]["in_force"]
        status = statuses(second, "태그")
        assert status[0].startswith("condition error: ") and "'paidd'" in status[0]
        assert record["fields"]["이름"] == "결제 대기"
        assert all(s.startswith("waits: fix the problems") for s in status[1:])
