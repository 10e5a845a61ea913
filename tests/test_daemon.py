"""`sheetcrm run` as a real subprocess: ticks, edits, signals, lock, back-off, reload, memory.

Every daemon here runs on a copy of the shipped sample with a short interval and a
clock pinned by ``--now`` (it starts there and runs on in real time), writes its JSON
log lines to a file (a full stderr pipe would block it), and is killed at teardown
if a test failed before stopping it. Every wait is bounded.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import logging
import os
import re
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sheetcrm.app.schedule import Schedule, human_duration
from sheetcrm.channels.outbox import outbox_file_name
from sheetcrm.config import ScheduleSettings, load_config
from sheetcrm.daemon.health import HealthServer
from sheetcrm.daemon.logs import JsonFormatter
from sheetcrm.daemon.scheduler import backoff_ticks
from sheetcrm.errors import ConfigError, LockedError
from sheetcrm.fsutil import RunLock, lock_held, probe
from sheetcrm.redact import Redactor
from tests.support.sample import CSV, DAY0, DAY2, ROOT, tree_digest, use_webhook
from tests.support.servers import Reply, WebhookServer

STATE = Path(".sheetcrm/state.db")
LOCK = Path(".sheetcrm/sync.lock")
SOOHYUN = "soohyun.kim@example.com"  # 김수현: applied, not paid -> payment flow
SOHEE = "sohee.han@example.com"  # 한소희: in the payment flow, consents to ads


# -- a daemon subprocess ---------------------------------------------------------------


class Daemon:
    """One ``sheetcrm run`` process and its log."""

    def __init__(self, folder: Path, *args: str, now: str | None = DAY0,
                 env: dict[str, str] | None = None, log: bool = True,
                 umask: int = -1) -> None:
        self.folder = folder
        self.log_path = folder / f"daemon-{time.monotonic_ns()}.log"
        cmd = [sys.executable, "-m", "sheetcrm.cli", *(["--now", now] if now else []),
               "run", *args]
        with open(self.log_path, "wb") as err:
            self.proc = subprocess.Popen(
                cmd, cwd=folder, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=err if log else subprocess.DEVNULL, env=env, umask=umask,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        lines = self.log_path.read_text(encoding="utf-8").splitlines()
        parsed = [json.loads(line) for line in lines if line.startswith("{")]
        return [e for e in parsed if event is None or e.get("event") == event]

    def runs(self, status: str = "ok") -> list[dict[str, Any]]:
        return [e for e in self.events("run") if e["status"] == status]

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 20,
                 poll: float = 0.02) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            assert self.proc.poll() is None, f"daemon exited ({self.proc.returncode}) " \
                f"while waiting for {what}:\n{self.log_path.read_text()[-3000:]}"
            time.sleep(poll)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log_path.read_text()[-3000:]}")

    def wait_runs(self, count: int, status: str = "ok", timeout: float = 20) -> None:
        self.wait_for(f"{count} {status} runs", lambda: len(self.runs(status)) >= count, timeout)

    def ticks_after(self, n: int = 2) -> None:
        """Wait for ``n`` more completed runs: the second one surely started after now."""
        self.wait_runs(len(self.runs()) + n)

    def terminate(self, timeout: float = 20) -> tuple[int, float]:
        """SIGTERM; the exit code and how long the process took to exit."""
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return code, time.monotonic() - sent

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def start(sample: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def run(*args: str, **kwargs: Any) -> Daemon:
        d = Daemon(sample, *args, **kwargs)
        started.append(d)
        return d

    yield run
    for d in started:
        d.kill()


def cli(folder: Path, *args: str, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sheetcrm.cli", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


# -- the sheet, the outbox and the ledger ------------------------------------------------


def read_sheet(folder: Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    text = (folder / CSV).read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    return header, {r[1]: dict(zip(header, r + [""] * (len(header) - len(r)), strict=True))
                    for r in rows[1:] if len(r) > 1}


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


# -- end to end ------------------------------------------------------------------------------


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
    # paying customer now, into onboarding and the review request.
    set_cell(sample, SOOHYUN, "결제 여부", "O")
    set_cell(sample, SOOHYUN, "결제 금액", "99,000")
    d1.ticks_after(2)
    _, rows = read_sheet(sample)
    assert rows[SOOHYUN]["결제 여부"] == "O" and rows[SOOHYUN]["결제 금액"] == "99,000"
    assert "결제 대기" not in rows[SOOHYUN]["상태 태그"]
    assert "전환" in rows[SOOHYUN]["자동화 흐름"]
    after = assert_one_eml_per_sent_key(sample)
    new = {(s["key"], s["flow"], s["step"]) for s in after} - {
        (s["key"], s["flow"], s["step"]) for s in sent}
    assert new == {(SOOHYUN, "onboarding", 0), (SOOHYUN, "review", 0)}
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


# -- signals -----------------------------------------------------------------------------------


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


# -- the lock ----------------------------------------------------------------------------------


def test_a_manual_sync_during_a_run_exits_5_naming_the_daemon_or_waits(sample: Path,
                                                                       start) -> None:
    with WebhookServer([Reply(200, delay=2.0)]) as server:
        use_webhook(sample, server.url)
        d = start("--every", "1h")
        d.wait_for("the run to be sending", lambda: server.requests)

        busy = cli(sample, "--now", DAY0, "sync")
        assert busy.returncode == 5
        assert f"pid {d.pid}" in busy.stderr and "SHEETCRM_LOCK_WAIT" in busy.stderr

        began = time.monotonic()
        waited = cli(sample, "--now", DAY0, "--json", "sync",
                     env={**os.environ, "SHEETCRM_LOCK_WAIT": "30"})
        assert waited.returncode == 0, waited.stderr
        assert time.monotonic() - began > 0.5
        assert json.loads(waited.stdout)["summary"]["sent"] == 0  # the daemon sent them

        second = cli(sample, "run", "--every", "1h")
        assert second.returncode == 5
        assert "daemon" in second.stderr and f"pid {d.pid}" in second.stderr
        assert d.terminate()[0] == 0


def test_run_lock_waits_up_to_n_seconds(tmp_path: Path) -> None:
    path = tmp_path / "sync.lock"
    holder = RunLock(path).__enter__()
    with pytest.raises(LockedError) as info, RunLock(path, wait=0.3):
        pass
    assert info.value.holder == os.getpid()  # type: ignore[attr-defined]
    assert f"pid {os.getpid()}" in str(info.value) and "waited 0.3s" in str(info.value)

    threading.Timer(0.4, holder.__exit__, (None, None, None)).start()
    began = time.monotonic()
    with RunLock(path, wait=10):
        assert 0.3 < time.monotonic() - began < 5


# -- failures, reload ------------------------------------------------------------------------


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


def save(path: Path, text: str) -> None:
    """Replace a file at once, as editors do: the daemon never reads half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def test_config_changes_are_reloaded_and_broken_ones_rejected(sample: Path, start) -> None:
    d = start("--every-seconds", "0.2")
    d.wait_runs(1)
    config = sample / "config.toml"
    text = config.read_text(encoding="utf-8")

    save(config, text.replace("[tags]\n", '[tags]\n"테스트 태그" = "paid"\n', 1))
    d.wait_for("the reload", lambda: d.events("config_reloaded"))
    d.ticks_after(1)
    _, rows = read_sheet(sample)
    assert "테스트 태그" in rows["jihoon.lee@example.com"]["상태 태그"]  # paid

    good = config.read_text(encoding="utf-8")
    save(config, good.replace('timezone = "Asia/Seoul"', 'timezone = "Mars/Olympus"'))
    rejected = d.wait_for("the rejection", lambda: d.events("config_rejected"))
    assert "timezone" in rejected[0]["error"] and "Mars/Olympus" in rejected[0]["error"]
    d.ticks_after(2)  # still running, on the previous config
    assert len(d.events("config_rejected")) == 1  # judged once, not at every tick
    _, rows = read_sheet(sample)
    assert "테스트 태그" in rows["jihoon.lee@example.com"]["상태 태그"]
    assert d.terminate()[0] == 0


# -- memory -----------------------------------------------------------------------------------


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


# -- status ----------------------------------------------------------------------------------


def test_status_shows_the_daemon_runs_sends_and_row_errors(sample: Path, start) -> None:
    empty = cli(sample, "status")
    assert empty.returncode == 0, empty.stderr
    assert "never started" in empty.stdout and "no runs yet" in empty.stdout
    assert not (sample / ".sheetcrm").exists()  # read-only: not even the folder

    # The first send is refused for good (400); the receiver then answers 503 even
    # after retries: it is down as a whole, so the run stops using it, no other
    # customer is failed, the daemon backs off and /health says so.
    with WebhookServer([400, 503]) as server:
        use_webhook(sample, server.url)
        d = start("--every", "1h", "--health-port", "0")
        d.wait_runs(1, status="channel_down")
        port = d.events("start")[0]["health_port"]
        with pytest.raises(urllib.error.HTTPError) as unhealthy:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
        assert unhealthy.value.code == 503 and json.load(unhealthy.value)["healthy"] is False
        assert len(server.requests) == 2

        data = json.loads(cli(sample, "--json", "status").stdout)
        assert data["daemon"]["state"] == "running" and data["daemon"]["pid"] == d.pid
        assert data["schedule"] == "every 1h"
        assert data["next_run_at"] is not None
        assert data["sends"]["counts"]["failed"] == 1 and data["sends"]["counts"]["retry"] == 1
        assert {s["status"] for s in data["sends"]["items"]} == {"failed", "retry"}
        run = data["last_runs"][0]
        assert run["status"] == "channel_down" and run["summary"]["failed"] == 1
        assert list(run["summary"]["channels_down"]) == ["email"]
        assert data["row_errors"]["count"] == len(data["row_errors"]["items"]) > 0
        assert any("2026-02-30" in e["message"] for e in data["row_errors"]["items"])

        human = cli(sample, "status")
        assert human.returncode == 0
        for text in (f"running, pid {d.pid}", "every 1h", "1 failed", "1 retry", "2026-02-30"):
            assert text in human.stdout, human.stdout
        assert d.terminate()[0] == 0

    before = tree_digest(sample / ".sheetcrm")
    stopped = json.loads(cli(sample, "--json", "status").stdout)
    assert stopped["daemon"]["state"] == "stopped"
    assert tree_digest(sample / ".sheetcrm") == before


def test_health_answers_503_after_a_failed_run(sample: Path, start) -> None:
    (sample / CSV).unlink()
    d = start("--every", "1h", "--health-port", "0")
    d.wait_runs(1, status="failed")
    port = d.events("start")[0]["health_port"]
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
    assert info.value.code == 503
    assert json.load(info.value)["consecutive_failures"] == 1
    assert d.terminate()[0] == 0


def test_cron_schedule_runs_at_start_then_on_the_config_time_zone(sample: Path,
                                                                   start) -> None:
    d = start("--cron", "0 9 1 1 *")  # 09:00 on 1 January, Asia/Seoul
    d.wait_runs(1)
    status = sample / ".sheetcrm/daemon.json"
    d.wait_for("the status file", lambda: status.exists())
    data = json.loads(cli(sample, "--json", "status").stdout)
    assert data["schedule"] == "cron 0 9 1 1 *"
    assert data["next_run_at"].endswith("-01-01T09:00:00+09:00")
    assert d.terminate()[0] == 0


def test_a_busy_health_port_is_a_clear_config_error(sample: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli(sample, "run", "--every", "1h", "--health-port", str(port))
    assert result.returncode == 2
    assert f"schedule.health_port: cannot listen on 127.0.0.1:{port}" in result.stderr


# -- pieces ------------------------------------------------------------------------------------


def test_schedule_parsing_and_next_run() -> None:
    assert Schedule.parse("5m").describe() == "every 5m"
    assert Schedule.parse(None, "*/5 * * * *").describe() == "cron */5 * * * *"
    assert Schedule.parse(seconds=0.5).describe() == "every 0.5s"
    with pytest.raises(ConfigError, match="schedule.cron"):
        Schedule.parse(cron="*/5 * * *")
    with pytest.raises(ConfigError, match="schedule.every"):
        Schedule.parse("5x")
    assert human_duration(timedelta(minutes=90)) == "1h30m"
    assert [backoff_ticks(n) for n in range(7)] == [0, 0, 1, 3, 7, 11, 11]


@pytest.mark.parametrize(("key", "value"), [("every", "5x"), ("every", "0"), ("every", ""),
                                          ("cron", "*/5 * * *"), ("cron", "0 9 * * 8")])
def test_a_schedule_option_is_refused_as_the_config_refuses_it(sample: Path, key: str,
                                                               value: str) -> None:
    config_file = sample / "config.toml"
    config_file.write_text(config_file.read_text(encoding="utf-8")
                           + f'\n[schedule]\n{key} = "{value}"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as in_config:
        load_config(config_file, {})
    with pytest.raises(ConfigError) as on_command_line:
        Schedule.parse(**{key: value}, where="option")
    assert on_command_line.value.path == f"option.{key}"
    reason = str(on_command_line.value).removeprefix(f"option.{key}: ")
    assert reason and reason in str(in_config.value)


def test_a_bad_every_option_exits_2_naming_the_option(sample: Path) -> None:
    result = cli(sample, "run", "--every", "5x")
    assert result.returncode == 2
    assert "--every" in result.stderr and "'5x' is not a duration" in result.stderr


def test_log_lines_mask_the_config_secrets(sample: Path) -> None:
    config_file = sample / "config.toml"
    text = config_file.read_text(encoding="utf-8")
    section = ('[channels.email]\ntype = "webhook"\nurl = "${HOOK_URL}"\n'
               'secret = "${HOOK_SECRET}"\n\n')
    config_file.write_text(re.sub(r"^\[channels\.email\].*?\n\n", section, text,
                                  flags=re.S | re.M), encoding="utf-8")
    env = {"HOOK_URL": "https://user:pa55word@hooks.example.com/t/abc123token",
           "HOOK_SECRET": "whsec_" + "A" * 32}
    config = load_config(config_file, env)
    redactor = Redactor.for_config(config, env)
    record = logging.LogRecord("sheetcrm.daemon", logging.ERROR, __file__, 1,
                               "failed posting to %s", (env["HOOK_URL"],), None)
    record.event, record.fields = "run", {"error": f"signature {env['HOOK_SECRET']} rejected"}
    line = JsonFormatter(lambda: redactor).format(record)
    assert "abc123token" not in line and "pa55word" not in line and "AAAA" not in line
    assert json.loads(line)["error"] == "signature *** rejected"


def test_a_status_probe_never_makes_a_run_find_the_lock_busy(tmp_path: Path) -> None:
    path = tmp_path / "sync.lock"
    assert lock_held(path) is False  # never taken: nothing held, nothing created
    assert not path.exists()
    with RunLock(path):
        assert lock_held(path) is True
    probing, done = threading.Event(), threading.Event()

    def status_probe() -> None:
        with probe(path) as held:
            assert held is False
            probing.set()
            time.sleep(0.1)  # status reading the ledger
        done.set()

    threading.Thread(target=status_probe).start()
    assert probing.wait(5)
    with RunLock(path, wait=0):  # taken once the probe is done, not refused
        assert done.is_set()


# -- stalled sending --------------------------------------------------------------------------


def get_health(port: int, host: str | None = None) -> tuple[int, dict[str, Any]]:
    """GET /health; ``host`` replaces the Host header ("" sends none)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.putrequest("GET", "/health", skip_host=host is not None)
        if host:
            conn.putheader("Host", host)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def set_send_limit(folder: Path, limit: int) -> None:
    """Change ``max_sends_per_run`` as an editor saves a file (atomically)."""
    config = folder / "config.toml"
    text = config.read_text(encoding="utf-8")
    save(config, re.sub(r"(?m)^max_sends_per_run\s*=\s*\d+", f"max_sends_per_run = {limit}",
                        text))


def test_a_blast_stopped_run_is_not_ok_and_health_and_status_say_why_since_when(
        sample: Path, start) -> None:
    set_send_limit(sample, 1)  # 22 sends fall due on day 0: the guard holds them all
    heartbeat = sample / ".sheetcrm/heartbeat"
    d = start("--every-seconds", "0.3", "--health-port", "0", "--heartbeat", str(heartbeat))
    d.wait_runs(2, status="sending_stopped")
    stopped = d.runs("sending_stopped")
    since = datetime.fromisoformat(stopped[0]["now"]).replace(microsecond=0)
    assert stopped[0]["sent"] == 0 and stopped[0]["level"] == "error"
    assert "blast-radius stop" in stopped[0]["reason"]
    assert {datetime.fromisoformat(r["stalled_since"]) for r in stopped} == {since}
    assert not heartbeat.exists()  # not a good run

    port = d.events("start")[0]["health_port"]
    code, body = get_health(port)
    assert code == 503 and body["healthy"] is False
    stall = body["stalled"]
    assert stall["status"] == "sending_stopped" and "blast-radius stop" in stall["reason"]
    assert datetime.fromisoformat(stall["since"]) == since
    assert stall["runs"] >= 2 and stall["for_seconds"] >= 0 and stall["for"]

    later = "2026-11-23T10:30"
    report = json.loads(cli(sample, "--now", later, "--json", "status").stdout)
    assert report["stalled"]["status"] == "sending_stopped"
    assert "blast-radius stop" in report["stalled"]["reason"]
    assert datetime.fromisoformat(report["stalled"]["since"]) == since
    lasted = datetime.fromisoformat(later).replace(tzinfo=ZoneInfo("Asia/Seoul")) - since
    assert report["stalled"]["for_seconds"] == lasted.total_seconds()
    human = cli(sample, "--now", later, "status", env={**os.environ, "COLUMNS": "200"}).stdout
    assert f"stalled since {since:%Y-%m-%d %H:%M:%S} KST (for {human_duration(lasted)}" in human
    assert "blast-radius stop" in human

    # The operator lifts the limit: the next run sends, and all is well again.
    set_send_limit(sample, 1000)
    d.wait_runs(1)
    assert d.runs()[0]["sent"] > 0
    d.wait_for("the heartbeat", heartbeat.exists)
    code, body = get_health(port)
    assert code == 200 and body["healthy"] is True and body["stalled"] is None
    report = json.loads(cli(sample, "--now", later, "--json", "status").stdout)
    assert report["stalled"] is None
    assert d.terminate()[0] == 0


def test_a_reload_that_would_fail_is_rejected_and_the_old_config_kept(sample: Path,
                                                                      start) -> None:
    (sample / "templates/broken.j2").write_text(
        "{% block subject %}{{ name {% endblock %}", encoding="utf-8")
    config = sample / "config.toml"
    good = config.read_text(encoding="utf-8")
    edits = {
        "days_snce": good.replace("not paid and days_since(applied_at) >= 1",
                                  "not paid and days_snce(applied_at) >= 1"),
        "flows.onboarding.steps[0].template": good.replace('template = "onboarding_welcome"',
                                                           'template = "onboarding_welcom"'),
        "flows.churn.steps[1].template": good.replace('template = "churn_summary"',
                                                      'template = "broken"'),
        "schedule.cron": good + '\n[schedule]\ncron = "0 9 * * 8"\n',
    }
    d = start("--every-seconds", "0.2")
    d.wait_runs(1)
    for count, (reason, text) in enumerate(edits.items(), 1):
        save(config, text)
        rejected = d.wait_for(f"rejection {count}",
                              lambda n=count: d.events("config_rejected")[n - 1:])
        assert reason in rejected[0]["error"], rejected[0]
        d.ticks_after(1)  # still running, on the config it had
    assert not d.events("config_reloaded")
    assert "broken.j2" in d.events("config_rejected")[2]["error"]
    _, rows = read_sheet(sample)
    assert "결제 대기" in rows[SOOHYUN]["상태 태그"]  # the old rule still tags her
    assert d.terminate()[0] == 0

    # At start, the same checks make it a config error (exit 2), not failing runs.
    save(config, edits["flows.churn.steps[1].template"])
    result = cli(sample, "run", "--every", "1h")
    assert result.returncode == 2
    assert "flows.churn.steps[1].template" in result.stderr and "broken.j2" in result.stderr


def test_a_run_killed_mid_way_shows_as_interrupted_then_is_recorded_so(sample: Path,
                                                                       start) -> None:
    killed = start("--every", "1h", env={**os.environ, "SHEETCRM_KILL_AT": "after-claim"})
    assert killed.proc.wait(30) == -signal.SIGKILL
    before = tree_digest(sample / ".sheetcrm")

    report = json.loads(cli(sample, "--now", DAY0, "--json", "status").stdout)
    assert report["last_runs"][0]["status"] == "interrupted"
    human = cli(sample, "--now", DAY0, "status", env={**os.environ, "COLUMNS": "200"})
    assert "interrupted" in human.stdout and "running" not in human.stdout.split("last runs")[1]
    assert tree_digest(sample / ".sheetcrm") == before  # status wrote nothing
    with RunLock(sample / LOCK):  # a run in progress holds the lock: it is running
        report = json.loads(cli(sample, "--now", DAY0, "--json", "status").stdout)
        assert report["last_runs"][0]["status"] == "running"

    again = start("--every", "1h", now="2026-11-23T10:01")
    again.wait_runs(1)
    assert again.terminate()[0] == 0
    conn = sqlite3.connect(f"{(sample / STATE).resolve().as_uri()}?mode=ro", uri=True)
    try:
        statuses = [r[0] for r in conn.execute("SELECT status FROM runs ORDER BY id")]
    finally:
        conn.close()
    assert statuses == ["interrupted", "ok"]


# -- what leaves the machine ------------------------------------------------------------------

# The sample's row errors: keys (addresses) and the cell values they quote.
ROW_ERROR_DATA = ("yuna.shin@example.com", "minjae.kwon@example.com",
                  "gayoung.moon@example.com", "suzy.bae@", "2026-02-30", "몰라")


def test_log_health_and_status_file_hold_counts_status_shows_the_rows(sample: Path,
                                                                      start) -> None:
    d = start("--every", "1h", "--health-port", "0")
    d.wait_runs(1)
    status_file = sample / ".sheetcrm/daemon.json"
    d.wait_for("the status file after the run",
               lambda: status_file.exists() and json.loads(status_file.read_text())["runs"])
    code, body = get_health(d.events("start")[0]["health_port"])
    assert code == 200 and d.runs()[0]["row_errors"] == 6
    assert d.terminate()[0] == 0

    shared = {"the log": d.log_path.read_text(encoding="utf-8"),
              "/health": json.dumps(body, ensure_ascii=False),
              "daemon.json": status_file.read_text(encoding="utf-8")}
    for where, text in shared.items():
        for value in ROW_ERROR_DATA:
            assert value not in text, f"{value!r} in {where}"

    human = cli(sample, "--now", DAY0, "status", env={**os.environ, "COLUMNS": "200"})
    data = json.loads(cli(sample, "--now", DAY0, "--json", "status").stdout)
    for value in ROW_ERROR_DATA:
        assert value in human.stdout, value
    assert data["row_errors"]["count"] == 6
    assert {e["key"] for e in data["row_errors"]["items"]} >= set(ROW_ERROR_DATA[:4])


def test_health_answers_only_requests_addressed_to_a_loopback_name() -> None:
    server = HealthServer(0, lambda: {"healthy": True})
    server.start()
    port = server.port
    try:
        for host in ("127.0.0.1", f"127.0.0.1:{port}", "localhost", f"localhost:{port}",
                     "LocalHost", "[::1]", f"[::1]:{port}"):
            assert get_health(port, host) == (200, {"healthy": True}), host
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example",
                     "localhost.evil.example", f"attacker.localhost:{port}", "0.0.0.0",
                     "192.168.0.10", "[::1]evil", ""):
            code, body = get_health(port, host)
            assert code == 403 and "healthy" not in body, host
    finally:
        server.stop()


# -- files in the state folder ----------------------------------------------------------------


def test_state_files_are_created_0600_whatever_the_umask(sample: Path, start) -> None:
    state = sample / ".sheetcrm"
    d = start("--every", "1h", "--heartbeat", str(state / "heartbeat"), umask=0)
    d.wait_runs(1)
    d.wait_for("the heartbeat", (state / "heartbeat").exists)
    assert d.terminate()[0] == 0
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in state.iterdir()}
    assert set(modes) == {"state.db", "sync.lock", "daemon.lock", "daemon.json", "heartbeat"}
    assert modes == dict.fromkeys(modes, 0o600)


def test_a_symlink_in_the_state_folder_is_refused_never_written_through(sample: Path,
                                                                         start) -> None:
    state = sample / ".sheetcrm"
    state.mkdir()
    victims: list[Path] = []

    def plant(name: str) -> None:
        victim = sample / f"victim-{name}"
        victim.write_text("precious\n", encoding="utf-8")
        (state / name).unlink(missing_ok=True)  # what an earlier start created
        (state / name).symlink_to(victim)
        victims.append(victim)

    plant("daemon.json")
    plant("heartbeat")
    d = start("--every", "1h", "--heartbeat", str(state / "heartbeat"))
    d.wait_runs(1)
    d.wait_for("both refusals",
               lambda: d.events("status_file_failed") and d.events("heartbeat_failed"))
    assert d.terminate()[0] == 0
    for event in d.events("status_file_failed") + d.events("heartbeat_failed"):
        assert "is a symbolic link" in event["error"], event
    assert (state / "daemon.json").is_symlink() and (state / "heartbeat").is_symlink()

    plant("sync.lock")  # the run lock: the run is refused and says why
    d = start("--every", "1h")
    failed = d.wait_for("the refused run", lambda: d.runs("failed"))
    assert f"{state / 'sync.lock'} is a symbolic link" in failed[0]["error"]
    assert d.terminate()[0] == 0

    plant("daemon.lock")  # the daemon's own lock: refused at start
    result = cli(sample, "run", "--every", "1h")
    assert result.returncode == 3
    assert f"{state / 'daemon.lock'} is a symbolic link" in result.stderr

    assert all(v.read_text(encoding="utf-8") == "precious\n" for v in victims)


# -- the shipped systemd unit ------------------------------------------------------------------


def unit_settings(path: Path) -> dict[str, str]:
    settings = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            name, _, value = line.partition("=")
            settings[name.strip()] = value.strip()
    return settings


def test_every_path_the_daemon_guide_suggests_fits_the_units_sandbox() -> None:
    unit = unit_settings(ROOT / "deploy/sheetcrm.service")
    guide = (ROOT / "docs/daemon.md").read_text(encoding="utf-8")
    assert unit["ProtectSystem"] == "strict"  # read-only everywhere but ReadWritePaths
    writable = [Path(p) for p in unit["ReadWritePaths"].split()]
    hidden = [Path("/home"), Path("/root"), Path("/run/user")] \
        if unit["ProtectHome"] == "yes" else []
    home = Path(unit["WorkingDirectory"])  # also the sheetcrm user's home (`~`)
    config_path = Path(re.search(r"--config (\S+)", unit["ExecStart"]).group(1))
    config = load_config(ROOT / "config.toml", {})
    folder = config_path.parent

    def where(text: str) -> Path:
        path = Path(text.replace("~", str(home), 1) if text.startswith("~") else text)
        return path if path.is_absolute() else folder / path

    def under(path: Path, roots: list[Path]) -> bool:
        return any(path == root or root in path.parents for root in roots)

    # What the daemon writes: the ledger's folder, the outbox, the guide's heartbeat.
    heartbeat = re.search(r'(?m)^heartbeat = "([^"]+)"', guide).group(1)
    written = [where(config.model.state).parent, where(heartbeat),
               where(config.channels["email"].path)]  # type: ignore[attr-defined]
    # What it reads: the config, templates, and the Google key where the guide puts it.
    credentials = re.search(r'(?m)^credentials = "([^"]+)"', guide)
    assert credentials, "the guide says where the service-account key goes"
    key_env = re.search(r"(?m)^GOOGLE_APPLICATION_CREDENTIALS=\"?([^\"\n]+)", guide)
    read = [config_path, where(config.model.templates), where(credentials.group(1)),
            *([where(key_env.group(1))] if key_env else [])]
    for path in written:
        assert under(path, writable), f"{path} is read-only under the unit"
    for path in read + written:
        assert not under(path, hidden), f"{path} is hidden by ProtectHome"
        assert under(path, [home]), f"{path} is outside {home}"
    for path in re.findall(r"/srv/sheetcrm[\w./-]*", guide):
        assert under(Path(path), writable + [home]), path


# -- cron -----------------------------------------------------------------------------------------

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)  # Python's weekday()
CRONTAB_WEEKDAYS = {  # crontab's weekday field -> the days it runs on
    "0": {SUN}, "1": {MON}, "2": {TUE}, "3": {WED}, "4": {THU}, "5": {FRI}, "6": {SAT},
    "7": {SUN}, "1-5": {MON, TUE, WED, THU, FRI}, "mon-fri": {MON, TUE, WED, THU, FRI},
    "Sat,Sun": {SAT, SUN}, "0,6": {SAT, SUN}, "5-7": {FRI, SAT, SUN},
    "fri-sun": {FRI, SAT, SUN}, "*/2": {SUN, TUE, THU, SAT}, "1-7/2": {MON, WED, FRI, SUN},
    "1,3-4": {MON, WED, THU}, "*": {MON, TUE, WED, THU, FRI, SAT, SUN},
}
SEOUL = ZoneInfo("Asia/Seoul")


def fire_times(schedule: Schedule, days: int = 21) -> list[datetime]:
    trigger = schedule.trigger(SEOUL)
    now = datetime(2026, 11, 23, 10, 0, tzinfo=SEOUL)  # a Monday
    fires: list[datetime] = []
    previous = None
    while True:
        fire = trigger.get_next_fire_time(previous, previous or now)
        if fire > now + timedelta(days=days):
            return fires
        fires.append(fire)
        previous = fire


@pytest.mark.parametrize(("weekday", "days"), CRONTAB_WEEKDAYS.items())
def test_a_cron_weekday_means_what_it_means_in_crontab(sample: Path, weekday: str,
                                                        days: set[int]) -> None:
    line = f"0 9 * * {weekday}"
    config_file = sample / "config.toml"
    config_file.write_text(config_file.read_text(encoding="utf-8")
                           + f'\n[schedule]\ncron = "{line}"\n', encoding="utf-8")
    from_config = Schedule.from_config(load_config(config_file, {}))
    from_option = Schedule.parse(cron=line, where="option")  # `sheetcrm run --cron`
    for schedule in (from_config, from_option):
        fires = fire_times(schedule)
        assert {f.weekday() for f in fires} == days
        assert {(f.hour, f.minute) for f in fires} == {(9, 0)}
        assert len(fires) == 3 * len(days)  # three weeks: every day it names, each week


def test_a_cron_day_and_weekday_both_given_fire_on_either_as_in_crontab() -> None:
    fires = fire_times(Schedule.parse(cron="0 9 13 * 5"), days=60)  # the 13th, and Fridays
    assert {f.day for f in fires if f.weekday() != FRI} == {13}
    assert sum(f.weekday() == FRI for f in fires) == 9
    assert datetime(2026, 12, 13, 9, tzinfo=SEOUL) in fires  # a Sunday


@pytest.mark.parametrize("line", ["0 9 * * 8", "0 9 * * fri-mon", "0 9 * * */0",
                                  "0 9 * * funday", "0 9 * *"])
def test_a_bad_cron_weekday_is_a_config_error_naming_it(line: str) -> None:
    with pytest.raises(ConfigError, match=r"schedule\.cron: .*(weekday|fields)"):
        Schedule.parse(cron=line)
    with pytest.raises(ValueError, match="weekday|fields"):
        ScheduleSettings(cron=line)


def test_cron_on_the_command_line_and_in_status_reads_weekdays_as_crontab(
        sample: Path, start) -> None:
    d = start("--cron", "0 9 * * 0")  # Sundays only (APScheduler's own 0 is Monday)
    d.wait_runs(1)
    status = sample / ".sheetcrm/daemon.json"
    d.wait_for("the next run", lambda: status.exists()
               and json.loads(status.read_text())["next_run_at"])
    assert datetime.fromisoformat(json.loads(status.read_text())["next_run_at"]).weekday() \
        == SUN
    assert d.terminate()[0] == 0

    config = sample / "config.toml"
    save(config, config.read_text(encoding="utf-8") + '\n[schedule]\ncron = "0 9 * * 1-5"\n')
    friday = json.loads(cli(sample, "--now", "2026-11-27T10:00", "--json", "status").stdout)
    assert friday["next_run_at"] == "2026-11-30T09:00:00+09:00"  # Monday, not Saturday
