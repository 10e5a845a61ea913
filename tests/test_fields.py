"""Typed cells: every accepted form, every rejected form, and what the error says."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from sheetcrm import fields
from sheetcrm.errors import CellError
from sheetcrm.fields import FIELD_TYPES, make_parser

SEOUL = ZoneInfo("Asia/Seoul")
UTC = dt.UTC


def parse(type_: str, raw: str, tz: dt.tzinfo = SEOUL) -> object:
    return make_parser(type_, column="열", tz=tz)(raw)


def seoul(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SEOUL)


def serial(days: float) -> dt.datetime:
    """The reference definition of a Sheets serial number."""
    return dt.datetime(1899, 12, 30) + dt.timedelta(days=days)


ACCEPTED = [
    # text
    ("text", "  hello  ", "hello"),
    ("text", "=SUM(A1)", "=SUM(A1)"),
    # int
    ("int", "42", 42),
    ("int", "1,234", 1234),
    ("int", "-1,234,567", -1234567),
    ("int", "007", 7),
    ("int", "-3", -3),
    ("int", "+5", 5),
    ("int", "3.00", 3),
    # number
    ("number", "12.5", 12.5),
    ("number", "1,234.5", 1234.5),
    ("number", "₩12,000", 12000.0),
    ("number", "12,000원", 12000.0),
    ("number", "12000 원", 12000.0),
    ("number", "$5", 5.0),
    ("number", "-₩1,000", -1000.0),
    ("number", "15%", 15.0),  # as displayed, not 0.15
    ("number", "-3", -3.0),
    ("number", ".5", 0.5),
    ("number", "1e3", 1000.0),
    # email: returned as written
    ("email", " Kim.Minji@Example.co.kr ", "Kim.Minji@Example.co.kr"),
    ("email", "a+tag@b.io", "a+tag@b.io"),
    # phone: text, leading zeros kept
    ("phone", "010-1234-5678", "010-1234-5678"),
    ("phone", "01012345678", "01012345678"),
    ("phone", "+82 10 1234 5678", "+82 10 1234 5678"),
    ("phone", "(02) 123-4567", "(02) 123-4567"),
    ("phone", "02.123.4567", "02.123.4567"),
    # list
    ("list", "a, b ,c", ["a", "b", "c"]),
    ("list", "vip; 재구매\n후기", ["vip", "재구매", "후기"]),
    ("list", "a,, ,b,", ["a", "b"]),
    ("list", "solo", ["solo"]),
]


@pytest.mark.parametrize(("type_", "raw", "expected"), ACCEPTED)
def test_accepted(type_: str, raw: str, expected: object) -> None:
    value = parse(type_, raw)
    assert value == expected
    assert type(value) is type(expected)


TRUE = ["TRUE", "true", "True", "O", "o", "○", "⭕", "⭕\ufe0f", "예", "네", "Y", "y", "yes"]
TRUE += ["YES", "1", "✓", "✔", "✔\ufe0f", "☑", "✅", "참", " O "]
FALSE = ["FALSE", "false", "X", "x", "×", "❌", "✗", "✘", "아니오", "아니요", "N", "n", "no", "0"]
FALSE += ["☐", "거짓"]


@pytest.mark.parametrize("raw", TRUE)
def test_bool_true(raw: str) -> None:
    assert parse("bool", raw) is True


@pytest.mark.parametrize("raw", FALSE)
def test_bool_false(raw: str) -> None:
    assert parse("bool", raw) is False


DATES = [
    "2025-06-01",
    "2025. 6. 1.",
    "2025. 6. 1",
    "2025.6.1",
    "2025.06.01",
    "2025/06/01",
    "2025/6/1",
    "2025-6-1",
    "2025년 6월 1일",
    "2025년6월1일",
    "2025. 6. 1 (일)",
    "2025년 6월 1일 일요일",
    "20250601",
    "2025-06-01T10:00:00",
    "2025-06-01 23:59",
    "2025-06-01T10:00:00+09:00",
    "2025-05-31T15:00:00Z",  # midnight in Seoul
    "2025. 6. 1. 오후 3:04:05",
    "45809",  # Sheets serial
    "45809.99",
]


@pytest.mark.parametrize("raw", DATES)
def test_date_forms(raw: str) -> None:
    assert parse("date", raw) == dt.date(2025, 6, 1)


def test_date_offset_is_converted_to_the_timezone() -> None:
    assert parse("date", "2025-06-01T23:30:00Z") == dt.date(2025, 6, 2)
    assert parse("date", "2025-06-01T23:30:00Z", UTC) == dt.date(2025, 6, 1)


@pytest.mark.parametrize("days", [10000, 45808, 45809, 60000, 2958465])
def test_serial_dates(days: int) -> None:
    assert parse("date", str(days)) == serial(days).date()
    assert parse("date", f"{days}.5") == serial(days).date()


def test_serial_45808_is_computed_from_the_sheets_epoch() -> None:
    # The Sheets epoch is 1899-12-30, so 45808 is 2025-05-31 and 45809 is 2025-06-01.
    assert parse("date", "45808") == dt.date(1899, 12, 30) + dt.timedelta(45808)
    assert parse("date", "45808") == dt.date(2025, 5, 31)


DATETIMES = [
    ("2025-06-01T15:04:05+09:00", seoul(2025, 6, 1, 15, 4, 5)),
    ("2025-06-01T06:04:05Z", seoul(2025, 6, 1, 15, 4, 5)),
    ("2025-06-01T06:04:05+00:00", seoul(2025, 6, 1, 15, 4, 5)),
    ("2025-06-01 15:04", seoul(2025, 6, 1, 15, 4)),
    ("2025-06-01T15:04", seoul(2025, 6, 1, 15, 4)),
    ("2025-06-01 15:04:05.250", seoul(2025, 6, 1, 15, 4, 5, 250000)),
    ("2025-06-01", seoul(2025, 6, 1)),
    ("2025. 6. 1.", seoul(2025, 6, 1)),
    ("2025. 6. 1. 오후 3:04:05", seoul(2025, 6, 1, 15, 4, 5)),
    ("2025. 6. 1. 오전 9:00", seoul(2025, 6, 1, 9, 0)),
    ("2025. 6. 1 오전 9:00:00", seoul(2025, 6, 1, 9, 0)),
    ("2025. 6. 1. 오전 12:30", seoul(2025, 6, 1, 0, 30)),
    ("2025. 6. 1. 오후 12:30", seoul(2025, 6, 1, 12, 30)),
    ("2025. 6. 1. 15:04:05", seoul(2025, 6, 1, 15, 4, 5)),
    ("2025/06/01 15:04", seoul(2025, 6, 1, 15, 4)),
    ("2025/6/1 3:04 PM", seoul(2025, 6, 1, 15, 4)),
    ("2025-6-1 15:04", seoul(2025, 6, 1, 15, 4)),
    ("2025년 6월 1일 오후 3:04", seoul(2025, 6, 1, 15, 4)),
    ("45809", seoul(2025, 6, 1)),
    ("45809.5", seoul(2025, 6, 1, 12)),
    ("45809.627835648", seoul(2025, 6, 1, 15, 4, 5)),  # rounded to the millisecond
]


@pytest.mark.parametrize(("raw", "expected"), DATETIMES)
def test_datetime_forms(raw: str, expected: dt.datetime) -> None:
    value = parse("datetime", raw)
    assert value == expected
    assert value.tzinfo is SEOUL


def test_datetime_naive_text_is_wall_time_in_the_timezone() -> None:
    assert parse("datetime", "2025-06-01 15:04", UTC) == dt.datetime(2025, 6, 1, 15, 4, tzinfo=UTC)
    assert parse("datetime", "2025-06-01T15:04:05+09:00", UTC) == dt.datetime(
        2025, 6, 1, 6, 4, 5, tzinfo=UTC
    )


REJECTED = [
    ("int", ["1.5", "abc", "1,23", "1_000", "٣", "12개", "1e3", "--1"]),
    ("number", ["abc", "nan", "inf", "1,23", "₩", "1.2.3", "1_000", "--5", "12 kg"]),
    ("bool", ["maybe", "yes!", "2", "OX", "ㅇ", "-"]),
    ("date", ["abc", "2025-02-30", "2025. 2. 30.", "2025/13/01", "2025년 2월 30일"]),
    ("date", ["2025-06", "2025", "9999", "45808.5.1", "2025/6.1", "06/01/2025", "2958466"]),
    ("date", ["2025-06-01 25:00", "2025. 6. 1. 오후 13:00"]),
    ("datetime", ["abc", "2025-02-30 10:00", "2025-06-01 25:00", "2025. 6. 1. 오후 13:00"]),
    ("datetime", ["2025. 6. 1. 오전 0:30", "2025-06-01 10:61", "오후 3:04", "15:04", "2025"]),
    ("email", ["abc", "a@b", "@b.com", "a@.com", "a@b.", "a b@c.com", "a@b@c.com"]),
    ("email", ["Kim <kim@example.com>", "a@b..com", "a@b.com, c@d.com"]),
    ("phone", ["12345", "123456", "abc", "010-1234-567a", "1234567890123456", "10+1234567"]),
]


@pytest.mark.parametrize(
    ("type_", "raw"), [(type_, raw) for type_, raws in REJECTED for raw in raws]
)
def test_rejected(type_: str, raw: str) -> None:
    with pytest.raises(CellError) as caught:
        parse(type_, raw)
    error = caught.value
    assert error.column == "열"
    assert error.value == raw
    assert error.expected == fields.EXPECTED[type_]
    assert raw in str(error) and "열" in str(error)


def test_expected_names_accepted_forms() -> None:
    assert "2025-06-01" in fields.EXPECTED["date"]
    assert "2025. 6. 1." in fields.EXPECTED["date"]
    assert "오후" in fields.EXPECTED["datetime"]
    assert "O/X" in fields.EXPECTED["bool"]


def test_cell_error_keeps_the_raw_text_unstripped() -> None:
    with pytest.raises(CellError) as caught:
        parse("int", " 1.5 ")
    assert caught.value.value == " 1.5 "


@pytest.mark.parametrize("type_", FIELD_TYPES)
@pytest.mark.parametrize("raw", ["", "   ", "\t\n", "\u3000"])
def test_blank_is_none(type_: str, raw: str) -> None:
    assert parse(type_, raw) is None


def test_unknown_type_lists_valid_types() -> None:
    with pytest.raises(ValueError, match="unknown field type 'integer'") as caught:
        make_parser("integer", column="c", tz=SEOUL)
    assert all(name in str(caught.value) for name in FIELD_TYPES)


def test_phone_keeps_leading_zeros() -> None:
    assert parse("phone", "01012345678") == "01012345678"
    assert parse("phone", " 010-0000-0001 ") == "010-0000-0001"


def test_list_returns_a_new_list_each_time() -> None:
    parser = make_parser("list", column="c", tz=SEOUL)
    first = parser("a,b")
    first.append("c")
    assert parser("a,b") == ["a", "b"]


@pytest.mark.parametrize("type_", ["int", "number", "bool", "date", "datetime"])
def test_memo_does_not_change_results(type_: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cells = {
        "int": ["1", "1,234", "", "7"],
        "number": ["1.5", "₩12,000", "15%", ""],
        "bool": ["O", "X", "TRUE", " "],
        "date": ["2025-06-01", "2025. 6. 1.", "45809", ""],
        "datetime": ["2025-06-01 15:04", "2025. 6. 1. 오후 3:04:05", "2025-06-01T06:04Z"],
    }[type_] * 3
    monkeypatch.setattr(fields, "MEMO_LIMIT", 2)  # forces the memo to be cleared too
    memoised = make_parser(type_, column="c", tz=SEOUL)
    for raw in cells:
        fresh = make_parser(type_, column="c", tz=SEOUL)
        assert memoised(raw) == fresh(raw)


def test_memo_does_not_remember_errors() -> None:
    parser = make_parser("bool", column="c", tz=SEOUL)
    for _ in range(2):
        with pytest.raises(CellError):
            parser("maybe")


def test_parsers_of_different_columns_are_independent() -> None:
    seoul_parser = make_parser("date", column="a", tz=SEOUL)
    utc_parser = make_parser("date", column="b", tz=UTC)
    raw = "2025-06-01T23:30:00Z"
    assert (seoul_parser(raw), utc_parser(raw)) == (dt.date(2025, 6, 2), dt.date(2025, 6, 1))


# Exhaustive over a sample of days rather than property-based: no extra dependency.
SAMPLE_DAYS = [dt.date(1928, 1, 1) + dt.timedelta(days=d) for d in range(0, 40_000, 37)]
SAMPLE_DAYS += [dt.date(2024, 2, 29), dt.date(2025, 12, 31), dt.date(9999, 12, 31)]


def test_every_date_form_round_trips() -> None:
    parser = make_parser("date", column="c", tz=SEOUL)
    for day in SAMPLE_DAYS:
        forms = [
            day.isoformat(),
            f"{day.year}. {day.month}. {day.day}.",
            f"{day.year}/{day.month:02d}/{day.day:02d}",
            f"{day.year}년 {day.month}월 {day.day}일",
            str((day - dt.date(1899, 12, 30)).days),
        ]
        assert [parser(raw) for raw in forms] == [day] * len(forms), forms


@pytest.mark.parametrize("number", [0, 7, -7, 999, 1000, -1000, 1234567, -(10**12) - 1])
def test_int_with_thousands_separators_round_trips(number: int) -> None:
    assert parse("int", f"{number:,}") == number
    assert parse("number", f"{number:,}") == float(number)
