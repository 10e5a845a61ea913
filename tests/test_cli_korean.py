"""The command line in Korean: with ``language = "ko"`` what the operator reads at the
terminal (the summary of a run, the held-back sends, ``status``, ``--help``, the
Ctrl-C notices) is Korean; ``sheetcrm --help`` follows the environment, read before
any config.

The shipped sample is copied with ``language = "ko"``; time is pinned with --now.
The English of the same outputs is pinned by the other CLI tests.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.cells import cell_len

from sheetcrm.cli.running import say_left_at_once, say_stopped
from tests.support.sample import DAY0, DAY2, copy_sample

HANGUL = re.compile("[가-힣]")


def unwrapped(text: str) -> str:
    """The output with the terminal's line breaks taken out (a long line wraps)."""
    return text.replace("\n", "")


def mkdir(folder: Path) -> Path:
    folder.mkdir()
    return folder


@pytest.fixture
def korean_sample(tmp_path: Path) -> Path:
    return copy_sample(tmp_path, language="ko")


def test_the_summary_line_of_sync_reads_in_korean(korean_sample: Path, run_cli) -> None:
    result = run_cli(korean_sample, "--now", DAY0, "sync")
    assert result.code == 0, result.out + result.err
    assert re.search(r"sync \(.+\): 26행 읽음, 태그 변화 \d+건, 흐름 시작 \d+명, "
                     r"흐름 종료 \d+명, \d+건 보냄, 0건 실패, 보류: .+, 행 오류 \d+개, "
                     r"셀 \d+칸 적음\.", unwrapped(result.out)), result.out
    assert "rows read" not in result.out and "cells written" not in result.out
    assert "태그 변화" in result.out and "발송" in result.out  # the tables' titles


def test_plan_shows_the_held_back_sends_and_its_summary_in_korean(korean_sample: Path,
                                                                  run_cli) -> None:
    run_cli(korean_sample, "--now", DAY0, "sync")
    result = run_cli(korean_sample, "--now", DAY2, "plan")
    assert result.code == 0, result.out + result.err
    assert "보류한 발송" in result.out and "held back" not in result.out
    assert "이유" in result.out  # the reason column's header
    assert re.search(r"plan \(.+\): 26행 읽음, .+건 보낼 예정, .+셀 \d+칸 적을 예정\.",
                     unwrapped(result.out)), result.out


def test_status_reads_in_korean(korean_sample: Path, run_cli) -> None:
    run_cli(korean_sample, "--now", DAY0, "sync")
    result = run_cli(korean_sample, "--now", DAY0, "status")
    assert result.code == 0, result.out + result.err
    for words in ("자동 실행", "한 번도 시작하지 않음", "다음 실행", "최근 실행",
                  "확인이 필요한 발송", "지난 실행의 행 오류"):
        assert words in result.out, words
    assert "next run" not in result.out and "never started" not in result.out


def test_a_command_s_help_speaks_the_language_of_its_config(korean_sample: Path,
                                                            run_cli) -> None:
    result = run_cli(korean_sample, "sync", "--help")
    assert result.code == 0
    assert result.out.startswith("사용법: sheetcrm sync [OPTIONS]")
    assert "태그를 다시 계산하고, 보낼 때가 된 메시지를 보내고" in result.out
    assert "옵션:" in result.out and "처음 40줄만이 아니라 모든 줄을 보여 줍니다." in result.out
    assert "이 도움말을 보여 주고 끝냅니다." in result.out
    assert "Recompute tags" not in result.out and "Options:" not in result.out

    english = copy_sample(mkdir(korean_sample / "en"), language="en")
    result = run_cli(english, "sync", "--help")
    assert "Recompute tags, send what is due" in result.out
    assert not HANGUL.search(result.out.replace("리포트", ""))


@pytest.mark.parametrize("command", ["test-send", "sync", "report", "run"])
def test_korean_help_fits_80_columns(korean_sample: Path, run_cli, command: str) -> None:
    """A Hangul character takes two cells: help is wrapped by cells, not characters."""
    result = run_cli(korean_sample, command, "--help", columns=80)
    assert result.code == 0 and HANGUL.search(result.out)
    lines = result.out.splitlines()
    assert max(cell_len(line) for line in lines) <= 80, result.out
    assert "  --to ADDRESS   내 이메일 주소" in result.out or command != "test-send"


def test_the_top_level_help_follows_the_environment_not_the_config(
        korean_sample: Path, run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_cli(korean_sample, "--help")  # the tests' locale: C.UTF-8
    assert "Turn a customer spreadsheet into an automated CRM." in result.out
    assert "Recompute tags" in result.out  # the commands' one-line summaries too
    monkeypatch.setenv("LANG", "ko_KR.UTF-8")
    result = run_cli(korean_sample.parent, "--help")
    assert result.out.startswith("사용법: sheetcrm [OPTIONS] COMMAND [ARGS]...")
    assert "고객 스프레드시트를 자동으로 움직이는 고객 관리(CRM)로 바꿉니다." in result.out
    assert "명령:" in result.out and "태그를 다시 계산하고" in result.out
    assert "Turn a customer spreadsheet" not in result.out


def test_a_help_page_leaves_the_help_texts_as_written(korean_sample: Path, run_cli) -> None:
    """Translating a page for printing does not change the command: the next page, in
    another language, is translated from the English again."""
    run_cli(korean_sample, "plan", "--help")
    result = run_cli(copy_sample(mkdir(korean_sample / "en"), language="en"), "plan", "--help")
    assert "Show what sync would do, changing nothing" in result.out
    assert "List every row, not the first 40." in result.out


def test_the_ctrl_c_notices_read_in_korean(korean: None,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    say_stopped(12, 30)
    say_stopped(42, 0)
    say_left_at_once()
    err = capsys.readouterr().err.splitlines()
    assert err[0] == ("Ctrl-C로 멈췄습니다: 12건을 보냈고 30건은 다음 sync 때 보냅니다. "
                      "보낸 것은 시트에 적었습니다.")
    assert err[1].startswith("Ctrl-C를 눌렀을 때는 이미 마지막 메시지까지 보낸 뒤였습니다: 42건")
    assert err[2].startswith("Ctrl-C를 한 번 더 눌러 바로 멈췄습니다")


def test_history_preview_and_check_read_in_korean(korean_sample: Path, run_cli) -> None:
    run_cli(korean_sample, "--now", DAY0, "sync")
    history = run_cli(korean_sample, "history", "soohyun.kim@example.com")
    assert history.code == 0, history.err
    assert history.out.startswith(
        "soohyun.kim@example.com의 기록 (최신순, 시각은 Asia/Seoul 기준):")
    assert "payment 흐름에 들어갔습니다." in history.out and "태그 추가: " in history.out
    assert "메시지" in history.out and "Entered the flow" not in history.out

    preview = run_cli(korean_sample, "--now", DAY2, "preview", "soohyun.kim@example.com",
                      "--flow", "payment")
    assert preview.code == 0, preview.err
    assert "soohyun.kim@example.com (" in preview.out and "행) 태그: " in preview.out
    assert "시작 조건 " in preview.out and " (row " not in preview.out

    check = run_cli(korean_sample, "--now", DAY0, "check")
    assert re.search(r"오류 \d+개, 주의 \d+개", check.out), check.out
    assert "수준" in check.out and "level" not in check.out
