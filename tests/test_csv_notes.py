"""Notes typed in unnamed columns past the header survive every write and every sync.

Operators keep notes to the right of their table, in columns with no header. A
writeback column sheetcrm adds must start after the widest row, never after the last
header cell, or its values would land on those notes.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from pathlib import Path

from sheetcrm.model import CellUpdate
from sheetcrm.table.csv import CsvTable
from tests.support.sample import CSV

BOM = codecs.BOM_UTF8


def rows_of(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def notes_in(data: bytes, key_index: int, columns: range) -> dict[tuple[str, int], str]:
    """Every non-blank cell in ``columns``, by (row key, column number)."""
    return {(row[key_index], n): row[n] for row in rows_of(data)[1:]
            for n in columns if n < len(row) and row[n]}


def test_a_new_column_goes_past_the_widest_row_not_onto_the_notes(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(b"id,name\n1,a,call back,\"VIP, weekends\"\n2,b\n3,c,,,moved\n")
    report = CsvTable(path).write("id", [CellUpdate("1", "status", "sent"),
                                         CellUpdate("2", "status", "new")])
    assert path.read_bytes() == (
        b"id,name,,,,status\n"
        b"1,a,call back,\"VIP, weekends\",,sent\n"
        b"2,b,,,,new\n"
        b"3,c,,,moved\n")
    assert report.columns_added == ["status"]
    assert CsvTable(path).read().header == ["id", "name", "", "", "", "status"]


def test_notes_survive_several_writes_with_ragged_rows_quotes_crlf_and_bom(
        tmp_path: Path) -> None:
    original = BOM + (
        'id,"name",phone\r\n'
        '1,김수현,010-1\r\n'
        '2,"이지훈, Jr.",,"메모: ""급함""",\r\n'
        '3,박민지,010-3,,,"두 줄\r\n메모"\r\n'
        '4,최민준\r\n'
        '\r\n'
        ',,,,,,,"키 없는 행의 메모"\r\n'
        '5,"정다은",010-5,x,"a,b"'
    ).encode()
    path = tmp_path / "customers.csv"
    path.write_bytes(original)
    notes = notes_in(original, 0, range(3, 8))
    assert len(notes) == 5
    table = CsvTable(path)
    widths = []
    runs = [
        [CellUpdate(k, "상태 태그", f"태그 {k}") for k in "12345"],
        [CellUpdate(k, "상태 태그", "결제 대기, 이탈 가능") for k in "135"]
        + [CellUpdate(k, "최근 발송", "2026-11-23 payment 1") for k in "24"],
        [CellUpdate("3", "오류", '신청일: "2026-02-30" is not a date'),
         CellUpdate("5", "최근 발송", "")],
        [CellUpdate(k, "상태 태그", "") for k in "12345"]
        + [CellUpdate("4", "오류", "line one\nline two")],
    ]
    for updates in runs:
        table.write("id", updates)
        data = path.read_bytes()
        rows = rows_of(data)
        header = rows[0]
        assert data.startswith(BOM)
        bare_lf = data.replace(b"line one\nline two", b"").replace(b"\r\n", b"")
        assert b"\n" not in bare_lf  # every line still ends in CRLF
        assert notes_in(data, 0, range(3, 8)) == notes  # every note where it was
        assert header[:3] == ["id", "name", "phone"] and header[3:8] == [""] * 5
        widths.append(len(header))
    assert rows_of(path.read_bytes())[0][8:] == ["상태 태그", "최근 발송", "오류"]
    assert widths == [9, 10, 11, 11]
    snapshot = CsvTable(path).read()
    by_key = {row[0]: row for row in snapshot.rows}
    assert by_key["4"][10] == "line one\nline two" and by_key["4"][9] == "2026-11-23 payment 1"
    assert by_key["3"][10] == '신청일: "2026-02-30" is not a date'


def test_notes_past_the_header_survive_every_sync_of_the_sample(sample: Path, run_cli) -> None:
    """The shipped sample lacks two writeback columns; rows carry notes past the header."""
    path = sample / CSV
    data = path.read_bytes()
    lines = data.split(b"\r\n")
    header_width = len(rows_of(lines[0] + b"\r\n")[0])
    # Notes after the last cell of some rows: plain, quoted with a comma, two lines.
    extra = {1: ',,"콜백 요청, 금요일"', 2: ',,,,메모만', 5: ',"두 줄\r\n메모"', 9: ",추천인 있음"}
    for number, tail in extra.items():
        lines[number] += tail.encode()
    path.write_bytes(b"\r\n".join(lines))
    before = path.read_bytes()
    widest = max(len(row) for row in rows_of(before))
    notes = notes_in(before, 1, range(header_width, widest))
    assert len(notes) == 4

    for now in ("2026-11-23T10:00", "2026-11-25T10:00", "2026-11-28T10:00"):
        result = run_cli(sample, "--now", now, "--json", "sync")
        assert result.code == 0, result.err
        assert json.loads(result.out)["summary"]["row_errors"] == 6
        after = path.read_bytes()
        assert notes_in(after, 1, range(header_width, widest)) == notes
        header = rows_of(after)[0]
        assert header[header_width:widest] == [""] * (widest - header_width)
        assert header[widest:] == ["최근 발송", "오류"]
    rows = rows_of(path.read_bytes())
    sent = [row for row in rows[1:] if len(row) > widest and row[widest]]
    assert sent  # the new columns really got values, past the notes
