"""Rules kept in tabs of the Google spreadsheet itself (``[rules]``), against the emulator.

Two spreadsheets hold the same customers: one run by the shipped config.toml (the
TOML form), one whose tags, flows and templates are typed into the tabs ``태그``,
``흐름`` and ``템플릿``. Each run of the second must cost exactly the requests of the
first (the tabs come in the customers' ``values.batchGet``, the ``상태`` cells go in
the writeback's ``values.batchUpdate``), send the same, and take the tabs' edits
between runs. The harness is described in ``tests.support.gsheets``.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.emulators.sheets import SheetsEmulator
from tests.support.gsheets import KEY, SHEET, Account, config
from tests.support.rule_tabs import sample_tabs, status_of, tabs_config
from tests.support.sample import DAY0, copy_sample, shipped_sample_csv

pytestmark = pytest.mark.usefixtures("loopback_only", "fast_retries")

KEY2 = KEY[:-4] + "tabs"
URL2 = f"https://docs.google.com/spreadsheets/d/{KEY2}/edit"
LATER = "2026-11-23T13:00"
EVEN_LATER = "2026-11-23T16:00"


def load(emu: SheetsEmulator, key: str, *, tabs: bool) -> None:
    """The shipped sample's customers in '고객 목록' (and the rule tabs when asked)."""
    rows = list(csv.reader(io.StringIO(shipped_sample_csv().decode("utf-8-sig"))))
    typed = [rows[0]] + [row[:2] + ["'" + row[2] if row[2] else ""] + row[3:]
                         for row in rows[1:]]
    emu.add_spreadsheet(key, title="소담 클래스 고객 관리")
    emu.add_sheet(key, "안내")
    emu.add_sheet(key, SHEET)
    emu.put(key, SHEET, typed)
    if tabs:
        for name, tab_rows in sample_tabs().items():
            emu.add_sheet(key, name)
            emu.put(key, name, tab_rows, input="RAW")


def tags_of(emu: SheetsEmulator, key: str) -> dict[str, str]:
    """{email: 상태 태그} of the customers of spreadsheet ``key`` as shown now."""
    rows = emu.display(key, SHEET)
    email, tags = rows[0].index("이메일"), rows[0].index("상태 태그")
    return {row[email]: row[tags] for row in rows[1:] if row[email]}


def folders(tmp_path: Path, emu: SheetsEmulator, creds: Path) -> tuple[Path, Path]:
    toml, tabs = tmp_path / "toml", tmp_path / "tabs"
    for folder in (toml, tabs):
        folder.mkdir()
        copy_sample(folder)
    config(toml, emu, creds)
    path = config(tabs, emu, creds, spreadsheet=URL2)
    path.write_text(tabs_config(path.read_text(encoding="utf-8")), encoding="utf-8")
    shutil.rmtree(tabs / "templates")
    return toml, tabs


def sync(run_cli: Any, folder: Path, now: str) -> dict[str, Any]:
    result = run_cli(folder, "--now", now, "--json", "sync")
    assert result.code == 0, result.out + result.err
    return json.loads(result.out)


def sent(data: dict[str, Any]) -> list[tuple[str, str, int, str]]:
    return sorted((s["key"], s["flow"], s["step"], s["template"]) for s in data["sends"]
                  if s["result"] == "sent")


def run_both(run_cli: Any, emu: SheetsEmulator, toml: Path, tabs: Path, now: str
             ) -> tuple[dict[str, Any], list[str], dict[str, Any], list[str]]:
    """Both forms' runs at ``now``, and the kinds of requests each sent."""
    emu.clear_log()
    first = sync(run_cli, toml, now)
    first_kinds = emu.kinds()
    emu.clear_log()
    second = sync(run_cli, tabs, now)
    return first, first_kinds, second, emu.kinds()


def test_the_tabs_come_with_the_customers_and_edits_cost_no_request(
        tmp_path: Path, emulator: SheetsEmulator, account: Account, run_cli: Any) -> None:
    load(emulator, KEY, tabs=False)
    load(emulator, KEY2, tabs=True)
    toml, tabs = folders(tmp_path, emulator, account.path)

    want, want_kinds, got, got_kinds = run_both(run_cli, emulator, toml, tabs, DAY0)
    assert sent(got) == sent(want) and len(sent(got)) >= 10
    assert want_kinds == ["spreadsheets.get", "values.get", "values.batchGet",
                          "values.batchUpdate", "values.batchGet"]
    assert got_kinds == ["spreadsheets.get", "values.batchGet", "values.batchGet",
                         "values.batchUpdate", "values.batchGet"]
    assert got["summary"]["requests"] == want["summary"]["requests"]
    for name in ("태그", "흐름", "템플릿"):  # written in the same batchUpdate
        assert set(status_of(emulator.display(KEY2, name)).values()) == {"✅"}, name

    # The same new tag, typed into the tab and into [tags]: the next run takes it.
    emulator.put(KEY2, "태그", [["고액 결제", "amount >= 150000", "", ""]], start="A10",
                 input="RAW")
    path = toml / "config.toml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "[sending]", '"고액 결제" = "amount >= 150000"\n\n[sending]', 1), encoding="utf-8")
    want, want_kinds, got, got_kinds = run_both(run_cli, emulator, toml, tabs, LATER)
    assert len(got_kinds) == len(want_kinds)
    assert got["summary"]["requests"] == want["summary"]["requests"]
    assert got["rules"]["in_force"] == got["rules"]["candidate"]
    tags = tags_of(emulator, KEY2)
    assert tags == tags_of(emulator, KEY)
    assert "고액 결제" in tags["minjun.choi@example.com"]
    assert "고액 결제" not in tags["soohyun.kim@example.com"]
    assert status_of(emulator.display(KEY2, "태그"))["고액 결제#10"] == "✅"


def tabs_only(tmp_path: Path, emulator: SheetsEmulator, account: Account) -> Path:
    """A folder whose config keeps its rules in the tabs of spreadsheet ``KEY2``."""
    load(emulator, KEY2, tabs=True)
    folder = tmp_path / "tabs"
    folder.mkdir()
    copy_sample(folder)
    path = config(folder, emulator, account.path, spreadsheet=URL2)
    path.write_text(tabs_config(path.read_text(encoding="utf-8")), encoding="utf-8")
    return folder


def test_an_invalid_edit_in_a_tab_keeps_the_rules_and_writes_the_problem(
        tmp_path: Path, emulator: SheetsEmulator, account: Account, run_cli: Any) -> None:
    folder = tabs_only(tmp_path, emulator, account)
    first = sync(run_cli, folder, DAY0)
    tags_before = tags_of(emulator, KEY2)

    emulator.put(KEY2, "태그", [["고액 결제", "amount >= 150000", "", ""]], start="A10",
                 input="RAW")
    emulator.put(KEY2, "흐름", [["review", "후기 미작성", "reviewed", "2", "3일", "email",
                                "review_rewrd"]], start="A14", input="RAW")
    data = sync(run_cli, folder, EVEN_LATER)
    assert data["rules"]["in_force"] == first["rules"]["in_force"]
    assert tags_of(emulator, KEY2) == tags_before
    status = status_of(emulator.display(KEY2, "흐름"))["review#14"]
    assert "'review_rewrd'" in status and "did you mean 'review_reward'?" in status
    assert "waits: fix the problems" in status_of(emulator.display(KEY2, "태그"))[
        "고액 결제#10"]


def test_a_header_problem_is_reported_and_the_header_row_is_left_alone(
        tmp_path: Path, emulator: SheetsEmulator, account: Account, run_cli: Any) -> None:
    folder = tabs_only(tmp_path, emulator, account)
    first = sync(run_cli, folder, DAY0)
    header = emulator.display(KEY2, "템플릿")[0]
    emulator.put(KEY2, "템플릿", [["이름", "제목", "내용"]], input="RAW")  # 본문 renamed

    data = sync(run_cli, folder, LATER)
    assert data["rules"]["in_force"] == first["rules"]["in_force"]
    [problem] = data["rules"]["problems"]
    assert (problem["tab"], problem["row"]) == ("템플릿", 1)
    assert "the header row lacks '본문'" in problem["message"]
    assert emulator.display(KEY2, "템플릿")[0] == ["이름", "제목", "내용", *header[3:]]
    assert "상태" in emulator.display(KEY2, "템플릿")[0]


def tag_status(emulator: SheetsEmulator) -> dict[str, str]:
    rows = emulator.display(KEY2, "태그")
    column = rows[0].index("상태")
    return {row[0]: row[column] if column < len(row) else "" for row in rows[1:]}


def operator_edits(emu: SheetsEmulator) -> None:
    """Between the run's read and its write: a row inserted at the top, the rest sorted."""
    emu.insert_rows(KEY2, "태그", 2, [["새 태그", "paid", "", ""]])
    emu.sort_rows(KEY2, "태그", 0, first=3)


def test_rows_inserted_or_sorted_in_a_tab_before_the_write_keep_their_own_status(
        tmp_path: Path, emulator: SheetsEmulator, account: Account, run_cli: Any) -> None:
    folder = tabs_only(tmp_path, emulator, account)
    sync(run_cli, folder, DAY0)
    emulator.put(KEY2, "태그", [["고액 결제", "amont >= 150000", "", ""]], start="A10",
                 input="RAW")
    emulator.on("values.batchGet", operator_edits, when="after")  # right after the read
    emulator.clear_log()
    data = sync(run_cli, folder, LATER)
    assert data["rules"]["problems"]
    # The tabs ride in the re-read of the key column: no request more than before.
    assert emulator.kinds() == ["spreadsheets.get", "values.batchGet", "values.batchGet",
                                "values.batchUpdate", "values.batchGet"]
    status = tag_status(emulator)
    assert status["새 태그"] == ""  # not judged yet: the next run says
    assert "'amont'" in status["고액 결제"]
    assert {s for name, s in status.items() if name not in ("새 태그", "고액 결제")} == {
        "waits: fix the problems on the other rows first; until then the rules of "
        f"{data['rules']['in_force']} stay in force"}


def test_a_status_alone_is_written_on_its_row_where_it_moved_for_one_request_more(
        tmp_path: Path, emulator: SheetsEmulator, account: Account, run_cli: Any) -> None:
    folder = tabs_only(tmp_path, emulator, account)
    sync(run_cli, folder, DAY0)
    sync(run_cli, folder, DAY0)  # the same run again: no customer cell changes any more
    emulator.put(KEY2, "태그", [["지워진 상태"]], start="D9", input="RAW")  # 상태 of row 9
    cleared = emulator.display(KEY2, "태그")[8][0]
    emulator.on("values.batchGet", operator_edits, when="after")  # right after the read
    emulator.clear_log()
    sync(run_cli, folder, DAY0)
    status = tag_status(emulator)
    assert status[cleared] == "✅" and status["새 태그"] == ""
    assert set(status.values()) == {"✅", ""}
    # Only 상태 to write: one values.batchGet to find the rows where they are now.
    assert emulator.kinds() == ["spreadsheets.get", "values.batchGet", "values.batchGet",
                                "values.batchUpdate"]


def test_a_blast_sized_edit_in_the_sheet_waits_for_the_confirm_word_typed_in_a_status_cell(
        tmp_path: Path, emulator: SheetsEmulator, account: Account, run_cli: Any) -> None:
    folder = tabs_only(tmp_path, emulator, account)
    path = folder / "config.toml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "max_sends_per_run = 200", "max_sends_per_run = 3"), encoding="utf-8")
    first = json.loads(run_cli(folder, "--now", DAY0, "--json", "sync", "--allow-blast").out)
    rows = emulator.display(KEY2, "흐름")
    welcome = len(rows) + 1
    emulator.put(KEY2, "흐름", [["welcome", "paid", "", "1", "0", "email", "onboarding_welcome",
                                "X"]], start=f"A{welcome}", input="RAW")

    waiting = sync(run_cli, folder, LATER)
    pending = waiting["rules"]["pending"]
    assert waiting["rules"]["in_force"] == first["rules"]["in_force"]
    assert pending["newly"] > 3 and not [s for s in waiting["sends"] if s["flow"] == "welcome"]
    status = status_of(emulator.display(KEY2, "흐름"))
    assert f"newly message {pending['newly']} customers" in status[f"welcome#{welcome}"]
    assert "'적용'" in status[f"welcome#{welcome}"] and status["payment#5"] == "✅"

    column = rows[0].index("상태")
    emulator.put(KEY2, "흐름", [["적용"]], start=f"{chr(ord('A') + column)}2", input="RAW")
    emulator.clear_log()
    confirmed = sync(run_cli, folder, EVEN_LATER)
    assert confirmed["rules"]["in_force"] == pending["hash"]
    assert confirmed["rules"]["pending"] is None
    assert len([s for s in confirmed["sends"] if s["flow"] == "welcome"]) > 3
    assert set(status_of(emulator.display(KEY2, "흐름")).values()) == {"✅"}
    assert emulator.count("values.batchUpdate") == 1  # 상태 with the customers' cells
