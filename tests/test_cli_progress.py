"""A long ``sheetcrm sync`` as an operator lives it: a progress bar in a terminal (and
none in a pipe), and Ctrl-C part-way through, on a real subprocess sending to a
slow webhook receiver on loopback.

Ctrl-C stops sending: the message in flight finishes, no other starts, the run
writes back what was sent, says so and exits 130. The next sync sends the rest,
each message exactly once.
"""

from __future__ import annotations

import csv
import io
import os
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from sheetcrm.cli.running import RunProgress
from tests.support.servers import Fault, Reply, WebhookServer

CUSTOMERS = 40
NOW = "2026-11-23T10:00"
HEADER = ["이메일", "신청일", "자동화 흐름", "최근 발송"]

CONFIG = """
timezone = "Asia/Seoul"
state = "state.db"
templates = "templates"

[table]
path = "customers.csv"
key = "email"

[fields]
email = {{ column = "이메일", type = "email" }}
applied_at = {{ column = "신청일", type = "date" }}

[writeback]
flow = "자동화 흐름"
last_sent = "최근 발송"

[tags]
"신규" = "days_since(applied_at) >= 0"

[channels.hook]
type = "webhook"
url = "{url}"
retries = 0

[flows.welcome]
trigger = "신규"
steps = [{{ after = "0d", channel = "hook", template = "welcome" }}]
"""


def make_world(folder: Path, url: str) -> list[str]:
    """A sheet of CUSTOMERS rows, each with one welcome message due; their keys."""
    keys = [f"c{n:02d}@example.com" for n in range(CUSTOMERS)]
    (folder / "templates").mkdir()
    (folder / "templates" / "welcome.j2").write_text(
        "{% block subject %}환영합니다{% endblock %}{% block text %}hi {{ email }}{% endblock %}",
        encoding="utf-8")
    (folder / "config.toml").write_text(CONFIG.format(url=url), encoding="utf-8")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows([key, "2026-11-20", "", ""] for key in keys)
    (folder / "customers.csv").write_text(buffer.getvalue(), encoding="utf-8")
    return keys


def sheet(folder: Path) -> dict[str, dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO((folder / "customers.csv").read_text("utf-8"))))
    return {row["이메일"]: row for row in rows}


def delivered(server: WebhookServer) -> list[str]:
    """The recipients of the messages the receiver got, in order."""
    return [r.json()["recipient"] for r in server.requests_where("POST")]


def wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# Signals sent to a subprocess and a pseudo-terminal: POSIX (CI runs these on Linux
# as Windows imports sheetcrm; on Windows, Ctrl-C reaches Python as the same SIGINT).
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and terminals")


def start_sync(folder: Path, **options) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "sheetcrm.cli", "--now", NOW, "sync"],
                            cwd=folder, env=env, text=True, stdin=subprocess.DEVNULL,
                            **options)


@posix_only
def test_ctrl_c_during_sync_stops_sending_writes_back_what_was_sent_and_says_so(
        tmp_path: Path) -> None:
    with WebhookServer() as server:
        server.add_fault(Fault(Reply(status=0, delay=0.15), times=None))  # a slow receiver
        keys = make_world(tmp_path, server.url)
        process = start_sync(tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: len(server.requests) >= 5, 60)
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=60)
        finally:
            process.kill()
        first = delivered(server)

        assert process.returncode == 130, err
        assert 5 <= len(first) < CUSTOMERS
        left = CUSTOMERS - len(first)
        assert (f"Stopped by Ctrl-C: {len(first)} message(s) sent, {left} left for the next "
                "sync. What was sent is written into the sheet.") in err
        assert "Stopping: the message being sent finishes" in err  # said at once
        assert "Traceback" not in err and "aborted" not in err
        assert "█" not in err and "━" not in err  # no progress bar outside a terminal
        assert f"{len(first)} sent" in out  # the run's summary, as after any sync
        rows = sheet(tmp_path)
        for key in keys:
            assert bool(rows[key]["최근 발송"]) == (key in first), key
            assert rows[key]["자동화 흐름"].startswith("welcome"), key  # state for everyone

        server.clear_faults()
        again = subprocess.run([sys.executable, "-m", "sheetcrm.cli", "--now", NOW, "sync"],
                               cwd=tmp_path, capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
        assert again.returncode == 0, again.stderr
        everything = delivered(server)
    assert Counter(everything) == Counter(keys)  # the rest, and each message once
    assert all(sheet(tmp_path)[key]["최근 발송"] for key in keys)


@posix_only
def test_a_second_ctrl_c_leaves_at_once_and_the_next_sync_sends_nothing_twice(
        tmp_path: Path) -> None:
    with WebhookServer() as server:
        server.add_fault(Fault(Reply(status=0, delay=0.3), times=None))
        keys = make_world(tmp_path, server.url)
        process = start_sync(tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: len(server.requests) >= 3, 60)
            process.send_signal(signal.SIGINT)
            time.sleep(0.05)
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=60)
        finally:
            process.kill()
        assert process.returncode == 130, err
        assert "Stopped at once by a second Ctrl-C" in err and "Traceback" not in err
        server.clear_faults()
        again = subprocess.run([sys.executable, "-m", "sheetcrm.cli", "--now", NOW, "sync"],
                               cwd=tmp_path, capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
        assert again.returncode == 0, again.stderr
        everything = delivered(server)
    assert Counter(everything) == Counter(keys)
    assert all(sheet(tmp_path)[key]["최근 발송"] for key in keys)


def read_terminal(fd: int, process: subprocess.Popen[bytes], seconds: float) -> str:
    """All a process writes to its terminal until it ends."""
    chunks = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the other end closed
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    return b"".join(chunks).decode("utf-8", errors="replace")


@posix_only
def test_a_sync_that_takes_a_while_shows_a_progress_bar_in_a_terminal(tmp_path: Path) -> None:
    with WebhookServer() as server:
        server.add_fault(Fault(Reply(status=0, delay=0.1), times=None))  # 4 s in all
        make_world(tmp_path, server.url)
        import pty

        main, child = pty.openpty()
        env = {**os.environ, "COLUMNS": "100", "TERM": "xterm"}
        process = subprocess.Popen([sys.executable, "-m", "sheetcrm.cli", "--now", NOW, "sync"],
                                   cwd=tmp_path, env=env, stdin=child, stdout=child,
                                   stderr=child)
        os.close(child)
        try:
            shown = read_terminal(main, process, 60)
            process.wait(timeout=10)
        finally:
            process.kill()
            os.close(main)
    assert process.returncode == 0, shown
    assert "Sending" in shown
    assert f"/{CUSTOMERS}" in shown  # "12/40": how many of how many
    assert f"{CUSTOMERS} sent" in shown  # and then the summary, as always


def test_a_quick_run_shows_no_bar_even_in_a_terminal() -> None:
    from rich.console import Console

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=80)
    with RunProgress(console, delay=5.0) as progress:
        progress("sending", 1, 2)
        progress("sending", 2, 2)
    assert progress.enabled  # a terminal, but the run ended before the delay
    assert screen.getvalue() == ""
