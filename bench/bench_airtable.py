"""Benchmark `sync` on the Airtable backend: requests and time per run at 1k and 10k records.

Each size gets a fresh loopback Airtable emulator (tests/support/emulators/airtable/)
holding a generated customer table with Airtable field types (checkboxes, currency, dates,
date-times), and the real pyairtable client talks to it. Three syncs per size:

- first: a fresh ledger; every row gets its tags and flow state written back;
- again: right after, nothing changed (the steady state of a scheduled daemon);
- next day: a day later, some flows advance and their cells change.

Sending is paused (the outbox is not what is measured; tags, flows and writes still
run). Per sync the table reports the requests (list pages, PATCHes of 10 records),
the records and cells written, the wall time on this machine with pacing simulated,
and the *paced* time: how long the same requests take at sheetcrm's pace of 4.5
requests per second per base, i.e. the least a real Airtable base allows.

With ``--real-pace`` the pacer really sleeps (slow: a first sync at 10k records
takes minutes, as it would against Airtable).

Usage: python -m bench.bench_airtable [--sizes 1000,10000] [--real-pace] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench import bench_plan
from sheetcrm.app.runner import sync
from sheetcrm.config import load_config
from sheetcrm.http import Clock
from sheetcrm.table import airtable, open_table
from tests.support.airtable import SAMPLE_TYPES
from tests.support.clock import VirtualClock
from tests.support.emulators.airtable import AirtableEmulator

ROOT = Path(__file__).resolve().parents[1]

SEOUL = ZoneInfo("Asia/Seoul")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SEOUL)
BASE = "appSheetcrmBench1"
TABLE = "고객"
TOKEN = "patSheetcrmBench.0000"

# The sample's field types, plus bench_plan's two extra columns.
TYPES = {**SAMPLE_TYPES, "유입 경로": "singleSelect", "지역": "singleSelect"}

# The same sheet, tags and flows as bench_plan.py, with the table in Airtable.
CONFIG = bench_plan.CONFIG.replace(
    '[table]\nbackend = "csv"\npath = "customers.csv"\nkey = "email"\n',
    '[table]\nbackend = "airtable"\nbase = "{base}"\ntable = "{table}"\n'
    'token = "${{AIRTABLE_TOKEN}}"\nendpoint = "{endpoint}"\nkey = "email"\n',
)
assert "airtable" in CONFIG, "bench_plan.CONFIG's [table] section changed"


def records(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """Customers as Airtable holds them (same distribution as bench_plan.py)."""
    rnd = random.Random(seed)
    start = date(2026, 8, 1)
    out = []
    for i in range(n):
        applied = start + timedelta(days=rnd.randrange(110))
        paid = rnd.random() < 0.6
        login = None
        if paid and rnd.random() < 0.8:
            seen = datetime.combine(applied + timedelta(days=rnd.randrange(1, 30)),
                                    datetime.min.time(), SEOUL)
            seen += timedelta(hours=rnd.randrange(24))
            login = seen.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        out.append({
            "고객명": f"고객{i}", "이메일": f"user{i}@example.com",
            "연락처": f"010-{rnd.randrange(10**4):04d}-{i % 10**4:04d}",
            "신청일": applied.isoformat(),
            "강의": rnd.choice(["엑셀 기초", "파이썬 입문", "데이터 분석"]),
            "결제 금액": rnd.choice([99000, 149000, 199000]) if paid else None,
            "결제 여부": paid, "링크 클릭": rnd.random() < 0.5,
            "후기 작성": paid and rnd.random() < 0.5, "최근 접속": login,
            "메일 미열람": rnd.randrange(5), "과제 미제출": rnd.randrange(3) if paid else None,
            "수신 동의": rnd.random() < 0.66, "메모": "메모" if rnd.random() < 0.1 else None,
            "유입 경로": rnd.choice(["인스타", "블로그", "지인"]),
            "지역": rnd.choice(["서울", "부산", "대구"]),
        })
    return out


def run_size(n: int, real_pace: bool) -> list[dict[str, Any]]:
    vclock = VirtualClock()
    now = time.monotonic if real_pace else vclock.now
    clock = Clock() if real_pace else vclock.clock
    airtable.default_clock = clock
    os.environ["AIRTABLE_TOKEN"] = TOKEN
    rows = []
    with AirtableEmulator(tokens=[TOKEN], clock=now) as emu, \
            tempfile.TemporaryDirectory() as tmp:
        emu.add_table(BASE, TABLE, TYPES, records(n))
        path = Path(tmp) / "config.toml"
        text = CONFIG.format(templates=(ROOT / "templates").as_posix(), paused="true",
                             base=BASE, table=TABLE, endpoint=emu.url)
        path.write_text(text, encoding="utf-8")
        config = load_config(path, os.environ)
        table = open_table(config)  # kept across syncs, as a daemon does
        for label, when in (("first", NOW), ("again", NOW + timedelta(minutes=5)),
                            ("next day", NOW + timedelta(days=1))):
            before, paced_from = len(emu.requests), now()
            started = time.perf_counter()
            result = sync(config, when, table=table)
            wall = time.perf_counter() - started
            calls = emu.requests[before:]
            methods = Counter(c.method for c in calls)
            report = result.write
            rows.append({
                "records": n, "sync": label, "requests": len(calls),
                "list pages": methods["GET"] + methods["POST"], "PATCH": methods["PATCH"],
                "429": sum(c.status == 429 for c in calls),
                "records written": report.rows_written if report else 0,
                "cells written": report.cells_written if report else 0,
                "wall s": round(wall, 2), "paced s": round(now() - paced_from, 1),
            })
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    print("| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(str(r[c]).rjust(w) for c, w in zip(columns, widths, strict=True))
              + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--real-pace", action="store_true",
                        help="really sleep between requests, as against Airtable")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    rows = [row for n in map(int, args.sizes.split(",")) for row in run_size(n, args.real_pace)]
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
