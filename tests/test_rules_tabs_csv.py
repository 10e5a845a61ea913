"""Rules kept in the sheet (``[rules]``), on the CSV backend: sibling files ``태그.csv``,
``흐름.csv`` and ``템플릿.csv`` beside the customer file, edited between runs.

The shipped sample's rules are typed into the tabs (``tests.support.rule_tabs``), so
the TOML form is the reference: the same sends, the same messages. Then the tabs
are edited as an operator would, and each run is checked for the rule set it used
and for what it wrote into the ``상태`` column.
"""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from sheetcrm.app.history import customer_history
from sheetcrm.config import config_from_dict, load_config
from sheetcrm.config.rule_tabs import row_identity
from sheetcrm.errors import ConfigError
from sheetcrm.i18n import set_language
from sheetcrm.table.csv import CsvTable
from tests.support.rule_tabs import read_csv, sample_tabs, status_of, tabs_config, write_csv
from tests.support.sample import DAY0, DAY2, copy_sample

HOURS_LATER = "2026-11-23T13:00"  # DAY0 + 3 h: past min_gap


def sync(run_cli: Any, folder: Path, now: str, *flags: str) -> dict[str, Any]:
    result = run_cli(folder, "--now", now, "--json", "sync", *flags)
    assert result.code == 0, result.out + result.err
    return json.loads(result.out)


def sends(data: dict[str, Any]) -> list[tuple[str, str, int, str]]:
    return sorted((s["key"], s["flow"], s["step"], s["template"]) for s in data["sends"]
                  if s["result"] == "sent")


def tabs_folder(tmp_path: Path, name: str = "tabs") -> Path:
    """A copy of the sample with its rules in the tabs and no templates folder."""
    folder = tmp_path / name
    folder.mkdir()
    copy_sample(folder)
    config = folder / "config.toml"
    config.write_text(tabs_config(config.read_text(encoding="utf-8")), encoding="utf-8")
    shutil.rmtree(folder / "templates")
    for tab, rows in sample_tabs().items():
        write_csv(folder / "sample_sheets" / f"{tab}.csv", rows)
    return folder


def tab(folder: Path, name: str) -> list[list[str]]:
    return read_csv(folder / "sample_sheets" / f"{name}.csv")


def edit_tab(folder: Path, name: str, change: Any) -> None:
    rows = tab(folder, name)
    change(rows)
    write_csv(folder / "sample_sheets" / f"{name}.csv", rows)


def row_of(rows: list[list[str]], first: str, column: str = "조건") -> list[str]:
    return next(row for row in rows if row[0] == first and row[rows[0].index(column)])


def messages(folder: Path) -> list[tuple[str, str]]:
    """(subject, text) of every message in the outbox."""
    found = []
    for path in (folder / "outbox").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        found.append((str(message["Subject"]), body.get_content() if body else ""))
    return sorted(found)


def customer_tags(folder: Path) -> dict[str, str]:
    rows = read_csv(folder / "sample_sheets" / "customers.csv")
    key, tags = rows[0].index("이메일"), rows[0].index("상태 태그")
    return {row[key]: row[tags] for row in rows[1:] if len(row) > tags}


def test_the_sample_kept_in_tabs_sends_what_the_toml_form_sends(tmp_path: Path,
                                                                 run_cli: Any) -> None:
    reference = tmp_path / "toml"
    reference.mkdir()
    copy_sample(reference)
    folder = tabs_folder(tmp_path)
    expected = sync(run_cli, reference, DAY0)
    got = sync(run_cli, folder, DAY0)
    assert sends(got) == sends(expected) and len(sends(got)) >= 10
    assert messages(folder) == messages(reference)
    assert customer_tags(folder) == customer_tags(reference)
    for name in ("태그", "흐름", "템플릿"):
        assert set(status_of(tab(folder, name)).values()) == {"✅"}, name
    assert got["rules"]["in_force"] and got["rules"]["pending"] is None


def test_a_valid_edit_takes_effect_on_the_next_run_and_history_names_each_rule_set(
        tmp_path: Path, run_cli: Any) -> None:
    folder = tabs_folder(tmp_path)
    first = sync(run_cli, folder, DAY0)
    assert "고액" not in customer_tags(folder)["minjun.choi@example.com"]
    edit_tab(folder, "태그", lambda rows: rows.append(["고액 결제", "amount >= 150000", "", ""]))
    second = sync(run_cli, folder, DAY2)
    assert "고액 결제" in customer_tags(folder)["minjun.choi@example.com"]
    assert "고액 결제" not in customer_tags(folder)["soohyun.kim@example.com"]
    old, new = first["rules"]["in_force"], second["rules"]["in_force"]
    assert old != new and len(new) == 8
    assert status_of(tab(folder, "태그"))["고액 결제#10"] == "✅"
    config = load_config(folder / "config.toml", {})
    messages_ = [item for item in customer_history(config, "soohyun.kim@example.com").items
                 if item.kind == "message" and item.what == "sent"]
    assert [m.data["ruleset"] for m in messages_] == [new, old]  # newest first
    assert f"Rule set {old}." in messages_[1].text
    with sqlite3.connect(folder / ".sheetcrm" / "state.db") as db:
        assert [r[0] for r in db.execute("SELECT hash FROM rulesets ORDER BY id")] == [old, new]


def test_an_invalid_edit_leaves_the_rules_in_force_and_says_what_is_wrong(
        tmp_path: Path, run_cli: Any) -> None:
    folder = tabs_folder(tmp_path)
    first = sync(run_cli, folder, DAY0)
    before = customer_tags(folder)

    def misspell(rows: list[list[str]]) -> None:
        rows.append(["고액 결제", "amount >= 150000", "", ""])
        row_of(rows, "결제 대기")[1] = "not paidd and days_since(applied_at) >= 1"

    edit_tab(folder, "태그", misspell)
    second = sync(run_cli, folder, HOURS_LATER)
    assert second["rules"]["in_force"] == first["rules"]["in_force"]
    assert customer_tags(folder) == before  # 고액 결제 is not in force either
    status = status_of(tab(folder, "태그"))
    assert status["결제 대기#2"].startswith("condition error: ")
    assert "'paidd'" in status["결제 대기#2"] and "did you mean 'paid'?" in status["결제 대기#2"]
    assert "waits: fix the problems on the other rows first" in status["고액 결제#10"]
    assert second["rules"]["problems"] == [
        {"tab": "태그", "row": 2, "message": status["결제 대기#2"]}]


def test_the_status_is_written_in_korean_with_the_fix(tmp_path: Path, run_cli: Any) -> None:
    folder = tabs_folder(tmp_path)
    config = folder / "config.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        'language = "en"', 'language = "ko"'), encoding="utf-8")
    try:
        sync(run_cli, folder, DAY0)
        edit_tab(folder, "태그", lambda rows: row_of(rows, "결제 대기").__setitem__(
            1, "not paidd"))
        sync(run_cli, folder, HOURS_LATER)
    finally:
        set_language("en")
    status = status_of(tab(folder, "태그"))["결제 대기#2"]
    assert status.startswith("조건 오류: ") and "'paidd'" in status and "'paid'" in status


def test_a_flow_row_names_an_unknown_channel_with_a_did_you_mean(tmp_path: Path,
                                                                run_cli: Any) -> None:
    folder = tabs_folder(tmp_path)
    sync(run_cli, folder, DAY0)
    edit_tab(folder, "흐름", lambda rows: rows[3].__setitem__(5, "emial"))
    data = sync(run_cli, folder, HOURS_LATER)
    [problem] = data["rules"]["problems"]
    assert (problem["tab"], problem["row"]) == ("흐름", 4)
    assert "'emial'" in problem["message"] and "did you mean 'email'?" in problem["message"]
    assert status_of(tab(folder, "흐름"))["onboarding#4"] == problem["message"]


def test_tabs_that_never_checked_out_stop_the_run_with_the_rows_to_fix(
        tmp_path: Path, run_cli: Any) -> None:
    folder = tabs_folder(tmp_path)
    edit_tab(folder, "흐름", lambda rows: rows[1].__setitem__(4, "사흘"))
    result = run_cli(folder, "--now", DAY0, "sync")
    assert result.code == 2
    assert "no earlier rule set was accepted" in result.err
    assert "흐름 row 2" in result.err and "'사흘'" in result.err
    assert not (folder / "outbox").exists()


def test_a_blast_sized_edit_waits_until_the_confirm_word_is_typed(tmp_path: Path,
                                                                 run_cli: Any) -> None:
    folder = tabs_folder(tmp_path)
    config = folder / "config.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "max_sends_per_run = 200", "max_sends_per_run = 3"), encoding="utf-8")
    first = sync(run_cli, folder, DAY0, "--allow-blast")

    def welcome_everyone(rows: list[list[str]]) -> None:
        rows.append(["welcome", "paid", "", "1", "0", "email", "onboarding_welcome", "X", "",
                     "", "", "", ""])

    edit_tab(folder, "흐름", welcome_everyone)
    plan = json.loads(run_cli(folder, "--now", HOURS_LATER, "--json", "plan").out)
    pending = plan["rules"]["pending"]
    assert pending["newly"] > 3 and pending["hash"] != first["rules"]["in_force"]
    text = run_cli(folder, "--now", HOURS_LATER, "plan").out
    assert f"rule set {first['rules']['in_force']} in force; the edit {pending['hash']} " \
           f"waits" in text
    assert f"would newly message {pending['newly']} customers" in text

    waiting = sync(run_cli, folder, HOURS_LATER)
    assert waiting["rules"]["in_force"] == first["rules"]["in_force"]
    assert not [s for s in waiting["sends"] if s["flow"] == "welcome"]
    status = status_of(tab(folder, "흐름"))
    assert f"newly message {pending['newly']} customers" in status["welcome#15"]
    assert "'적용'" in status["welcome#15"] and status["payment#5"] == "✅"

    # Another edit before confirming: the confirm word counts only for the edit it saw.
    def confirm_after_another_edit(rows: list[list[str]]) -> None:
        rows[-1][rows[0].index("템플릿")] = "churn_checkin"
        rows[1][rows[0].index("상태")] = "적용"

    edit_tab(folder, "흐름", confirm_after_another_edit)
    again = sync(run_cli, folder, "2026-11-23T14:00")
    assert again["rules"]["in_force"] == first["rules"]["in_force"]
    assert again["rules"]["pending"]["hash"] not in (pending["hash"], None)

    edit_tab(folder, "흐름", lambda rows: rows[1].__setitem__(rows[0].index("상태"), "적용"))
    confirmed = sync(run_cli, folder, "2026-11-23T15:00")
    assert confirmed["rules"]["in_force"] == again["rules"]["pending"]["hash"]
    assert len([s for s in confirmed["sends"] if s["flow"] == "welcome"]) > 3
    assert set(status_of(tab(folder, "흐름")).values()) == {"✅"}


def test_sync_allow_blast_applies_a_waiting_edit(tmp_path: Path, run_cli: Any) -> None:
    folder = tabs_folder(tmp_path)
    config = folder / "config.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "max_sends_per_run = 200", "max_sends_per_run = 3"), encoding="utf-8")
    sync(run_cli, folder, DAY0, "--allow-blast")
    edit_tab(folder, "흐름", lambda rows: rows.append(
        ["welcome", "paid", "", "1", "0", "email", "onboarding_welcome", "", "", "", "", "",
         ""]))
    data = sync(run_cli, folder, HOURS_LATER, "--allow-blast")
    assert data["rules"]["pending"] is None
    assert len([s for s in data["sends"] if s["flow"] == "welcome"]) > 3


def test_the_status_column_keeps_the_files_encoding_and_an_operators_edit(
        tmp_path: Path, run_cli: Any) -> None:
    folder = tabs_folder(tmp_path)
    path = folder / "sample_sheets" / "태그.csv"
    write_csv(path, sample_tabs()["태그"], encoding="cp949")
    sync(run_cli, folder, DAY0)
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    rows = read_csv(path, encoding="cp949")
    assert set(status_of(rows).values()) == {"OK"}  # ✅ is not in CP949: the file stays so
    assert rows[1][:2] == sample_tabs()["태그"][1][:2]


def test_a_rule_kept_both_in_the_file_and_in_a_tab_is_refused(tmp_path: Path) -> None:
    raw = {"table": {"backend": "csv", "path": "c.csv", "key": "email"},
           "fields": {"email": {"column": "이메일"}},
           "tags": {"a": "true"}, "rules": {"tags": "태그"}}
    with pytest.raises(ConfigError) as caught:
        config_from_dict(raw, {}, path=tmp_path / "config.toml")
    assert caught.value.path == "rules.tags"
    assert "'태그'" in str(caught.value) and "[tags]" in str(caught.value)
    raw = {**raw, "tags": {}, "templates": "templates", "rules": {"templates": "템플릿"}}
    with pytest.raises(ConfigError, match="rules.templates"):
        config_from_dict(raw, {}, path=tmp_path / "config.toml")


def test_check_names_the_rows_of_the_rule_tabs_to_fix(tmp_path: Path, run_cli: Any) -> None:
    folder = tabs_folder(tmp_path)
    good = json.loads(run_cli(folder, "--now", DAY0, "--json", "check").out)["findings"]
    assert not [f for f in good if f["where"].startswith(("태그", "흐름", "템플릿"))]
    assert any("'2026-02-30' is not a date" in f["message"] for f in good)  # got to the rows
    edit_tab(folder, "태그", lambda rows: row_of(rows, "결제 대기").__setitem__(1, "not paidd"))
    result = run_cli(folder, "--now", DAY0, "--json", "check")
    assert result.code == 1
    [finding] = [f for f in json.loads(result.out)["findings"] if f["level"] == "error"]
    assert finding["where"] == "태그 row 2"
    assert finding["message"].startswith("condition error: ") and "'paidd'" in finding["message"]


def test_preview_and_test_send_use_the_rules_kept_in_the_tabs(tmp_path: Path,
                                                              run_cli: Any) -> None:
    folder = tabs_folder(tmp_path)
    shown = run_cli(folder, "--now", DAY0, "preview", "soohyun.kim@example.com")
    assert shown.code == 0, shown.err
    assert "payment" in shown.out and "결제 대기" in shown.out
    sent = run_cli(folder, "--now", DAY0, "--json", "test-send", "payment", "1", "--to",
                   "me@example.org", "--row", "soohyun.kim@example.com")
    assert sent.code == 0, sent.out + sent.err
    result = json.loads(sent.out)
    assert result["template"] == "payment_reminder" and result["status"] == "sent"
    assert result["subject"].endswith("김수현님, 엑셀 기초 결제가 아직 완료되지 않았어요")


def test_a_tab_saved_while_its_status_is_written_keeps_the_operators_edit(
        tmp_path: Path) -> None:
    path = tmp_path / "태그.csv"
    write_csv(path, [["이름", "조건", "상태"], ["a", "paid", ""], ["b", "not paid", ""]])
    saved = [["이름", "조건", "상태"], ["a", "paid and clicked", ""], ["b", "not paid", ""],
             ["c", "clicked", ""]]

    class SavedMeanwhile(CsvTable):
        def _before_replace(self, target: Path) -> None:
            if read_csv(path)[1][1] == "paid":  # the operator saves once, right now
                write_csv(path, saved)

    judged = {row_identity({"이름": n, "조건": c}): "✅" for n, c in (("a", "paid"),
                                                                     ("b", "not paid"))}
    SavedMeanwhile(path).write_column("상태", lambda cells: judged.get(row_identity(cells)))
    assert read_csv(path) == [["이름", "조건", "상태"], ["a", "paid and clicked", ""],
                              ["b", "not paid", "✅"], ["c", "clicked", ""]]
    assert path.read_bytes().startswith(b"\xef\xbb\xbf") and b"\r\n" in path.read_bytes()
