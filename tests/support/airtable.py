"""What the Airtable backend's tests share: the base, the token, tables of customers,
and the shipped sample as an operator would hold it in Airtable.

Time is virtual: the emulator stamps requests with a ``VirtualClock`` and the
backend's pacer sleeps on the same clock, so Airtable's 30-second penalties are
simulated exactly and cost nothing. Assertions on pace are made on the emulator's
request log (``max_per_second``, ``gaps_after_429``).

The fixtures (``emu``, ``vclock`` and the ``virtual_time`` guard every Airtable test
file asks for) are in ``tests/conftest.py``; the test files are
``tests/test_airtable_*.py``.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sheetcrm.config import config_from_dict
from sheetcrm.errors import CellError
from sheetcrm.fields import make_parser
from sheetcrm.http import HttpOptions, Pacer
from sheetcrm.table import table_context
from sheetcrm.table.airtable import AirtableTable
from tests.support.emulators.airtable import AirtableEmulator, AirtableRequest
from tests.support.sample import ROOT, sample_config, shipped_sample_csv

BASE = "appSheetcrmTest01"
TOKEN = "patSheetcrmTest.0123456789abcdef"
TABLE = "고객 명단"
SEOUL = ZoneInfo("Asia/Seoul")

# The sample sheet as an operator would hold it in Airtable.
SAMPLE_TYPES = {
    "고객명": "singleLineText", "이메일": "email", "연락처": "phoneNumber", "신청일": "date",
    "강의": "singleSelect", "결제 금액": "currency", "결제 여부": "checkbox",
    "링크 클릭": "checkbox", "후기 작성": "checkbox", "최근 접속": "dateTime",
    "메일 미열람": "number", "과제 미제출": "number", "수신 동의": "checkbox", "동의일": "date",
    "메모": "multilineText", "상태 태그": "singleLineText", "자동화 흐름": "multilineText",
    "최근 발송": "singleLineText", "오류": "multilineText",
}
OWNED = ["상태 태그", "자동화 흐름", "최근 발송", "오류"]


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
    config = sample_config()
    table = (f'[table]\nbackend = "airtable"\nbase = "{BASE}"\ntable = "{TABLE}"\n'
             f'token = "${{AIRTABLE_TOKEN}}"\nendpoint = "{emu.url}"\nkey = "email"\n\n')
    config = re.sub(r"\[table\]\n.*?\n\n", lambda _: table, config, count=1, flags=re.DOTALL)
    (folder / "config.toml").write_text(config, encoding="utf-8")
    return folder


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
