"""Evaluations per second of compiled conditions, and µs per cell of the field parsers.

Run: ``python -m bench.bench_expressions`` from the repository root. Timings only;
the tests never assert on speed.
"""

from __future__ import annotations

import datetime as dt
import time
import timeit
from zoneinfo import ZoneInfo

from sheetcrm.expressions import compile_expression
from sheetcrm.fields import make_parser

TZ = ZoneInfo("Asia/Seoul")
TODAY = dt.date(2025, 6, 10)


def days_since(ctx: object, day: dt.date | None) -> int | None:
    return None if day is None else (TODAY - day).days


def sent_count(ctx: object, days: int = 30) -> int:
    return 1


def in_flow(ctx: object, flow: str) -> bool:
    return flow == "payment"


HELPERS = {"days_since": days_since, "sent_count": sent_count, "in_flow": in_flow}
NAMES = ["paid", "applied_at", "last_login", "plan", "amount", "결제여부"]
ROW = {
    "paid": False,
    "applied_at": dt.date(2025, 6, 1),
    "last_login": dt.date(2025, 5, 1),
    "plan": "pro",
    "amount": 12000.0,
    "결제여부": True,
}
EXPRESSIONS = [
    "not paid and days_since(applied_at) >= 1",
    "결제여부 and days_since(last_login) >= 7 and sent_count(days=7) < 2",
    "plan in ['pro', 'team'] and amount * 1.1 > 10000 and not in_flow('dormant')",
]


def best_of(statement: object, number: int, repeat: int = 5) -> float:
    return min(timeit.repeat(statement, number=number, repeat=repeat)) / number  # type: ignore[arg-type]


def bench_expressions(number: int = 1_000_000) -> None:
    for source in EXPRESSIONS:
        compiled = compile_expression(source, names=NAMES, helpers=HELPERS, path="bench")
        seconds = best_of(lambda compiled=compiled: compiled(ROW, None), number)
        print(f"{1 / seconds:>12,.0f} evaluations/s  {source}")


def bench_fields(number: int = 100_000) -> None:
    first = dt.date(2024, 1, 1)
    cases = {
        "date": [(first + dt.timedelta(days=i % 365)).isoformat() for i in range(number)],
        "date (distinct)": [(first + dt.timedelta(days=i)).isoformat() for i in range(number)],
        "datetime": [f"2025-06-01 {i // 3600 % 24:02d}:{i // 60 % 60:02d}" for i in range(number)],
        "datetime (distinct)": [
            f"2025-06-01 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
            for i in range(number)
        ],
        "bool": ["O", "X", "TRUE", "FALSE", ""] * (number // 5),
        "int": [str(i % 500) for i in range(number)],
        "int (distinct)": [str(i) for i in range(number)],
    }
    for label, cells in cases.items():
        type_ = label.split()[0]
        rounds = []
        for _ in range(5):
            parse = make_parser(type_, column="c", tz=TZ)  # fresh memo each round
            start = time.perf_counter()
            for cell in cells:
                parse(cell)
            rounds.append(time.perf_counter() - start)
        print(f"{min(rounds) / len(cells) * 1e6:>8.3f} µs/cell  {label}")


if __name__ == "__main__":
    bench_expressions()
    bench_fields()
