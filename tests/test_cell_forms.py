"""Values as Korean operators type them: 동의/미동의, V, won amounts as Korean Excel
saves them, and day-month-year dates read in the order the field says (never guessed).

Each malformed form is one line naming the column, the value and the accepted forms.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sheetcrm.config import config_from_dict
from sheetcrm.core.schema import read_records
from sheetcrm.errors import CellError, ConfigError
from sheetcrm.fields import make_parser
from sheetcrm.model import Snapshot

SEOUL = ZoneInfo("Asia/Seoul")


def parse(type_: str, raw: str, order: str | None = None) -> object:
    return make_parser(type_, column="열", tz=SEOUL, date_order=order,
                       setting="fields.day.date_order")(raw)


def refused(type_: str, raw: str, order: str | None = None) -> str:
    with pytest.raises(CellError) as caught:
        parse(type_, raw, order)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(("raw", "value"), [
    ("동의", True), ("미동의", False), ("비동의", False), ("V", True), ("v", True),
    ("예", True), ("아니요", False), ("아니오", False), ("O", True), ("X", False),
])
def test_consent_marks_as_typed_are_read(raw: str, value: bool) -> None:
    assert parse("bool", raw) is value


def test_a_blank_consent_cell_is_no_value_as_every_blank_is() -> None:
    assert parse("bool", "") is None


@pytest.mark.parametrize("raw", ["동의함?", "VV", "미동", "동의 X"])
def test_a_bool_that_is_none_of_them_names_the_column_the_value_and_the_forms(raw: str) -> None:
    message = refused("bool", raw)
    assert message.startswith(f"열: '{raw}' is not yes or no, like ")
    assert "동의/미동의" in message and "예/아니요" in message and "V" in message


@pytest.mark.parametrize(("raw", "value"), [
    ("\\39,000", 39000.0),  # ₩ from Korean Excel, saved as CP949 (0x5C) and read back
    ("\\ 39,000", 39000.0),
    ("-\\1,000", -1000.0),
    ("₩39,000", 39000.0),
    ("￦39,000", 39000.0),
    ("39,000원", 39000.0),
    ("39,000 원", 39000.0),
    ("39,000", 39000.0),
    ("1,234,567", 1234567.0),
])
def test_won_amounts_as_excel_and_people_write_them(raw: str, value: float) -> None:
    assert parse("number", raw) == value


@pytest.mark.parametrize("raw", ["\\39,0000", "\\", "39,000달러", "₩₩39,000", "39.000,5원",
                                 "\\39,000원원"])
def test_a_malformed_amount_names_the_column_the_value_and_the_forms(raw: str) -> None:
    message = refused("number", raw)
    assert message.startswith(f"열: '{raw}' is not a number like ")
    assert "₩12,000" in message and "\\12,000" in message and "12,000원" in message


@pytest.mark.parametrize(("raw", "order", "value"), [
    ("6/1/2026", "M/D/YYYY", dt.date(2026, 6, 1)),
    ("6/1/2026", "D/M/YYYY", dt.date(2026, 1, 6)),
    ("12/31/2026", "M/D/YYYY", dt.date(2026, 12, 31)),
    ("31/12/2026", "D/M/YYYY", dt.date(2026, 12, 31)),
    ("06/01/2026", "M/D/YYYY", dt.date(2026, 6, 1)),
    ("6.1.2026", "D/M/YYYY", dt.date(2026, 1, 6)),
    ("6/1/2026 3:04 PM", "M/D/YYYY", dt.date(2026, 6, 1)),
    ("2026-06-01", "D/M/YYYY", dt.date(2026, 6, 1)),  # year-first forms are as before
    ("2026. 6. 1.", "M/D/YYYY", dt.date(2026, 6, 1)),
])
def test_day_and_month_first_dates_read_in_the_fields_order(raw: str, order: str,
                                                             value: dt.date) -> None:
    assert parse("date", raw, order) == value


def test_datetimes_day_and_month_first_read_in_the_fields_order() -> None:
    assert parse("datetime", "6/1/2026 15:04", "M/D/YYYY") == dt.datetime(
        2026, 6, 1, 15, 4, tzinfo=SEOUL)
    assert parse("datetime", "6/1/2026 3:04:05 PM", "D/M/YYYY") == dt.datetime(
        2026, 1, 6, 15, 4, 5, tzinfo=SEOUL)


@pytest.mark.parametrize("raw", ["6/1/2026", "12/31/2026", "6/1/2026 15:04", "6-1-2026"])
def test_without_date_order_such_a_date_is_an_error_naming_the_setting(raw: str) -> None:
    message = refused("date", raw)
    assert message.startswith(f"열: '{raw}' is not a date like 2025-06-01")
    assert 'needs fields.day.date_order set to "M/D/YYYY" (month first) or "D/M/YYYY"' in message


@pytest.mark.parametrize(("raw", "order"), [
    ("13/1/2026", "M/D/YYYY"), ("1/13/2026", "D/M/YYYY"), ("2/30/2026", "M/D/YYYY"),
    ("6/1/26", "M/D/YYYY"), ("6/1/2026x", "M/D/YYYY"), ("6/1-2026", "D/M/YYYY"),
])
def test_an_impossible_day_month_date_names_the_order_it_was_read_in(raw: str, order: str) -> None:
    message = refused("date", raw, order)
    assert message.startswith(f"열: '{raw}' is not a date like ")
    assert f"({order})" in message and "date_order" not in message


def config_with(field: dict[str, str]) -> object:
    return config_from_dict(
        {"table": {"path": "x.csv", "key": "email"},
         "fields": {"email": {"column": "이메일"}, "가입일": field}},
        {}, path=Path("/tmp/config.toml"))


def test_date_order_is_a_field_setting_the_sheet_is_read_with() -> None:
    config = config_with({"column": "가입일", "type": "date", "date_order": "M/D/YYYY"})
    table = read_records(Snapshot(["이메일", "가입일"], [["a@x.com", "6/1/2026"]]),
                         config)  # type: ignore[arg-type]
    assert table.records[0].values["가입일"] == dt.date(2026, 6, 1)


def test_without_date_order_the_rows_error_names_the_fields_setting() -> None:
    config = config_with({"column": "가입일", "type": "date"})
    table = read_records(Snapshot(["이메일", "가입일"], [["a@x.com", "6/1/2026"]]),
                         config)  # type: ignore[arg-type]
    (error,) = table.records[0].errors
    assert error.endswith('a date like 6/1/2026 needs fields."가입일".date_order set to '
                          '"M/D/YYYY" (month first) or "D/M/YYYY" (day first)')


@pytest.mark.parametrize(("field", "words"), [
    ({"column": "가입일", "type": "date", "date_order": "MDY"},
     "fields.\"가입일\".date_order: 'MDY' is invalid: Input should be 'M/D/YYYY' or 'D/M/YYYY'"),
    ({"column": "가입일", "type": "text", "date_order": "M/D/YYYY"},
     "date_order is for date and datetime fields"),
])
def test_a_wrong_date_order_is_a_config_error(field: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_with(field)
    assert words in str(caught.value)
