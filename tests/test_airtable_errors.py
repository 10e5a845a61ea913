"""What stops an Airtable run: a bad token (never shown), a missing table or base, a
missing view, an unreachable endpoint; and Korean table names and table ids.

The harness (the emulator on a virtual clock, the sample as an Airtable table) is
described in ``tests.support.airtable``.
"""

from __future__ import annotations

import pytest

from sheetcrm.errors import BackendError
from sheetcrm.http import HttpOptions
from sheetcrm.model import CellUpdate
from sheetcrm.table.airtable import AirtableTable
from tests.support.airtable import BASE, SIMPLE, TABLE, TOKEN, customers, open_table
from tests.support.emulators.airtable import AirtableEmulator

# Every AirtableTable here paces on the virtual clock (the fixture is in tests/conftest.py).
pytestmark = pytest.mark.usefixtures("virtual_time")


def test_bad_token_missing_table_and_missing_base(emu: AirtableEmulator) -> None:
    emu.add_table(BASE, TABLE, SIMPLE, customers(2))
    bad = AirtableTable(token="patWrong.hidden", base=BASE, table=TABLE, columns=["이메일"],
                        http=HttpOptions(endpoint=emu.url))
    with pytest.raises(BackendError) as caught:
        bad.read()
    assert "401 AUTHENTICATION_REQUIRED" in str(caught.value)
    assert "hidden" not in str(caught.value) + repr(bad)
    assert emu.requests[0].status == 401 and len(emu.requests) == 1  # not retried

    with pytest.raises(BackendError, match=r"403 INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND.*"
                                           r"check the table name or id '고객'"):
        open_table(emu, ["이메일"], table="고객").read()
    with pytest.raises(BackendError, match="403"):
        AirtableTable(token=TOKEN, base="appUnknownBase000", table=TABLE, columns=["이메일"],
                      http=HttpOptions(endpoint=emu.url)).read()
    with pytest.raises(BackendError, match='VIEW_NAME_NOT_FOUND: Could not find view "없음"'):
        open_table(emu, ["이메일"], view="없음").read()


def test_unreachable_endpoint(emu: AirtableEmulator) -> None:
    url = emu.url
    emu.stop()
    table = AirtableTable(token=TOKEN, base=BASE, table=TABLE, columns=["이메일"],
                          http=HttpOptions(endpoint=url))
    with pytest.raises(BackendError, match="cannot connect to http://127.0.0.1"):
        table.read()


def test_a_korean_table_name_and_a_table_id(emu: AirtableEmulator) -> None:
    emulated = emu.add_table(BASE, "고객 명단 (2026)", SIMPLE, customers(3))
    by_name = open_table(emu, ["이메일", "상태 태그"], table="고객 명단 (2026)")
    assert len(by_name.read().rows) == 3
    assert emu.requests[0].path == (f"/v0/{BASE}/%EA%B3%A0%EA%B0%9D%20%EB%AA%85%EB%8B%A8"
                                 "%20%282026%29")
    by_name.write("이메일", [CellUpdate("user001@example.com", "상태 태그", "이탈 가능")])
    by_id = open_table(emu, ["이메일", "상태 태그"], table=emulated.id)
    assert by_id.read().rows[1] == ["user001@example.com", "이탈 가능"]
    assert by_id.source == f"Airtable base {BASE} table {emulated.id!r}"
