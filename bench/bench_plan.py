"""Benchmark `plan` on generated sheets of 1k, 10k and 100k rows × 20 columns.

For each size, in a fresh subprocess (so peak RSS is that size's alone):

- parse floor: the time to merely parse the CSV (``csv.reader`` over the file);
- plan: the whole ``sheetcrm plan`` path (read, type, 5 tags, 3 flows, projection),
  once with an empty ledger and once after a sync recorded every enrollment;
- their ratio (target: plan <= 2x the floor at 100k rows);
- condition evaluations per second (tags, triggers, goals over every row);
- peak RSS (target: <= 300 MB).

Then whole ``sheetcrm`` processes (``bench_process``), each in its own interpreter:

- ``sheetcrm plan`` at 100k rows: wall time, of which imports, the collector, teardown;
- ``sheetcrm plan --json`` at 100k rows: wall time and peak RSS;
- the daemon's first tick at 100k and 200k rows: ``sheetcrm sync`` on a new ledger,
  which is what the daemon's first run does (read, plan, record every enrollment,
  write the sheet back; nothing is due yet), peak RSS;
- ``sheetcrm --help`` and ``sheetcrm check`` on the shipped sample.

Usage: python -m bench.bench_plan [--sizes 1000,10000,100000] [--ticks 100000,200000]
       [--out bench/out]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import shutil
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Seoul"))

HEADER = [
    "고객명", "이메일", "연락처", "신청일", "강의", "결제 금액", "결제 여부", "링크 클릭",
    "후기 작성", "최근 접속", "메일 미열람", "과제 미제출", "수신 동의", "메모", "유입 경로",
    "지역", "쿠폰", "담당자", "상태 태그", "자동화 흐름",
]

CONFIG = """
timezone = "Asia/Seoul"
state = "state.db"
templates = "{templates}"

[table]
backend = "csv"
path = "customers.csv"
key = "email"

[fields]
name       = {{ column = "고객명" }}
email      = {{ column = "이메일", type = "email" }}
phone      = {{ column = "연락처", type = "phone" }}
applied_at = {{ column = "신청일", type = "date" }}
course     = {{ column = "강의" }}
amount     = {{ column = "결제 금액", type = "number" }}
paid       = {{ column = "결제 여부", type = "bool" }}
clicked    = {{ column = "링크 클릭", type = "bool" }}
reviewed   = {{ column = "후기 작성", type = "bool" }}
last_login = {{ column = "최근 접속", type = "datetime" }}
unopened   = {{ column = "메일 미열람", type = "int" }}
missed     = {{ column = "과제 미제출", type = "int" }}
consent    = {{ column = "수신 동의", type = "bool" }}

[writeback]
tags = "상태 태그"
flow = "자동화 흐름"
last_sent = "최근 발송"
error = "오류"

[tags]
"결제 대기"   = "not paid and days_since(applied_at) >= 1"
"첫 수강 전"  = "paid and last_login is none"
"이탈 가능"   = "paid and (days_since(last_login) >= 7 or unopened >= 3 or missed >= 2)"
"후기 미작성" = "paid and not reviewed and days_since(applied_at) >= 7"
"우수 참여자" = "paid and reviewed and (missed or 0) == 0 and days_since(last_login) < 7"

[sending]
paused = {paused}
consent = "consent"

[channels.email]
type = "outbox"
path = "outbox"
from = "Bench <bench@example.com>"
to = "email"

[flows.payment]
trigger = "결제 대기"
goal = "paid"
steps = [
  {{ after = "1d", channel = "email", template = "payment_reminder" }},
  {{ after = "3d", channel = "email", template = "payment_reviews", kind = "ad" }},
]

[flows.churn]
trigger = "이탈 가능"
steps = [{{ after = "1d", channel = "email", template = "churn_checkin" }}]

[flows.review]
trigger = "후기 미작성"
goal = "reviewed"
steps = [{{ after = "1d", channel = "email", template = "review_request" }}]
"""


def generate(folder: Path, rows: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    start = date(2026, 8, 1)
    with open(folder / "customers.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(HEADER)
        for i in range(rows):
            applied = start + timedelta(days=rnd.randrange(110))
            paid = rnd.random() < 0.6
            login = ""
            if paid and rnd.random() < 0.8:
                seen = applied + timedelta(days=rnd.randrange(1, 30))
                login = f"{seen} {rnd.randrange(24):02d}:00"
            w.writerow([
                f"고객{i}", f"user{i}@example.com",
                f"010-{rnd.randrange(10**4):04d}-{i % 10**4:04d}",
                applied.isoformat(), rnd.choice(["엑셀 기초", "파이썬 입문", "데이터 분석"]),
                f"{rnd.choice([99000, 149000, 199000]):,}" if paid else "",
                "O" if paid else "X", rnd.choice("OX"), rnd.choice("OX") if paid else "X",
                login, str(rnd.randrange(5)), str(rnd.randrange(3)) if paid else "",
                rnd.choice(["O", "O", "X"]), "메모" if rnd.random() < 0.1 else "",
                rnd.choice(["인스타", "블로그", "지인"]), rnd.choice(["서울", "부산", "대구"]),
                "", "", "", "",
            ])


def write_config(folder: Path, paused: bool) -> Path:
    templates = Path(__file__).resolve().parents[1] / "templates"
    path = folder / "config.toml"
    path.write_text(CONFIG.format(templates=templates.as_posix(),
                                  paused=str(paused).lower()), encoding="utf-8")
    return path


def parse_floor(folder: Path) -> float:
    """The time to merely parse the CSV: every row materialised, as any reader must."""
    t = time.perf_counter()
    with open(folder / "customers.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    elapsed = time.perf_counter() - t
    del rows
    return elapsed


def evaluations_per_second(folder: Path) -> dict[str, float]:
    """Every compiled tag, trigger and goal over every typed row, in a tight loop: one
    closure call per row, and (what ``plan`` uses) one column function per condition."""
    import os

    from sheetcrm.app.runner import gc_paused
    from sheetcrm.config import load_config
    from sheetcrm.core.rules import RowContext, compile_rules
    from sheetcrm.core.schema import read_records
    from sheetcrm.model import LedgerState
    from sheetcrm.table import open_table

    config = load_config(write_config(folder, paused=False), os.environ)
    rules = compile_rules(config)
    with gc_paused():
        records = read_records(open_table(config).read(), config).records
    exprs = [e for _, e in rules.tags]
    exprs += [f.trigger for f in rules.flows.values() if f.trigger_tag is None]
    exprs += [f.goal for f in rules.flows.values() if f.goal is not None]
    ctx = RowContext(NOW, config.tz, LedgerState())
    values = [r.values for r in records]
    t = time.perf_counter()
    for expr in exprs:
        for v in values:
            expr(v, ctx)
    closures = len(exprs) * len(values) / (time.perf_counter() - t)
    columnar = [e for e in exprs if getattr(e, "column", None) is not None]
    t = time.perf_counter()
    for expr in columnar:
        expr.column(values, ctx)  # type: ignore[misc]
    columns = len(columnar) * len(values) / (time.perf_counter() - t)
    return {"evaluations_per_s": closures, "column_evaluations_per_s": columns,
            "columnar": len(columnar), "conditions": len(exprs)}


def measure(folder: Path, scenario: str) -> dict[str, float]:
    """Runs inside a fresh subprocess per scenario, so peak RSS is that scenario's."""
    import os

    from sheetcrm.app.runner import preview, sync
    from sheetcrm.config import load_config

    config = load_config(write_config(folder, paused=False), os.environ)
    out: dict[str, float] = {}
    if scenario == "empty":
        # The best of two of each: this shared machine only ever adds time.
        out["floor_s"] = min(parse_floor(folder) for _ in range(2))
        out["plan_s"] = float("inf")
        for _ in range(2):
            (folder / "state.db").unlink(missing_ok=True)
            result = None  # the first plan is freed before the second is made
            t = time.perf_counter()
            result = preview(config, NOW)
            out["plan_s"] = min(out["plan_s"], time.perf_counter() - t)
        out["sends_due"] = len(result.plan.sends)
        out["rows"] = result.plan.rows_read
        result = None
        out.update(plan_phases(config))
    elif scenario == "setup":
        # A paused sync records every enrollment (and sends nothing).
        paused = load_config(write_config(folder, paused=True), os.environ)
        t = time.perf_counter()
        sync(paused, NOW)
        out["paused_sync_s"] = time.perf_counter() - t
    elif scenario == "full":
        t = time.perf_counter()
        preview(config, NOW + timedelta(days=1))
        out["plan_full_s"] = time.perf_counter() - t
    elif scenario == "evals":
        out.update(evaluations_per_second(folder))
    out[f"rss_{scenario}_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def plan_phases(config: Any) -> dict[str, float]:
    """Where a plan's time goes (the best of two of each phase, run one after the other
    as ``prepare`` does): the CSV parse inside sheetcrm, typing the cells into records,
    planning, projecting the cells to write; and the Python objects made per row."""
    from sheetcrm.app.collector import gc_paused
    from sheetcrm.core.engine import make_plan
    from sheetcrm.core.projection import project
    from sheetcrm.core.rules import compile_rules
    from sheetcrm.core.schema import read_records
    from sheetcrm.model import LedgerState
    from sheetcrm.table import open_table
    from sheetcrm.templates import Templates

    rules, templates = compile_rules(config), Templates(config.templates_dir)
    best: dict[str, float] = {}
    for _ in range(2):
        with gc_paused():
            t0 = time.perf_counter()
            rows = len(open_table(config).read().rows)  # parsed whole
            t1 = time.perf_counter()
            records = read_records(open_table(config).read(), config, let_go=True)
            t2 = time.perf_counter()
            state = LedgerState()
            plan = make_plan(records, state, NOW, config, rules, templates=templates)
            t3 = time.perf_counter()
            updates = project(plan.records, plan.tags, state, config)
            t4 = time.perf_counter()
        typing = (t2 - t1) - (t1 - t0)  # reading again, parse included, less the parse
        for name, took in (("parse", t1 - t0), ("typing", typing), ("planning", t3 - t2),
                           ("projecting", t4 - t3)):
            best[f"phase_{name}_s"] = min(best.get(f"phase_{name}_s", took), took)
        objects = len(plan.enrollments) + len(plan.moves) + len(plan.tag_changes)
        best.update(phase_rows=rows, phase_objects=objects, phase_updates=len(updates))
        del records, plan, updates, state
    return best


def child(folder: Path, scenario: str) -> dict[str, float]:
    proc = subprocess.run([sys.executable, __file__, "--child", str(folder), scenario],
                          check=True, capture_output=True, text=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def processes(folder: Path, rows: int) -> dict[str, float]:
    """``sheetcrm plan`` and ``plan --json`` as processes, on a first run's empty ledger."""
    from bench.bench_process import best_of

    (folder / "state.db").unlink(missing_ok=True)
    argv = ["--config", str(folder / "config.toml"), "--now", NOW.isoformat()]
    out: dict[str, float] = {"rows": rows}
    for name, extra in (("plan", ["plan"]), ("json", ["plan", "--json"])):
        r = best_of(1, argv + extra, stdout=folder / f"{name}.out")
        out.update({f"{name}_{k}": v for k, v in r.items()})
    return out


def first_tick(out_dir: Path, rows: int) -> dict[str, float]:
    """What the daemon's first tick does, as a ``sheetcrm sync`` process on a new ledger."""
    from bench.bench_process import run

    folder = out_dir / f"tick_{rows}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    generate(folder, rows)
    write_config(folder, paused=False)
    r = run(["--config", str(folder / "config.toml"), "--now", NOW.isoformat(), "sync"],
            stdout=folder / "sync.out")
    return {"rows": rows, **r}


def restoring_tick(out_dir: Path, rows: int) -> dict[str, float]:
    """A daemon's first tick on a sheet a sync already wrote, with a new ledger (the state
    file lost or moved), a week later: every flow cell is restored from the sheet, its
    overdue steps skipped, most cells written again. Run after ``first_tick``."""
    from bench.bench_process import run

    folder = out_dir / f"tick_{rows}"
    for stale in ("state.db", "state.db-wal", "state.db-shm", "sync.lock"):
        (folder / stale).unlink(missing_ok=True)
    later = NOW + timedelta(days=7)
    r = run(["--config", str(folder / "config.toml"), "--now", later.isoformat(), "sync"],
            stdout=folder / "restore.out")
    return {"rows": rows, **r}


def sample_commands() -> dict[str, float]:
    """``--help`` and ``check`` on the shipped sample (the best of 5 each)."""
    from bench.bench_process import best_of

    root = Path(__file__).resolve().parents[1]
    help_ = best_of(5, ["--help"], cwd=root)
    check = best_of(5, ["--config", str(root / "config.toml"), "check"], cwd=root)
    return {"help_s": help_["wall_s"], "help_import_s": help_["import_s"],
            "check_s": check["wall_s"], "check_import_s": check["import_s"]
            + check["main_s"], "interpreter_s": _best_python(5, "pass"),
            "pydantic_s": _best_python(5, _PYDANTIC)}


#: What any process that checks a config with pydantic models pays first.
_PYDANTIC = "import pydantic; pydantic.create_model('M', x=(int, 1))"


def _best_python(n: int, code: str) -> float:
    """The fastest of ``n`` bare interpreters running ``code``: what no command avoids."""
    took = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        took.append(time.perf_counter() - t)
    return min(took)


def print_processes(p: dict[str, float], floor: float, plan: float) -> None:
    print()
    print(f"plan at {p['rows']:,.0f} rows: {plan:.3f} s ÷ parse floor {floor:.3f} s "
          f"= {plan / floor:.1f}×")
    print(f"sheetcrm plan process at {p['rows']:,.0f} rows: {p['plan_wall_s']:.2f} s wall "
          f"(interpreter start {p['plan_startup_s']:.2f} s, imports {p['plan_import_s']:.2f} s, "
          f"command {p['plan_main_s']:.2f} s of which GC {p['plan_gc_s']:.2f} s, "
          f"teardown {p['plan_teardown_s']:.2f} s), peak RSS {p['plan_rss_mb']:.0f} MB")
    print(f"sheetcrm plan --json at {p['rows']:,.0f} rows: {p['json_wall_s']:.2f} s wall "
          f"(+{p['json_wall_s'] - p['plan_wall_s']:.2f} s over plan; GC {p['json_gc_s']:.2f} s, "
          f"teardown {p['json_teardown_s']:.2f} s), peak RSS {p['json_rss_mb']:.0f} MB, "
          f"{p['json_out_mb']:.0f} MB written")


def _columns(r: dict[str, float]) -> str:
    if "column_evaluations_per_s" not in r or not r["columnar"]:
        return "–"
    return (f"{r['column_evaluations_per_s'] / 1e6:.1f} M ({r['columnar']:.0f} of "
            f"{r['conditions']:.0f} conditions)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--ticks", default="100000,200000")
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"))
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child[0]), args.child[1])))
        return
    results = []
    for size in [int(s) for s in args.sizes.split(",")]:
        folder = Path(args.out) / f"plan_{size}"
        folder.mkdir(parents=True, exist_ok=True)
        for stale in ("state.db", "sync.lock"):
            (folder / stale).unlink(missing_ok=True)
        generate(folder, size)
        r: dict[str, float] = {}
        for scenario in ("empty", "evals"):
            r.update(child(folder, scenario))
        if size == 100_000:
            procs = processes(folder, size)
            proc_at = (r["floor_s"], r["plan_s"])
        for scenario in ("setup", "full"):
            r.update(child(folder, scenario))
        results.append(r)
    ticks = [first_tick(Path(args.out), int(s)) for s in args.ticks.split(",") if s]
    sample = sample_commands()
    print("| rows | parse floor | plan, empty ledger | ratio | plan, ledger holding every "
          "enrollment | ratio | condition evaluations/s (closures / columns) "
          "| peak RSS (empty / full) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['rows']:,.0f} | {r['floor_s']:.3f} s | {r['plan_s']:.3f} s "
              f"| {r['plan_s'] / r['floor_s']:.1f}× | {r['plan_full_s']:.3f} s "
              f"| {r['plan_full_s'] / r['floor_s']:.1f}× | {r['evaluations_per_s'] / 1e6:.2f} M / "
              f"{_columns(r)} "
              f"| {r['rss_empty_mb']:.0f} / {r['rss_full_mb']:.0f} MB |")
    if "procs" in locals():
        print_processes(procs, *proc_at)
    for t in ticks:
        print(f"daemon first tick (sheetcrm sync, new ledger) at {t['rows']:,.0f} rows: "
              f"peak RSS {t['rss_mb']:.0f} MB, {t['wall_s']:.2f} s wall")
    print(f"sheetcrm --help: {sample['help_s']:.3f} s (imports {sample['help_import_s']:.3f} s); "
          f"sheetcrm check on the sample: {sample['check_s']:.3f} s "
          f"(imports and command {sample['check_import_s']:.3f} s)")


if __name__ == "__main__":
    main()
