"""Benchmark the send path: what `sync` costs per message sent on the outbox, and what a
day of history costs every later run when the ledger loads.

Each scenario runs in a fresh subprocess, so nothing one leaves in memory (or in
the page cache of Python objects) helps the next.

- **send**: ``bench_plan``'s sheet at ``--rows`` rows (the default gives about 2,000
  due sends). A first sync enrols everyone; the sync a day later sends step 1 to every
  customer it is due for, to the outbox. The sending phase is timed from the first
  ``sending`` progress call to the last one (``Watch.progress``), so it holds every
  send's whole cost: the re-read check, rendering, the claim, the .eml, the result;
  divided by the messages sent it gives seconds per message.
- **load**: the time to open the ledger read-only and load the planner's state
  (``Ledger.load_state``, what every ``plan`` and ``sync`` does), on an empty ledger
  and on one holding the enrollments of ``--history`` customers and one day of
  ``--history`` × 1.21 messages to them (121k at the default: the day a 100k-row
  sheet's first step goes out). The day is placed yesterday, and again 60 days back,
  so the figures show both what a recent day costs and what an old one still does.
  The history is written straight into the ledger's tables in one transaction: sending
  121k messages one by one would only measure the send path again.

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


def fabricate_history(path: Path, customers: int, days_ago: int | None) -> int:
    """Enrollments for ``customers`` and one day of 1.21 messages each, ``days_ago``
    (with ``None``, the enrollments alone: what any sheet of that size holds)."""
    import sqlite3

    from sheetcrm.ledger import Ledger

    Ledger.open(path).close()  # the schema, as the current version writes it
    day = (NOW - timedelta(days=days_ago or 1)).astimezone(UTC)
    sends = []
    enrollments = []
    for i in range(customers):
        key = f"user{i}@example.com"
        flows = FLOWS[:2] if i % 5 == 0 else FLOWS[:1]  # 1.2 flows per customer ...
        if i % 100 == 0:
            flows = FLOWS  # ... and 1.21 with a third
        for flow in flows:
            at = (day + timedelta(seconds=i % 3600)).isoformat()
            enrollments.append((key, flow, 1, at, None, 1, "active", None, None, 0, "trigger"))
            sends.append((f"sc-{flow}-e1-s1-{i}", key, flow, 1, 0, "email", f"{flow}_1",
                          "transactional", "sent", at, at, f"<{i}.{flow}@example.com>"))
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO enrollments (key, flow, entry, entered_at, anchor_at, next_step,"
            " status, exited_at, exit_reason, holdout, via) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            enrollments)
        if days_ago is None:
            return 0
        db.executemany(
            "INSERT INTO sends (idem_key, key, flow, entry, step, channel, template, kind,"
            " status, created_at, finished_at, message_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            sends)
    return len(sends)


def load_time(path: Path) -> dict[str, float]:
    """Open read-only and load the planner's state, as ``plan`` does; best of 3."""
    from sheetcrm.ledger import Ledger

    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        ledger = Ledger.open_readonly(path)
        ledger.load_state()
        ledger.close()
        best = min(best, time.perf_counter() - t)
    return {"load_s": best}


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
    if scenario == "empty":
        from sheetcrm.ledger import Ledger

        Ledger.open(folder / "state.db").close()
        return {}
    if scenario == "enrolled":
        return {"messages": fabricate_history(folder / "state.db", arg, days_ago=None)}
    if scenario == "history":
        return {"messages": fabricate_history(folder / "state.db", arg, days_ago=1)}
    if scenario == "old-history":
        return {"messages": fabricate_history(folder / "state.db", arg, days_ago=60)}
    if scenario == "load":
        return load_time(folder / "state.db")
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

    folder = fresh(out / f"send_{args.rows}")
    generate(folder, args.rows)
    write_config(folder, paused=False)
    child(folder, "enrol")
    send = child(folder, "send")

    empty = fresh(out / "load_empty")
    child(empty, "empty")
    loads = {"empty": child(empty, "load")["load_s"]}
    enrolled = fresh(out / "load_enrolled")
    child(enrolled, "enrolled", args.history)
    loads["enrolled"] = child(enrolled, "load")["load_s"]
    for name, scenario in (("yesterday", "history"), ("60 days back", "old-history")):
        day = fresh(out / f"load_{scenario}")
        messages = child(day, scenario, args.history)["messages"]
        loads[name] = child(day, "load")["load_s"]

    print(f"| send path ({args.rows:,} rows, outbox) | messages sent | sending phase "
          "| per message | whole sync |")
    print("|---|---:|---:|---:|---:|")
    print(f"| day 1: step 1 | {send['sent']:,.0f} | {send['sending_s']:.2f} s "
          f"| {send['per_message_ms']:.2f} ms | {send['sync_s']:.2f} s |")
    print()
    print(f"| ledger load (read-only, `load_state`) | empty | {args.history:,} customers "
          f"enrolled, no message | one {messages:,}-message day yesterday "
          "| the same day 60 days back |")
    print("|---|---:|---:|---:|---:|")
    base = loads["empty"]
    cells = [f"{loads[k]:.3f} s (+{loads[k] - base:.3f} s)"
             for k in ("enrolled", "yesterday", "60 days back")]
    print(f"| best of 3 | {base:.3f} s | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
