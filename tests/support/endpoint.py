"""The endpoint as tests use it: the sample with ``[server]`` on loopback, the ads' links,
a real ``sheetcrm serve`` process, plain HTTP requests and the events the ledger holds.

The sample's first ad is the dormant win-back's first step, to its one dormant customer
on the first day; the payment flow's second step (an ad, ``payment_reviews``) is due two
days after entry (``DAY2``), its third (``payment_last_call``, an ad too) two days later
(``DAY4``).
Every wait is bounded; a process still running at teardown is killed.
"""

from __future__ import annotations

import email
import email.policy
import http.client
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from sheetcrm.app.serve import Served
from sheetcrm.config import load_config
from tests.support.sample import DAY2, copy_sample

SECRET = "a-long-random-secret-for-the-tests-only"
ENV = {**os.environ, "SHEETCRM_SECRET": SECRET}
DAY4 = "2026-11-27T10:00"  # the payment flow's last step (an ad) falls due
HEARD_AT = "2026-11-25T12:00"  # the endpoint's clock (``--now``) when a customer opts out
OPT_OUT_COLUMN = "수신 거부"
STATE = Path(".sheetcrm/state.db")
ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_server(folder: Path, port: int, extra: str = "") -> None:
    """Give the sample ``[server]`` on 127.0.0.1:``port`` and the opt-out column."""
    config = folder / "config.toml"
    text = config.read_text(encoding="utf-8")
    text = text.replace('error = "오류"\n', f'error = "오류"\nopt_out = "{OPT_OUT_COLUMN}"\n', 1)
    text += (f'\n[server]\npublic_url = "http://127.0.0.1:{port}"\n'
             f'listen = "127.0.0.1:{port}"\nsecret = "${{SHEETCRM_SECRET}}"\n{extra}')
    config.write_text(text, encoding="utf-8")


def ads(folder: Path) -> dict[str, email.message.EmailMessage]:
    """The ads in the outbox, by recipient address."""
    found = {}
    for path in sorted((folder / "outbox").glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if msg["List-Unsubscribe"] is not None:
            found[msg["To"].addresses[0].addr_spec] = msg
    return found


def https_target(msg: email.message.EmailMessage) -> str:
    """The opt-out page in an ad's List-Unsubscribe (the ``<http…>`` target)."""
    targets = re.findall(r"<([^>]*)>", str(msg["List-Unsubscribe"]))
    return next(t for t in targets if t.startswith("http"))


def request(url: str, method: str = "GET", body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: status, headers (lower-case names), body."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request(method, parts.path, body=body, headers=headers or {})
        response = conn.getresponse()
        return (response.status, {k.lower(): v for k, v in response.getheaders()},
                response.read())
    finally:
        conn.close()


def opt_events(folder: Path) -> list[tuple[str, str, str]]:
    """(kind, row key, event id) of every opt-out and opt-in in the ledger, oldest first."""
    conn = sqlite3.connect(f"{(folder / STATE).resolve().as_uri()}?mode=ro", uri=True)
    try:
        return [tuple(r) for r in conn.execute(
            "SELECT kind, key, event_id FROM events WHERE kind IN ('opt_out', 'opt_in')"
            " ORDER BY at, id")]
    finally:
        conn.close()


def cli(folder: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``sheetcrm ARGS`` as a process in ``folder``, with the secret in its environment."""
    return subprocess.run([sys.executable, "-m", "sheetcrm.cli", *args], cwd=folder, env=ENV,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def synced_to_day2(folder: Path) -> None:
    """The sample synced on its first and third day: the payment ads are in the outbox."""
    for now in ("2026-11-23T10:00", DAY2):
        result = cli(folder, "--now", now, "sync")
        assert result.returncode == 0, result.stdout + result.stderr


def synced_sample(folder: Path) -> Path:
    """A copy of the sample in ``folder`` with ``[server]``, synced to its third day;
    it speaks the sample's Korean (the unsubscribe page is the customers')."""
    folder.mkdir(parents=True, exist_ok=True)
    copy_sample(folder, language="ko")
    with_server(folder, free_port())
    synced_to_day2(folder)
    return folder


def copy_of(synced: Path, folder: Path) -> Path:
    """A copy of a synced sample (sheet, ledger, outbox) a test may change freely."""
    shutil.copytree(synced, folder, dirs_exist_ok=True)
    return folder


@contextmanager
def serving(folder: Path, extra: str = "") -> Iterator[str]:
    """The endpoint in this process (``app.serve.Served``) on a free loopback port, its
    clock at ``HEARD_AT``; ``extra`` lines are added to ``[server]``. Yields its base URL.
    """
    config_path = folder / "config.toml"
    port = free_port()
    text = re.sub(r'listen = "127\.0\.0\.1:\d+"', f'listen = "127.0.0.1:{port}"',
                  config_path.read_text(encoding="utf-8"))
    config_path.write_text(text + extra, encoding="utf-8")
    config = load_config(config_path, ENV)
    heard_at = datetime.fromisoformat(HEARD_AT).replace(tzinfo=config.tz)
    served = Served(config, lambda: heard_at)
    served.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        served.stop()


def local(base: str, url: str) -> str:
    """``url``'s path on the endpoint at ``base`` (the ads name the port they were sent with)."""
    return base + urlsplit(url).path


class ServeProcess:
    """``sheetcrm serve`` as a real process, its log in a file; waits until it listens."""

    def __init__(self, folder: Path, port: int, now: str | None = HEARD_AT,
                 wait: bool = True) -> None:
        self.log_path = folder / f"serve-{time.monotonic_ns()}.log"
        self.port = port
        cmd = [sys.executable, "-m", "sheetcrm.cli", *(["--now", now] if now else []), "serve"]
        with open(self.log_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, cwd=folder, env=ENV, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err)
        if wait:
            self.wait_listening()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8")

    def wait_listening(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"serve exited ({self.proc.returncode}):\n{self.log()}"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"serve did not listen on {self.port}:\n{self.log()}")

    def terminate(self, timeout: float = 20) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
