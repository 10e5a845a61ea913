"""CsvTable: reads agree with csv.reader, writes change only the bytes they must."""

from __future__ import annotations

import codecs
import csv
import io
import os
import random
import stat
from pathlib import Path

import pytest

from sheetcrm.errors import BackendError, ConfigError
from sheetcrm.model import CellUpdate
from sheetcrm.table.csv import CsvTable
from sheetcrm.table.csv_text import split_records, unquote

BOM = codecs.BOM_UTF8


def make(tmp_path: Path, data: bytes, name: str = "customers.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def rows_by_tokenizer(text: str, delimiter: str = ",") -> list[list[str]]:
    return [[unquote(raw) for raw in rec.raws] for rec in split_records(text, delimiter)]


def rows_by_csv(text: str, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


# -- read ----------------------------------------------------------------------


def test_read_utf8(tmp_path: Path) -> None:
    path = make(tmp_path, " id , name ,status\n1,김수현,new\n2,이지훈,\n".encode())
    table = CsvTable(path)
    snap = table.read()
    assert snap.header == ["id", "name", "status"]
    assert snap.rows == [["1", "김수현", "new"], ["2", "이지훈", ""]]
    assert snap.source == str(path)
    assert table.encoding == "utf-8"


def test_read_utf8_bom_does_not_leak_into_header(tmp_path: Path) -> None:
    path = make(tmp_path, BOM + "id,name\n1,김수현\n".encode())
    table = CsvTable(path)
    snap = table.read()
    assert snap.header == ["id", "name"]
    assert snap.rows == [["1", "김수현"]]
    assert table.encoding == "utf-8-sig"


def test_read_cp949(tmp_path: Path) -> None:
    path = make(tmp_path, '번호,이름,메모\r\n1,김수현,"첫 방문, 재방문"\r\n'.encode("cp949"))
    table = CsvTable(path)
    snap = table.read()
    assert snap.header == ["번호", "이름", "메모"]
    assert snap.rows == [["1", "김수현", "첫 방문, 재방문"]]
    assert table.encoding == "cp949"


def test_read_explicit_encoding(tmp_path: Path) -> None:
    path = make(tmp_path, "id;name\n1;Zoë\n".encode("latin-1"))
    snap = CsvTable(path, encoding="latin-1", delimiter=";").read()
    assert snap.rows == [["1", "Zoë"]]


def test_read_ragged_rows_and_quoted_fields(tmp_path: Path) -> None:
    text = (
        "id,name,note,extra\n"
        "1,a\n"
        '2,"Kim, Sue","line one\nline two","she said ""hi"""\n'
        "3,b,c,d,e,f\n"
    )
    snap = CsvTable(make(tmp_path, text.encode())).read()
    assert snap.rows == [
        ["1", "a"],
        ["2", "Kim, Sue", "line one\nline two", 'she said "hi"'],
        ["3", "b", "c", "d", "e", "f"],
    ]


def test_read_drops_all_blank_rows(tmp_path: Path) -> None:
    text = "id,name\n1,a\n\n,,\n , \r\n2,b\n\n"
    snap = CsvTable(make(tmp_path, text.encode())).read()
    assert snap.rows == [["1", "a"], ["2", "b"]]


def test_read_empty_file(tmp_path: Path) -> None:
    snap = CsvTable(make(tmp_path, b"")).read()
    assert (snap.header, snap.rows) == ([], [])


def test_read_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(BackendError, match="nope.csv: file not found"):
        CsvTable(path).read()


def test_read_directory_is_backend_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="cannot read"):
        CsvTable(tmp_path).read()


def test_read_undecodable(tmp_path: Path) -> None:
    path = make(tmp_path, "id,name\n1,김수현\n".encode("cp949"))
    with pytest.raises(BackendError, match="cannot decode as utf-8"):
        CsvTable(path, encoding="utf-8").read()


def test_utf16_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = make(tmp_path, "id,name\n".encode("utf-16"))
    with pytest.raises(BackendError, match="UTF-16"):
        CsvTable(path).read()


# -- write: byte-exact ------------------------------------------------------------


def test_write_crlf_mixed_quoting_multiline_no_trailing_newline(tmp_path: Path) -> None:
    original = (
        "id,name,phone,note,status\r\n"
        '1,"김수현",010-1234-5678,"첫 방문\r\n재방문 예정",\r\n'
        '2,이지훈, 010-9999-0000 ,"say ""hi""","new"\r\n'
        "3,박민지,010-5555-1111,,active"
    )
    path = make(tmp_path, original.encode())
    report = CsvTable(path).write(
        "id",
        [CellUpdate("1", "status", "contacted"), CellUpdate("3", "note", "VIP, 주말만")],
    )
    expected = (
        "id,name,phone,note,status\r\n"
        '1,"김수현",010-1234-5678,"첫 방문\r\n재방문 예정",contacted\r\n'
        '2,이지훈, 010-9999-0000 ,"say ""hi""","new"\r\n'
        '3,박민지,010-5555-1111,"VIP, 주말만",active'
    )
    assert path.read_bytes() == expected.encode()
    assert report.cells_written == 2
    assert report.rows_written == 2
    assert (report.columns_added, report.missing_keys, report.ambiguous_keys) == ([], [], [])
    assert report.requests == 0


def test_write_lf_replaces_a_quoted_cell(tmp_path: Path) -> None:
    original = 'id,name,status\n1,"김수현",new\n2,이지훈,new\n\n3,"박민지","new"\n'
    path = make(tmp_path, original.encode())
    CsvTable(path).write(
        "id", [CellUpdate("1", "name", "김수현 님"), CellUpdate("3", "status", "won")]
    )
    expected = 'id,name,status\n1,김수현 님,new\n2,이지훈,new\n\n3,"박민지",won\n'
    assert path.read_bytes() == expected.encode()


def test_write_mixed_line_endings_each_line_keeps_its_own(tmp_path: Path) -> None:
    original = "id,status\r\n1,a\n2,b\r3,c\r\n"
    path = make(tmp_path, original.encode())
    CsvTable(path).write("id", [CellUpdate("2", "status", "B"), CellUpdate("3", "status", "C")])
    assert path.read_bytes() == b"id,status\r\n1,a\n2,B\r3,C\r\n"


def test_write_keeps_bom(tmp_path: Path) -> None:
    original = BOM + "id,name,status\r\n1,김수현,new\r\n".encode()
    path = make(tmp_path, original)
    CsvTable(path).write("id", [CellUpdate("1", "status", "연락함")])
    assert path.read_bytes() == BOM + "id,name,status\r\n1,김수현,연락함\r\n".encode()


def test_write_without_bom_adds_none(tmp_path: Path) -> None:
    path = make(tmp_path, b"id,status\n1,new\n")
    CsvTable(path, encoding="utf-8-sig").write("id", [CellUpdate("1", "status", "done")])
    assert path.read_bytes() == b"id,status\n1,done\n"


def test_write_keeps_cp949(tmp_path: Path) -> None:
    original = '번호,이름,상태\r\n1,"김수현",신규\r\n2,이지훈,신규\r\n'
    path = make(tmp_path, original.encode("cp949"))
    table = CsvTable(path)
    table.read()
    table.write("번호", [CellUpdate("2", "상태", "연락 완료")])
    data = path.read_bytes()
    expected = '번호,이름,상태\r\n1,"김수현",신규\r\n2,이지훈,연락 완료\r\n'
    assert data == expected.encode("cp949")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")


def test_emoji_into_cp949_becomes_question_mark(tmp_path: Path) -> None:
    original = "번호,이름,메모\r\n1,김수현,안녕\r\n2,이지훈,\r\n"
    path = make(tmp_path, original.encode("cp949"))
    report = CsvTable(path).write("번호", [CellUpdate("2", "메모", "감사합니다 🎉!")])
    expected = "번호,이름,메모\r\n1,김수현,안녕\r\n2,이지훈,감사합니다 ?!\r\n"
    assert path.read_bytes() == expected.encode("cp949")
    assert report.cells_written == 1


def test_ascii_file_keeps_encoding_seen_at_read(tmp_path: Path) -> None:
    path = make(tmp_path, "id,name\n1,김수현\n".encode("cp949"))
    table = CsvTable(path)
    assert table.read().rows == [["1", "김수현"]]
    path.write_bytes(b"id,name\n1,Kim\n")  # operator re-saved it as plain ASCII
    table.write("id", [CellUpdate("1", "name", "김수현")])
    assert path.read_bytes() == "id,name\n1,김수현\n".encode("cp949")


def test_written_values_are_quoted_when_needed_and_read_back(tmp_path: Path) -> None:
    path = make(tmp_path, b"id,a,b,c,d,e\n1,x,x,x,x,x\n")
    values = {"a": 'say "hi"', "b": "two\nlines", "c": " padded ", "d": "a,b", "e": "plain"}
    table = CsvTable(path)
    table.write("id", [CellUpdate("1", col, val) for col, val in values.items()])
    assert path.read_bytes() == (
        b'id,a,b,c,d,e\n1,"say ""hi""","two\nlines"," padded ","a,b",plain\n'
    )
    assert table.read().rows == [["1", *values.values()]]


def test_missing_column_is_appended_and_only_updated_rows_grow(tmp_path: Path) -> None:
    path = make(tmp_path, b"id,name,phone\r\n1,a,111\r\n2,b\r\n3,c,333\r\n")
    report = CsvTable(path).write(
        "id",
        [
            CellUpdate("2", "sent_at", "2024-05-01"),
            CellUpdate("3", "step", "2"),
            CellUpdate("3", "sent_at", "2024-05-02"),
        ],
    )
    assert path.read_bytes() == (
        b"id,name,phone,sent_at,step\r\n1,a,111\r\n2,b,,2024-05-01\r\n3,c,333,2024-05-02,2\r\n"
    )
    assert report.columns_added == ["sent_at", "step"]
    assert (report.cells_written, report.rows_written) == (3, 2)


def test_new_column_is_added_even_when_no_key_matches(tmp_path: Path) -> None:
    path = make(tmp_path, b"id,name\n1,a\n")
    report = CsvTable(path).write("id", [CellUpdate("9", "sent_at", "x")])
    assert path.read_bytes() == b"id,name,sent_at\n1,a\n"
    assert (report.columns_added, report.missing_keys, report.cells_written) == (
        ["sent_at"],
        ["9"],
        0,
    )


def test_semicolon_delimiter(tmp_path: Path) -> None:
    path = make(tmp_path, b'id;name;note\r\n1;"a";x,y\r\n')
    table = CsvTable(path, delimiter=";")
    assert table.read().rows == [["1", "a", "x,y"]]
    table.write("id", [CellUpdate("1", "note", "p;q"), CellUpdate("1", "name", "b,c")])
    assert path.read_bytes() == b'id;name;note\r\n1;b,c;"p;q"\r\n'


def test_bad_delimiter_and_unknown_encoding_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="delimiter"):
        CsvTable(tmp_path / "x.csv", delimiter='"')
    with pytest.raises(BackendError, match="unknown encoding"):
        CsvTable(tmp_path / "x.csv", encoding="no-such-codec")


def test_short_row_is_padded_up_to_an_existing_column(tmp_path: Path) -> None:
    path = make(tmp_path, b"id,name,phone,status\n1,a\n2,b\n")
    CsvTable(path).write("id", [CellUpdate("1", "status", "x")])
    assert path.read_bytes() == b"id,name,phone,status\n1,a,,x\n2,b\n"


# -- write: rows found by key at write time -----------------------------------------


def test_updates_follow_keys_after_rows_move(tmp_path: Path) -> None:
    path = make(tmp_path, b"id,status\n1,new\n2,new\n3,new\n4,new\n")
    table = CsvTable(path)
    assert [row[0] for row in table.read().rows] == ["1", "2", "3", "4"]
    # The operator sorts, inserts a row, deletes 2 and duplicates 4.
    path.write_bytes(b"id,status\n4,new\n9,new\n3,new\n1,new\n4,copy\n")
    report = table.write("id", [CellUpdate(k, "status", f"done{k}") for k in "1234"])
    assert path.read_bytes() == b"id,status\n4,new\n9,new\n3,done3\n1,done1\n4,copy\n"
    assert report.missing_keys == ["2"]
    assert report.ambiguous_keys == ["4"]
    assert (report.cells_written, report.rows_written) == (2, 2)


def test_keys_match_after_stripping_and_blank_keys_never_match(tmp_path: Path) -> None:
    path = make(tmp_path, b'id,status\n" 7 ",a\n,b\n  ,c\n')
    report = CsvTable(path).write(
        "id",
        [
            CellUpdate("7 ", "status", "x"),
            CellUpdate("", "status", "y"),
            CellUpdate("id", "status", "z"),
        ],
    )
    assert path.read_bytes() == b'id,status\n" 7 ",x\n,b\n  ,c\n'
    assert report.missing_keys == ["", "id"]  # the header row is not a data row


def test_unknown_key_column_is_an_error(tmp_path: Path) -> None:
    path = make(tmp_path, b"id,status\n1,a\n")
    with pytest.raises(BackendError, match="key column 'email'"):
        CsvTable(path).write("email", [CellUpdate("1", "status", "x")])


def test_operator_edit_between_read_and_write_survives(tmp_path: Path) -> None:
    path = make(tmp_path, b"id,phone,status\n1,111,new\n2,222,new\n")
    table = CsvTable(path)
    table.read()
    path.write_bytes(b"id,phone,status\n1,111,new\n2,999,new\n")
    table.write("id", [CellUpdate("2", "status", "sent")])
    assert path.read_bytes() == b"id,phone,status\n1,111,new\n2,999,sent\n"


class SavesDuringWrite(CsvTable):
    """Simulates the operator saving the file right before our os.replace."""

    def __init__(self, path: Path, edits: list[bytes]) -> None:
        super().__init__(path)
        self.edits = edits
        self.calls = 0

    def _before_replace(self, path: Path) -> None:
        self.calls += 1
        if self.edits:
            path.write_bytes(self.edits.pop(0))


def test_concurrent_save_during_write_is_kept(tmp_path: Path) -> None:
    path = make(tmp_path, b"id,phone,status\n1,111,new\n2,222,new\n")
    table = SavesDuringWrite(path, [b"id,phone,status\n0,000,new\n1,111,new\n2,999,new\n"])
    report = table.write("id", [CellUpdate("2", "status", "sent")])
    assert path.read_bytes() == b"id,phone,status\n0,000,new\n1,111,new\n2,999,sent\n"
    assert table.calls == 2
    assert report.cells_written == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv"]


def test_file_that_keeps_changing_gives_up(tmp_path: Path) -> None:
    path = make(tmp_path, b"id,status\n1,new\n")
    edits = [f"id,status\n1,new\n{n + 10},x\n".encode() for n in range(10)]
    table = SavesDuringWrite(path, list(edits))
    with pytest.raises(BackendError, match="keeps changing"):
        table.write("id", [CellUpdate("1", "status", "sent")])
    assert table.calls == 5
    assert path.read_bytes() == edits[4]  # the operator's last save, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv"]


# -- write: when not to touch the file ------------------------------------------------


def _age(path: Path) -> int:
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    return path.stat().st_mtime_ns


def test_empty_updates_do_not_touch_the_file(tmp_path: Path) -> None:
    path = make(tmp_path, b"id,status\r\n1,new")
    mtime = _age(path)
    report = CsvTable(path).write("id", [])
    assert path.read_bytes() == b"id,status\r\n1,new"
    assert path.stat().st_mtime_ns == mtime
    assert report.cells_written == 0


def test_unchanged_values_do_not_rewrite(tmp_path: Path) -> None:
    path = make(tmp_path, b'id,status,note\n1,"new",\n')
    mtime = _age(path)
    report = CsvTable(path).write(
        "id",
        [
            CellUpdate("1", "status", "new"),
            CellUpdate("1", "note", ""),
            CellUpdate("5", "note", "x"),
        ],
    )
    assert path.stat().st_mtime_ns == mtime
    assert (report.cells_written, report.rows_written, report.missing_keys) == (0, 0, ["5"])


def test_write_keeps_permission_bits(tmp_path: Path) -> None:
    path = make(tmp_path, b"id,status\n1,new\n")
    path.chmod(0o640)
    CsvTable(path).write("id", [CellUpdate("1", "status", "sent")])
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_bytes() == b"id,status\n1,sent\n"


def test_write_through_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = make(tmp_path, b"id,status\n1,new\n", name="real.csv")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    CsvTable(link).write("id", [CellUpdate("1", "status", "sent")])
    assert link.is_symlink()
    assert real.read_bytes() == b"id,status\n1,sent\n"


def test_write_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="file not found"):
        CsvTable(tmp_path / "gone.csv").write("id", [CellUpdate("1", "status", "x")])


# -- tokenizer agrees with csv.reader ----------------------------------------------

TRICKY = [
    "",
    "\n",
    "a",
    "a,",
    ",",
    "a,b\r\nc,d",
    "a\rb\nc\r\nd",
    "\r\r\n\n",
    '"a,b",c\n',
    '"a\nb",c\r\n"d\r\ne"',
    '"say ""hi""",x',
    '"ab"cd,e',
    '"ab"c"d",e',
    'a"b,c"d',
    ' "a",b',
    '"unterminated\nstill,open',
    '"',
    '""',
    '"""',
    '"a""',
    '""""""',
    "a,,b,\n,\n",
    '김수현,"이지훈"\n',
    "\ufeffid,name",
    'a\x00b,"c\x00"',
]


@pytest.mark.parametrize("text", TRICKY)
def test_tokenizer_agrees_with_csv_reader(text: str) -> None:
    assert rows_by_tokenizer(text) == rows_by_csv(text)


@pytest.mark.parametrize("text", TRICKY)
def test_tokenizer_spans_cover_the_text(text: str) -> None:
    """Fields are contiguous: joining raw fields gives back each record's text."""
    pos = 0
    for record in split_records(text, ","):
        assert record.start >= pos
        assert text[record.start : record.end] == ",".join(record.raws)
        for raw, (start, end) in zip(record.raws, record.spans(), strict=True):
            assert text[start:end] == raw
        pos = record.end


PIECES = ["a", "b", " ", ",", ";", "\t", '"', '""', "\r", "\n", "\r\n", "김"]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_tokenizer_agrees_with_csv_reader_on_seeded_random_text(delimiter: str) -> None:
    """Stdlib fuzzing, so the property is checked even without hypothesis."""
    rng = random.Random(20240501)
    for _ in range(20_000):
        text = "".join(rng.choices(PIECES, k=rng.randint(0, 14)))
        assert rows_by_tokenizer(text, delimiter) == rows_by_csv(text, delimiter), repr(text)


def test_tokenizer_agrees_with_csv_reader_on_random_text() -> None:
    pytest.importorskip("hypothesis")
    from hypothesis import given, settings
    from hypothesis import strategies as st

    texts = st.lists(st.sampled_from(PIECES), max_size=25).map("".join)

    @settings(max_examples=1000, deadline=None, database=None)
    @given(texts, st.sampled_from([",", ";", "\t"]))
    def check(text: str, delimiter: str) -> None:
        assert rows_by_tokenizer(text, delimiter) == rows_by_csv(text, delimiter)

    check()


def test_a_cell_longer_than_the_csv_modules_default_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("id,note\n1," + "가" * 200_000 + "\n2,short\n", encoding="utf-8")
    snapshot = CsvTable(path).read()
    assert [len(row[1]) for row in snapshot.rows] == [200_000, 5]
