"""The Sheets emulator answers as Google answered.

Each expectation here is written by hand from a request and Google's answer recorded
in gspread's test cassettes (repository burnash/gspread, tests/cassettes; the test
named in each docstring): the same request goes over HTTP to ``SheetsEmulator`` on a
fresh spreadsheet like the recordings' (one sheet, 'Sheet1', 1000 x 26, en_US), and
the answer must match field for field. What the backend relies on (ranges, counts,
rendering, errors, rows moving) is pinned here rather than through the backend.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.support.emulators.sheets import SheetsEmulator

BOOK = "1qFopcWEGi_JqeOGvSs93SyFdsSI8J30NzrX92_HZBR0"


class Api:
    """Plain HTTP calls to the emulator's Sheets API, as a client sends them."""

    def __init__(self, emu: SheetsEmulator) -> None:
        self.emu = emu
        token = "ya29.emulator-test"
        emu.tokens[token] = ("tester@example.com", time.time() + 3600)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> tuple[int, Any]:
        answer = self.session.request(method, f"{self.emu.url}/v4/spreadsheets/{BOOK}{path}",
                                      json=body, params=params or None, timeout=10)
        return answer.status_code, answer.json()

    def values(self, ref: str, suffix: str = "") -> str:
        return "/values/" + quote(ref, safe="") + suffix

    def get(self, ref: str, **params: Any) -> Any:
        status, answer = self.call("GET", self.values(ref), **params)
        assert status == 200, answer
        return answer

    def put(self, ref: str, values: Any, option: str = "RAW", **body: Any) -> tuple[int, Any]:
        return self.call("PUT", self.values(ref), {"values": values, **body},
                         valueInputOption=option)

    def append(self, ref: str, values: Any, **body: Any) -> Any:
        status, answer = self.call("POST", self.values(ref, ":append"),
                                   {"values": values, **body}, valueInputOption="RAW")
        assert status == 200, answer
        return answer

    def batch(self, *requests_: dict[str, Any]) -> tuple[int, Any]:
        return self.call("POST", ":batchUpdate", {"requests": list(requests_)})

    def metadata(self) -> dict[str, Any]:
        status, answer = self.call("GET", "", includeGridData="false")
        assert status == 200, answer
        return answer


@pytest.fixture
def emu() -> Iterator[SheetsEmulator]:
    with SheetsEmulator() as emulator:
        emulator.add_spreadsheet(BOOK, title="Test", locale="en_US")
        emulator.add_sheet(BOOK, "Sheet1")
        yield emulator


@pytest.fixture
def api(emu: SheetsEmulator) -> Api:
    return Api(emu)


def written(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "spreadsheetId"}


# --------------------------------------------------------------------------- ranges


def test_a_single_cell_is_answered_as_one_cell_not_a_range(api: Api) -> None:
    """CellTest.test_a1_value, WorksheetTest.test_acell."""
    status, answer = api.put("'Sheet1'!B1", [["Dummy"]], "USER_ENTERED")
    assert status == 200
    assert written(answer) == {"updatedRange": "Sheet1!B1", "updatedRows": 1,
                               "updatedColumns": 1, "updatedCells": 1}
    assert api.get("'Sheet1'!B1") == {"range": "Sheet1!B1", "majorDimension": "ROWS",
                                      "values": [["Dummy"]]}
    assert api.get("'Sheet1'!D4") == {"range": "Sheet1!D4", "majorDimension": "ROWS"}


def test_values_written_at_one_cell_spread_from_it(api: Api) -> None:
    """WorksheetTest.test_batch_get: four rows of four, empty strings included."""
    status, answer = api.put("'Sheet1'!A1", [["A1", "B1", "", "D1"], ["", "b2", "", ""],
                                             ["", "", "", ""], ["A4", "B4", "", "D4"]])
    assert status == 200
    assert written(answer) == {"updatedRange": "Sheet1!A1:D4", "updatedRows": 4,
                               "updatedColumns": 4, "updatedCells": 16}
    assert api.get("'Sheet1'!A1:D4")["values"] == [["A1", "B1", "", "D1"], ["", "b2"], [],
                                                   ["A4", "B4", "", "D4"]]
    status, answer = api.call("GET", "/values:batchGet",
                              ranges=["'Sheet1'!A1:B1", "'Sheet1'!B4:D4"])
    assert status == 200 and answer["valueRanges"] == [
        {"range": "Sheet1!A1:B1", "majorDimension": "ROWS", "values": [["A1", "B1"]]},
        {"range": "Sheet1!B4:D4", "majorDimension": "ROWS", "values": [["B4", "", "D4"]]}]


def test_skipped_cells_are_not_counted(api: Api) -> None:
    """WorksheetTest.test_update_cell_objects: JSON null leaves a cell as it is."""
    api.put("'Sheet1'!A1", [["keep"]])
    status, answer = api.put("'Sheet1'!A1:B2", [[None, "cell row 1, col 2"],
                                                ["cell row 2 col 1", None]])
    assert status == 200
    assert written(answer) == {"updatedRange": "Sheet1!A1:B2", "updatedRows": 2,
                               "updatedColumns": 2, "updatedCells": 2}
    assert api.get("'Sheet1'!A1")["values"] == [["keep"]]


def test_batch_update_counts_distinct_rows_and_columns(api: Api) -> None:
    """WorksheetTest.test_batch_update."""
    status, answer = api.call("POST", "/values:batchUpdate", {
        "valueInputOption": "RAW",
        "data": [{"range": "'Sheet1'!A1:D1", "values": [["A1", "B1", "", "D1"]]},
                 {"range": "'Sheet1'!A4:D4", "values": [["A4", "B4", "", "D4"]]}]})
    assert status == 200
    assert {k: v for k, v in answer.items() if k.startswith("total")} == {
        "totalUpdatedRows": 2, "totalUpdatedColumns": 4, "totalUpdatedCells": 8,
        "totalUpdatedSheets": 1}
    assert [r["updatedRange"] for r in answer["responses"]] == ["Sheet1!A1:D1", "Sheet1!A4:D4"]


def test_a_range_written_backwards_is_read_forwards(api: Api) -> None:
    """WorksheetTest.test_range_reversed, test_update_works_with_swapped_values_and_range."""
    assert api.get("'Sheet1'!D4:A1") == {"range": "Sheet1!A1:D4", "majorDimension": "ROWS"}


def test_titles_that_read_as_cells_are_quoted(api: Api, emu: SheetsEmulator) -> None:
    """WorksheetTest.test_get_all_values_title_is_a1_notation: a sheet titled 'D3'."""
    emu.add_sheet(BOOK, "D3")
    assert api.get("'D3'!A1:D1")["range"] == "'D3'!A1:D1"
    assert api.get("'Sheet1'!A1:D1")["range"] == "Sheet1!A1:D1"


def test_clearing_answers_the_whole_range_cleared(api: Api) -> None:
    """WorksheetTest.test_clear, test_batch_clear."""
    api.put("'Sheet1'!A1:B1", [["12345", "ThisIsText"]])
    status, answer = api.call("POST", api.values("'Sheet1'", ":clear"))
    assert (status, answer["clearedRange"]) == (200, "Sheet1!A1:Z1000")
    api.put("'Sheet1'!A1:B2", [["1", "2"], ["3", "4"]])
    status, answer = api.call("POST", "/values:batchClear",
                              {"ranges": ["'Sheet1'!A1:B1", "'Sheet1'!B2"]})
    assert status == 200 and answer["clearedRanges"] == ["Sheet1!A1:B1", "Sheet1!B2"]
    assert api.get("'Sheet1'!A1:B2")["values"] == [[], ["3"]]


# --------------------------------------------------------------------------- typed cells


def test_typed_iso_dates_keep_their_form_and_read_as_serial_numbers(api: Api) -> None:
    """WorksheetTest.test_get_all_values_date_time_render_options and
    test_get_all_records_value_render_options."""
    status, _ = api.put("'Sheet1'!A1:D2", [["=4/2", "2020-01-01", "string", 53],
                                           ["=3/2", 0.12, "1999-01-02", ""]], "USER_ENTERED")
    assert status == 200
    assert api.get("'Sheet1'")["values"] == [["2", "2020-01-01", "string", "53"],
                                             ["1.5", "0.12", "1999-01-02"]]
    assert api.get("'Sheet1'", valueRenderOption="UNFORMATTED_VALUE",
                   dateTimeRenderOption="SERIAL_NUMBER")["values"] == [
        [2, 43831, "string", 53], [1.5, 0.12, 36162]]


def test_typed_grouped_numbers_keep_their_decimals(api: Api) -> None:
    """CellTest.test_numeric_value."""
    shown = []
    for typed in ("= 1 / 1024", "2,000,000.01", "Non-numeric value"):
        api.put("'Sheet1'!A1", [[typed]], "USER_ENTERED")
        shown.append(api.get("'Sheet1'!A1", valueRenderOption="FORMATTED_VALUE")["values"])
    assert shown == [[["0.0009765625"]], [["2,000,000.01"]], [["Non-numeric value"]]]


def test_values_that_are_not_a_list_of_rows_are_refused_and_not_stored(api: Api) -> None:
    """WorksheetTest.test_add_validation: gspread sent {"values": "X"}."""
    status, answer = api.put("'Sheet1'!A1", "X")
    assert status == 400
    assert answer["error"]["status"] == "INVALID_ARGUMENT"
    assert answer["error"]["message"] == ("Invalid value at 'data.values' "
                                          "(type.googleapis.com/google.protobuf.ListValue), \"X\"")
    assert "values" not in api.get("'Sheet1'!A1")


# --------------------------------------------------------------------------- append


def test_append_goes_below_the_table_it_finds(api: Api) -> None:
    """WorksheetTest.test_append_row, test_delete_row (appends one after another)."""
    first = api.append("'Sheet1'", [[f"test_delete_row {i}" for i in range(1, 11)]])
    assert "tableRange" not in first  # an empty sheet has no table
    assert written(first["updates"]) == {"updatedRange": "Sheet1!A1:J1", "updatedRows": 1,
                                         "updatedColumns": 10, "updatedCells": 10}
    for n in range(2, 5):
        answer = api.append("'Sheet1'", [[f"row {n} col {i}" for i in range(1, 11)]])
        assert answer["tableRange"] == f"Sheet1!A1:J{n - 1}"
        assert answer["updates"]["updatedRange"] == f"Sheet1!A{n}:J{n}"


def test_append_after_a_gap_follows_the_last_block_not_column_a(api: Api) -> None:
    """WorksheetTest.test_append_row_with_empty_value: the second append of
    ["…1", "", "…3"] lands at C2:E2, below C1, not at A2."""
    row = ["test_append_row_with_empty_value 1", "", "test_append_row_with_empty_value 3"]
    api.append("'Sheet1'", [row])
    answer = api.append("'Sheet1'", [row])
    assert answer["tableRange"] == "Sheet1!C1"
    assert written(answer["updates"]) == {"updatedRange": "Sheet1!C2:E2", "updatedRows": 1,
                                          "updatedColumns": 3, "updatedCells": 3}
    assert api.get("'Sheet1'!A2:2")["values"] == [["", "", *row]]


def test_append_searches_only_the_range_it_is_given(api: Api) -> None:
    """WorksheetTest.test_append_row_with_empty_value_and_table_range."""
    row = ["x 1", "", "x 3"]
    api.append("'Sheet1'", [row])
    answer = api.append("'Sheet1'!A1", [row])
    assert answer["tableRange"] == "Sheet1!A1"
    assert answer["updates"]["updatedRange"] == "Sheet1!A2:C2"


def test_append_into_inserted_blank_rows_and_columns_starts_at_the_range(api: Api) -> None:
    """WorksheetTest.test_insert_row, test_insert_cols: insertDimension, then append at
    the blank row or column (column-major values)."""
    api.put("'Sheet1'!A1:D6", [[f"r{r}c{c}" for c in range(4)] for r in range(6)])
    status, _ = api.batch({"insertDimension": {"range": {
        "sheetId": 0, "dimension": "COLUMNS", "startIndex": 1, "endIndex": 3},
        "inheritFromBefore": False}})
    assert status == 200
    answer = api.append("'Sheet1'!B1", [["n1", "n2", "n3", "n4"], ["m1", "m2", "m3", "m4"]],
                        majorDimension="COLUMNS")
    assert "tableRange" not in answer
    assert written(answer["updates"]) == {"updatedRange": "Sheet1!B1:C4", "updatedRows": 4,
                                          "updatedColumns": 2, "updatedCells": 8}
    assert api.get("'Sheet1'!A1:E1")["values"] == [["r0c0", "n1", "m1", "r0c1", "r0c2"]]
    api.batch({"insertDimension": {"range": {
        "sheetId": 0, "dimension": "ROWS", "startIndex": 1, "endIndex": 2}}})
    answer = api.append("'Sheet1'!A2", [["new"] * 8])
    assert answer["updates"]["updatedRange"] == "Sheet1!A2:H2"
    assert api.get("'Sheet1'!A3")["values"] == [["r1c0"]]


# --------------------------------------------------------------------------- sheets


def test_the_last_visible_sheet_cannot_be_hidden(api: Api) -> None:
    """WorksheetTest.test_hide_show_worksheet."""
    hide = {"updateSheetProperties": {"properties": {"sheetId": 0, "hidden": True},
                                      "fields": "hidden"}}
    status, answer = api.batch(hide)
    assert status == 400 and answer["error"]["message"] == (
        "Invalid requests[0].updateSheetProperties: You can't hide all the sheets in a "
        "document.")
    status, answer = api.batch({"addSheet": {"properties": {
        "title": "you cannot see me", "sheetType": "GRID",
        "gridProperties": {"rowCount": 2, "columnCount": 2}}}})
    added = answer["replies"][0]["addSheet"]["properties"]
    assert (added["title"], added["index"], added["gridProperties"]) == (
        "you cannot see me", 1, {"rowCount": 2, "columnCount": 2})
    for hidden in (True, False):
        api.batch({"updateSheetProperties": {"properties": {
            "sheetId": added["sheetId"], "hidden": hidden}, "fields": "hidden"}})
        props = api.metadata()["sheets"][1]["properties"]
        assert props.get("hidden") == (True if hidden else None)  # false is left out


def test_sheets_are_added_deleted_and_renamed(api: Api) -> None:
    """SpreadsheetTest.test_add_del_worksheet, test_update_title."""
    ids = []
    for n in (1, 2, 3):
        status, answer = api.batch({"addSheet": {"properties": {
            "title": f"test_add_del_worksheet {n}", "sheetType": "GRID",
            "gridProperties": {"rowCount": 1, "columnCount": 1}}}})
        assert answer["replies"][0]["addSheet"]["properties"]["index"] == n
        ids.append(answer["replies"][0]["addSheet"]["properties"]["sheetId"])
    for sheet_id in ids:
        status, answer = api.batch({"deleteSheet": {"sheetId": sheet_id}})
        assert (status, answer["replies"]) == (200, [{}])
    assert [s["properties"]["title"] for s in api.metadata()["sheets"]] == ["Sheet1"]
    status, _ = api.batch({"updateSpreadsheetProperties": {
        "properties": {"title": "🎊 Updated Title #123 🎉"}, "fields": "title"}})
    assert status == 200 and api.metadata()["properties"]["title"] == "🎊 Updated Title #123 🎉"


def test_sort_range_orders_rows_as_google_does(api: Api) -> None:
    """WorksheetTest.test_sort: RAW text sorted by one column, then by two, then
    below a header row."""
    api.put("'Sheet1'!A1:C6", [["Apple", "2012", "4"], ["Banana", "2013", "3"],
                               ["Canada", "2007", "1"], ["Dinosaur", "2013", "6"],
                               ["Elephant", "2019", "2"], ["Fox", "2077", "5"]])

    def sort(*specs: tuple[int, str], first: int = 0) -> list[str]:
        status, _ = api.batch({"sortRange": {
            "range": {"sheetId": 0, "startRowIndex": first, "endRowIndex": 6,
                      "startColumnIndex": 0, "endColumnIndex": 3},
            "sortSpecs": [{"dimensionIndex": d, "sortOrder": o} for d, o in specs]}})
        assert status == 200
        return [row[0] for row in api.get("'Sheet1'")["values"]]

    assert sort((2, "ASCENDING")) == ["Canada", "Elephant", "Banana", "Apple", "Fox",
                                      "Dinosaur"]
    assert sort((0, "DESCENDING")) == ["Fox", "Elephant", "Dinosaur", "Canada", "Banana",
                                       "Apple"]
    assert sort((1, "ASCENDING"), (2, "ASCENDING")) == [
        "Canada", "Apple", "Banana", "Dinosaur", "Elephant", "Fox"]
    sort((2, "ASCENDING"))
    assert sort((2, "DESCENDING"), first=1) == ["Canada", "Dinosaur", "Fox", "Apple",
                                                "Banana", "Elephant"]


def test_deleted_rows_take_their_cells_and_shrink_the_grid(api: Api) -> None:
    """WorksheetTest.test_delete_row."""
    api.put("'Sheet1'!A1", [[f"row {n}"] for n in range(1, 5)])
    status, _ = api.batch({"deleteDimension": {"range": {
        "sheetId": 0, "dimension": "ROWS", "startIndex": 1, "endIndex": 2}}})
    assert status == 200
    assert api.get("'Sheet1'!A1:A3")["values"] == [["row 1"], ["row 3"], ["row 4"]]
    assert api.metadata()["sheets"][0]["properties"]["gridProperties"]["rowCount"] == 999


def test_the_operators_sort_helper_moves_whole_rows_like_sort_range(
        api: Api, emu: SheetsEmulator) -> None:
    """The helper the backend's tests use orders rows as sortRange does: numbers before
    text, text without regard to case, blanks last."""
    api.put("'Sheet1'!A1", [["key", "memo"], ["banana", "1"], ["Apple", "2"], ["", "3"],
                            ["cherry", "4"]])
    api.put("'Sheet1'!A6", [[7]])
    emu.sort_rows(BOOK, "Sheet1", 0)
    assert api.get("'Sheet1'!A1:B6")["values"] == [
        ["key", "memo"], ["7"], ["Apple", "2"], ["banana", "1"], ["cherry", "4"], ["", "3"]]
    emu.sort_rows(BOOK, "Sheet1", 0, descending=True)
    assert [r[0] for r in api.get("'Sheet1'!A2:B6")["values"]] == [
        "cherry", "banana", "Apple", "7", ""]


# --------------------------------------------------------------------------- errors


def test_unknown_and_unshared_spreadsheets(api: Api, emu: SheetsEmulator) -> None:
    """ClientTest.test_access_non_existing_spreadsheet, test_access_private_spreadsheet."""
    answer = api.session.get(f"{emu.url}/v4/spreadsheets/test", timeout=10)
    assert answer.status_code == 404 and answer.json() == {"error": {
        "code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}}
    emu.spreadsheets[BOOK].shared_with = set()
    status, answer = api.call("GET", "", includeGridData="false")
    assert status == 403 and answer == {"error": {
        "code": 403, "message": "The caller does not have permission",
        "status": "PERMISSION_DENIED"}}


def test_what_is_not_emulated_is_refused_not_faked(api: Api) -> None:
    """Merges, formats, named ranges and field masks were recorded too; the emulator
    does not model them and says so instead of answering something else."""
    status, answer = api.batch({"mergeCells": {"range": {"sheetId": 0}, "mergeType": "MERGE_ALL"}})
    assert status == 400 and "mergeCells is not emulated" in answer["error"]["message"]
    status, answer = api.call("GET", "", fields="namedRanges")
    assert status == 400 and "not emulated" in answer["error"]["message"]
