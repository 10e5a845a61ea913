"""A small world for journey tests: a config, a CSV sheet the test edits between
runs, and daily syncs with an injected clock. Messages are read back from the
outbox, as a customer would receive them."""

from __future__ import annotations

import csv
import email
import email.policy
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sheetcrm.app.runner import RunResult, sync
from sheetcrm.config import Config, load_config

SEOUL = ZoneInfo("Asia/Seoul")
HEADER = ["이메일", "결제 여부", "신청일", "최근 접속", "수신 동의", "수신 거부", "상태 태그",
          "자동화 흐름", "최근 발송"]

CONFIG = """
timezone = "Asia/Seoul"
state = "state.db"
templates = "templates"

[table]
path = "customers.csv"
key = "email"

[fields]
email = {{ column = "이메일", type = "email" }}
paid = {{ column = "결제 여부", type = "bool" }}
applied_at = {{ column = "신청일", type = "date" }}
last_login = {{ column = "최근 접속", type = "datetime" }}
consent = {{ column = "수신 동의", type = "bool" }}
unsubscribed = {{ column = "수신 거부", type = "bool" }}

[writeback]
tags = "상태 태그"
flow = "자동화 흐름"
last_sent = "최근 발송"

[tags]
"결제 대기" = "not paid and days_since(applied_at) >= 1"
"첫 수강 전" = "paid and last_login is none"
"휴면" = "paid and days_since(last_login) >= 14"

[sending]
consent = "consent"
unsubscribed = "unsubscribed"
{sending}

[channels.e]
type = "outbox"
from = "Shop <shop@example.com>"
to = "email"

[flows.payment]
trigger = "결제 대기"
goal = "paid"
{payment}
steps = [
  {{ after = "0d", channel = "e", template = "p1" }},
  {{ after = "2d", channel = "e", template = "p2", kind = "ad", variants = {{ a = 1, b = 1 }} }},
  {{ after = "4d", channel = "e", template = "p3", kind = "ad" }},
]

[flows.onboarding]
trigger = "첫 수강 전"
goal = "last_login is not none"
then = "dormant"
steps = [
  {{ after = "0d", channel = "e", template = "o1" }},
  {{ after = "2d", channel = "e", template = "o2" }},
  {{ after = "4d", channel = "e", template = "o3", kind = "ad" }},
]

[flows.dormant]
trigger = "휴면"
goal = "days_since(last_login) < 3"
steps = [
  {{ after = "0d", channel = "e", template = "d1" }},
  {{ after = "7d", channel = "e", template = "d2", kind = "ad" }},
  {{ after = "14d", channel = "e", template = "d3" }},
]
"""

_KEY = re.compile(r"^sc-(?P<flow>[\w-]+)-e(?P<entry>\d+)-s(?P<step>\d+)-")


@dataclass(frozen=True)
class Received:
    day: int
    to: str
    flow: str
    step: int
    subject: str


@dataclass
class World:
    folder: Path
    start: datetime
    customers: dict[str, dict[str, str]]
    received: list[Received] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    @classmethod
    def create(cls, folder: Path, customers: dict[str, dict[str, str]], *, sending: str = "",
               payment: str = "", start: datetime | None = None) -> World:
        (folder / "templates").mkdir()
        for name in ("p1", "p2", "p3", "o1", "o2", "o3", "d1", "d2", "d3"):
            (folder / "templates" / f"{name}.j2").write_text(
                "{% block subject %}" + name + "{% if variant %}-{{ variant }}{% endif %}"
                "{% endblock %}{% block text %}hello {{ email }}{% endblock %}",
                encoding="utf-8")
        (folder / "config.toml").write_text(CONFIG.format(sending=sending, payment=payment),
                                            encoding="utf-8")
        world = cls(folder, start or datetime(2026, 3, 2, 10, 0, tzinfo=SEOUL), customers)
        world.write_sheet()
        return world

    @property
    def config(self) -> Config:
        return load_config(self.folder / "config.toml", {})

    def write_sheet(self) -> None:
        """The operator's edits: rewrite the customer cells, keep sheetcrm's columns."""
        path = self.folder / "customers.csv"
        owned: dict[str, list[str]] = {}
        if path.exists():
            with open(path, encoding="utf-8", newline="") as f:
                for row in csv.DictReader(f):
                    owned[row["이메일"]] = [row.get(c) or "" for c in HEADER[6:]]
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(HEADER)
            for key, c in self.customers.items():
                w.writerow([key, c.get("paid", "X"), c.get("applied", ""), c.get("login", ""),
                            c.get("consent", "O"), c.get("unsub", ""),
                            *owned.get(key, ["", "", ""])])

    def day(self, n: int, hour: int = 10, minute: int = 0) -> datetime:
        return (self.start + timedelta(days=n)).replace(hour=hour, minute=minute)

    def date(self, n: int) -> str:
        return f"{self.day(n):%Y-%m-%d}"

    def sync(self, day: int, hour: int = 10, minute: int = 0, **kw: object) -> RunResult:
        result = sync(self.config, self.day(day, hour, minute), **kw)  # type: ignore[arg-type]
        self.collect(day)
        return result

    def collect(self, day: int) -> None:
        outbox = self.folder / "outbox"
        for path in sorted(outbox.glob("*.eml")) if outbox.exists() else []:
            if path.name in self.seen:
                continue
            self.seen.add(path.name)
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            m = _KEY.match(str(msg["X-Sheetcrm-Key"]))
            assert m, msg["X-Sheetcrm-Key"]
            self.received.append(Received(day, str(msg["To"]), m["flow"], int(m["step"]),
                                          str(msg["Subject"])))

    def messages(self, to: str) -> list[tuple[str, int, int]]:
        return [(r.flow, r.step, r.day) for r in self.received if r.to == to]

    def statuses(self) -> dict[tuple[str, str], str]:
        """(key, flow) -> the latest enrollment's status, as the ledger holds it."""
        with sqlite3.connect(self.folder / "state.db") as db:
            rows = db.execute("SELECT key, flow, status FROM enrollments ORDER BY entry")
            return {(k, f): status for k, f, status in rows.fetchall()}

    def sheet(self) -> dict[str, dict[str, str]]:
        with open(self.folder / "customers.csv", encoding="utf-8", newline="") as f:
            return {row["이메일"]: row for row in csv.DictReader(f)}
