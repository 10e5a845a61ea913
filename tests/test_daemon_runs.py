"""`sheetcrm run` over time: ticks that follow the operator's edits, SIGTERM in the
middle of a run (the send in flight finishes, a restart sends no copy), a second
signal, failing runs that back off and resume, and memory that stays flat.

The daemon harness (``Daemon``, the ``start`` fixture) is described in
``tests.support.daemon``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sheetcrm.channels.outbox import outbox_file_name
from sheetcrm.fsutil import RunLock
from tests.support.daemon import LOCK, SOHEE, SOOHYUN, STATE, read_sheet
from tests.support.sample import CSV, DAY2, use_webhook
from tests.support.servers import Reply, WebhookServer


def edit_sheet(folder: Path, change: Callable[[list[str], list[list[str]]], None]) -> None:
    """Save the sheet as an editor would (whole file, atomically), under the run lock.

    The lock only makes the test deterministic: an edit saved between the daemon's
    read and its write-back is kept too, but the daemon's own cells could then be
    overwritten by our stale copy until its next run.
    """
    path = folder / CSV
    with RunLock(folder / LOCK):
        text = path.read_bytes().decode("utf-8-sig")
        header, *body = list(csv.reader(io.StringIO(text)))
        change(header, body)
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows([header, *body])
        tmp = path.with_name(".edit.tmp")
        tmp.write_bytes(b"\xef\xbb\xbf" + out.getvalue().encode("utf-8"))
        os.replace(tmp, path)


def set_cell(folder: Path, key: str, column: str, value: str) -> None:
    def change(header: list[str], rows: list[list[str]]) -> None:
        row = next(r for r in rows if len(r) > 1 and r[1] == key)
        row[header.index(column)] = value

    edit_sheet(folder, change)


def add_customers(folder: Path, count: int, applied: str) -> list[str]:
    """New sign-ups who have not paid yet: the payment flow picks them up a day later."""
    keys = [f"new{i:03d}@example.com" for i in range(count)]

    def change(header: list[str], rows: list[list[str]]) -> None:
        for i, key in enumerate(keys):
            values = {"고객명": f"신규{i}", "이메일": key, "신청일": applied, "강의": "엑셀 기초",
                      "결제 여부": "X", "링크 클릭": "X", "후기 작성": "X", "메일 미열람": "0",
                      "수신 동의": "O"}
            rows.append([values.get(name, "") for name in header])

    edit_sheet(folder, change)
    return keys


def ledger_sends(folder: Path) -> list[dict[str, Any]]:
    path = folder / STATE
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM sends")]
    finally:
        conn.close()


def eml_names(folder: Path) -> set[str]:
    return {p.name for p in (folder / "outbox").glob("*.eml")}


def assert_one_eml_per_sent_key(folder: Path) -> list[dict[str, Any]]:
    """The outbox holds exactly one file per send the ledger marks sent; none in flight."""
    sends = ledger_sends(folder)
    assert not [s for s in sends if s["status"] == "pending"]
    sent = [s for s in sends if s["status"] == "sent"]
    assert eml_names(folder) == {outbox_file_name(s["idem_key"]) for s in sent}
    return sent


# -- end to end ------------------------------------------------------------------------


def raise_send_limit(folder: Path, limit: int) -> None:
    """Lift the blast-radius guard above the test's deliberate mass sign-up."""
    path = folder / "config.toml"
    text = path.read_text(encoding="utf-8")
    text, found = re.subn(r"(?m)^max_sends_per_run\s*=.*$", f"max_sends_per_run = {limit}", text)
    if not found:
        text = text.replace("[sending]\n", f"[sending]\nmax_sends_per_run = {limit}\n", 1)
    path.write_text(text, encoding="utf-8")


def test_ticks_edits_sigterm_mid_run_and_restart(sample: Path, start) -> None:
    raise_send_limit(sample, 1000)
    newcomers = add_customers(sample, 300, applied="2026-11-24")  # due from DAY2 on

    # Day 0: the first tick sends every first step and writes the flow state back.
    d1 = start("--every-seconds", "0.3")
    d1.wait_runs(1)
    first = d1.runs()[0]
    assert first["sent"] > 0 and first["rows_read"] == 26 + 300
    sent = assert_one_eml_per_sent_key(sample)
    assert len(sent) == first["sent"]
    _, rows = read_sheet(sample)
    assert rows[SOOHYUN]["자동화 흐름"].startswith("payment 1/3")
    assert "결제 대기" in rows[SOOHYUN]["상태 태그"]

    # 김수현 pays: the next ticks take her out of the payment flow (converted) and, a
    # paying customer now, into onboarding, whose welcome waits out min_gap: her
    # payment reminder went out this hour (the daemon's clock is pinned at day 0).
    set_cell(sample, SOOHYUN, "결제 여부", "O")
    set_cell(sample, SOOHYUN, "결제 금액", "99,000")
    d1.ticks_after(2)
    _, rows = read_sheet(sample)
    assert rows[SOOHYUN]["결제 여부"] == "O" and rows[SOOHYUN]["결제 금액"] == "99,000"
    assert "결제 대기" not in rows[SOOHYUN]["상태 태그"]
    assert "converted" in rows[SOOHYUN]["자동화 흐름"]
    after = assert_one_eml_per_sent_key(sample)
    new = {(s["key"], s["flow"], s["step"]) for s in after} - {
        (s["key"], s["flow"], s["step"]) for s in sent}
    assert new == set()
    assert "onboarding" in rows[SOOHYUN]["자동화 흐름"]
    sent = after

    # 한소희 withdraws consent to advertising: kept in the sheet, nothing sent meanwhile.
    set_cell(sample, SOHEE, "수신 동의", "X")
    d1.ticks_after(2)
    _, rows = read_sheet(sample)
    assert rows[SOHEE]["수신 동의"] == "X"
    assert len(assert_one_eml_per_sent_key(sample)) == len(sent)
    code, _ = d1.terminate()
    assert code == 0
    assert d1.events()[-1]["event"] == "stopped"

    # Day 2: 300 reminders fall due. SIGTERM lands while they are being sent: the run
    # finishes the message in flight, writes back and exits 0.
    before = len(eml_names(sample))
    d2 = start("--every-seconds", "0.3", now=DAY2)
    d2.wait_for("sending under way", lambda: len(eml_names(sample)) >= before + 5, poll=0.005)
    code, latency = d2.terminate()
    assert code == 0, d2.log_path.read_text()[-2000:]
    assert latency < 10
    stopping = d2.events("stopping")[0]
    assert stopping["in_run"] is True
    cut = d2.runs()[-1]
    assert cut["stopped"] > 0 and cut["sent"] >= 5
    sent = assert_one_eml_per_sent_key(sample)

    # Restarted, it sends the rest: no duplicate, nothing lost, the edits still there.
    d3 = start("--every-seconds", "0.3", now="2026-11-25T10:05")
    d3.wait_runs(1)
    assert d3.terminate()[0] == 0
    rest = d3.runs()[0]
    assert rest["stopped"] == 0 and rest["sent"] > 0
    sent = assert_one_eml_per_sent_key(sample)
    steps = Counter((s["key"], s["flow"], s["step"]) for s in sent)
    assert max(steps.values()) == 1
    reminded = {s["key"] for s in sent if s["flow"] == "payment" and s["step"] == 0}
    assert set(newcomers) <= reminded | holdout_keys(sample)
    assert (SOOHYUN, "payment", 1) not in steps  # converted: no second payment step
    assert (SOOHYUN, "onboarding", 0) in steps  # the welcome went once the hour was up
    assert (SOHEE, "payment", 1) not in steps  # the day-3 step is an ad: no consent
    _, rows = read_sheet(sample)
    assert rows[SOOHYUN]["결제 여부"] == "O" and rows[SOHEE]["수신 동의"] == "X"
    assert all(rows[k]["자동화 흐름"].startswith("payment") for k in newcomers)


def holdout_keys(folder: Path) -> set[str]:
    path = folder / STATE
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return {r[0] for r in conn.execute("SELECT key FROM enrollments WHERE holdout = 1")}
    finally:
        conn.close()


# -- signals ---------------------------------------------------------------------------


def test_sigterm_finishes_the_send_in_flight_then_exits_0(sample: Path, start) -> None:
    with WebhookServer([200, 200, Reply(200, delay=1.5)]) as server:
        use_webhook(sample, server.url)
        d = start("--every", "1h")
        d.wait_for("the third request", lambda: len(server.requests) >= 3)
        code, latency = d.terminate()
        assert code == 0
        assert 0.5 < latency < 8  # it waited for the held answer, then stopped
        run = d.runs()[-1]
        assert run["sent"] == 3 and run["stopped"] > 0
        assert len(server.requests) == 3  # nothing left after the signal
        sent = {s["key"] for s in ledger_sends(sample) if s["status"] == "sent"}
        _, rows = read_sheet(sample)
        assert {k for k, r in rows.items() if r["최근 발송"]} == sent  # written back

        again = start("--every", "1h", now="2026-11-23T10:01")
        again.wait_runs(1)
        assert again.terminate()[0] == 0

    ids = Counter(r.headers["webhook-id"] for r in server.requests)
    assert max(ids.values()) == 1
    sent = [s for s in ledger_sends(sample) if s["status"] == "sent"]
    assert len(ids) == len(sent) == 3 + again.runs()[0]["sent"]


def test_a_second_signal_exits_at_once_and_a_restart_sends_no_copy(sample: Path,
                                                                    start) -> None:
    with WebhookServer([200, Reply(200, delay=10)]) as server:
        use_webhook(sample, server.url)
        d = start("--every", "1h")
        d.wait_for("the held request", lambda: len(server.requests) >= 2)
        d.proc.send_signal(signal.SIGTERM)
        d.wait_for("the stop request", lambda: d.events("stopping"))
        began = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(5) == 128 + signal.SIGTERM
        assert time.monotonic() - began < 2
        assert d.events()[-1]["event"] == "exit_now"

        again = start("--every", "1h", now="2026-11-23T10:01")
        again.wait_runs(1)
        assert again.terminate()[0] == 0
        assert again.runs()[0]["recovered_interrupted"] == 1  # uncertain, never re-sent

    ids = Counter(r.headers["webhook-id"] for r in server.requests)
    assert max(ids.values()) == 1


# -- failures --------------------------------------------------------------------------


def test_failing_runs_back_off_and_the_daemon_resumes(sample: Path, start) -> None:
    d = start("--every-seconds", "0.1")
    d.wait_runs(1)
    sheet = sample / CSV
    hidden = sheet.with_name("moved-away.csv")
    os.replace(sheet, hidden)
    d.wait_runs(4, status="failed")
    failed = d.runs("failed")
    assert [f["backoff_ticks"] for f in failed[:4]] == [0, 1, 3, 7]
    assert [f["consecutive_failures"] for f in failed[:4]] == [1, 2, 3, 4]
    assert "customers.csv" in failed[0]["error"]
    assert len(d.events("backoff")) >= 1 + 3

    os.replace(hidden, sheet)
    ok_before = len(d.runs())
    d.wait_runs(ok_before + 1, timeout=15)
    status = sample / ".sheetcrm/daemon.json"  # written right after the run's log line
    d.wait_for("a healthy status", lambda: json.loads(status.read_text())["healthy"])
    assert d.terminate()[0] == 0


# -- memory ----------------------------------------------------------------------------


def vm_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_memory_stays_flat_over_200_fast_ticks(sample: Path, start) -> None:
    d = start("--every-seconds", "0.001", log=False)  # back to back; overlap warnings unread
    status = sample / ".sheetcrm/daemon.json"

    def runs() -> int:
        data = json.loads(status.read_text()) if status.exists() else {}
        return int(data.get("runs", 0))

    d.wait_for("warm-up", lambda: runs() >= 20, timeout=30)
    warm = vm_rss_kb(d.pid)
    d.wait_for("200 more runs", lambda: runs() >= 220, timeout=60)
    grown = vm_rss_kb(d.pid) - warm
    assert d.terminate()[0] == 0
    assert grown < 10 * 1024, f"RSS grew by {grown} kB over 200 runs"
