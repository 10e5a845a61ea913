"""A sheet is typed block by block of rows, and a run lets each block's rows go once
typed: the records are those of typing the whole sheet at once, whichever block a
bad cell, a blank or a repeated key falls in, and the rows read are gone after."""

from __future__ import annotations

import pytest

from sheetcrm.core.schema import read_records
from sheetcrm.model import Snapshot
from tests.test_unknown_cells import HEADER, make_config, row

# More rows than two blocks of typing hold, so that the third is a part block.
ROWS = 2 * 16384 + 7


def sheet() -> list[list[str]]:
    rows = [row(f"u{n}@x.com", paid="OX"[n % 2], score=str(n % 9),
                course=("엑셀", "파이썬 입문")[n % 2]) for n in range(ROWS)]
    rows[5] = row("bad@x.com", score="many")  # first block
    rows[16384 + 3] = row("late@x.com", applied="someday")  # second block
    rows[ROWS - 2] = row("")  # blank key, in the last block
    rows[ROWS - 1] = row("u1@x.com")  # the same key as a row of the first block
    return rows


def picture(rows: Snapshot) -> list[tuple[object, ...]]:
    table = read_records(rows, make_config())
    return [(r.line, r.key, dict(r.values), dict(r.current), list(r.errors), dict(r.unknown))
            for r in table.records] + [(p.line, p.key, p.message) for p in table.problems]


def test_typing_by_blocks_and_letting_rows_go_gives_the_records_of_the_whole_sheet() -> None:
    whole = Snapshot(HEADER, sheet())
    expected = picture(whole)
    assert len(whole.rows) == ROWS  # typing without let_go keeps the rows

    snapshot = Snapshot(HEADER, sheet(), lines=[n + 3 for n in range(ROWS)])
    table = read_records(snapshot, make_config(), let_go=True)
    assert snapshot.rows == [] and snapshot.lines is None
    got = [(r.line - 1, r.key, dict(r.values), dict(r.current), list(r.errors),
            dict(r.unknown)) for r in table.records]
    got += [(p.line - 1, p.key, p.message) for p in table.problems]
    assert got == expected

    by_key = {r.key: r for r in table.records}
    assert "score" in by_key["bad@x.com"].unknown and by_key["bad@x.com"].line == 5 + 3
    assert "applied_at" in by_key["late@x.com"].unknown
    assert by_key["late@x.com"].line == 16384 + 3 + 3
    assert {p.key for p in table.problems} == {"", "u1@x.com"}
    assert by_key["u3@x.com"].errors == [] and by_key["u3@x.com"].ok


def test_a_clean_row_that_gets_an_error_gets_a_list_of_its_own() -> None:
    from sheetcrm.model import Plan

    a, b = read_records(Snapshot(HEADER, [row("a@x.com"), row("b@x.com")]),
                        make_config()).records
    plan = Plan(now=None, rows_read=2, records=[a, b], tags={})  # type: ignore[arg-type]
    plan.row_error(a, "boom")
    assert a.errors == ["boom"] and b.errors == [] and b.ok and not a.ok
    with pytest.raises(TypeError):  # the list clean rows share cannot be filled
        b.errors.append("x")


def test_writeback_cells_that_repeat_are_held_once_and_read_as_written() -> None:
    tags = ["결제 대기", "고득점, 우수 결제자", "결제 대기", "결제 대기", "", "결제 대기"]
    rows = [row(f"u{n}@x.com", tags="".join(list(text))) for n, text in enumerate(tags)]
    records = read_records(Snapshot(HEADER, rows), make_config()).records
    cells = [r.current["상태 태그"] for r in records]
    assert cells == tags
    assert cells[0] is cells[2] is cells[3]  # one string, not one a row


def test_rows_let_go_a_block_at_a_time_keep_their_numbers_without_a_line_list() -> None:
    snapshot = Snapshot(["a"], [[str(n)] for n in range(2 * 16384 + 5)])  # lines: None
    blocks = list(snapshot.blocks(16384, let_go=True))
    assert [len(rows) for rows, _lines in blocks] == [16384, 16384, 5]
    assert all(len(rows) == len(lines) for rows, lines in blocks)
    assert [n for _rows, lines in blocks for n in lines] == list(range(2, 2 * 16384 + 7))
