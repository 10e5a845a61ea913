"""Benchmark `sync` on the Google Sheets backend: requests and wall time per run.

For 1k, 10k and 100k rows (the sheet of ``bench_plan.py``: 20 columns, Korean
header, generated customers) the real gspread + google-auth code talks to the
loopback emulator in ``tests/support/emulators/sheets/``. Three syncs share one table
instance, as the daemon does:

- first: a one-off sync on a fresh ledger (metadata, values, key re-read, write, check;
  every row gets its tags and flow state, two owned columns are appended);
- idle: right after, nothing changed (no write at all);
- tick: a day later on the same instance (metadata cached), some cells change.

Sending is paused: the outbox is not what is measured. Beside them, a naive client
on a copy of the same sheet does what peer tools do: read the sheet once, then one
``values.update`` per changed row at the position it had when read. Its requests
are counted, its wall time measured (run up to ``--naive-limit`` requests, the rest
extrapolated, marked ``~``), and both are priced under the 60 requests per minute
per user quota.

Usage: python -m bench.bench_gsheets [--sizes 1000,10000,100000] [--out bench/out]
                                     [--naive-limit 20000]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench import bench_plan  # the generator and config of the plan benchmark
from sheetcrm.app.runner import sync
from sheetcrm.config import load_config
from sheetcrm.http import HttpOptions, Pacer
from sheetcrm.model import CellUpdate
from sheetcrm.table import open_table
from sheetcrm.table.gsheets import GoogleSheetsTable, SheetPlace, column_letter
from tests.support.emulators.sheets import SheetsEmulator

HERE = Path(__file__).resolve().parent

TITLE = "고객 목록"
KEY = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"
NAIVE_KEY = "1NaiveCopyOfTheSameSheetForTheBenchmark0000"
EMAIL = "sheetcrm-bench@bench.iam.gserviceaccount.com"
QUOTA_PER_MINUTE = 60


@dataclass
class Run:
    name: str
    requests: Counter[str] = field(default_factory=Counter)
    cells: int = 0
    seconds: float = 0.0
    io_seconds: float = 0.0


@dataclass
class Naive:
    rows_changed: int = 0
    requests: int = 0
    seconds: float = 0.0
    extrapolated: bool = False


def service_account(folder: Path, emu: SheetsEmulator) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    emu.add_account(EMAIL, key.public_key())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = folder / "service-account.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "bench", "private_key_id": "k1",
        "private_key": pem, "client_email": EMAIL, "token_uri": emu.token_uri}),
        encoding="utf-8")
    return path


def write_config(folder: Path, emu: SheetsEmulator, credentials: Path) -> Path:
    """bench_plan's config, sending paused, with [table] pointing at the emulator."""
    templates = HERE.parent / "templates"
    text = bench_plan.CONFIG.format(templates=templates.as_posix(), paused="true")
    table = (f'[table]\nbackend = "gsheets"\nspreadsheet = "{KEY}"\nworksheet = "{TITLE}"\n'
             f'credentials = "{credentials.as_posix()}"\nendpoint = "{emu.url}"\n'
             'key = "email"\n')
    text = re.sub(r"\[table\]\n(?:.*\n)*?key = .*\n", table, text, count=1)
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load_sheet(emu: SheetsEmulator, key: str, rows: list[list[str]]) -> None:
    emu.add_spreadsheet(key)
    emu.add_sheet(key, TITLE, rows=len(rows) + 100, cols=26)
    emu.put_fast(key, TITLE, rows)


def timed_io(table: GoogleSheetsTable, run: Run) -> None:
    """Count the seconds spent inside read() and write() of this table into ``run``."""
    read, write = GoogleSheetsTable.read, GoogleSheetsTable.write

    def timed_read() -> Any:
        started = time.perf_counter()
        try:
            return read(table)
        finally:
            run.io_seconds += time.perf_counter() - started

    def timed_write(key_column: str, updates: list[CellUpdate]) -> Any:
        started = time.perf_counter()
        try:
            return write(table, key_column, updates)
        finally:
            run.io_seconds += time.perf_counter() - started

    table.read = timed_read  # type: ignore[method-assign]
    table.write = timed_write  # type: ignore[method-assign]


def measure_syncs(folder: Path, emu: SheetsEmulator, credentials: Path
                  ) -> tuple[list[Run], list[CellUpdate]]:
    config = load_config(write_config(folder, emu, credentials), os.environ)
    table = open_table(config)
    runs, first_updates = [], []
    for name, now in (("first", bench_plan.NOW), ("idle", bench_plan.NOW),
                      ("tick", bench_plan.NOW + timedelta(days=1))):
        run = Run(name)
        timed_io(table, run)
        before = Counter(table.request_counts)
        emu.clear_log()
        started = time.perf_counter()
        result = sync(config, now, table=table)
        run.seconds = time.perf_counter() - started
        run.requests = Counter(table.request_counts) - before
        assert sum(run.requests.values()) == emu.count(), "table and emulator disagree"
        run.cells = result.write.cells_written if result.write else 0
        if name == "first":
            first_updates = list(result.updates)
        runs.append(run)
    return runs, first_updates


def measure_naive(emu: SheetsEmulator, credentials: Path, updates: list[CellUpdate],
                  limit: int) -> Naive:
    """Read once, then one values.update per changed row, at its position as read."""
    info = json.loads(credentials.read_text(encoding="utf-8"))
    table = GoogleSheetsTable(NAIVE_KEY, info, place=SheetPlace(TITLE),  # no pacing: raw speed
                              http=HttpOptions(endpoint=emu.url, pacer=Pacer(10**9, 60.0)))
    client = table._client  # the same gspread client and session setup as the backend
    started = time.perf_counter()
    sheet = client.open_by_key(NAIVE_KEY).worksheet(TITLE)
    values = sheet.get_all_values()
    header = values[0]
    row_of = {row[1]: number for number, row in enumerate(values[1:], start=2)}
    missing = sorted({u.column for u in updates} - set(header))
    if missing:  # the owned columns that do not exist yet, one request
        sheet.update([missing], f"{column_letter(len(header))}1", raw=True)
        header = header + missing
    by_row: dict[int, dict[int, str]] = {}
    for update in updates:
        by_row.setdefault(row_of[update.key], {})[header.index(update.column)] = update.value
    naive = Naive(rows_changed=len(by_row))
    done = 0
    for row, cells in sorted(by_row.items()):
        if done >= limit:
            naive.extrapolated = True
            break
        first, last = min(cells), max(cells)
        sheet.update([[cells.get(c) for c in range(first, last + 1)]],
                     f"{column_letter(first)}{row}:{column_letter(last)}{row}", raw=True)
        done += 1
    elapsed = time.perf_counter() - started
    setup = table.requests - done
    naive.requests = setup + len(by_row)
    naive.seconds = elapsed * (naive.requests / table.requests) if naive.extrapolated else elapsed
    return naive


def quota_time(requests: int) -> str:
    """Wall time the requests need at 60 per minute (what fits in one minute costs 0)."""
    minutes = math.ceil(requests / QUOTA_PER_MINUTE) - 1
    if minutes <= 0:
        return "no wait"
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def bench_size(size: int, out: Path, naive_limit: int) -> dict[str, Any]:
    folder = out / f"gsheets_{size}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    bench_plan.generate(folder, size)
    with open(folder / "customers.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    with SheetsEmulator() as emu:
        credentials = service_account(folder, emu)
        load_sheet(emu, KEY, rows)
        load_sheet(emu, NAIVE_KEY, rows)
        runs, updates = measure_syncs(folder, emu, credentials)
        naive = measure_naive(emu, credentials, updates, naive_limit)
    return {"rows": size, "runs": runs, "naive": naive}


def print_tables(results: list[dict[str, Any]]) -> None:
    print("| rows | run | Sheets requests | cells written | sync wall time | of which Sheets I/O |")
    print("|---:|---|---|---:|---:|---:|")
    for r in results:
        for run in r["runs"]:
            kinds = ", ".join(f"{n} {k}" for k, n in sorted(run.requests.items())) or "none"
            print(f"| {r['rows']:,} | {run.name} | {sum(run.requests.values())} ({kinds}) "
                  f"| {run.cells:,} | {run.seconds:.2f} s | {run.io_seconds:.2f} s |")
    print()
    print("| rows | rows changed | naive requests | naive wall time (emulator) "
          "| naive at 60/min | sheetcrm requests | sheetcrm at 60/min |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        naive, first = r["naive"], r["runs"][0]
        ours = sum(first.requests.values())
        mark = "~" if naive.extrapolated else ""
        print(f"| {r['rows']:,} | {naive.rows_changed:,} | {naive.requests:,} "
              f"| {mark}{naive.seconds:.1f} s | {quota_time(naive.requests)} "
              f"| {ours} | {quota_time(ours)} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--out", default=str(HERE / "out"))
    parser.add_argument("--naive-limit", type=int, default=20_000,
                        help="naive requests actually sent; the rest is extrapolated")
    args = parser.parse_args()
    results = [bench_size(int(s), Path(args.out), args.naive_limit)
               for s in args.sizes.split(",")]
    print_tables(results)


if __name__ == "__main__":
    main()
