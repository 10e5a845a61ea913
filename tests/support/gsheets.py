"""What the Google Sheets backend's tests share: the spreadsheet, the service account,
the pace, and how a sheet is read back.

Everything goes over HTTP to ``SheetsEmulator`` (``tests.support.emulators.sheets``)
on 127.0.0.1: OAuth (a JWT signed with a throwaway RSA key made once per session,
checked by the emulator), the Sheets API v4 calls, and any IAM lookup google-auth
makes in the background. Name lookups and connections to any other host are refused and recorded,
and a test that made one fails. The pacer's clock (on which retries wait too) is
injected, so nothing waits.

The fixtures built on this (``emulator``, ``account``, ``book``, ``make_table``,
``clock``, and the guards ``escapes``, ``loopback_only``, ``fast_retries``) are in
``tests/conftest.py``; the test files are ``tests/test_gsheets_*.py``.
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sheetcrm.http import Pacer
from sheetcrm.model import CellUpdate
from tests.support.clock import VirtualClock
from tests.support.emulators.sheets import SheetsEmulator
from tests.support.sample import sample_config

SHEET = "고객 목록"
KEY = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"  # the shape of a real key
URL = f"https://docs.google.com/spreadsheets/d/{KEY}/edit#gid=1001"
HEADER = ["고객명", "이메일", "연락처", "메모", "상태 태그"]


@dataclass
class Account:
    """A service account the emulator knows: its email, key file contents and path."""

    email: str
    info: dict[str, Any]
    path: Path


def make_pacer(clock: VirtualClock, limit: int = 55, period: float = 60.0) -> Pacer:
    """The adapter's pacer (55 requests a minute by default) on the virtual clock."""
    return Pacer(limit, period, clock=clock.clock)


def is_loopback(host: object) -> bool:
    """Whether a host (a name or an address) is this machine."""
    if host in ("localhost", b"localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def settle_background(emu: SheetsEmulator, before: set[threading.Thread],
                      timeout: float = 5.0) -> None:
    """Wait for threads started since ``before`` (a library's background lookups), other
    than the emulator's own connection handlers, to finish."""
    deadline = time.monotonic() + timeout
    while True:
        pending = [t for t in threading.enumerate()
                   if t not in before and t not in emu.serving and t.is_alive()]
        if not pending:
            return
        assert time.monotonic() < deadline, f"still running: {pending}"
        for thread in pending:
            thread.join(timeout=0.05)


def column(emu: SheetsEmulator, name: str, title: str = SHEET) -> dict[str, str]:
    """{email: cell of column ``name``} as the sheet shows it now."""
    rows = emu.display(KEY, title)
    header = rows[0]
    key, index = header.index("이메일"), header.index(name)
    return {row[key]: row[index] for row in rows[1:] if len(row) > key and row[key]}


# A new tag for each of the three customers of the ``book`` fixture.
TAGS = [CellUpdate("soohyun@example.com", "상태 태그", "S"),
        CellUpdate("jihoon@example.com", "상태 태그", "J"),
        CellUpdate("chaerin@example.com", "상태 태그", "C")]


def config(folder: Path, emu: SheetsEmulator, creds: Path | None, *, worksheet: str = SHEET,
           spreadsheet: str = URL, paused: bool = False, extra: str = "") -> Path:
    """The shipped config.toml with [table] switched to this emulator's spreadsheet."""
    text = sample_config()
    table = (f'[table]\nbackend = "gsheets"\nspreadsheet = "{spreadsheet}"\n'
             f'worksheet = "{worksheet}"\nendpoint = "{emu.url}"\nkey = "email"\n'
             + (f'credentials = "{creds.as_posix()}"\n' if creds else "") + extra)
    text = re.sub(r"\[table\]\n(?:.*\n)*?key = .*\n", table, text, count=1)
    text = text.replace("paused = false", f"paused = {str(paused).lower()}")
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path
