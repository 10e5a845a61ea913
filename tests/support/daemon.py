"""`sheetcrm run` as a real subprocess, for the daemon's tests.

Every daemon here runs on a copy of the shipped sample with a short interval and a
clock pinned by ``--now`` (it starts there and runs on in real time), writes its JSON
log lines to a file (a full stderr pipe would block it), and is killed at teardown
if a test failed before stopping it (the ``start`` fixture in ``tests/conftest.py``).
Every wait is bounded. The test files are ``tests/test_daemon_*.py``.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.sample import CSV, DAY0

STATE = Path(".sheetcrm/state.db")
LOCK = Path(".sheetcrm/sync.lock")
SOOHYUN = "soohyun.kim@example.com"  # 김수현: applied, not paid -> payment flow
SOHEE = "sohee.han@example.com"  # 한소희: in the payment flow, consents to ads


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


def cli(folder: Path, *args: str, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sheetcrm.cli", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


# -- the sheet, the state folder, /health -------------------------------------------


def read_sheet(folder: Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    text = (folder / CSV).read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    return header, {r[1]: dict(zip(header, r + [""] * (len(header) - len(r)), strict=True))
                    for r in rows[1:] if len(r) > 1}


def save(path: Path, text: str) -> None:
    """Replace a file at once, as editors do: the daemon never reads half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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
