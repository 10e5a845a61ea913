"""What each column of an existing sheet holds: its type, its role and whether it
can be the key, decided from the values by the field parsers themselves.

A column is of a type when the type's parser (``sheetcrm.fields.make_parser``, the
one ``sync`` uses) reads every non-empty cell; no second set of parsers decides here,
so what ``init`` proposes is what ``sync`` will accept. Sheets that people type into
carry a few mistakes (a ``2026-02-30``, an address without its domain, ``몰라`` in a
yes/no column): when no type reads every cell, a type that reads all but a few
(``TOLERATED``) is proposed and the cells it does not read are listed, since those
are the row errors ``sync`` will show until they are fixed. Types are tried from the
narrowest (yes/no, whole numbers) to the widest (text), so ``0``/``1`` counts stay
numbers, a number with a leading zero (``010...``, ``007``) is never made a number,
and won amounts (``₩39,000``, ``\\39,000``, ``39,000원``) are numbers.

A date written day and month first (``6/1/2026``) is read only when the values prove
the order (a first number over 12 means day first); otherwise the column is left
open (``Column.orders``) for the operator to say, or stays text, never guessed.

Roles (email, phone, name, paid ...) come from the header, matched by the words
Korean and English sheets use for them after dropping spaces and case, and must
agree with the type (a "결제 여부" column of free text is not a yes/no role).
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo

from sheetcrm.errors import CellError
from sheetcrm.fields import DATE_ORDERS, make_parser

#: Of the non-empty cells of a column, the share a proposed type may fail to read
#: (they are listed as cells to fix); at least three cells must be read.
TOLERATED = 0.1
MIN_READ = 3
#: Of the non-blank values of a key column, the share that may repeat (duplicate rows
#: are shown by ``check`` and ``sync`` as errors to fix, not a reason to pick another).
KEY_REPEATS = 0.05
SAMPLES = 3  # the bad cells a column names

#: The types tried, narrowest first. ``date`` covers ``datetime`` (decided by times).
_ORDER = ("bool", "int", "number", "date", "email", "phone")

#: Role -> the header words that name it (compared without spaces, lower case), and
#: the types the column must have for the role.
ROLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "name": (("이름", "고객명", "성함", "성명", "고객이름", "수강생", "name", "customer"),
             ("text",)),
    "email": (("이메일", "메일", "메일주소", "이메일주소", "email", "e-mail", "mail"),
              ("email",)),
    "phone": (("연락처", "전화번호", "휴대폰", "휴대폰번호", "핸드폰", "휴대전화", "전화",
               "phone", "mobile"), ("phone",)),
    "applied_at": (("신청일", "가입일", "주문일", "등록일", "구매일", "신청일자", "가입일자",
                    "signup", "applied", "orderdate"), ("date", "datetime")),
    "paid": (("결제여부", "결제완료", "입금여부", "입금완료", "결제", "paid"), ("bool",)),
    "last_login": (("최근접속", "마지막로그인", "최근로그인", "마지막접속", "최근접속일",
                    "lastlogin"), ("date", "datetime")),
    "reviewed": (("후기작성", "리뷰작성", "후기", "리뷰", "reviewed"), ("bool",)),
    "missed": (("과제미제출", "미제출과제", "missed"), ("int",)),
    "consent": (("수신동의", "마케팅동의", "광고수신동의", "마케팅수신동의", "수신동의여부",
                 "consent", "marketingconsent"), ("bool",)),
    "clicked": (("링크클릭", "클릭", "clicked"), ("bool",)),
    "amount": (("결제금액", "금액", "결제액", "가격", "amount"), ("number", "int")),
    "course": (("강의", "강의명", "상품", "상품명", "과정", "course", "product"),
               ("text",)),
}


@dataclass
class Column:
    """One column of the sheet and what ``init`` proposes for it."""

    name: str
    field: str
    type: str = "text"
    date_order: str | None = None
    role: str | None = None
    filled: int = 0  # non-empty cells
    distinct: int = 0  # distinct non-empty values
    #: (row, cell) of the cells the type does not read, the first SAMPLES of them.
    unread: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    unread_count: int = 0
    #: Day-and-month-first dates the values do not settle: the orders that read them all.
    orders: tuple[str, ...] = ()


def field_name(column: str) -> str:
    """The field named after ``column``: spaces and signs become ``_`` (``결제 여부`` ->
    ``결제_여부``), so conditions and templates read the sheet's own words."""
    name = re.sub(r"\W+", "_", column.strip()).strip("_")
    if not name:
        return "column"
    return f"_{name}" if name[0].isdigit() else name


def infer_columns(header: Sequence[str], rows: Sequence[Sequence[str]], tz: tzinfo,
                  lines: Sequence[int] | None = None, skip: Sequence[str] = (),
                  hints: Mapping[str, str] | None = None) -> list[Column]:
    """A ``Column`` for each named header cell not in ``skip``, in the sheet's order.

    ``hints`` (column -> type) are what the backend knows of a column (an Airtable
    checkbox, a currency): taken when every non-empty cell reads as it, and for a
    column with no value at all.
    """
    numbers = list(lines) if lines is not None else list(range(2, len(rows) + 2))
    columns: list[Column] = []
    taken: set[str] = set()
    for index, name in enumerate(header):
        if not name or name in skip:
            continue
        cells = [(numbers[n], row[index].strip()) for n, row in enumerate(rows)
                 if index < len(row) and row[index].strip()]
        column = Column(name, _unique(field_name(name), taken), filled=len(cells),
                        distinct=len({cell for _line, cell in cells}))
        hint = (hints or {}).get(name)
        if hint is not None and not _failures(hint, cells, tz):
            column.type = hint
        else:
            _type(column, cells, tz)
        columns.append(column)
    _roles(columns)
    return columns


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _failures(type_: str, cells: list[tuple[int, str]], tz: tzinfo,
              order: str | None = None) -> list[tuple[int, str]]:
    parse = make_parser(type_, column="", tz=tz, date_order=order)
    failed = []
    for line, cell in cells:
        try:
            parse(cell)
        except CellError:
            failed.append((line, cell))
    return failed


def _fits(type_: str, cells: list[tuple[int, str]]) -> bool:
    """Types that would read the cells but lose what they mean."""
    if type_ in ("bool", "int", "number"):
        texts = [cell for _line, cell in cells]
        if type_ == "bool" and all(cell in ("0", "1") for cell in texts):
            return False  # counts of 0 and 1: numbers
        if type_ in ("int", "number") and any(re.fullmatch(r"0\d+", c) for c in texts):
            return False  # leading zeros (010..., 007) matter
    return True


def _type(column: Column, cells: list[tuple[int, str]], tz: tzinfo) -> None:
    """Set the column's type: strict first, then with a few unread cells."""
    if not cells:
        return
    tried: dict[str, list[tuple[int, str]]] = {}
    for type_ in _ORDER:
        if not _fits(type_, cells):
            continue
        failed = _failures(type_, cells, tz)
        if type_ == "date":
            failed = _dated(column, cells, failed, tz)
            if column.orders:
                return  # text until the operator says which order (never guessed)
        tried[type_] = failed
        if not failed:
            column.type = _date_or_time(type_, cells)
            return
    allowed = int(len(cells) * TOLERATED)
    near = [(len(failed), position, type_) for position, (type_, failed)
            in enumerate(tried.items())
            if len(failed) <= allowed and len(cells) - len(failed) >= MIN_READ]
    if near:
        _count, _position, type_ = min(near)
        column.type = _date_or_time(type_, cells)
        column.unread = tried[type_][:SAMPLES]
        column.unread_count = len(tried[type_])


def _dated(column: Column, cells: list[tuple[int, str]], failed: list[tuple[int, str]],
           tz: tzinfo) -> list[tuple[int, str]]:
    """Dates written day and month first: read with the order the values prove, else
    note the orders that would read them (``Column.orders``)."""
    if not failed or not any(re.match(r"\d{1,2}\s*[./-]", cell) for _line, cell in failed):
        return failed
    readers = {order: _failures("date", cells, tz, order) for order in DATE_ORDERS}
    best = min(len(f) for f in readers.values())
    if best >= len(failed):
        return failed
    fitting = tuple(order for order, f in readers.items() if len(f) == best)
    if len(fitting) == 1:
        column.date_order = fitting[0]
        return readers[fitting[0]]
    column.orders = fitting
    return failed


def _date_or_time(type_: str, cells: list[tuple[int, str]]) -> str:
    """A date column any of whose cells shows a time of day is a datetime column."""
    if type_ == "date" and any(re.search(r"\d:\d\d", cell) for _line, cell in cells):
        return "datetime"
    return type_


def _words(name: str) -> str:
    return re.sub(r"[\s_]+", "", name).lower()


def _roles(columns: list[Column]) -> None:
    """Each role to the first column its header names (with a fitting type); email and
    phone also to the first column of their type when no header names them."""
    for role, (words, types) in ROLES.items():
        found = next((c for c in columns if c.role is None and _words(c.name) in words
                      and c.type in types), None)
        if found is None and role in ("email", "phone"):
            found = next((c for c in columns if c.role is None and c.type == role), None)
        if found is not None:
            found.role = role


def by_role(columns: Sequence[Column]) -> dict[str, Column]:
    """Role -> its column, for the roles found."""
    return {c.role: c for c in columns if c.role is not None}


def key_candidates(columns: Sequence[Column], rows: int) -> list[Column]:
    """Columns that identify a row: filled on (nearly) every row, (nearly) unique."""
    result = []
    for column in columns:
        if not column.filled or column.filled < rows * (1 - KEY_REPEATS) - 1:
            continue
        if column.distinct >= column.filled * (1 - KEY_REPEATS):
            result.append(column)
    return result


def default_key(columns: Sequence[Column], rows: int) -> Column | None:
    """The email column if it identifies rows, else such a phone column, else none."""
    candidates = key_candidates(columns, rows)
    for role in ("email", "phone"):
        found = next((c for c in candidates if c.role == role), None)
        if found is not None:
            return found
    return None


def repeated(rows: Sequence[Sequence[str]], index: int) -> list[str]:
    """The values of column ``index`` that more than one row holds."""
    counts = Counter(row[index].strip() for row in rows if index < len(row) and row[index].strip())
    return [value for value, n in counts.items() if n > 1]
