"""500 webhooks arrive from many connections while a sync runs: each is stored once and
written into the sheet exactly once, by that run or the next, and a run after them
applies nothing."""

from __future__ import annotations

import csv
import random
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sheetcrm.table.csv import CsvTable
from tests.support.events import (
    Listening,
    body_of,
    make_world,
    stripe_event,
    stripe_headers,
    tally_headers,
    tally_submission,
)

CUSTOMERS = 250  # each pays once (stripe); as many new keys fill in the form (tally)


class Posted:
    """How many webhooks were answered so far; ``allowed``: how many may be sent yet."""

    def __init__(self, allowed: int) -> None:
        self.count, self.allowed = 0, allowed
        self.failures: list[str] = []
        self.changed = threading.Condition()

    def may_send(self, n: int, timeout: float = 60.0) -> None:
        """Wait until the ``n``-th webhook (0-based) may be sent."""
        with self.changed:
            assert self.changed.wait_for(lambda: self.allowed > n, timeout), n

    def release(self, allowed: int) -> None:
        with self.changed:
            self.allowed = allowed
            self.changed.notify_all()

    def add(self, status: int) -> None:
        with self.changed:
            self.count += 1
            if status != 200:
                self.failures.append(str(status))
            self.changed.notify_all()

    def reach(self, n: int, timeout: float = 60.0) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.count >= n, timeout), self.count


class GatedCsv(CsvTable):
    """The sheet: after the run's read, and again before its write, lets more webhooks in
    and holds the run until they are answered."""

    def __init__(self, path: Path, posted: Posted) -> None:
        super().__init__(path)
        self.posted, self.reads, self.writes = posted, 0, 0

    def read(self):  # type: ignore[no-untyped-def]
        snapshot = super().read()
        self.reads += 1
        if self.reads == 1:  # the run has loaded the ledger: these come after
            self.posted.release(300)
            self.posted.reach(300)
        return snapshot

    def _before_replace(self, path: Path) -> None:
        self.writes += 1
        if self.writes == 1:  # and these between the read and the write
            self.posted.release(500)
            self.posted.reach(500)


def test_500_events_posted_while_a_sync_runs_are_applied_exactly_once(tmp_path: Path) -> None:
    today = "2026-03-02"
    w = make_world(tmp_path, {f"c{i:03}@x.com": {"applied": today, "login": f"{today} 09:00"}
                              for i in range(CUSTOMERS)})
    requests = [("paid", body_of(stripe_event(f"evt_{i:03}", f"c{i:03}@x.com")))
                for i in range(CUSTOMERS)]
    requests += [("signup", body_of(tally_submission(f"r{i:03}", f"n{i:03}@x.com")))
                 for i in range(CUSTOMERS)]
    random.Random(11).shuffle(requests)
    posted = Posted(allowed=100)
    started = time.monotonic()
    with Listening(w.config) as server:

        def post(n: int, name: str, body: bytes) -> None:
            posted.may_send(n)
            headers = stripe_headers(body) if name == "paid" else tally_headers(body)
            posted.add(server.post(name, body, headers).status_code)

        with ThreadPoolExecutor(max_workers=16) as pool:
            futures = [pool.submit(post, n, name, body)
                       for n, (name, body) in enumerate(requests)]
            posted.reach(100)
            during = w.sync(0, table=GatedCsv(tmp_path / "customers.csv", posted))
            for future in futures:
                future.result(timeout=60)
    assert posted.failures == [] and posted.count == 500
    after = w.sync(0, hour=11)
    idle = w.sync(0, hour=12)

    # The run applied the 100 stored before it started; the 400 that came in while it
    # ran, the next run did. None twice, none lost.
    assert (during.events_applied, after.events_applied) == (100, 400)
    assert idle.events_applied == 0 and idle.summary()["rows_added"] == 0
    with open(tmp_path / "customers.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    keys = [row["이메일"] for row in rows]
    assert len(keys) == len(set(keys)) == 2 * CUSTOMERS  # each new key added once
    assert all(row["결제 여부"] == "TRUE" for row in rows if row["이메일"].startswith("c"))
    assert all(row["수신 동의"] == "예" for row in rows if row["이메일"].startswith("n"))
    with sqlite3.connect(tmp_path / "state.db") as db:
        events = db.execute("SELECT COUNT(*), COUNT(applied_at), COUNT(DISTINCT event_id)"
                            " FROM events WHERE kind = 'external'").fetchone()
    assert events == (500, 500, 500)
    assert time.monotonic() - started < 60  # on two shared cores it takes a few seconds
