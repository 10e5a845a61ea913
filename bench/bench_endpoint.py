"""Benchmark the endpoint: click requests/s and p50/p99 latency on loopback, while a
sync runs.

Three processes, as in production: the endpoint (waitress, ``make_app`` with the
click routes, in a process of its own like ``sheetcrm serve``), a sync (``sheetcrm
sync`` in another) and the clients (this process: ``--clients`` threads, each on one
keep-alive connection, like browsers following the links of a mail). All three share
the one ledger file.

1. A generated sheet (``bench_plan``'s, ``--rows`` rows) with ``[server]`` set: a
   first sync enrols everyone, a second one a day later sends step 1 (with tracked
   links) to every customer it is due for. Each send gives a click token.
2. **idle**: the clients click for ``--seconds`` with nothing else running.
3. **during a sync**: the sync two days later (step 2 of the payment flow for every
   customer who has not paid) runs while the clients click; measured from the sync's
   start to its end.
4. The same sync alone, on a copy of the same folder, to show what the clicks cost it.

Each click is a GET of ``/c/TOKEN`` with a browser's user agent, answered 302 after
the click is stored; the endpoint's clock is pinned an hour after step 1 went out,
so every click counts as a person's. ``[server] rate_limit`` is raised for the
benchmark: every client is 127.0.0.1, which the limit would otherwise hold at 120 a
minute.

Usage: python -m bench.bench_endpoint [--rows 10000] [--clients 4] [--seconds 10]
       [--out bench/out] [--json PATH]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from bench.bench_plan import NOW, generate, write_config

PUBLIC = "https://crm.example.com"
SERVER = f"""
[server]
public_url = "{PUBLIC}"
secret = "a benchmark secret, not for real use"
rate_limit = "100000000/1m"
"""
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"
SENT_AT = NOW + timedelta(days=1)  # step 1 goes out
CLICK_AT = SENT_AT + timedelta(hours=1)  # the endpoint's clock: well after delivery
DURING_AT = NOW + timedelta(days=3)  # payment step 2 falls due


def prepare(folder: Path, rows: int) -> list[str]:
    """The sheet, the config with ``[server]``, two syncs; the click paths of the sends."""
    from sheetcrm.app.runner import RunOptions, sync
    from sheetcrm.config import load_config
    from sheetcrm.core.links import Tracking
    from sheetcrm.ledger import Ledger

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    generate(folder, rows)
    path = write_config(folder, paused=False)
    path.write_text(path.read_text(encoding="utf-8") + SERVER, encoding="utf-8")
    config = load_config(path, os.environ)
    blast = RunOptions(allow_blast=True)
    sync(config, NOW, options=blast)
    sync(config, SENT_AT, options=blast)
    assert config.server is not None
    secret = config.server.secret.get_secret_value().encode()
    ledger = Ledger.open(config.state_path)
    try:
        keys = [r.idem_key for sends in ledger.load_state().sends_by_key.values()
                for r in sends]
    finally:
        ledger.close()
    return [urlsplit(Tracking(PUBLIC, secret, key).click_url(
        "https://class.example.com/checkout")).path for key in keys]


def serve(folder: Path, now: str) -> None:
    """The endpoint process: serve the click routes until stdin closes."""
    from sheetcrm.config import load_config
    from sheetcrm.ledger import Ledger
    from sheetcrm.server import tracking
    from sheetcrm.server.app import ServerContext, make_app
    from sheetcrm.server.serve import Endpoint

    config = load_config(folder / "config.toml", os.environ)
    pinned = datetime.fromisoformat(now)
    ctx = ServerContext(config, lambda: Ledger.open(config.state_path), lambda: pinned)
    endpoint = Endpoint(make_app(ctx, [tracking]), "127.0.0.1", 0)
    endpoint.start()
    print(endpoint.port, flush=True)
    sys.stdin.read()
    endpoint.stop()


class Clients:
    """``n`` threads clicking ``paths`` round-robin on keep-alive connections."""

    def __init__(self, port: int, paths: list[str], n: int) -> None:
        self.port, self.paths, self.n = port, paths, n
        self.stop = threading.Event()
        self.samples: list[tuple[float, float, int]] = []  # (sent at, latency, status)
        self._lock = threading.Lock()

    def _run(self, offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        i, mine = offset, []
        while not self.stop.is_set():
            path = self.paths[i % len(self.paths)]
            i += self.n
            t = time.perf_counter()
            try:
                conn.request("GET", path, headers={"User-Agent": BROWSER})
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                status = -1
            mine.append((t, time.perf_counter() - t, status))
        conn.close()
        with self._lock:
            self.samples += mine

    def run(self, until: threading.Event | float) -> dict[str, float]:
        threads = [threading.Thread(target=self._run, args=(k,)) for k in range(self.n)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        if isinstance(until, threading.Event):
            until.wait()
        else:
            time.sleep(until)
        self.stop.set()
        for t in threads:
            t.join()
        return figures(self.samples, time.perf_counter() - started)


def figures(samples: list[tuple[float, float, int]], seconds: float) -> dict[str, float]:
    latencies = sorted(s[1] for s in samples)
    cut = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {"requests": len(samples), "seconds": seconds, "rps": len(samples) / seconds,
            "p50_ms": cut[49] * 1000, "p99_ms": cut[98] * 1000,
            "max_ms": latencies[-1] * 1000 if latencies else 0.0,
            "not_302": sum(1 for s in samples if s[2] != 302)}


def run_sync(folder: Path, now: datetime) -> tuple[float, int]:
    """``sheetcrm sync`` in a process of its own: its wall time and the messages it sent."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sheetcrm", "--config",
                           str(folder / "config.toml"), "--now", now.isoformat(), "--json",
                           "sync", "--allow-blast"], check=True, capture_output=True,
                          timeout=3600)
    return time.perf_counter() - started, int(json.loads(done.stdout)["summary"]["sent"])


def clicks_recorded(folder: Path) -> int:
    import sqlite3

    with sqlite3.connect(folder / "state.db") as db:
        return int(db.execute("SELECT COUNT(*) FROM events WHERE kind = 'click'").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), args.serve[1])
        return

    folder = Path(args.out) / f"endpoint_{args.rows}"
    paths = prepare(folder, args.rows)
    alone = folder.with_name(folder.name + "_alone")
    if alone.exists():
        shutil.rmtree(alone)
    shutil.copytree(folder, alone)
    sync_alone, sync_sent = run_sync(alone, DURING_AT)

    server = subprocess.Popen([sys.executable, "-m", "bench.bench_endpoint", "--serve",
                               str(folder), CLICK_AT.isoformat()],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        idle = Clients(port, paths, args.clients).run(args.seconds)
        done = threading.Event()
        timing: dict[str, float] = {}

        def syncing() -> None:
            timing["sync_s"] = run_sync(folder, DURING_AT)[0]
            done.set()

        sync_thread = threading.Thread(target=syncing)
        clients = Clients(port, paths[::-1], args.clients)
        sync_thread.start()
        during = clients.run(done)
        sync_thread.join()
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=60)

    result = {"rows": args.rows, "sends_with_links": len(paths), "clients": args.clients,
              "idle": idle, "during_sync": during, "sync_sent": sync_sent,
              "sync_alone_s": sync_alone,
              "sync_under_clicks_s": timing["sync_s"], "clicks_recorded": clicks_recorded(folder)}
    print(f"{args.rows:,} rows, {len(paths):,} sends with tracked links, "
          f"{args.clients} client connections")
    print("| phase | requests | req/s | p50 | p99 | max | not 302 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, f in (("idle", idle), ("while a sync runs", during)):
        print(f"| {name} | {f['requests']:,} | {f['rps']:,.0f} | {f['p50_ms']:.1f} ms "
              f"| {f['p99_ms']:.1f} ms | {f['max_ms']:.0f} ms | {f['not_302']} |")
    print(f"the sync sends {sync_sent:,} messages: alone {sync_alone:.1f} s, under the "
          f"clicks {timing['sync_s']:.1f} s; "
          f"{result['clicks_recorded']:,} clicks stored (one per link and minute)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
