"""The Airtable backend through the real pyairtable client and a loopback emulator.

Time is virtual: the emulator stamps requests with a ``VirtualClock`` and the
backend's pacer sleeps on the same clock, so Airtable's 30-second penalties are
simulated exactly and cost nothing. Assertions on pace are made on the emulator's
request log.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import shutil
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyairtable
import pytest

from sheetcrm.config import config_from_dict, load_config
from sheetcrm.errors import BackendError, CellError, ConfigError
from sheetcrm.fields import make_parser
from sheetcrm.http import HttpOptions, Pacer
from sheetcrm.model import CellUpdate
from sheetcrm.table import airtable, table_context
from sheetcrm.table.airtable import (
    MAX_RETRIES,
    AirtableError,
    AirtableTable,
    AirtableWriteError,
    Clock,
    cell_text,
)
from tests.support.clock import VirtualClock
from tests.support.emulators.airtable import AirtableEmulator, AirtableRequest
from tests.support.sample import DAY0, DAY2, ROOT, shipped_sample_csv

BASE = "appSheetcrmTest01"
TOKEN = "patSheetcrmTest.0123456789abcdef"
TABLE = "고객 명단"
SEOUL = ZoneInfo("Asia/Seoul")

# The sample sheet as an operator would hold it in Airtable.
SAMPLE_TYPES = {
    "고객명": "singleLineText", "이메일": "email", "연락처": "phoneNumber", "신청일": "date",
    "강의": "singleSelect", "결제 금액": "currency", "결제 여부": "checkbox",
    "링크 클릭": "checkbox", "후기 작성": "checkbox", "최근 접속": "dateTime",
    "메일 미열람": "number", "과제 미제출": "number", "수신 동의": "checkbox",
    "메모": "multilineText", "상태 태그": "singleLineText", "자동화 흐름": "multilineText",
    "최근 발송": "singleLineText", "오류": "multilineText",
}
OWNED = ["상태 태그", "자동화 흐름", "최근 발송", "오류"]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def vclock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture(autouse=True)
def virtual_time(vclock: VirtualClock, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Every AirtableTable in this file paces on the virtual clock: nothing really sleeps."""
    clock = vclock.clock
    monkeypatch.setattr(airtable, "default_clock", clock)
    monkeypatch.setenv("AIRTABLE_TOKEN", TOKEN)
    return clock


@pytest.fixture
def emu(vclock: VirtualClock):
    with AirtableEmulator(tokens=[TOKEN], clock=vclock.now) as emulator:
        yield emulator


def open_table(emu: AirtableEmulator, columns: list[str], *, table: str = TABLE,
               owned: list[str] = (), view: str | None = None, pacer: Pacer | None = None,
               timeout: tuple[float, float] | None = None) -> AirtableTable:
    return AirtableTable(token=TOKEN, base=BASE, table=table, columns=columns,
                         owned={c: "single line text" for c in owned}, view=view,
                         http=HttpOptions(endpoint=emu.url, pacer=pacer, timeout=timeout))


def customers(n: int) -> list[dict[str, Any]]:
    return [{"이메일": f"user{i:03d}@example.com", "결제 여부": i % 3 == 0,
             "결제 금액": 99000 if i % 3 == 0 else None} for i in range(n)]


SIMPLE = {"이메일": "email", "결제 여부": "checkbox", "결제 금액": "currency",
          "상태 태그": "singleLineText"}


def max_per_second(calls: list[AirtableRequest]) -> int:
    """The most requests seen in any window of one second (the emulator's own rule)."""
    times = sorted(c.at for c in calls)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def gaps_after_429(calls: list[AirtableRequest]) -> list[float]:
    pairs = zip(calls, calls[1:], strict=False)
    return [later.at - call.at for call, later in pairs if call.status == 429]


# --------------------------------------------------------------------------- the sample


def sample_records() -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The shipped CSV as Airtable field types and values.

    Like Airtable's CSV import, a column keeps its type only when every cell
    converts; otherwise it stays text. In the sample, 결제 여부 (a '몰라') and 신청일
    (a '2026-02-30') stay text; 링크 클릭, 후기 작성, 수신 동의 become checkboxes,
    결제 금액 a currency, 최근 접속 a date-time, the counters numbers.
    """
    import csv
    import io

    text = shipped_sample_csv().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    types = {}
    columns = {}
    for i, name in enumerate(header):
        cells = [row[i] if i < len(row) else "" for row in body]
        types[name], columns[name] = _typed_column(SAMPLE_TYPES[name], name, cells)
    for name in OWNED:
        types.setdefault(name, SAMPLE_TYPES[name])
    records = [{name: columns[name][n] for name in header} for n in range(len(body))]
    return types, records


def _typed_column(ftype: str, name: str, cells: list[str]) -> tuple[str, list[Any]]:
    convert = {
        "checkbox": lambda v: bool(v),
        "currency": lambda v: int(v) if v is not None and v.is_integer() else v,
        "number": lambda v: v,
        "date": lambda v: v.isoformat() if v else None,
        "dateTime": lambda v: (v.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
                               if v else None),
    }.get(ftype)
    if convert is None:
        return ftype, cells
    parser_type = {"checkbox": "bool", "currency": "number", "number": "int",
                   "dateTime": "datetime"}.get(ftype, ftype)
    parse = make_parser(parser_type, column=name, tz=SEOUL)
    try:
        return ftype, [convert(parse(cell)) for cell in cells]
    except CellError:
        return "singleLineText", cells


def airtable_sample(folder: Path, emu: AirtableEmulator, *, drop: tuple[str, ...] = ()) -> Path:
    """The shipped config, templates and sample, with [table] pointing at the emulator."""
    folder.mkdir()
    shutil.copytree(ROOT / "templates", folder / "templates")
    types, records = sample_records()
    for name in drop:
        types.pop(name)
        for record in records:
            record.pop(name, None)
    emu.add_table(BASE, TABLE, types, records)
    config = (ROOT / "config.toml").read_text(encoding="utf-8")
    table = (f'[table]\nbackend = "airtable"\nbase = "{BASE}"\ntable = "{TABLE}"\n'
             f'token = "${{AIRTABLE_TOKEN}}"\nendpoint = "{emu.url}"\nkey = "email"\n\n')
    config = re.sub(r"\[table\]\n.*?\n\n", lambda _: table, config, count=1, flags=re.DOTALL)
    (folder / "config.toml").write_text(config, encoding="utf-8")
    return folder


def sync_json(run_cli, folder: Path, now: str, expect: int = 0) -> dict:
    result = run_cli(folder, "--now", now, "--json", "sync")
    assert result.code == expect, result.out + result.err
    return json.loads(result.out) if expect == 0 else {"err": result.err}


def owned_cells(emu: AirtableEmulator) -> dict[str, dict[str, str]]:
    """What the owned fields show, per key (rows with a unique key only)."""
    records = emu.records(BASE, TABLE)
    keys = [r["fields"].get("이메일", "") for r in records]
    return {key: {c: r["fields"].get(c, "") for c in OWNED}
            for key, r in zip(keys, records, strict=True) if key and keys.count(key) == 1}


def csv_owned_cells(folder: Path) -> dict[str, dict[str, str]]:
    import csv
    import io

    text = (folder / "sample_sheets" / "customers.csv").read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    keys = [row[1] for row in rows[1:]]
    out = {}
    for key, row in zip(keys, rows[1:], strict=True):
        if key and keys.count(key) == 1:
            cells = dict(zip(header, row + [""] * (len(header) - len(row)), strict=True))
            out[key] = {c: cells.get(c, "") for c in OWNED}
    return out


def outcome(data: dict) -> tuple[set, set, set]:
    return ({(s["key"], s["flow"], s["step"], s["result"]) for s in data["sends"]},
            {(w["key"], w["column"], w["value"]) for w in data["writes"]},
            {(h["key"], h["flow"], h["reason"]) for h in data["held"]})


def test_sample_types_are_airtable_like() -> None:
    types, records = sample_records()
    assert types["링크 클릭"] == types["후기 작성"] == types["수신 동의"] == "checkbox"
    assert types["결제 금액"] == "currency" and types["최근 접속"] == "dateTime"
    assert types["결제 여부"] == "singleLineText"  # a '몰라' keeps it text, as on import
    kim = records[0]
    assert kim["링크 클릭"] is True and kim["후기 작성"] is False and kim["결제 금액"] is None


def test_sample_sync_on_airtable_does_what_the_csv_sync_does(
        sample: Path, run_cli, emu: AirtableEmulator, tmp_path: Path) -> None:
    folder = airtable_sample(tmp_path / "airtable", emu)
    expected = sync_json(run_cli, sample, DAY0)
    data = sync_json(run_cli, folder, DAY0)

    assert outcome(data) == outcome(expected)
    assert data["summary"]["rows_read"] == 26
    assert data["summary"]["sent"] == 22
    assert data["summary"]["row_errors"] == 6
    assert len(list((folder / "outbox").glob("*.eml"))) == 22
    assert owned_cells(emu) == csv_owned_cells(sample)
    by_key = emu.by(BASE, TABLE, "이메일")
    assert by_key["soohyun.kim@example.com"]["상태 태그"] == "결제 대기, 결제 유도"
    assert by_key["soohyun.kim@example.com"]["자동화 흐름"].startswith("payment 1/3")
    assert by_key["yuna.shin@example.com"]["오류"].startswith(
        "신청일: '2026-02-30' is not a date")
    # Input fields are untouched: the unchecked boxes are still absent, numbers numbers.
    assert "후기 작성" not in by_key["soohyun.kim@example.com"]
    assert by_key["jihoon.lee@example.com"]["결제 금액"] == 149000

    # Requests: one page to read; one page of keys and a PATCH per 10 records to write.
    cells = data["summary"]["cells_written"]
    patches = emu.requests_where("PATCH")
    assert [c.method for c in emu.requests[:2]] == ["GET", "GET"]
    assert len(emu.requests) == 2 + len(patches)
    assert sum(c.records_sent for c in patches) == len({w[0] for w in outcome(data)[1]})
    assert all(c.records_sent <= 10 and c.json()["typecast"] is True for c in patches)
    assert sum(len(r["fields"]) for c in patches for r in c.json()["records"]) == cells
    assert max_per_second(emu.requests) <= 5


def test_second_sync_sends_and_writes_nothing_then_steps_follow(
        sample: Path, run_cli, emu: AirtableEmulator, tmp_path: Path,
        vclock: VirtualClock) -> None:
    folder = airtable_sample(tmp_path / "airtable", emu)
    sync_json(run_cli, folder, DAY0)
    outbox = sorted(p.name for p in (folder / "outbox").glob("*.eml"))
    before = len(emu.requests)
    vclock.sleep(300)  # the runs are five minutes apart, each with a table of its own

    again = sync_json(run_cli, folder, "2026-11-23T10:05")
    assert again["sends"] == [] and again["summary"]["cells_written"] == 0
    assert [c.method for c in emu.requests[before:]] == ["GET"]  # read; nothing to write
    assert sorted(p.name for p in (folder / "outbox").glob("*.eml")) == outbox

    sync_json(run_cli, sample, DAY0)
    expected = sync_json(run_cli, sample, DAY2)
    later = sync_json(run_cli, folder, DAY2)
    assert outcome(later) == outcome(expected)
    assert any(h[2].startswith("no consent") for h in outcome(later)[2])
    assert owned_cells(emu) == csv_owned_cells(sample)


def test_failure_in_the_middle_of_a_batch_write_is_finished_by_the_next_run(
        sample: Path, run_cli, emu: AirtableEmulator, tmp_path: Path) -> None:
    folder = airtable_sample(tmp_path / "airtable", emu)
    # The second PATCH fails for good: 503 on every retry.
    emu.fail(503, method="PATCH", skip=1, times=MAX_RETRIES + 1)
    failed = sync_json(run_cli, folder, DAY0, expect=3)["err"]
    assert "kept answering 503" in failed
    assert "10 of " in failed and "records were written before this" in failed
    assert TOKEN not in failed
    assert len(list((folder / "outbox").glob("*.eml"))) == 22  # the sends happened
    patched = [c for c in emu.requests_where("PATCH")]
    assert [c.status for c in patched] == [200] + [503] * (MAX_RETRIES + 1)
    assert sum(1 for cells in owned_cells(emu).values() if cells["상태 태그"]) >= 1

    done = sync_json(run_cli, folder, "2026-11-23T10:01")
    assert done["sends"] == []  # the ledger knows what was sent
    assert len(list((folder / "outbox").glob("*.eml"))) == 22
    sync_json(run_cli, sample, DAY0)
    assert owned_cells(emu) == csv_owned_cells(sample)


def test_missing_owned_field_stops_before_anything_is_sent(
        run_cli, emu: AirtableEmulator, tmp_path: Path) -> None:
    folder = airtable_sample(tmp_path / "airtable", emu, drop=("최근 발송", "오류"))
    result = run_cli(folder, "--now", DAY0, "sync")
    assert result.code == 3
    assert "'최근 발송' (single line text), '오류' (long text)" in result.err
    assert "cannot create fields" in result.err
    assert not (folder / "outbox").exists()

    check = run_cli(folder, "--now", DAY0, "--json", "check")
    assert check.code == 1
    findings = json.loads(check.out)["findings"]
    assert any(f["where"] == "table" and "'오류' (long text)" in f["message"] for f in findings)


def test_check_reports_bad_token_without_printing_it(
        run_cli, emu: AirtableEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = airtable_sample(tmp_path / "airtable", emu)
    monkeypatch.setenv("AIRTABLE_TOKEN", "patWrongToken.secretvalue")
    result = run_cli(folder, "--now", DAY0, "--json", "check")
    assert result.code == 1
    findings = json.loads(result.out)["findings"]
    table = [f["message"] for f in findings if f["where"] == "table"]
    assert table and "401 AUTHENTICATION_REQUIRED" in table[0] and "AIRTABLE_TOKEN" in table[0]
    assert "secretvalue" not in result.out + result.err
    assert emu.requests_where(status=401)


def test_check_reports_missing_fields_and_duplicate_keys(
        run_cli, emu: AirtableEmulator, tmp_path: Path) -> None:
    folder = airtable_sample(tmp_path / "airtable", emu, drop=("연락처",))
    result = run_cli(folder, "--now", DAY0, "--json", "check")
    findings = json.loads(result.out)["findings"]
    assert any(f["where"] == "header" and "'연락처' (field 'phone')" in f["message"]
               for f in findings)

    emu.table(BASE, TABLE).fields["연락처"] = "phoneNumber"
    result = run_cli(folder, "--now", DAY0, "--json", "check")
    messages = [f["message"] for f in json.loads(result.out)["findings"]]
    assert sum("gayoung.moon@example.com' appears on 2 rows" in m for m in messages) == 2


# --------------------------------------------------------------------------- reading


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


# --------------------------------------------------------------------------- writing


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


# --------------------------------------------------------------------------- rate limits


def test_429_storm_is_survived_without_exceeding_the_pace(
        emu: AirtableEmulator, vclock: VirtualClock) -> None:
    emu.add_table(BASE, TABLE, SIMPLE, customers(260))
    table = open_table(emu, ["이메일", "결제 여부", "상태 태그"], owned=["상태 태그"])
    started = time.monotonic()
    emu.rate_limit_storm(75)  # every request refused for 75 s
    snapshot = table.read()
    updates = [CellUpdate(f"user{i:03d}@example.com", "상태 태그", "t") for i in range(40)]
    emu.rate_limit_storm(40)
    report = table.write("이메일", updates)

    assert len(snapshot.rows) == 260 and report.rows_written == 40
    refused = emu.requests_where(status=429)
    assert len(refused) == 3 + 2  # t0, +30, +60 refused, +90 served; then +0, +30
    assert all(gap >= 30.0 for gap in gaps_after_429(emu.requests))
    assert max_per_second(emu.requests) <= 5  # the emulator's own limiter never fired
    assert emu._blocked_until == {}
    assert table.requests == len(emu.requests) == 3 + 3 + 2 + 3 + 4
    assert sum(vclock.sleeps) >= 5 * 30
    assert time.monotonic() - started < 10  # the penalties were virtual


def test_tables_of_a_base_given_one_pacer_share_the_pace_and_the_penalty(
        emu: AirtableEmulator, virtual_time: Clock, vclock: VirtualClock) -> None:
    emu.add_table(BASE, TABLE, SIMPLE, customers(520))
    pacer = airtable.base_pacer(virtual_time)
    reader = open_table(emu, ["이메일"], pacer=pacer)
    writer = open_table(emu, ["이메일", "상태 태그"], pacer=pacer)
    reader.read()
    emu.fail(429, method="PATCH")  # the writer gets a 429 ...
    writer.write("이메일", [CellUpdate("user000@example.com", "상태 태그", "x")])
    at_429 = emu.requests_where(status=429)[0].at
    reader.read()  # ... and the reader waits the penalty out too
    assert emu.requests_where("GET")[-6].at - at_429 >= 30.0
    assert max_per_second(emu.requests) <= 5


def test_retry_after_is_honoured_when_longer_than_30_s(emu: AirtableEmulator) -> None:
    emu.add_table(BASE, TABLE, SIMPLE, customers(5))
    emu.fail(429, headers={"Retry-After": "45"})
    open_table(emu, ["이메일"]).read()
    assert [c.status for c in emu.requests] == [429, 200]
    assert emu.requests[1].at - emu.requests[0].at >= 45.0


def test_endless_429s_give_up_after_bounded_retries_and_keep_the_penalty(
        emu: AirtableEmulator) -> None:
    emu.add_table(BASE, TABLE, SIMPLE, customers(5))
    emu.rate_limit_storm(10_000)
    table = open_table(emu, ["이메일"])
    with pytest.raises(BackendError, match=r"kept answering 429 \(rate limit\) after 6 retries"):
        table.read()
    assert len(emu.requests) == MAX_RETRIES + 1
    emu.rate_limit_storm(0)
    table.read()  # the table's next request (a daemon's next run) still waits the penalty
    assert emu.requests[-1].at - emu.requests[-2].at >= 30.0


def test_server_errors_are_retried_with_backoff(emu: AirtableEmulator) -> None:
    emu.add_table(BASE, TABLE, SIMPLE, customers(5))
    emu.fail(503, times=2)
    snapshot = open_table(emu, ["이메일"]).read()
    assert len(snapshot.rows) == 5
    assert [c.status for c in emu.requests] == [503, 503, 200]
    assert emu.requests[2].at - emu.requests[1].at >= 1.0  # backoff, not just the pace


def test_every_request_has_a_timeout(emu: AirtableEmulator) -> None:
    emu.add_table(BASE, TABLE, SIMPLE, customers(5))
    emu.fail(200, delay=2.0, times=2)
    table = open_table(emu, ["이메일"], timeout=(1.0, 0.3))
    started = time.monotonic()
    with pytest.raises(BackendError, match=r"did not answer within 0.3 s"):
        table.read()
    assert time.monotonic() - started < 2.0
    assert table.requests == 2  # tried, then retried once


# --------------------------------------------------------------------------- errors


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


# --------------------------------------------------------------------------- config


def from_config(config: Any, *, env: dict | None = None) -> AirtableTable:
    """The table a config's ``[table]`` opens (``env`` None: the process environment)."""
    return AirtableTable.from_settings(config.table, table_context(config, env))


def make_config(tmp_path: Path, emu: AirtableEmulator | None = None, *,
                fields: dict | None = None, key: str = "email", env: dict | None = None,
                **table: Any):
    settings = {"backend": "airtable", "base": BASE, "table": TABLE, "key": key,
                "endpoint": emu.url if emu else "https://api.airtable.com", **table}
    raw = {"table": settings,
           "fields": fields or {"email": {"column": "이메일", "type": "email"}},
           "writeback": {"tags": "상태 태그"}}
    return config_from_dict(raw, env or {}, path=tmp_path / "config.toml")


@pytest.mark.parametrize(("settings", "path", "says"), [
    ({"base": None}, "table.base", "needs the base id"),
    ({"base": "my base"}, "table.base", "'my base' is not an Airtable base id; expected 'app'"),
    ({"table": "  "}, "table.table", "needs the table's name or id"),
    ({"view": ""}, "table.view", "is blank"),
    ({"endpoint": "ftp://x"}, "table.endpoint", "expected e.g. 'https://api.airtable.com'"),
    ({"endpoint": "http://proxy.example"}, "table.endpoint", "in clear text"),
])
def test_config_errors_name_the_key(tmp_path: Path, settings: dict, path: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_config(make_config(tmp_path, **settings))
    assert caught.value.path == path and says in str(caught.value)


def test_token_from_config_or_environment_never_shown(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    with pytest.raises(ConfigError, match="set the environment variable AIRTABLE_TOKEN") as no:
        from_config(config, env={})
    assert no.value.path == "table.token"
    assert from_config(config, env={"AIRTABLE_TOKEN": " patA.b \n"})
    with pytest.raises(ConfigError) as bad:
        from_config(config, env={"AIRTABLE_TOKEN": "pat secret\r\nX: y"})
    assert "secret" not in str(bad.value) and bad.value.path == "table.token"

    from_file = make_config(tmp_path, token="${MY_TOKEN}", env={"MY_TOKEN": "patFromFile.1"})
    table = from_config(from_file, env={})
    assert table._api_table.api.api_key == "patFromFile.1"
    assert "patFromFile" not in repr(table)


def test_from_config_reads_the_settings(tmp_path: Path, emu: AirtableEmulator) -> None:
    url_base = f"https://airtable.com/{BASE}/tblAbcdefghijklmn/viwAbcdefghijklmn"
    config = make_config(tmp_path, emu, base=url_base, view=" 활성 고객 ",
                         fields={"email": {"column": "이메일"}, "name": {"column": "고객명"}})
    table = from_config(config)
    assert (table.base, table.table, table.view) == (BASE, TABLE, "활성 고객")
    assert table.columns == ["이메일", "고객명", "상태 태그"]
    assert table.owned == {"상태 태그": "single line text"}
    assert table.timeout == (5.0, 30.0) and table._api_table.api.timeout == (5.0, 30.0)
    assert table.endpoint == emu.url


def test_the_shipped_config_switched_to_airtable_loads(tmp_path: Path) -> None:
    text = (ROOT / "config.toml").read_text(encoding="utf-8").replace(
        'backend = "csv"', f'backend = "airtable"\nbase = "{BASE}"\ntable = "{TABLE}"'
    ).replace('path = "sample_sheets/customers.csv"\n', "")  # a CSV key: refused for airtable
    (tmp_path / "config.toml").write_text(text, encoding="utf-8")
    table = from_config(load_config(tmp_path / "config.toml", {}), env={"AIRTABLE_TOKEN": TOKEN})
    assert table.owned == {"상태 태그": "single line text", "자동화 흐름": "long text",
                           "최근 발송": "single line text", "오류": "long text"}


# --------------------------------------------------------------------------- monthly calls


def test_the_monthly_call_cap_is_neither_retried_nor_waited_out(
        vclock: VirtualClock) -> None:
    with AirtableEmulator(tokens=[TOKEN], clock=vclock.now, monthly_calls=3) as emu:
        emu.add_table(BASE, TABLE, SIMPLE, customers(260))
        table = open_table(emu, ["이메일"])
        assert len(table.read().rows) == 260  # 3 pages: the month's last 3 calls
        slept = sum(vclock.sleeps)
        with pytest.raises(AirtableError) as caught:
            table.read()
        message = str(caught.value)
        assert "429 PUBLIC_API_BILLING_LIMIT_EXCEEDED" in message
        assert "used all of its API calls for this month (the Free plan allows 1,000)" in message
        assert "Wait for the next month, upgrade the workspace's plan, or run less often" in message
        assert "\n" not in message and TOKEN not in message
        assert caught.value.status == 429
        assert caught.value.kind == "PUBLIC_API_BILLING_LIMIT_EXCEEDED"
        assert [c.status for c in emu.requests[3:]] == [429]  # asked once, not retried
        assert sum(vclock.sleeps) - slept < 1.0  # no 30 s penalty waited

        emu.new_month()
        refused_at = emu.requests[-1].at
        assert len(table.read().rows) == 260  # and nothing held the base back
        assert emu.requests[4].at - refused_at < 1.0


def test_the_monthly_cap_in_the_middle_of_a_write_says_what_was_written(
        vclock: VirtualClock) -> None:
    with AirtableEmulator(tokens=[TOKEN], clock=vclock.now, monthly_calls=3) as emu:
        emu.add_table(BASE, TABLE, SIMPLE, customers(30))
        table = open_table(emu, ["이메일", "상태 태그"], owned=["상태 태그"])
        updates = [CellUpdate(f"user{i:03d}@example.com", "상태 태그", "x") for i in range(30)]
        with pytest.raises(AirtableWriteError) as caught:
            table.write("이메일", updates)  # keys, 2 PATCHes, then the cap
        assert "PUBLIC_API_BILLING_LIMIT_EXCEEDED" in str(caught.value)
        assert "20 of 30 records were written before this" in str(caught.value)
        assert [c.status for c in emu.requests] == [200, 200, 200, 429]


def test_sync_over_the_monthly_cap_ends_with_a_backend_error_and_no_traceback(
        run_cli, vclock: VirtualClock, tmp_path: Path) -> None:
    with AirtableEmulator(tokens=[TOKEN], clock=vclock.now, monthly_calls=0) as emu:
        folder = airtable_sample(tmp_path / "airtable", emu)
        result = run_cli(folder, "--now", DAY0, "sync")
        assert result.code == 3
        assert "used all of its API calls for this month" in result.err
        assert "Traceback" not in result.err + result.out
        assert len(emu.requests) == 1
        assert not (folder / "outbox").exists()


def schedule_config(tmp_path: Path, *, backend: str = "airtable", **schedule: Any):
    monthly = schedule.pop("monthly_calls", None)
    table = {"backend": backend, "key": "email",
             **({"path": "customers.csv"} if backend == "csv" else {"base": BASE, "table": TABLE})}
    if monthly is not None:
        table["monthly_calls"] = monthly
    raw = {"table": table, "fields": {"email": {"column": "이메일"}}, "schedule": schedule}
    return config_from_dict(raw, {}, path=tmp_path / "config.toml")


def test_requests_per_run_count_pages_of_100_and_patches_of_10() -> None:
    assert airtable.requests_per_run(0) == airtable.requests_per_run(26) == 1
    assert airtable.requests_per_run(26, changed=5) == 3  # read, keys again, one PATCH
    assert airtable.requests_per_run(1_000, changed=95) == 10 + 10 + 10
    assert airtable.requests_per_run(10_000) == 100


def test_every_5_minutes_on_a_small_base_is_over_the_free_plan(tmp_path: Path) -> None:
    config = schedule_config(tmp_path, every="5m")
    assert airtable.runs_per_month(config) == 8_640
    warning = airtable.monthly_budget_warning(config, rows=26)
    assert warning is not None and "\n" not in warning
    assert '[schedule] every = "5m" runs about 8,640 syncs a month' in warning
    assert "each costs at least 1 Airtable API call (more when cells change)" in warning
    assert "about 8,640 a month, over the 1,000 calls a month of Airtable's Free plan" in warning
    assert 'e.g. every = "1h" (about 720 calls a month)' in warning
    assert airtable.monthly_budget_warning(schedule_config(tmp_path, every="1h"), rows=26) is None


def test_the_budget_is_monthly_calls_when_set(tmp_path: Path) -> None:
    hourly = schedule_config(tmp_path, every="1h", monthly_calls=500)
    warning = airtable.monthly_budget_warning(hourly, rows=26)
    assert warning is not None and "about 720 a month, over [table] monthly_calls = 500" in warning
    assert 'e.g. every = "2h" (about 360 calls a month)' in warning
    team = schedule_config(tmp_path, every="5m", monthly_calls=100_000)
    assert airtable.monthly_budget_warning(team, rows=26) is None
    big = schedule_config(tmp_path, every="5m", monthly_calls=100_000)
    warning = airtable.monthly_budget_warning(big, rows=2_000)  # 20 pages a run
    assert warning is not None and "about 172,800 a month" in warning
    assert 'e.g. every = "10m" (about 86,400 calls a month)' in warning
    huge = airtable.monthly_budget_warning(schedule_config(tmp_path, every="1d"), rows=5_000)
    assert huge is not None and "even one sync a day costs more than that" in huge


def test_cron_schedules_are_counted_over_30_days(tmp_path: Path) -> None:
    start = dt.datetime(2026, 11, 23, tzinfo=SEOUL)
    for cron, runs in [("*/5 * * * *", 8_640), ("0 9,18 * * *", 60),
                       ("*/10 8-21 * * *", 2_520), ("0 9 1 * *", 1)]:
        config = schedule_config(tmp_path, cron=cron, every="1m")  # cron wins over every
        assert airtable.runs_per_month(config, now=start) == runs, cron
    ok = schedule_config(tmp_path, cron="0 9,18 * * *")
    assert airtable.monthly_budget_warning(ok, rows=26, now=start) is None
    busy = schedule_config(tmp_path, cron="*/10 8-21 * * *")
    warning = airtable.monthly_budget_warning(busy, rows=26, now=start)
    assert warning is not None and '[schedule] cron = "*/10 8-21 * * *" runs about 2,520' in warning


def test_no_warning_for_other_backends_or_without_a_schedule(tmp_path: Path) -> None:
    assert airtable.monthly_budget_warning(
        schedule_config(tmp_path, backend="csv", every="1m"), rows=26) is None
    assert airtable.monthly_budget_warning(schedule_config(tmp_path, every=None), rows=26) is None


def test_monthly_calls_must_be_a_positive_number(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        schedule_config(tmp_path, every="5m", monthly_calls=0)
    assert str(caught.value).startswith("table.monthly_calls: 0 is invalid")


def docs_example(after: str) -> str:
    """The ```text block that follows ``after`` in docs/airtable.md, as one line."""
    text = (ROOT / "docs" / "airtable.md").read_text(encoding="utf-8")
    block = text.split(after, 1)[1].split("```text\n", 1)[1].split("\n```", 1)[0]
    return " ".join(block.split("\n"))


def test_the_docs_show_the_warning_and_the_error_as_they_are(
        tmp_path: Path, vclock: VirtualClock) -> None:
    warning = airtable.monthly_budget_warning(schedule_config(tmp_path, every="5m"), rows=26)
    assert docs_example("naming an `every` that fits:") == warning
    with AirtableEmulator(tokens=[TOKEN], clock=vclock.now, monthly_calls=0) as emu:
        emu.add_table("appXXXXXXXXXXXXXX", "고객", SIMPLE)
        table = AirtableTable(token=TOKEN, base="appXXXXXXXXXXXXXX", table="고객",
                              columns=["이메일"], http=HttpOptions(endpoint=emu.url))
        with pytest.raises(AirtableError) as caught:
            table.read()
    assert docs_example("before anything is sent:") == str(caught.value)


def test_check_warns_when_the_schedule_would_spend_the_monthly_calls(
        run_cli, vclock: VirtualClock, tmp_path: Path) -> None:
    with AirtableEmulator(tokens=[TOKEN], clock=vclock.now) as emu:
        folder = airtable_sample(tmp_path / "airtable", emu)
        result = run_cli(folder, "--now", DAY0, "--json", "check")
        found = [f for f in json.loads(result.out)["findings"] if f["where"] == "schedule"]
        assert len(found) == 1 and found[0]["level"] == "warning"
        assert "over the 1,000 calls a month of Airtable's Free plan" in found[0]["message"]
        config = folder / "config.toml"
        config.write_text(config.read_text(encoding="utf-8").replace(
            "[table]", "[table]\nmonthly_calls = 100000", 1), encoding="utf-8")
        result = run_cli(folder, "--now", DAY0, "--json", "check")
        assert not [f for f in json.loads(result.out)["findings"] if f["where"] == "schedule"]
