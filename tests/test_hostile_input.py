"""No traceback on any input an operator produces (invariant 9).

Hostile cells (terminal markup, control characters, NUL, bidi overrides, 200k-character
cells, impossible dates in sheetcrm's own columns, IDN addresses) and hostile configs go
through every command that reads them. The CLI runs in-process, so an exception that
escapes ``main`` fails the test with its traceback; every run must end in a documented
exit code with each problem reported on its row or its key path.
"""

from __future__ import annotations

import csv
import io
import json
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.sample import CSV, DAY0, copy_sample

EXIT_CODES = {0, 1, 2, 3, 4, 5}
COMMANDS = [("check",), ("plan",), ("sync",), ("preview", "soohyun.kim@example.com"),
            ("status",), ("report",)]

HOSTILE_CELLS = [
    "[/x]", "[bold red]boom[/]", "[link=file:///etc/passwd]x[/link]", ":smile:",
    "\x1b[31mred\x1b[0m\x1b]0;title\x07", "a\x00b", "\x08\x08\x08overwrite",
    "\u202eevil\u202c", "line one\nline two\r\nthree", "=HYPERLINK(\"http://x\")",
    "x" * 200_000, "{{ 7 * 7 }}", "{% include 'x' %}", "%s%n%x", "🙂" * 50,
]


def read_sample(folder: Path) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO((folder / CSV).read_bytes().decode("utf-8-sig"))))
    return rows[0], rows[1:]


def write_sample(folder: Path, header: list[str], rows: list[list[str]]) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([header, *rows])
    (folder / CSV).write_bytes(b"\xef\xbb\xbf" + out.getvalue().encode("utf-8"))


def set_cells(folder: Path, changes: dict[tuple[int, str], str]) -> None:
    """``(row index, column name) -> text`` into the sample sheet."""
    header, rows = read_sample(folder)
    for (n, column), text in changes.items():
        if column not in header:
            header.append(column)
        i = header.index(column)
        rows[n] += [""] * (i + 1 - len(rows[n]))
        rows[n][i] = text
    write_sample(folder, header, rows)


def assert_clean(result, command: tuple[str, ...]) -> None:
    assert result.code in EXIT_CODES, (command, result.code, result.err)
    assert "Traceback" not in result.out + result.err, (command, result.err[-2000:])


def run_all(run_cli, folder: Path) -> dict[tuple[str, ...], object]:
    results = {}
    for command in COMMANDS:
        for json_flag in ((), ("--json",)):
            args = ("--now", DAY0, *json_flag, *command)
            result = run_cli(folder, *args)
            assert_clean(result, args)
            results[(*json_flag, *command)] = result
    return results


def test_hostile_cells_in_every_column_reach_no_traceback(sample: Path, run_cli) -> None:
    header, _ = read_sample(sample)
    columns = [c for c in header if c not in ("이메일", "상태 태그", "자동화 흐름")]
    changes = {}
    for n, text in enumerate(HOSTILE_CELLS):
        for column in columns:
            changes[(n % 13, column)] = text
        changes[(13, "이메일")] = text  # as a key too
    _, rows = read_sample(sample)
    clean = next(n for n, row in enumerate(rows) if row[1] == "eunbi.noh@example.com")
    changes[(clean, "고객명")] = "[/x][bold]\x1b[31m\u202e은비"  # the mail preview shows it
    set_cells(sample, changes)
    results = run_all(run_cli, sample)

    shown = run_cli(sample, "--now", DAY0, "preview", "eunbi.noh@example.com").out
    assert "[/x][bold]" in shown  # printed as text, never parsed as markup
    assert "\x1b" not in shown and "\\x1b[31m" in shown  # control characters spelled out
    assert "\u202e" not in shown and "\\u202e" in shown
    data = json.loads(results[("--json", "plan")].out)
    assert data["summary"]["rows_read"] == 26


def test_impossible_values_in_owned_cells_are_the_rows_problem(sample: Path, run_cli) -> None:
    # Cells in sheetcrm's own forms, edited by hand into values that cannot be.
    set_cells(sample, {
        (0, "자동화 흐름"): "payment 1/3 · 다음 2026-02-30 10:00",
        (1, "자동화 흐름"): "payment 99999999999999999999/3 · 다음 2026-11-25 10:00",
        (2, "자동화 흐름"): "onboarding 1/3 완료 9999-99-99",
        (3, "자동화 흐름"): "payment 1/3 · 다음 2026-11-25 25:61",
        (4, "최근 발송"): "2026-13-45 99:99 x (y)",
    })
    results = run_all(run_cli, sample)
    errors = json.loads(results[("--json", "plan")].out)["errors"]
    assert {"soohyun.kim@example.com", "chaerin.park@example.com",
            "minjun.choi@example.com"} <= {e["key"] for e in errors}


def test_text_of_the_operators_own_in_an_owned_column_stops_the_run_cleanly(
        sample: Path, run_cli) -> None:
    set_cells(sample, {(3, "자동화 흐름"): "[/x] | payment", (5, "상태 태그"): "\x00,,,"})
    for command in (("check",), ("plan",), ("sync",)):
        result = run_cli(sample, "--now", DAY0, *command)
        assert_clean(result, command)
        assert "already holds values sheetcrm did not write" in result.out + result.err


def test_idn_addresses_go_to_the_outbox_or_are_that_rows_error(sample: Path, run_cli) -> None:
    set_cells(sample, {(0, "이메일"): "수현@예시.한국", (2, "이메일"): "chaerin@bücher.de",
                       (3, "이메일"): "a" * 2000 + "@example.com"})
    results = run_all(run_cli, sample)
    data = json.loads(results[("--json", "sync")].out)
    assert data["summary"]["rows_read"] == 26


# -- hostile configs ---------------------------------------------------------------------


def edit(folder: Path, old: str, new: str) -> None:
    path = folder / "config.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


CONFIG_EDITS = {
    "unquoted Korean key": ('"결제 대기"   =', '결제 대기 ='),
    "unknown section key": ("[sending]", "[sending]\ncolour = 'blue'"),
    "wrong type": ("max_sends_per_run = 200", 'max_sends_per_run = "lots"'),
    "missing env var": ('from = "소담 클래스 <hello@example.com>"', 'from = "${NOPE_NOT_SET}"'),
    "markup in a value": ('timezone = "Asia/Seoul"', 'timezone = "[/x]Asia/Seoul"'),
    "quiet hours off the clock": ('quiet_hours = "21:00-08:00"', 'quiet_hours = "25:00-08:00"'),
    "zero frequency window": ('frequency_cap = "3/7d"', 'frequency_cap = "3/0d"'),
    "cron weekday 8": ("[sending]", '[schedule]\ncron = "0 9 * * 8"\n\n[sending]'),
    "5000-digit literal": ('"결제 대기"   = "not paid and days_since(applied_at) >= 1"',
                           '"결제 대기"   = "not paid and days_since(applied_at) >= '
                           + "9" * 5000 + '"'),
    "gigabyte string": ('"결제 유도"   = "not paid and clicked"',
                        '"결제 유도"   = "not paid and clicked and (\'x\' * 1000000000) != \'\'"'),
    "huge round": ('"결제 유도"   = "not paid and clicked"',
                   '"결제 유도"   = "not paid and (amount|round(1000000000, \'ceil\')) > 0"'),
    "unknown flow in in_flow": ('"정리 대상"   = "finished(\'dormant\')"',
                                '"정리 대상"   = "finished(\'dormnat\')"'),
    "state under a file": ('state = ".sheetcrm/state.db"', 'state = "config.toml/state.db"'),
    "then circle": ('then = "dormant"', 'then = "onboarding"'),
    "missing template": ('template = "onboarding_welcome"', 'template = "nowhere"'),
    "adopt not a writeback column": ("[writeback]", '[writeback]\nadopt = ["메모"]'),
}


@pytest.mark.parametrize("name", sorted(CONFIG_EDITS))
def test_hostile_configs_are_reported_cleanly(sample: Path, run_cli, name: str) -> None:
    edit(sample, *CONFIG_EDITS[name])
    for command in (("check",), ("plan",), ("sync",)):
        result = run_cli(sample, "--now", DAY0, *command)
        assert_clean(result, command)
        if name == "state under a file" and command == ("plan",):
            continue  # plan writes no state: it has nothing to refuse
        assert result.code in (1, 2, 3), (name, command, result.out[-500:], result.err)


@pytest.mark.parametrize("name, text", [
    ("empty", b""),
    ("binary", bytes(range(256))),
    ("cp949", "timezone = \"Asia/Seoul\"\n# 한글 주석\n".encode("cp949")),
    ("not toml", b"[[[\n"),
])
def test_broken_config_files_are_reported_cleanly(sample: Path, run_cli, name: str,
                                                  text: bytes) -> None:
    (sample / "config.toml").write_bytes(text)
    for command in COMMANDS:
        result = run_cli(sample, "--now", DAY0, *command)
        assert_clean(result, command)
        assert result.code == 2, (name, command, result.err)


def test_hostile_templates_are_reported_cleanly(sample: Path, run_cli) -> None:
    templates = sample / "templates"
    (templates / "onboarding_welcome.j2").write_bytes(
        "{% block subject %}환영합니다{% endblock %}{% block text %}안녕{% endblock %}"
        .encode("cp949"))
    (templates / "onboarding_guide.j2").write_text(
        "{% include 'onboarding_guide.j2' %}", encoding="utf-8")
    (templates / "onboarding_offer.j2").write_text(
        "{% block subject %}{{ 'x' * 1000000000 }}{% endblock %}{% block text %}x"
        "{% endblock %}", encoding="utf-8")
    (templates / "payment_reminder.j2").write_text(
        "{% block subject %}{% include 'missing.j2' %}{% endblock %}{% block text %}x"
        "{% endblock %}", encoding="utf-8")
    for command in COMMANDS:
        for json_flag in ((), ("--json",)):
            result = run_cli(sample, "--now", DAY0, *json_flag, *command)
            assert_clean(result, command)


_cell_text = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Z", "C")),
    max_size=40)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(cells=st.lists(st.tuples(st.integers(0, 25), st.integers(0, 15), _cell_text),
                      min_size=1, max_size=12))
def test_random_cells_never_end_in_a_traceback(tmp_path_factory, run_cli,
                                               cells: list[tuple[int, int, str]]) -> None:
    folder = copy_sample(tmp_path_factory.mktemp("fuzz"))
    header, rows = read_sample(folder)
    changes = {}
    for n, column, text in cells:
        if n < len(rows):
            changes[(n, header[column % len(header)])] = text
    set_cells(folder, changes)
    for command in (("plan",), ("--json", "sync"), ("check",), ("status",)):
        assert_clean(run_cli(folder, "--now", DAY0, *command), command)


def test_printable_spells_out_every_control_character() -> None:
    from sheetcrm.cli import printable

    controls = "".join(chr(c) for c in range(0x20) if chr(c) not in "\n\t") + "\x7f\x9b"
    shown = printable(controls + string.ascii_letters + "한글\n")
    assert not any(c in shown for c in controls)
    assert shown.endswith(string.ascii_letters + "한글\n")
