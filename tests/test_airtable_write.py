"""Writing an Airtable table: PATCHes of at most 10 records found by key at write
time, blanks and typecast, a 422 part way, a lost answer retried, and fields that
cannot be written.

The harness (the emulator on a virtual clock, the sample as an Airtable table) is
described in ``tests.support.airtable``.
"""

from __future__ import annotations

import pytest

from sheetcrm.errors import BackendError
from sheetcrm.model import CellUpdate
from sheetcrm.table.airtable import AirtableWriteError
from tests.support.airtable import BASE, SIMPLE, TABLE, customers, open_table
from tests.support.emulators.airtable import AirtableEmulator

# Every AirtableTable here paces on the virtual clock (the fixture is in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("virtual_time")


def test_25_record_write_is_split_into_3_requests(emu: AirtableEmulator) -> None:
    emu.add_table(BASE, TABLE, SIMPLE, customers(40))
    table = open_table(emu, ["이메일", "상태 태그"], owned=["상태 태그"])
    updates = [CellUpdate(f"user{i:03d}@example.com", "상태 태그", f"결제 대기 {i}")
               for i in range(25)]
    report = table.write("이메일", updates)

    assert (report.rows_written, report.cells_written) == (25, 25)
    assert report.missing_keys == report.ambiguous_keys == []
    assert report.requests == 4 == table.requests  # one page of keys + 3 PATCHes
    relist, *patches = emu.requests
    assert relist.method == "GET" and relist.query["fields[]"] == ["이메일", "상태 태그"]
    assert [c.records_sent for c in patches] == [10, 10, 5]
    assert all(c.method == "PATCH" and c.json()["typecast"] is True for c in patches)
    assert patches[0].json()["records"][0]["fields"] == {"상태 태그": "결제 대기 0"}
    assert emu.by(BASE, TABLE, "이메일")["user024@example.com"]["상태 태그"] == "결제 대기 24"

    again = table.write("이메일", updates)  # nothing differs any more
    assert again.rows_written == 0 and again.requests == 1


def test_writes_find_records_by_key_at_write_time(emu: AirtableEmulator) -> None:
    emulated = emu.add_table(BASE, TABLE, SIMPLE, customers(5))
    table = open_table(emu, ["이메일", "상태 태그"], owned=["상태 태그"])
    table.read()
    emulated.records.reverse()  # re-sorted
    emulated.records[0]["fields"]["이메일"] = "renamed@example.com"  # was user004
    emu.insert(emulated, {"이메일": "user001@example.com"})  # now twice
    emu.insert(emulated, {"이메일": "   "})  # a blank key is nobody's
    updates = [CellUpdate(f"user{i:03d}@example.com", "상태 태그", f"t{i}") for i in range(5)]
    report = table.write("이메일", updates)

    assert report.missing_keys == ["user004@example.com"]
    assert report.ambiguous_keys == ["user001@example.com"]
    by_key = emu.by(BASE, TABLE, "이메일")
    assert {k: v.get("상태 태그") for k, v in by_key.items() if k.startswith("user")} == {
        "user000@example.com": "t0", "user001@example.com": None,
        "user002@example.com": "t2", "user003@example.com": "t3"}
    assert "상태 태그" not in by_key["renamed@example.com"]


def test_blank_value_clears_and_typecast_fills_select_and_date(emu: AirtableEmulator) -> None:
    emu.add_table(BASE, TABLE, {"이메일": "email", "상태 태그": "singleSelect",
                                "다음 연락": "date", "오류": "multilineText"},
                  [{"이메일": "a@example.com", "오류": "old error"}])
    table = open_table(emu, ["이메일", "상태 태그", "다음 연락", "오류"])
    report = table.write("이메일", [CellUpdate("a@example.com", "상태 태그", "결제 대기"),
                                   CellUpdate("a@example.com", "다음 연락", "2026-11-25"),
                                   CellUpdate("a@example.com", "오류", "")])
    assert report.cells_written == 3
    assert emu.requests[-1].json()["records"][0]["fields"]["오류"] is None
    fields = emu.records(BASE, TABLE)[0]["fields"]
    assert fields == {"이메일": "a@example.com", "상태 태그": "결제 대기",
                      "다음 연락": "2026-11-25"}
    assert emu.table(BASE, TABLE).choices["상태 태그"] == ["결제 대기"]


def test_a_422_part_way_reports_what_was_written(emu: AirtableEmulator) -> None:
    emu.add_table(BASE, TABLE, SIMPLE, customers(30))
    table = open_table(emu, ["이메일", "상태 태그"], owned=["상태 태그"])
    emu.fail(422, method="PATCH", skip=2)
    updates = [CellUpdate(f"user{i:03d}@example.com", "상태 태그", "x") for i in range(30)]
    with pytest.raises(AirtableWriteError) as caught:
        table.write("이메일", updates)
    assert "422 INVALID_VALUE_FOR_COLUMN" in str(caught.value)
    assert "20 of 30 records were written" in str(caught.value)
    assert caught.value.report.rows_written == 20 and caught.value.report.requests == 4
    assert len(emu.requests_where("PATCH")) == 3  # a 422 is not retried

    report = table.write("이메일", updates)  # the next run writes only the rest
    assert report.rows_written == 10 and [c.records_sent for c in emu.requests[-1:]] == [10]


def test_a_lost_answer_is_retried_and_the_write_lands_once(emu: AirtableEmulator) -> None:
    emu.add_table(BASE, TABLE, SIMPLE, customers(3))
    table = open_table(emu, ["이메일", "상태 태그"], owned=["상태 태그"])
    emu.fail(502, method="PATCH", after_apply=True)  # applied, but the answer is a 502
    report = table.write("이메일", [CellUpdate("user000@example.com", "상태 태그", "x")])
    assert report.rows_written == 1
    assert [c.status for c in emu.requests_where("PATCH")] == [502, 200]
    assert emu.by(BASE, TABLE, "이메일")["user000@example.com"]["상태 태그"] == "x"


def test_writing_a_computed_field_is_a_clear_error(emu: AirtableEmulator) -> None:
    emu.add_table(BASE, TABLE, {"이메일": "email", "상태 태그": "formula"},
                  [{"이메일": "a@example.com"}])
    with pytest.raises(BackendError, match="cannot accept a value because the field is computed"):
        open_table(emu, ["이메일", "상태 태그"]).write(
            "이메일", [CellUpdate("a@example.com", "상태 태그", "x")])


def test_a_write_to_a_field_the_table_lacks_names_it_and_its_type(emu: AirtableEmulator) -> None:
    emu.add_table(BASE, TABLE, SIMPLE, customers(2))
    table = open_table(emu, ["이메일", "상태 태그", "오류"], owned=["상태 태그"])
    with pytest.raises(BackendError, match=r"no field '오류'.*'오류' \(single line text\)"):
        table.write("이메일", [CellUpdate("user000@example.com", "오류", "x")])
    assert not emu.requests_where("PATCH")
    with pytest.raises(BackendError, match="the key field '없는 키' is not in the table"):
        table.write("없는 키", [CellUpdate("user000@example.com", "상태 태그", "x")])
