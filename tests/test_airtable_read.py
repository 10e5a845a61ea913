"""Reading an Airtable table: pages of 100 asking only the needed fields, the POST
form of long listings, views, the text of every Airtable value shape, and the record
id as the key.

The harness (the emulator on a virtual clock, the sample as an Airtable table) is
described in ``tests.support.airtable``.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pyairtable
import pytest

from sheetcrm.config import config_from_dict
from sheetcrm.fields import make_parser
from sheetcrm.model import CellUpdate
from sheetcrm.table.airtable import cell_text
from tests.support.airtable import (
    BASE,
    SEOUL,
    SIMPLE,
    TABLE,
    customers,
    from_config,
    make_config,
    open_table,
)
from tests.support.emulators.airtable import AirtableEmulator

# Every AirtableTable here paces on the virtual clock (the fixture is in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("virtual_time")


def test_pagination_over_260_records_asks_only_the_needed_fields(emu: AirtableEmulator) -> None:
    emu.add_table(BASE, TABLE, {**SIMPLE, "메모": "multilineText"},
                  [{**r, "메모": "not read"} for r in customers(260)])
    table = open_table(emu, ["이메일", "결제 여부", "결제 금액", "상태 태그"],
                       owned=["상태 태그"])
    snapshot = table.read()

    assert snapshot.header == ["이메일", "결제 여부", "결제 금액", "상태 태그"]
    assert len(snapshot.rows) == 260
    assert [row[0] for row in snapshot.rows] == [f"user{i:03d}@example.com" for i in range(260)]
    assert snapshot.rows[0] == ["user000@example.com", "TRUE", "99000", ""]
    assert snapshot.rows[1] == ["user001@example.com", "", "", ""]
    assert table.requests == 3
    pages = emu.requests
    assert [c.query["pageSize"] for c in pages] == [["100"]] * 3
    assert all(c.query["fields[]"] == snapshot.header for c in pages)
    assert "offset" not in pages[0].query
    assert pages[1].query["offset"] != pages[2].query["offset"]
    assert pages[2].at - pages[1].at >= 0.2 and pages[1].at - pages[0].at >= 0.2


def test_very_long_listing_goes_through_post_list_records(
        emu: AirtableEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    emu.add_table(BASE, TABLE, SIMPLE, customers(150))
    monkeypatch.setattr(pyairtable.Api, "MAX_URL_LENGTH", 50)
    snapshot = open_table(emu, ["이메일", "결제 여부"]).read()
    assert len(snapshot.rows) == 150
    assert [c.path.endswith("/listRecords") for c in emu.requests] == [True, True]
    assert emu.requests[0].json()["fields"] == ["이메일", "결제 여부"]
    assert emu.requests[1].json()["offset"]


def test_a_view_limits_reads_and_writes(emu: AirtableEmulator) -> None:
    emu.add_table(BASE, TABLE, SIMPLE, customers(30))
    emu.add_view(BASE, TABLE, "미결제", lambda fields: not fields.get("결제 여부"))
    table = open_table(emu, ["이메일", "상태 태그"], view="미결제", owned=["상태 태그"])
    snapshot = table.read()
    assert len(snapshot.rows) == 20
    assert all(c.query["view"] == ["미결제"] for c in emu.requests)
    report = table.write("이메일", [CellUpdate("user000@example.com", "상태 태그", "x"),
                                   CellUpdate("user001@example.com", "상태 태그", "y")])
    assert report.missing_keys == ["user000@example.com"]  # paid: not in the view
    assert report.rows_written == 1


def test_checkbox_and_empty_field_semantics(emu: AirtableEmulator) -> None:
    emu.add_table(BASE, TABLE, {
        "이메일": "email", "결제 여부": "checkbox", "메모": "multilineText",
        "결제 금액": "currency", "할인율": "percent", "메일 미열람": "number",
        "신청일": "date", "최근 접속": "dateTime", "강의": "singleSelect",
        "관심사": "multipleSelects", "추천인": "multipleRecordLinks",
        "추천인 이메일": "multipleLookupValues", "첨부": "multipleAttachments",
        "담당자": "formula", "아직 없음": "singleLineText",
    }, [
        {"이메일": "a@example.com", "결제 여부": True, "메모": "첫 줄\n둘째 줄",
         "결제 금액": 149000, "할인율": 0.15, "메일 미열람": 0, "신청일": "2026-11-01",
         "최근 접속": "2026-11-21T06:04:05.000Z", "강의": "엑셀 기초",
         "관심사": ["엑셀", "파이썬"], "추천인": ["rec00000000000099"],
         "추천인 이메일": ["b@example.com", "c@example.com"],
         "첨부": [{"id": "att1", "url": "https://x.example/a.pdf", "filename": "a.pdf"}],
         "담당자": {"specialValue": "NaN"}},
        {"이메일": "b@example.com", "결제 여부": False, "메모": "", "결제 금액": 12.5},
    ])
    columns = ["이메일", "결제 여부", "메모", "결제 금액", "할인율", "메일 미열람", "신청일",
               "최근 접속", "강의", "관심사", "추천인", "추천인 이메일", "첨부", "담당자",
               "아직 없음"]
    stored = emu.records(BASE, TABLE)[1]["fields"]
    assert stored == {"이메일": "b@example.com", "결제 금액": 12.5}  # false and "" absent

    snapshot = open_table(emu, columns).read()
    assert snapshot.header == columns  # a field empty in every record is still a column
    a, b = (dict(zip(columns, row, strict=True)) for row in snapshot.rows)
    assert a == {
        "이메일": "a@example.com", "결제 여부": "TRUE", "메모": "첫 줄\n둘째 줄",
        "결제 금액": "149000", "할인율": "0.15", "메일 미열람": "0", "신청일": "2026-11-01",
        "최근 접속": "2026-11-21T06:04:05.000Z", "강의": "엑셀 기초", "관심사": "엑셀, 파이썬",
        "추천인": "rec00000000000099", "추천인 이메일": "b@example.com, c@example.com",
        "첨부": "a.pdf", "담당자": "", "아직 없음": "",
    }
    assert b["결제 여부"] == "" and b["메모"] == "" and b["결제 금액"] == "12.5"

    # sheetcrm's typed fields read these texts as the Airtable values they came from.
    def parse(kind: str, text: str) -> Any:
        return make_parser(kind, column="c", tz=SEOUL)(text)

    assert parse("bool", a["결제 여부"]) is True and not parse("bool", b["결제 여부"])
    assert parse("number", a["결제 금액"]) == 149000.0 and parse("int", a["메일 미열람"]) == 0
    assert parse("date", a["신청일"]) == dt.date(2026, 11, 1)
    assert parse("datetime", a["최근 접속"]) == dt.datetime(2026, 11, 21, 15, 4, 5, tzinfo=SEOUL)
    assert parse("list", a["관심사"]) == ["엑셀", "파이썬"]


def test_cell_text_of_every_airtable_value_shape() -> None:
    assert cell_text(None) == "" and cell_text(True) == "TRUE" and cell_text(False) == "FALSE"
    assert cell_text(3) == "3" and cell_text(3.0) == "3" and cell_text(0.1) == "0.1"
    assert cell_text(1e20) == "1e+20" and cell_text(math.nan) == ""
    assert cell_text(["a", 2, None, ""]) == "a, 2"
    assert cell_text({"id": "usr1", "email": "o@x.com", "name": "운영자"}) == "운영자"
    assert cell_text({"text": "8801234"}) == "8801234"  # barcode
    assert cell_text({"state": "generated", "value": "요약", "isStale": False}) == "요약"
    assert cell_text({"label": "열기", "url": "https://x"}) == "열기"  # button
    assert cell_text({"error": "#ERROR!"}) == "#ERROR!"
    assert cell_text({"specialValue": "Infinity"}) == ""


def test_record_id_as_the_key(emu: AirtableEmulator, tmp_path: Path) -> None:
    emu.add_table(BASE, TABLE, SIMPLE, customers(3))
    config = make_config(tmp_path, emu, fields={"id": {"column": "_id"},
                                                 "email": {"column": "이메일"}}, key="id")
    table = from_config(config)
    snapshot = table.read()
    assert snapshot.header == ["_id", "이메일", "상태 태그"]
    ids = [row[0] for row in snapshot.rows]
    assert all(i.startswith("rec") for i in ids)
    assert emu.requests[0].query["fields[]"] == ["이메일", "상태 태그"]

    emu.table(BASE, TABLE).records.pop(0)  # deleted between read and write
    report = table.write("_id", [CellUpdate(i, "상태 태그", "태그") for i in ids])
    assert report.missing_keys == [ids[0]] and report.rows_written == 2
    assert [r["fields"].get("상태 태그") for r in emu.records(BASE, TABLE)] == ["태그", "태그"]


def test_without_a_key_rows_are_keyed_by_record_id(emu: AirtableEmulator,
                                                   tmp_path: Path) -> None:
    emu.add_table(BASE, TABLE, SIMPLE, customers(2))
    raw = {"table": {"backend": "airtable", "base": BASE, "table": TABLE, "endpoint": emu.url},
           "fields": {"email": {"column": "이메일", "type": "email"}},
           "writeback": {"tags": "상태 태그"}}
    config = config_from_dict(raw, {"AIRTABLE_TOKEN": "patTEST.token"},
                              path=tmp_path / "config.toml")
    assert config.table.key == "record_id" and config.key_column == "_id"
    snapshot = from_config(config).read()
    assert snapshot.header[0] == "_id"
    assert all(row[0].startswith("rec") for row in snapshot.rows)
