"""A month of the shipped sample: daily syncs, and customers who do what customers do.

For the report's browser test and the README's screenshot (``docs/make_report_
screenshot.py``): a copy of the sample runs ``sync`` every morning (and some evenings,
when quiet hours hold the ads) for ``days`` days, while the sheet and the ledger change
between runs as they would: new sign-ups arrive, some customers pay (a little more
often after the A/B step's ``compare`` mail, and less often in the holdout), paying
customers log in and write reviews, and the mail heard back is recorded as events
(clicks, a scanner's clicks, opens, replies, opt-outs, bounces). A seeded random number
generator makes every month the same.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sheetcrm.app.runner import sync
from sheetcrm.config import load_config
from sheetcrm.ledger import Ledger
from sheetcrm.model import DELIVERED, Event, EventKind
from tests.support.sample import CSV, DAY0, copy_sample

SEOUL = ZoneInfo("Asia/Seoul")
START = datetime.fromisoformat(DAY0).replace(tzinfo=SEOUL)
COURSES = {"엑셀 기초": "99,000", "파이썬 입문": "149,000", "데이터 분석": "199,000"}
NAMES = ["강민서", "조하준", "윤서아", "장도현", "임지유", "한예준", "오수아", "서지호", "신하린",
         "권우진", "황채원", "안시우"]


@dataclass
class Sheet:
    """The sample CSV as rows of cells, written back as Excel saves it (BOM, CRLF)."""

    path: Path
    header: list[str]
    rows: list[list[str]]

    @classmethod
    def read(cls, path: Path) -> Sheet:
        rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))
        return cls(path, rows[0], [r + [""] * (len(rows[0]) - len(r)) for r in rows[1:]])

    def write(self) -> None:
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows([self.header, *self.rows])
        self.path.write_bytes(b"\xef\xbb\xbf" + out.getvalue().encode("utf-8"))

    def cells(self, row: list[str]) -> dict[str, str]:
        return dict(zip(self.header, row, strict=False))

    def set(self, row: list[str], column: str, value: str) -> None:
        row[self.header.index(column)] = value


def simulate_month(folder: Path, days: int = 30, seed: int = 15,
                   progress: Callable[[int], None] | None = None) -> datetime:
    """Run the month in ``folder`` (a fresh copy of the sample); returns the moment
    after the last morning sync, for the report."""
    copy_sample(folder)
    rng = random.Random(seed)
    config = load_config(folder / "config.toml", {})
    signups = 0
    for day in range(days):
        morning = START + timedelta(days=day)
        if day:
            signups = _customers_act(folder, rng, morning.date(), signups)
            _heard_back(folder, rng, morning)
        sync(config, morning)
        if day % 3 == 1:  # an evening run: the ads due now wait for 08:00 (quiet hours)
            sync(config, morning.replace(hour=21, minute=30))
        if progress is not None:
            progress(day)
    return START + timedelta(days=days - 1, minutes=5)


def _customers_act(folder: Path, rng: random.Random, today: date, signups: int) -> int:
    """One day of the operator's sheet: sign-ups, payments, logins, reviews."""
    sheet = Sheet.read(folder / CSV)
    ledger = Ledger.open(folder / ".sheetcrm" / "state.db")
    try:
        state = ledger.load_state()
    finally:
        ledger.close()
    for row in sheet.rows:
        cells = sheet.cells(row)
        key = cells["이메일"]
        if not key or "@" not in key:
            continue
        if cells["결제 여부"] != "O" and cells["신청일"]:
            chance = 0.05
            for send in state.sends_for(key):
                if send.flow == "payment" and send.status in DELIVERED:
                    chance += 0.04 if send.variant == "compare" else 0.015
            enrolled = state.enrollments.get((key, "payment"))
            if enrolled is not None and enrolled.holdout:
                chance = 0.04
            if rng.random() < chance:
                sheet.set(row, "결제 여부", "O")
                sheet.set(row, "결제 금액", COURSES.get(cells["강의"], "99,000"))
        elif cells["결제 여부"] == "O":
            if not cells["최근 접속"] and rng.random() < 0.3:
                sheet.set(row, "최근 접속", f"{today:%Y-%m-%d} 09:{rng.randrange(60):02d}")
            if cells["후기 작성"] != "O" and rng.random() < 0.08:
                sheet.set(row, "후기 작성", "O")
    for _ in range(rng.choice((1, 2, 2, 3))):
        signups += 1
        name = NAMES[signups % len(NAMES)]
        course = rng.choice(list(COURSES))
        row = [""] * len(sheet.header)
        for column, value in (("고객명", name), ("이메일", f"new{signups:03d}@example.com"),
                              ("신청일", f"{today - timedelta(days=1):%Y-%m-%d}"),
                              ("강의", course), ("결제 여부", "X"), ("링크 클릭", "X"),
                              ("후기 작성", "X"), ("메일 미열람", "0"),
                              ("수신 동의", "O" if rng.random() < 0.85 else "X")):
            sheet.set(row, column, value)
        sheet.rows.append(row)
    sheet.write()
    return signups


def _heard_back(folder: Path, rng: random.Random, now: datetime) -> None:
    """What came back since yesterday's mail: clicks, replies, an opt-out, a bounce."""
    ledger = Ledger.open(folder / ".sheetcrm" / "state.db")
    try:
        state = ledger.load_state()
        since = now - timedelta(days=1, hours=1)
        for key, sends in state.sends_by_key.items():
            for send in sends:
                if send.status not in DELIVERED or not send.finished_at or send.finished_at < since:
                    continue
                at = (send.finished_at + timedelta(hours=rng.randint(1, 12))).astimezone(UTC)

                def heard(kind: EventKind, machine: bool = False, key: str = key,
                          idem: str = send.idem_key, at: datetime = at) -> None:
                    ledger.record_event(Event(
                        source="month", event_id=f"{kind}-{idem}-{machine}", kind=kind,
                        key=key, at=at, idem_key=idem, machine=machine,
                        data={"address": key} if kind is EventKind.BOUNCE else {}))

                roll = rng.random()
                if roll < 0.03:
                    heard(EventKind.CLICK, machine=True)  # a link scanner: kept, not counted
                if roll < 0.22:
                    heard(EventKind.CLICK)
                if rng.random() < 0.4:
                    heard(EventKind.OPEN)  # as if [server] track_opens were on: unreliable
                if rng.random() < 0.05:
                    heard(EventKind.REPLY)
                if send.kind == "ad" and rng.random() < 0.02:
                    heard(EventKind.OPT_OUT)
                if rng.random() < 0.01:
                    heard(EventKind.BOUNCE)
    finally:
        ledger.close()
