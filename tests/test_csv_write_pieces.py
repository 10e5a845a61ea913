"""A CSV write reads the file a piece at a time, twice, and gives the same bytes.

The write never holds the file's text whole (``sheetcrm.table.csv_stream``): it is
decoded a piece at a time, and a record cut by a piece's end waits for the next one.
These pin that where the pieces are cut changes nothing: on generated sheets (quoted
fields holding newlines, delimiters and quotes, Hangul, CRLF, LF and CR, ragged rows,
blank lines, no final newline) in UTF-8, UTF-8 with a BOM and CP949, a write with
pieces of one byte and up gives exactly the file an independent model of the edit
expects, which is the whole-text result; ISO-2022-KR (a codec with shift states) is
written the same way; a file whose text does not encode back to its bytes is never
written; and a save landing between the two passes makes the write start over.
"""

from __future__ import annotations

import codecs
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sheetcrm.errors import BackendError
from sheetcrm.model import CellUpdate, WriteReport
from sheetcrm.table.csv import CsvTable
from sheetcrm.table.csv_edit import KeyedUpdates
from sheetcrm.table.csv_stream import Survey

PIECES = [1, 2, 3, 5, 8, 13, 64, 1 << 18]
CODECS = ["utf-8", "utf-8-sig", "cp949"]
WORDS = ["김수현", "이지훈", "a", "b c", "결제 대기", "x,y", 'say "hi"', "두 줄\n메모",
         "cr\rline", "crlf\r\nline", " padded ", "", "", "VIP", "서울;부산", "\t"]


@dataclass
class Sheet:
    """A generated sheet: each record's raw fields and line ending, and its values."""

    delimiter: str
    raws: list[list[str]] = field(default_factory=list)
    eols: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(self.delimiter.join(raws) + eol
                       for raws, eol in zip(self.raws, self.eols, strict=True))


def quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def raw_for(value: str, delimiter: str, rnd: random.Random) -> str:
    """The value as a field, quoted when it must be and at random when it need not."""
    plain = not any(c in value for c in (delimiter, '"', "\r", "\n"))
    return value if plain and rnd.random() < 0.7 else quoted(value)


def generate(rnd: random.Random, delimiter: str, rows: int) -> Sheet:
    sheet = Sheet(delimiter)
    header = ["id", "이름", "메모", "상태"]
    width = len(header)
    sheet.raws.append([raw_for(name, delimiter, rnd) for name in header])
    sheet.eols.append(rnd.choice(["\r\n", "\n"]))
    keys = [f"k{n}" for n in range(rows + 2)]  # two of them on no row
    rnd.shuffle(keys)
    for n in range(rows):
        if rnd.random() < 0.08:
            sheet.raws.append([])  # a blank line
        else:
            key = keys[n] if rnd.random() < 0.8 else rnd.choice(keys)  # some twice
            count = rnd.choice([1, 2, width - 1, width, width, width, width + 2])
            values = [key] + [rnd.choice(WORDS) for _ in range(count - 1)]
            sheet.raws.append([raw_for(v, delimiter, rnd) for v in values])
        sheet.eols.append(rnd.choice(["\r\n", "\n", "\r", "\r\n"]))
    sheet.eols[-1] = rnd.choice(["\r\n", "\n", ""])  # the last one may have none
    return sheet


def value_of(raw: str) -> str:
    if not raw.startswith('"'):
        return raw
    return raw[1:-1].replace('""', '"')


def cell(value: str, delimiter: str) -> str:
    """How a written value is quoted: only when csv.reader needs it."""
    needs = any(c in value for c in (delimiter, '"', "\r", "\n")) or value != value.strip()
    return quoted(value) if needs else value


def expected(sheet: Sheet, updates: list[CellUpdate]) -> tuple[str, WriteReport]:
    """The sheet as the write must leave it, worked out on the model (not the file):
    the rows found by key, the last update of a cell winning, only changed cells
    rewritten, new columns past the widest row."""
    d = sheet.delimiter
    raws = [list(record) for record in sheet.raws]
    header = [value_of(raw).strip() for raw in raws[0]]
    width = max(len(record) for record in raws)
    holders: dict[str, list[int]] = {}
    for n, record in enumerate(raws[1:], start=1):
        key = value_of(record[0]).strip() if record else ""
        if key:
            holders.setdefault(key, []).append(n)
    columns = {name: i for i, name in reversed(list(enumerate(header)))}
    added = []
    for update in updates:
        if update.column not in columns:
            columns[update.column] = width + len(added)
            added.append(update.column)
    report = WriteReport(columns_added=added)
    if added:
        raws[0] += [""] * (width - len(raws[0])) + added
    cells: dict[int, dict[int, str]] = {}
    for update in updates:
        rows = holders.get(update.key, [])
        if len(rows) == 1:
            cells.setdefault(rows[0], {})[columns[update.column]] = update.value
        elif rows and update.key not in report.ambiguous_keys:
            report.ambiguous_keys.append(update.key)
        elif not rows and update.key not in report.missing_keys:
            report.missing_keys.append(update.key)
    for n, values in cells.items():
        record = raws[n]
        changed = 0
        for column, value in sorted(values.items()):
            old = value_of(record[column]) if column < len(record) else ""
            if old == value:
                continue
            changed += 1
            record += [""] * (column + 1 - len(record))
            record[column] = cell(value, d)
        report.cells_written += changed
        report.rows_written += bool(changed)
    return Sheet(d, raws, sheet.eols).text(), report


def random_updates(rnd: random.Random, rows: int) -> list[CellUpdate]:
    columns = ["상태", "상태", "메모", "이름", "자동화 흐름", "id "[:2]]
    return [CellUpdate(f"k{rnd.randrange(rows + 4)}", rnd.choice(columns),
                       rnd.choice([*WORDS, "연락함", "결제 완료, 후기"]))
            for _ in range(rnd.randrange(1, rows + 3))]


def written(tmp_path: Path, data: bytes, piece: int, act: Callable[[CsvTable], WriteReport],
            delimiter: str = ",") -> tuple[bytes, WriteReport]:
    path = tmp_path / f"p{piece}.csv"
    path.write_bytes(data)
    table = CsvTable(path, delimiter=delimiter)
    table.piece = piece
    report = act(table)
    return path.read_bytes(), report


@pytest.mark.parametrize("codec", CODECS)
def test_writes_cut_into_pieces_of_any_size_give_the_file_the_model_expects(
        tmp_path: Path, codec: str) -> None:
    rnd = random.Random(f"pieces-{codec}")
    seen = WriteReport()
    for round_ in range(60):
        delimiter = ";" if round_ % 5 == 4 else ","
        rows = rnd.randrange(0, 12)
        sheet = generate(rnd, delimiter, rows)
        updates = random_updates(rnd, rows)
        want, report = expected(sheet, updates)
        data = sheet.text().encode(codec)
        for piece in PIECES:
            got, got_report = written(tmp_path, data, piece, lambda table, updates=updates:
                                      table.write("id", updates), delimiter)
            assert got == want.encode(codec), (round_, piece, sheet.text(), updates)
            assert got_report == report, (round_, piece)
        seen.cells_written += report.cells_written
        seen.missing_keys += report.missing_keys
        seen.ambiguous_keys += report.ambiguous_keys
        seen.columns_added += report.columns_added
    # The rounds wrote cells, and met missing keys, keys on two rows and new columns.
    assert seen.cells_written > 60 and seen.missing_keys and seen.ambiguous_keys
    assert seen.columns_added


def test_a_cp949_file_keeps_its_bytes_where_a_piece_cuts_a_hangul_character(
        tmp_path: Path) -> None:
    text = "id,이름,상태\r\n1,김수현,신규\r\n2,\"이지훈,\r\n박민지\",신규\r\n3,최민준,신규"
    want = "id,이름,상태\r\n1,김수현,신규\r\n2,\"이지훈,\r\n박민지\",연락함\r\n3,최민준,완료"
    data = text.encode("cp949")
    updates = [CellUpdate("2", "상태", "연락함"), CellUpdate("3", "상태", "완료")]
    for piece in range(1, len(data) + 1):
        got, report = written(tmp_path, data, piece, lambda table: table.write("id", updates))
        assert got == want.encode("cp949"), piece
        assert (report.cells_written, report.rows_written) == (2, 2)


@pytest.mark.parametrize("codec", CODECS)
def test_rows_added_and_a_column_set_from_each_row_are_the_same_in_any_pieces(
        tmp_path: Path, codec: str) -> None:
    rnd = random.Random(f"append-{codec}")
    for round_ in range(25):
        rows = rnd.randrange(0, 10)
        sheet = generate(rnd, ",", rows)
        data = sheet.text().encode(codec)
        updates = random_updates(rnd, rows)
        append = [f"k{rnd.randrange(rows + 4)}" for _ in range(3)] + ["새 고객"]

        def add(table: CsvTable, updates: list[CellUpdate] = updates,
                append: list[str] = append) -> WriteReport:
            return table.write("id", updates, append=append)

        def column(table: CsvTable) -> WriteReport:
            return table.write_column("상태", lambda cells: (
                None if cells.get("id", "").endswith("3") else cells.get("이름", "") + "!"))

        for act in (add, column):
            whole = written(tmp_path, data, 1 << 18, act)
            for piece in PIECES[:-1]:
                assert written(tmp_path, data, piece, act) == whole, (round_, piece)


def test_a_cell_longer_than_many_pieces_and_the_csv_modules_limit_is_written_around(
        tmp_path: Path) -> None:
    long = "가" * 300_000  # 900 kB in UTF-8: several pieces, over csv's 128 KiB
    path = tmp_path / "customers.csv"
    path.write_text(f'id,메모,상태\n1,"{long}",\n2,짧음,\n', "utf-8")
    report = CsvTable(path).write("id", [CellUpdate("1", "상태", "완료"),
                                         CellUpdate("2", "상태", "신규")])
    assert path.read_text("utf-8") == f'id,메모,상태\n1,"{long}",완료\n2,짧음,신규\n'
    assert report.cells_written == 2


def test_iso_2022_kr_with_its_shift_states_is_written_in_pieces_as_in_one(
        tmp_path: Path) -> None:
    text = "id,이름,상태\n1,김수현,신규\n2,\"이지훈, 박민지\",신규\n3,Kim,new\n"
    data = text.encode("iso2022_kr")
    want = text.replace("김수현,신규", "김수현,연락함").replace("Kim,new", "Kim,완료")
    for piece in PIECES:
        path = tmp_path / "customers.csv"
        path.write_bytes(data)
        table = CsvTable(path, encoding="iso2022_kr")
        table.piece = piece
        table.write("id", [CellUpdate("1", "상태", "연락함"), CellUpdate("3", "상태", "완료")])
        assert path.read_bytes() == want.encode("iso2022_kr"), piece
        assert table.read().rows[0] == ["1", "김수현", "연락함"]


@pytest.mark.parametrize(("codec", "data"), [
    # A shift out and straight back in: no text, so encoding the text drops it.
    ("iso2022_kr", "id,이름\n1,김수현\n".encode("iso2022_kr")[:-1] + b"\x0e\x0f\n"),
    # NEC's ≒ (0x8790) decodes as the JIS one, which encodes to 0x81E0.
    ("cp932", b"id,note\r\n1,\x87\x90\r\n"),
], ids=["iso2022_kr", "cp932"])
@pytest.mark.parametrize("piece", [1, 3, 1 << 18])
def test_a_file_whose_text_does_not_encode_back_to_its_bytes_is_not_written(
        tmp_path: Path, codec: str, data: bytes, piece: int) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(data)
    table = CsvTable(path, encoding=codec)
    table.piece = piece
    with pytest.raises(BackendError, match=f"does not come back the same in {codec}"):
        table.write("id", [CellUpdate("1", "note", "x")])
    assert path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv"]


class SavesAfterTheSurvey(CsvTable):
    """The operator saves in place right after the write's first pass (``saves``),
    and at the check before the swap (``at_check``)."""

    def __init__(self, path: Path, saves: list[bytes], at_check: list[bytes]) -> None:
        super().__init__(path)
        self.saves, self.at_check = saves, at_check
        self.surveys = 0

    def _survey(self, target: Path, make: Callable) -> Survey:
        found = super()._survey(target, make)
        self.surveys += 1
        if self.saves:
            with open(target, "r+b") as handle:  # in place: the same file, new bytes
                handle.truncate(0)
                handle.write(self.saves.pop(0))
        return found

    def _before_replace(self, path: Path) -> None:
        if self.at_check:
            with open(path, "r+b") as handle:
                handle.truncate(0)
                handle.write(self.at_check.pop(0))


def test_a_save_between_the_two_passes_is_never_written_with_the_first_ones_rows(
        tmp_path: Path) -> None:
    """The rows moved between the passes and moved back before the check: the second
    pass must see that it is not reading what the first read, or row 2's update
    would land on the row then in its place."""
    original = b"id,status\n1,new\n2,new\n"
    moved = b"id,status\n2,new\n1,new\n"
    path = tmp_path / "customers.csv"
    path.write_bytes(original)
    table = SavesAfterTheSurvey(path, saves=[moved], at_check=[original])
    report = table.write("id", [CellUpdate("1", "status", "sent")])
    assert path.read_bytes() in (b"id,status\n1,sent\n2,new\n", b"id,status\n2,new\n1,sent\n")
    assert report.cells_written == 1
    assert table.concurrent_saves >= 1 and table.surveys >= 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv"]


def test_a_save_between_the_two_passes_is_kept_and_updated(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(b"id,phone,status\n1,111,new\n2,222,new\n")
    theirs = b"id,phone,status\n0,000,new\n1,111,new\n2,999,new\n"
    table = SavesAfterTheSurvey(path, saves=[theirs], at_check=[])
    table.write("id", [CellUpdate("2", "status", "sent")])
    assert path.read_bytes() == theirs.replace(b"2,999,new", b"2,999,sent")
    assert table.concurrent_saves == 1 and table.surveys == 2


def test_a_bom_is_written_once_whatever_the_pieces(tmp_path: Path) -> None:
    data = codecs.BOM_UTF8 + "id,상태\r\n1,신규\r\n2,신규".encode()
    for piece in PIECES:
        got, _report = written(tmp_path, data, piece, lambda table: table.write(
            "id", [CellUpdate("2", "상태", "완료")], append=["3"]))
        assert got == codecs.BOM_UTF8 + "id,상태\r\n1,신규\r\n2,완료\r\n3,".encode(), piece


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf"], ids=["empty", "only a BOM"])
def test_a_file_without_a_header_has_no_key_column_and_is_left_as_it_is(
        tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(data)
    with pytest.raises(BackendError, match="the key column 'id' is not in the header"):
        CsvTable(path).write("id", [CellUpdate("1", "status", "x")], append=["2"])
    report = CsvTable(path).write_column("status", lambda cells: "x")
    assert (report.cells_written, report.columns_added) == (0, [])
    assert path.read_bytes() == data


def test_a_save_filling_a_file_read_empty_is_written_not_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An in-place save truncates the file first: the first pass may read it empty
    and find no header. The save lands before the check of what was read; that check
    must compare the empty file read, not it and the rest read afterwards."""
    path = tmp_path / "customers.csv"
    path.write_bytes(b"")
    full = b"id,status\r\n1,new\r\n"
    settle = KeyedUpdates.settle

    def operator_finishes_saving(change: KeyedUpdates, width: int) -> bool:
        if not path.read_bytes():
            with open(path, "r+b") as handle:
                handle.write(full)
        return settle(change, width)

    monkeypatch.setattr(KeyedUpdates, "settle", operator_finishes_saving)
    table = CsvTable(path)
    report = table.write("id", [CellUpdate("1", "status", "sent")])
    assert path.read_bytes() == b"id,status\r\n1,sent\r\n"
    assert report.cells_written == 1 and table.concurrent_saves == 1


def test_a_row_the_two_passes_read_apart_is_never_written_on_another_customer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sheetcrm.table import csv_stream

    path = tmp_path / "c.csv"
    data = "이메일,상태\r\na@x.com,\r\nb@x.com,\r\nc@x.com,\r\n".encode()
    path.write_bytes(data)
    cut = csv_stream.whole_records

    def one_record_lost(text: str, delimiter: str, final: bool) -> Any:
        bounds, end = cut(text, delimiter, final)
        return [bounds[0], *bounds[2:]], end  # the second pass misses a@x.com's row

    monkeypatch.setattr(csv_stream, "whole_records", one_record_lost)
    with pytest.raises(BackendError, match="did not read the same in the two passes"):
        CsvTable(path).write("이메일", [CellUpdate("b@x.com", "상태", "결제 대기")])
    assert path.read_bytes() == data
    assert [p.name for p in tmp_path.iterdir()] == ["c.csv"]  # no temporary file left
