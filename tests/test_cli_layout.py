"""Every command reads well at 80 columns, and shows everything with ``--wide``.

At 80 columns (a terminal that size, or COLUMNS=80) no line of plan, sync, status,
check, report or preview is wider than the terminal (counted in terminal cells: a
Hangul syllable takes two); template names appear whole, never cut to a prefix; a
reason wraps as a sentence instead of one word per line. With ``--wide`` the lines
are as long as the cells make them, and the columns left out at 80 come back.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console

from sheetcrm.cli.layout import Col, Kind, table
from tests.support.sample import DAY0, DAY2


def widest(text: str) -> int:
    return max((cell_len(line) for line in text.splitlines()), default=0)


def assert_fits(text: str, columns: int = 80) -> None:
    over = [line for line in text.splitlines() if cell_len(line) > columns]
    assert over == [], "\n".join(over)


def sample_in_use(sample: Path, run_cli) -> None:
    """Two syncs: sends done, sends held back (no consent to ads), row errors."""
    assert run_cli(sample, "--now", DAY0, "sync").code == 0


@pytest.mark.parametrize("command", ["plan", "sync", "status", "check", "report"])
def test_each_command_fits_in_80_columns(sample: Path, run_cli, command: str) -> None:
    sample_in_use(sample, run_cli)
    result = run_cli(sample, "--now", DAY2, command, columns=80)
    assert result.code in (0, 1), result.err  # check finds the sample's bad rows
    assert len(result.out.splitlines()) > 5
    assert_fits(result.out)
    assert "…" not in result.out  # nothing is cut


def test_preview_fits_in_80_columns(sample: Path, run_cli) -> None:
    result = run_cli(sample, "--now", DAY0, "preview", "minjun.choi@example.com", columns=80)
    assert result.code == 0
    assert_fits(result.out)


def test_plan_at_80_columns_names_every_template_in_full(sample: Path, run_cli) -> None:
    sample_in_use(sample, run_cli)
    due = json.loads(run_cli(sample, "--now", DAY2, "--json", "plan").out)
    human = run_cli(sample, "--now", DAY2, "plan", columns=80).out
    templates = {s["template"] for s in due["sends"]}
    assert len(templates) >= 3
    shown = set(human.split())
    assert templates <= shown, templates - shown
    for s in due["sends"]:  # each send's key, step and template on one line
        assert any(s["template"] in line and line.split()[0] in s["key"]
                   for line in human.splitlines()), s


def test_held_back_reasons_read_as_sentences_at_80_columns(sample: Path, run_cli) -> None:
    sample_in_use(sample, run_cli)
    held = json.loads(run_cli(sample, "--now", DAY2, "--json", "plan").out)["held"]
    assert held
    human = run_cli(sample, "--now", DAY2, "plan", columns=80).out
    for h in held:
        first_words = " ".join(h["reason"].split()[:3])
        assert any(first_words in line for line in human.splitlines()), h["reason"]


def test_status_at_80_columns_shows_runs_and_errors_without_cutting(sample: Path,
                                                                    run_cli) -> None:
    sample_in_use(sample, run_cli)
    errors = json.loads(run_cli(sample, "--now", DAY0, "--json", "status").out)["row_errors"]
    human = run_cli(sample, "--now", DAY0, "status", columns=80).out
    assert_fits(human)
    assert "last runs" in human
    flat = " ".join(human.split())
    for e in errors["items"]:
        assert " ".join(e["message"].split()) in flat  # the whole message, wrapped


def test_wide_shows_every_column_in_full(sample: Path, run_cli) -> None:
    sample_in_use(sample, run_cli)
    narrow = run_cli(sample, "--now", DAY2, "plan", columns=80).out
    wide = run_cli(sample, "--now", DAY2, "plan", "--wide", columns=80).out
    assert widest(wide) > 80
    for header in ("channel", "result"):  # the columns left out at 80
        assert header not in narrow.split() and header in wide.split()
    summary = [line for line in wide.splitlines() if line.startswith("plan at ")]
    assert len(summary) == 1 and summary[0].endswith("cells would be written.")
    status = run_cli(sample, "--now", DAY2, "status", "--wide", columns=80).out
    assert "held back, why" in status and "secs" in status.split()


def render(columns: list[Col], rows: list[tuple[str, ...]], width: int = 80,
           wide: bool = False) -> str:
    screen = io.StringIO()
    console = Console(file=screen, width=width, color_system=None)
    console.print(table(console, "t", columns, rows, wide=wide))
    return screen.getvalue()


REASON = ("no consent to advertising: the consent column is not true for this customer, "
          "so the ad waits until it is")
ROWS = [("someone.with.a.rather.long.address@example-company.co.kr", "payment 2/3",
         "payment_reviews_compare_long_name", REASON),
        ("b@x.co", "payment 2/3", "payment_reviews", "quiet hours")]
COLUMNS = [Col("key", Kind.KEY), Col("flow step"), Col("template"), Col("reason", Kind.TEXT)]


def test_a_narrow_table_keeps_names_whole_folds_keys_and_wraps_reasons_at_words() -> None:
    shown = render(COLUMNS, ROWS)
    assert_fits(shown)
    lines = shown.splitlines()
    assert any("payment_reviews_compare_long_name" in line for line in lines)
    assert any("payment_reviews " in line for line in lines)
    # The key is folded, not cut: every character is there, in order.
    at = lines[3].index("no consent")
    first_row = lines[3:lines.index(next(line for line in lines if line.startswith("b@x")))]
    assert "".join(line.split()[0] for line in first_row if line[:1] != " ") == ROWS[0][0]
    # The reason wraps at spaces, several words to a line, and nothing is lost.
    pieces = [line[at:].strip() for line in first_row if line[at:].strip()]
    assert " ".join(pieces) == REASON
    assert all(len(piece.split()) >= 2 for piece in pieces[:-1]), pieces  # not one a line


def test_a_wide_table_puts_each_row_on_one_line() -> None:
    shown = render(COLUMNS, ROWS, wide=True, width=1000)
    assert all(REASON in line for line in shown.splitlines() if line.startswith("someone"))
    assert len([line for line in shown.splitlines() if line.strip()]) == 5  # title, 2 + 2


def test_columns_marked_wide_appear_only_with_wide() -> None:
    columns = [Col("key", Kind.KEY), Col("channel", wide=True), Col("reason", Kind.TEXT)]
    rows = [("a@x.co", "email", "quiet hours")]
    assert "channel" not in render(columns, rows) and "email" not in render(columns, rows)
    assert "channel" in render(columns, rows, wide=True)
