"""A column is typed in one pass: each distinct cell parsed once, equal cells sharing
the value, and the result is the one parsing cell by cell gives."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sheetcrm.errors import CellError
from sheetcrm.fields import FIELD_TYPES, make_parser, parse_column

SEOUL = ZoneInfo("Asia/Seoul")
CELLS = {
    "text": [" 파이썬 입문 ", "", "엑셀", "엑셀", "  "],
    "int": ["1", "007", "1,234", "", "1"],
    "number": ["₩12,000", "12.5", "15%", "", "12.5"],
    "bool": ["O", "X", "예", "", "TRUE", "O"],
    "date": ["2026-11-01", "2026. 6. 1.", "", "2026-11-01", "45000"],
    "datetime": ["2026-11-01 10:00", "", "2026. 6. 1. 오후 3:04:05", "2026-11-01 10:00"],
    "email": ["a@example.com", "b@example.com", "", "a@example.com"],
    "phone": ["010-1234-5678", "+82 10 1234 5678", "", "010-1234-5678"],
    "list": ["a, b", "", "a, b", "c"],
}


@pytest.mark.parametrize("type_", FIELD_TYPES)
def test_a_column_types_as_its_cells_one_by_one(type_: str) -> None:
    parse = make_parser(type_, column="열", tz=SEOUL)
    for cells in (CELLS[type_], CELLS[type_] * 5):  # mostly distinct, mostly repeated
        assert parse_column(parse, cells, type_) == [parse(cell) for cell in cells]


def test_equal_list_cells_do_not_share_a_list() -> None:
    parse = make_parser("list", column="열", tz=SEOUL)
    first, _blank, again, _c = parse_column(parse, CELLS["list"], "list")
    assert first == again and first is not again


@pytest.mark.parametrize(("type_", "bad"), [("int", "many"), ("email", "a@"),
                                            ("phone", "12"), ("date", "someday")])
def test_a_bad_cell_fails_the_column_as_it_fails_alone(type_: str, bad: str) -> None:
    parse = make_parser(type_, column="열", tz=SEOUL)
    with pytest.raises(CellError) as caught:
        parse_column(parse, [*CELLS[type_][:2], bad, "", *CELLS[type_] * 5], type_)
    assert f"'{bad}'" in str(caught.value)


def test_records_dicts_are_each_rows_own_though_they_share_their_keys() -> None:
    from sheetcrm.core.schema import read_records
    from sheetcrm.model import Snapshot
    from tests.test_unknown_cells import HEADER, make_config, row

    table = read_records(Snapshot(HEADER, [row(), row("b@x.com", paid="O", score="7")]),
                         make_config())
    a, b = table.records
    assert type(a.values) is dict and list(a.values) == list(b.values)
    assert a.values["email"] == "a@x.com" and b.values["score"] == 7
    a.settle("score", 3)
    a.values["extra"] = "x"
    assert (a.values["score"], b.values["score"]) == (3, 7) and "extra" not in b.values
    assert a.current == {"상태 태그": "", "오류": ""} and a.current is not b.current


def _phone_by_digits(text: str) -> bool:
    """What a phone cell is, said another way: +, digits and separators, 7 to 15 digits."""
    body = text[1:] if text.startswith("+") else text
    digits = sum(c in "0123456789" for c in body)
    return bool(body) and all(c in "0123456789 \t\n\r\f\v().-" for c in body) \
        and 7 <= digits <= 15


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="0123456789 +-().x\t", max_size=22), min_size=1,
                max_size=6))
def test_phone_cells_are_read_the_same_by_column_and_alone(cells: list[str]) -> None:
    parse = make_parser("phone", column="열", tz=SEOUL)
    alone = []
    for cell in cells:
        try:
            alone.append(parse(cell))
        except CellError:
            alone.append(CellError)
        text = cell.strip()
        assert (alone[-1] is not CellError) == (not text or _phone_by_digits(text)), cell
    if CellError in alone:
        with pytest.raises(CellError):
            parse_column(parse, cells, "phone")
    else:
        assert parse_column(parse, cells, "phone") == alone
