"""Outside events on a Google sheet: the events' cells go in the run's one batched write
(no request per event, the quota stays constant per run), and the operator's later
edit of such a cell wins. The harness is described in ``tests.support.gsheets``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from sheetcrm.config import load_config
from sheetcrm.ledger import Ledger
from sheetcrm.model import EventKind
from tests.support.emulators.sheets import SheetsEmulator
from tests.support.events import Listening, body_of, event_sections, stripe_event, stripe_headers
from tests.support.gsheets import KEY, SHEET, Account, column, config
from tests.support.sample import DAY0, shipped_sample_csv

pytestmark = pytest.mark.usefixtures("fast_retries")

# The sample's customers due a payment reminder on its first day.
UNPAID = ["soohyun.kim@example.com", "sohee.han@example.com", "jimin.seo@example.com",
          "eunbi.noh@example.com", "min.namgung@example.com"]
PAID_COLUMN = "결제 여부"


def sheet_of_the_sample(emu: SheetsEmulator) -> list[str]:
    """The shipped sample typed into '고객 목록'; returns its header."""
    rows = list(csv.reader(io.StringIO(shipped_sample_csv().decode("utf-8-sig"))))
    emu.add_spreadsheet(KEY)
    emu.add_sheet(KEY, SHEET)
    emu.put(KEY, SHEET, [rows[0]] + [r[:2] + ["'" + r[2] if r[2] else ""] + r[3:]
                                     for r in rows[1:]])
    return rows[0]


def sync(run_cli: Any, folder: Path, now: str) -> dict[str, Any]:
    result = run_cli(folder, "--now", now, "--json", "sync")
    assert result.code == 0, result.out + result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def test_events_on_a_google_sheet_cost_no_request_of_their_own_and_the_operators_edit_wins(
        sample: Path, emulator: SheetsEmulator, account: Account, run_cli: Any) -> None:
    header = sheet_of_the_sample(emulator)
    path = config(sample, emulator, account.path)
    with open(path, "a", encoding="utf-8") as f:
        f.write(event_sections().replace("set = { paid = true }", 'set = { paid = "O" }')
                .replace("append = true\n", ""))  # rows are added to CSV tables only
    with Listening(load_config(path, {})) as server:
        for n, email in enumerate(UNPAID):
            body = body_of(stripe_event(f"evt_{n}", email))
            assert server.post("paid", body, stripe_headers(body)).status_code == 200

    data = sync(run_cli, sample, DAY0)
    assert data["summary"]["events_applied"] == len(UNPAID)
    # As a run without events: metadata, values, the key re-read, one write, one check.
    assert emulator.kinds() == ["spreadsheets.get", "values.get", "values.batchGet",
                                "values.batchUpdate", "values.batchGet"]
    paid = column(emulator, PAID_COLUMN)
    assert all(paid[email] == "O" for email in UNPAID)
    assert not [s for s in data["sends"] if s["flow"] == "payment"]  # they paid
    ledger = Ledger.open(sample / ".sheetcrm" / "state.db")
    try:
        assert ledger.unapplied_events([EventKind.EXTERNAL]) == []
    finally:
        ledger.close()

    row = next(i for i, r in enumerate(emulator.display(KEY, SHEET)) if r[1] == UNPAID[0])
    letter = chr(ord("A") + header.index(PAID_COLUMN))
    emulator.put(KEY, SHEET, [["X"]], start=f"{letter}{row + 1}")  # a refund, by hand
    again = sync(run_cli, sample, "2026-11-23T10:05")
    assert again["summary"]["events_applied"] == 0
    assert column(emulator, PAID_COLUMN)[UNPAID[0]] == "X"
