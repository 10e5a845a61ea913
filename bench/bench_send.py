"""Benchmark the send path: what `sync` costs per message sent on the outbox, and what a
day of history costs every later run when the ledger loads.

Each scenario runs in a fresh subprocess, so nothing one leaves in memory (or in
the page cache of Python objects) helps the next.

- **send**: ``bench_plan``'s sheet at ``--rows`` rows (the default gives about 2,000
  due sends). A first sync enrols everyone; the sync a day later sends step 1 to every
  customer it is due for, to the outbox. The sending phase is timed from the first
  ``sending`` progress call to the last one (``Watch.progress``), so it holds every
  send's whole cost: the re-read check, rendering, the claim, the .eml, the result;
  divided by the messages sent it gives seconds per message. Beside it, in the same
  run, what the outbox's own guarantee costs alone: ``fsutil.atomic_write`` of a 3 KB
  file (two fsyncs), the floor no message can go under.
- **load**: the time to open the ledger read-only and load the planner's state as
  ``plan`` does (``Ledger.load_state``, with the scope of ``bench_plan``'s config
  where the version has one), on an empty ledger and on ledgers holding the
  enrollments of ``--history`` customers (1.21 flows each, so 121k at the default:
  a 100k-row sheet) and days of one message per enrollment: none; one day
  yesterday; one day 60 days back; three days 60 to 62 days back (steps 1 to 3 of a
  flow since finished). What a run pays for history shows in the last two rows: it
  should not grow with the number of days. The history is written straight into the
  ledger's tables in one transaction: sending 363k messages one by one would only
  measure the send path again.

Usage: python -m bench.bench_send [--rows 1650] [--history 100000] [--out bench/out]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, timedelta
from pathlib import Path

from bench.bench_plan import NOW, generate, write_config

SENT_AT = NOW + timedelta(days=1)
FLOWS = ("payment", "churn", "review")


def send_phase(folder: Path) -> dict[str, float]:
    """The sync that sends step 1, its sending phase timed through ``Watch.progress``."""
    import os

    from sheetcrm.app.runner import RunOptions, Watch, sync
    from sheetcrm.config import load_config

    config = load_config(folder / "config.toml", os.environ)
    marks: list[float] = []

    def progress(phase: str, done: int, total: int) -> None:
        if phase == "sending":
            marks.append(time.perf_counter())

    t = time.perf_counter()
    result = sync(config, SENT_AT, watch=Watch(progress=progress),
                  options=RunOptions(allow_blast=True))
    whole = time.perf_counter() - t
    sent = result.summary()["sent"]
    sending = marks[-1] - marks[0] if marks else 0.0
    return {"sent": sent, "sending_s": sending, "sync_s": whole,
            "per_message_ms": 1000 * sending / sent if sent else 0.0}


def write_floor(folder: Path, files: int = 500) -> dict[str, float]:
    """What the outbox's guarantee costs alone: ``fsutil.atomic_write`` of a 3 KB file
    (temporary file, fsync, rename, fsync of the folder), per file."""
    from sheetcrm.fsutil import atomic_write

    folder.mkdir(parents=True, exist_ok=True)
    data = b"x" * 3000
    t = time.perf_counter()
    for i in range(files):
        atomic_write(folder / f"{i}.eml", data)
    return {"floor_ms": 1000 * (time.perf_counter() - t) / files}


def fabricate_history(path: Path, customers: int, days_ago: list[int]) -> int:
    """Enrollments for ``customers`` (1.21 flows each) and a day of one message per
    enrollment on each of ``days_ago``: step 1 on the first, step 2 on the next ...

    With no days the enrollments are active and nothing was sent; a day yesterday
    leaves them active; older days leave them finished (the flow ran its course).
    """
    import sqlite3

    from sheetcrm.ledger import Ledger

    Ledger.open(path).close()  # the schema, as the current version writes it
    status = "active" if not days_ago or min(days_ago) < 7 else "finished"
    sends = []
    enrollments = []
    for i in range(customers):
        key = f"user{i}@example.com"
        flows = FLOWS[:2] if i % 5 == 0 else FLOWS[:1]  # 1.2 flows per customer ...
        if i % 100 == 0:
            flows = FLOWS  # ... and 1.21 with a third
        for flow in flows:
            first = (NOW - timedelta(days=max(days_ago, default=1))).astimezone(UTC)
            enrollments.append((key, flow, 1, first.isoformat(), None, len(days_ago), status,
                                None, None, 0, "trigger"))
            for step, ago in enumerate(sorted(days_ago, reverse=True)):
                day = (NOW - timedelta(days=ago)).astimezone(UTC)
                at = (day + timedelta(seconds=i % 3600)).isoformat(timespec="seconds")
                sends.append((f"sc-{flow}-e1-s{step + 1}-{i}", key, flow, 1, step, "email",
                              f"{flow}_{step + 1}", "transactional", "sent", at, at,
                              f"<{i}.{flow}.{step}@example.com>"))
    db = sqlite3.connect(path)
    with db:
        db.executemany(
            "INSERT INTO enrollments (key, flow, entry, entered_at, anchor_at, next_step,"
            " status, exited_at, exit_reason, holdout, via) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            enrollments)
        db.executemany(
            "INSERT INTO sends (idem_key, key, flow, entry, step, channel, template, kind,"
            " status, created_at, finished_at, message_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            sends)
        try:  # what finish_send keeps as it goes, where this version keeps it
            from sheetcrm.ledger.schema import fill_latest_sends
        except ImportError:
            pass
        else:
            fill_latest_sends(db)
    db.close()
    return len(sends)


def load_time(folder: Path) -> dict[str, float]:
    """Open read-only and load the planner's state as ``plan`` does (the sends its
    config can read, where this version loads only those); best of 3."""
    import os

    from sheetcrm.config import load_config
    from sheetcrm.ledger import Ledger

    config = load_config(write_config(folder, paused=False), os.environ)
    try:
        from sheetcrm.ledger import history_scope
    except ImportError:  # a version that loads every send
        scope = None
    else:
        scope = history_scope(config, NOW)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        ledger = Ledger.open_readonly(folder / "state.db")
        ledger.load_state() if scope is None else ledger.load_state(scope=scope)
        ledger.close()
        best = min(best, time.perf_counter() - t)
    return {"load_s": best}


#: The ledgers the load is timed on: name -> the days back of each day of messages.
HISTORIES = {
    "enrolled": [],
    "yesterday": [1],
    "60 days back": [60],
    "60-62 days back": [60, 61, 62],
}


def measure(folder: Path, scenario: str, arg: int) -> dict[str, float]:
    """Runs inside a fresh subprocess per scenario."""
    if scenario == "enrol":
        import os

        from sheetcrm.app.runner import RunOptions, sync
        from sheetcrm.config import load_config

        sync(load_config(folder / "config.toml", os.environ), NOW,
             options=RunOptions(allow_blast=True))
        return {}
    if scenario == "send":
        return send_phase(folder)
    if scenario == "floor":
        return write_floor(folder / "floor")
    if scenario == "empty":
        from sheetcrm.ledger import Ledger

        Ledger.open(folder / "state.db").close()
        return {}
    if scenario in HISTORIES:
        return {"messages": fabricate_history(folder / "state.db", arg, HISTORIES[scenario])}
    if scenario == "load":
        return load_time(folder)
    raise SystemExit(f"unknown scenario {scenario}")


def child(folder: Path, scenario: str, arg: int = 0) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-m", "bench.bench_send", "--child", str(folder),
                           scenario, str(arg)], check=True, capture_output=True, text=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def send_figures(out: Path, rows: int) -> dict[str, float]:
    """The sending phase of the sync a day after a first one, and the floor beside it."""
    folder = fresh(out / f"send_{rows}")
    generate(folder, rows)
    write_config(folder, paused=False)
    child(folder, "enrol")
    return {**child(folder, "send"), **child(folder, "floor")}


def load_figures(out: Path, history: int) -> tuple[dict[str, float], dict[str, int]]:
    """The ledger load on an empty ledger and on each of ``HISTORIES``, and the
    messages each holds."""
    empty = fresh(out / "load_empty")
    child(empty, "empty")
    loads = {"empty": child(empty, "load")["load_s"]}
    messages = {}
    for i, name in enumerate(HISTORIES):
        folder = fresh(out / f"load_{i}")
        messages[name] = int(child(folder, name, history)["messages"])
        loads[name] = child(folder, "load")["load_s"]
    return loads, messages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1650)
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        folder, scenario, arg = args.child
        print(json.dumps(measure(Path(folder), scenario, int(arg))))
        return
    out = Path(args.out)
    send = send_figures(out, args.rows)
    loads, messages = load_figures(out, args.history)

    print(f"| send path ({args.rows:,} rows, outbox) | messages sent | sending phase "
          "| per message | whole sync | an atomic .eml write alone |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| day 1: step 1 | {send['sent']:,.0f} | {send['sending_s']:.2f} s "
          f"| {send['per_message_ms']:.2f} ms | {send['sync_s']:.2f} s "
          f"| {send['floor_ms']:.2f} ms |")
    print()
    print(f"| ledger load (`plan`'s, best of 3), {args.history:,} customers | messages "
          "in the ledger | load | added to the empty ledger's |")
    print("|---|---:|---:|---:|")
    print(f"| empty ledger | 0 | {loads['empty']:.3f} s | |")
    for name in HISTORIES:
        what = "enrolled, nothing sent" if name == "enrolled" else f"one day each: {name}"
        print(f"| {what} | {messages[name]:,} | {loads[name]:.3f} s "
              f"| +{loads[name] - loads['empty']:.3f} s |")


if __name__ == "__main__":
    main()
