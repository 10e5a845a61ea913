"""The shipped sample (config.toml, sample_sheets/, templates/) as tests use it.

A copy goes into a temporary folder, so a test may sync, edit and break it freely.
The constants are facts about the sample that several test modules check against:
the day its first sync runs, the sends due that day and those held back. They
follow from the rows in sample_sheets/customers.csv and the rules in config.toml.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
CSV = Path("sample_sheets/customers.csv")  # the sample sheet, relative to a copy

DAY0 = "2026-11-23T10:00"  # the first sync (``--now``)
DAY2 = "2026-11-25T10:00"  # two days on: the second steps fall due

# Due on DAY0, one per customer: every flow's first step is due at entry, and
# [sending] min_gap = "1h" lets one message a run go to each customer (the flows
# written first in config.toml go first; the others wait, DAY0_SPACED).
DAY0_SENDS = {
    ("soohyun.kim@example.com", "payment"),
    ("jihoon.lee@example.com", "onboarding"),
    ("chaerin.park@example.com", "review"),
    ("minjun.choi@example.com", "churn"),
    ("yerin.jang@example.com", "churn"),
    ("taehyun.lim@example.com", "churn"),
    ("sohee.han@example.com", "payment"),
    ("junseo.oh@example.com", "onboarding"),
    ("jimin.seo@example.com", "payment"),
    ("eunbi.noh@example.com", "payment"),
    ("jaeseok.yoo@example.com", "onboarding"),
    ("gildong.hong@example.com", "review"),
    ("min.namgung@example.com", "payment"),
    ("hyunwoo.baek@example.com", "dormant"),  # no login since 10-10: 44 days
}
# Due on DAY0 too, held by min_gap behind the message above them (deferred: they go
# on a run an hour or more later). 이지훈, 오준서 and 유재석 have not opened the course
# yet: no review request for them (후기 미작성 needs a login), only the welcome mail.
DAY0_SPACED = {
    ("minjun.choi@example.com", "review"),
    ("yerin.jang@example.com", "review"),
    ("hyunwoo.baek@example.com", "churn"), ("hyunwoo.baek@example.com", "review"),
}
# 배수지's address (the key) is malformed: the cell is unreadable, so she enters the
# payment flow (the rule does not read it) and the reminder waits for a good address.
UNREADABLE_RECIPIENT = ("suzy.bae@", "payment")
# On a channel that does not send to the email cell (text messages to the phone
# field, a webhook keyed by the row) her address is not needed: her reminder goes too.
DAY0_SENDS_NO_ADDRESS = DAY0_SENDS | {UNREADABLE_RECIPIENT}
HOLDOUT = ("doyoon.kang@example.com", "payment")


@functools.cache
def shipped_sample_csv() -> bytes:
    """The sample sheet as committed.

    The quick start's ``sheetcrm sync`` writes tags and flow state into the
    checkout's sample CSV (that is what it is for), so the tests take the committed
    bytes from git; outside a git checkout, the file as it is.
    """
    try:
        return subprocess.run(["git", "-C", str(ROOT), "show", f"HEAD:{CSV.as_posix()}"],
                              capture_output=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return (ROOT / CSV).read_bytes()


def sample_config(language: str = "en") -> str:
    """The text of the shipped config.toml, speaking ``language`` (the tests' English
    unless a test asks: the sample itself says ``language = "ko"``)."""
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    return re.sub(r'^language = "\w+"', f'language = "{language}"', text, count=1, flags=re.M)


def korean_report(config: Path) -> None:
    """``[report] language = "ko"`` in the config at ``config``: the report (an HTML
    file, a sheet tab) in the sample's Korean while everything else speaks the tests'."""
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[report]\n", '[report]\nlanguage = "ko"\n', 1),
                      encoding="utf-8")


def copy_sample(folder: Path, language: str = "en") -> Path:
    """The shipped config.toml, sample_sheets/ and templates/ into ``folder``.

    The sample speaks Korean (``language = "ko"``); the copy speaks ``language``,
    English unless a test asks, as the tests' assertions read.
    """
    (folder / "config.toml").write_text(sample_config(language), encoding="utf-8")
    shutil.copytree(ROOT / "templates", folder / "templates")
    (folder / "sample_sheets").mkdir()
    (folder / CSV).write_bytes(shipped_sample_csv())
    return folder


def rows_by_key(folder: Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The sample sheet in ``folder``: its header, and each row by its key (the email)."""
    text = (folder / CSV).read_bytes().decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    rows = {}
    for row in reader:
        row = row + [""] * (len(header) - len(row))
        rows[row[1]] = dict(zip(header, row, strict=False))
    return header, rows


def use_smtp(folder: Path, port: int, extra: str = "") -> None:
    """Point the sample's email channel at a local SMTP server (password from $SMTP_PASSWORD)."""
    config = folder / "config.toml"
    text = re.sub(r'type = "outbox" .*\npath = "outbox"',
                  f'type = "smtp"\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
                  'username = "op"\npassword = "${SMTP_PASSWORD}"' + extra,
                  config.read_text(encoding="utf-8"))
    config.write_text(text, encoding="utf-8")


def use_webhook(folder: Path, url: str) -> None:
    """Point the sample's email channel at a webhook receiver (no retries)."""
    config = folder / "config.toml"
    text = config.read_text(encoding="utf-8")
    text = re.sub(r"^\[channels\.email\].*?\n\n",
                  f'[channels.email]\ntype = "webhook"\nurl = "{url}"\ntimeout = 5\n'
                  "retries = 0\n\n", text, flags=re.S | re.M)
    config.write_text(text, encoding="utf-8")


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` with the sha256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }
