"""The messages that were still English in a Korean run: durations and the settings'
own checks, values a cell cannot hold, why a customer left a flow, click's usage
errors, the kind of an error, and Ctrl-C on a command that changes nothing.

Each is read as the operator reads it: through ``sheetcrm`` on a config that says
``language = "ko"`` where the command line shows it, else from the function that
raises it. The ledger keeps why a flow ended in stable English words, whatever the
language.
"""

from __future__ import annotations

import csv
import errno
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sheetcrm.config import parse_duration
from sheetcrm.fields import cell_text, make_parser
from sheetcrm.i18n import set_language
from tests.support.events import Listening, body_of, make_world, stripe_event, stripe_headers
from tests.support.journeys import SEOUL, World
from tests.support.sample import CSV, copy_sample

NOW = "2026-11-23T10:00"


def korean_sample(folder: Path) -> Path:
    return copy_sample(folder, "ko")


def replace_in_config(folder: Path, old: str, new: str) -> None:
    path = folder / "config.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# -- durations, settings and values ------------------------------------------------------


def test_a_duration_that_is_not_one_is_refused_in_korean(korean: None) -> None:
    with pytest.raises(ValueError, match="'3x'은\\(는\\) 기간 형식이 아닙니다. 1d\\(1일\\)"):
        parse_duration("3x")


def test_the_same_duration_is_refused_in_english_by_default() -> None:
    with pytest.raises(ValueError, match="'3x' is not a duration like 1d, 36h"):
        parse_duration("3x")


@pytest.mark.parametrize(("old", "new", "korean_words"), [
    ('after = "2d", channel = "email", template = "onboarding_guide"',
     'after = "2일", channel = "email", template = "onboarding_guide"',
     "'2일'은(는) 기간 형식이 아닙니다"),
    ('quiet_hours = "21:00-08:00"', 'quiet_hours = "25:00-08:00"',
     "'25:00-08:00'은(는) 올바른 시각(00:00~24:00)으로 된 시간대가 아닙니다"),
    ('quiet_hours = "21:00-08:00"', 'quiet_hours = "21:00-21:00"',
     "'21:00-21:00'은(는) 시작과 끝 시각이 같습니다"),
    ('quiet_hours = "21:00-08:00"', 'quiet_hours = "밤"',
     "'밤'은(는) 시간대 형식이 아닙니다"),
    ('frequency_cap = "3/7d"', 'frequency_cap = "0/7d"',
     "'0/7d'(으)로는 아무것도 보낼 수 없습니다"),
    ('frequency_cap = "3/7d"', 'frequency_cap = "주 3회"',
     "'주 3회'은(는) 발송 한도 형식이 아닙니다"),
    ("variants = { reviews = 1, compare = 1 }", "variants = { reviews = 1 }",
     "A/B 테스트에는 변형(variant)이 두 개 이상 필요합니다"),
    ("variants = { reviews = 1, compare = 1 }", "variants = { reviews = 1, compare = 0 }",
     "변형(variant) 비율은 0보다 큰 숫자여야 합니다"),
], ids=["duration", "clock", "same-time", "window", "cap-nothing", "cap", "one-variant",
        "weight"])
def test_a_setting_refused_by_its_own_check_reads_in_korean(
        run_cli: Any, tmp_path: Path, old: str, new: str, korean_words: str) -> None:
    folder = korean_sample(tmp_path)
    replace_in_config(folder, old, new)
    result = run_cli(folder, "check")
    assert result.code == 2
    assert result.err.startswith("sheetcrm: 설정 오류: ")
    assert korean_words in result.err


def test_values_a_cell_cannot_hold_and_unknown_field_types_read_in_korean(
        korean: None) -> None:
    with pytest.raises(ValueError, match="^nan은\\(는\\) 셀에 적을 수 있는 숫자가 아닙니다$"):
        cell_text(float("nan"))
    with pytest.raises(ValueError, match="^객체\\(dict\\)는 셀에 적을 수 있는 값이 아닙니다$"):
        cell_text({"a": 1})
    with pytest.raises(ValueError, match="^알 수 없는 항목 형식 'money'입니다"):
        make_parser("money", column="금액", tz=SEOUL)
    with pytest.raises(ValueError, match="^알 수 없는 날짜 순서 'YMD'입니다"):
        make_parser("date", column="가입일", tz=SEOUL, date_order="YMD")


# -- why a customer left a flow ----------------------------------------------------------


def test_why_a_flow_ended_is_shown_in_korean_and_kept_in_english(tmp_path: Path) -> None:
    w = World.create(tmp_path, {})
    w.customers = {"a@x.com": {"applied": w.date(-1)}, "b@x.com": {"applied": w.date(-1)}}
    w.write_sheet()
    w.sync(0)
    w.customers["a@x.com"].update(paid="O", login=f"{w.date(0)} 12:00")  # goal met
    w.customers["b@x.com"]["applied"] = ""  # the trigger is no longer true
    w.write_sheet()
    set_language("ko")
    result = w.sync(1)
    moves = {(m.key, m.action): m.detail for m in result.plan.moves}
    assert moves[("a@x.com", "converted")] == "목표 달성"
    assert moves[("b@x.com", "left")] == "시작 조건에 더는 맞지 않음"
    with sqlite3.connect(tmp_path / "state.db") as db:
        stored = dict(db.execute("SELECT key, exit_reason FROM enrollments").fetchall())
    assert stored == {"a@x.com": "goal met", "b@x.com": "trigger no longer true"}


def test_the_history_of_a_customer_says_why_the_flow_ended_in_korean(
        run_cli: Any, tmp_path: Path) -> None:
    folder = korean_sample(tmp_path)
    assert run_cli(folder, "--now", NOW, "sync").code == 0
    path = folder / CSV
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        header, rows = list(reader.fieldnames or []), list(reader)
    soohyun = next(row for row in rows if row["이메일"] == "soohyun.kim@example.com")
    assert soohyun["결제 여부"] == "X"
    soohyun["결제 여부"] = "O"  # she pays: her payment flow ends at the next sync
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        writer.writerows(rows)
    assert run_cli(folder, "--now", "2026-11-24T10:00", "sync").code == 0
    history = run_cli(folder, "--now", "2026-11-24T10:00", "history", "soohyun.kim@example.com")
    assert history.code == 0, history.err
    assert "목표 달성" in history.out
    assert "goal met" not in history.out


def test_why_an_outside_event_waits_is_said_in_korean(tmp_path: Path) -> None:
    w = make_world(tmp_path, {"kim@x.com": {"applied": "2026-03-02"}})
    body = body_of(stripe_event("evt_lee", "lee@x.com"))  # a payment for a key on no row
    with Listening(w.config) as server:
        assert server.post("paid", body, stripe_headers(body)).status_code == 200
    set_language("ko")
    waiting = w.sync(0)
    assert waiting.summary()["events_waiting"] == 1
    assert any("키가 어느 행에도 없습니다(append = true로 두면 행을 추가합니다)" in note
               for note in waiting.plan.notes), waiting.plan.notes
    assert not any("no row" in note for note in waiting.plan.notes)


# -- the command line --------------------------------------------------------------------


def test_clicks_usage_errors_read_in_korean(run_cli: Any, tmp_path: Path) -> None:
    folder = korean_sample(tmp_path)
    typo = run_cli(folder, "plan", "--jsn")
    assert typo.code == 2
    assert typo.err.splitlines() == [
        "사용법: sheetcrm plan [OPTIONS]",
        "도움말은 'sheetcrm plan --help'으로 볼 수 있습니다.",
        "",
        "오류: '--jsn'(이)라는 옵션은 없습니다. 혹시 '--json', '--now'인가요?",
    ]
    missing = run_cli(folder, "preview")
    assert missing.err.splitlines()[-1] == "오류: 'KEY'을(를) 적어야 합니다."
    unknown = run_cli(folder, "plna")
    assert unknown.err.splitlines()[-1] == (
        "오류: 'plna'(이)라는 명령은 없습니다. 혹시 'plan'인가요?")
    extra = run_cli(folder, "plan", "soon")
    assert extra.err.splitlines()[-1] == "오류: 필요 없는 인자가 더 있습니다 (soon)"
    for result in (typo, missing, unknown, extra):
        assert "Error" not in result.err and "Usage" not in result.err and "Try" not in result.err


def test_clicks_usage_errors_stay_clicks_english_in_english(run_cli: Any, sample: Path) -> None:
    typo = run_cli(sample, "plan", "--jsn")
    assert typo.err.splitlines() == [
        "Usage: sheetcrm plan [OPTIONS]",
        "Try 'sheetcrm plan --help' for help.",
        "",
        "Error: No such option '--jsn'. (Did you mean one of: '--json', '--now'?)",
    ]
    assert run_cli(sample, "preview").err.splitlines()[-1] == "Error: Missing argument 'KEY'."


def test_the_kind_of_an_error_is_named_in_the_operators_language(
        run_cli: Any, tmp_path: Path) -> None:
    folder = korean_sample(tmp_path)
    replace_in_config(folder, 'timezone = "Asia/Seoul"', 'timezone = "Asia/Busan"')
    korean = run_cli(folder, "plan")
    assert korean.code == 2
    assert korean.err.startswith("sheetcrm: 설정 오류: timezone: ")
    replace_in_config(folder, 'language = "ko"', 'language = "en"')
    english = run_cli(folder, "plan")
    assert english.err.startswith("sheetcrm: ConfigError: timezone: ")


# -- Ctrl-C on a command that changes nothing -------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="a named pipe and POSIX signals")
@pytest.mark.parametrize("command", ["plan", "check"])
def test_ctrl_c_during_plan_or_check_says_so_in_one_korean_line(
        tmp_path: Path, command: str) -> None:
    folder = korean_sample(tmp_path)
    sheet = folder / CSV
    sheet.unlink()
    os.mkfifo(sheet)  # reading the sheet waits until someone writes: Ctrl-C comes then
    process = subprocess.Popen([sys.executable, "-m", "sheetcrm.cli", "--now", NOW, command],
                               cwd=folder, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    writer = None
    try:
        deadline = time.monotonic() + 60
        while writer is None:  # the command has opened the sheet: it is reading it
            try:
                writer = os.open(sheet, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                assert exc.errno == errno.ENXIO and process.poll() is None, exc
                assert time.monotonic() < deadline, "the command never read the sheet"
                time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if writer is not None:
            os.close(writer)
        process.kill()
    assert process.returncode == 130, err
    assert err == f"Ctrl-C로 멈췄습니다. {command}은(는) 아무것도 바꾸지 않으므로, 보낸 메시지도 " \
                  "시트에 쓴 내용도 없습니다.\n"
