"""A loopback emulator of the Google Sheets API v4 subset gspread uses, plus OAuth.

The real gspread and google-auth code runs against it unpatched: point the backend's
``endpoint`` at ``emulator.url`` and the service-account file's ``token_uri`` at
``emulator.token_uri`` (or leave it at Google's and let ``endpoint`` reroute it).

What it keeps, because the backend's correctness depends on it:

- **OAuth**: ``POST /token`` takes the RS256 JWT-bearer grant and checks its signature
  against the public key registered with ``add_account``, its ``iss``, ``aud``
  (always ``https://oauth2.googleapis.com/token``), ``scope`` and ``exp``. API calls
  need a live bearer token, else 401 (``expire_tokens()`` forces a refresh).
  ``GET /v1/projects/-/serviceAccounts/{email}/allowedLocations`` answers 404.
- **Typed cells**: text is ``str``; numbers, booleans, dates and formulas are ``Typed``
  with a number format. ``FORMATTED_VALUE`` renders them as a Korean-locale sheet shows
  them (``149,000``, ``2026. 11. 3``, ``2026. 11. 20 오후 9:30:00``, ``TRUE``, ``007`` for
  a ``000`` format); ``UNFORMATTED_VALUE`` gives numbers, booleans and serial dates
  (or ``FORMATTED_STRING`` dates); ``FORMULA`` gives formulas.
- **RAW vs USER_ENTERED**: RAW stores strings as text (``=HYPERLINK(...)`` stays text);
  USER_ENTERED parses as if typed (``=`` makes a formula, ``007`` becomes 7, dates
  become dates and an ISO date keeps its ``2020-01-01`` form, ``2,000,000.01`` keeps its
  decimals, a leading ``'`` forces text; formulas of plain arithmetic are computed,
  others show ``#NAME?``). JSON ``null`` skips a cell, ``""`` clears it.
- **Ranges as the API writes them**: ``Sheet1!A1`` for one cell, ``D4:A1`` read as
  ``A1:D4``, titles quoted unless plain (``'D3'`` is quoted). Values written at a single
  cell spread from it; a larger range must hold them. Answers count updated rows,
  columns and cells, and leave out counts of 0. A body whose ``values`` is not a list
  of rows is a 400 INVALID_ARGUMENT and stores nothing.
- **values.append** writes below the table it finds in the range (the block of filled
  cells around the last filled cell of the last filled row), from its first column;
  ``tableRange`` only when there is one.
- **Rows and sheets move as in Google**: ``insertDimension``, ``deleteDimension``,
  ``appendDimension``, ``sortRange`` (numbers before text, text without regard to
  case, blanks last; only the range's columns move), ``addSheet``, ``deleteSheet``,
  ``updateSheetProperties`` (``fields`` honoured; the last visible sheet cannot be
  hidden) and ``updateSpreadsheetProperties``; a batch applies whole or not at all.
  The operator helpers below move cells with the same code.
- **Ragged rows**: trailing empty cells and rows are dropped; an empty middle row is ``[]``.
- **Grid limits**: each sheet has a row and column count; reading or writing an
  explicit range past it is a 400 "exceeds grid limits"; open-ended ranges are clamped;
  ``values.append`` and ``appendDimension`` grow it.
- **Errors** in Google's JSON format (``{"error": {"code", "message", "status"}}``),
  403 for a spreadsheet not shared with the caller, 404 for an unknown one. What it
  does not model (formats, merges, named ranges, filters, protected ranges, field
  masks, copy/paste) is refused with a 400 that says so, never answered wrongly.

Checked against Google: the Sheets API calls recorded in gspread's test cassettes
(repository burnash/gspread, tests/cassettes: 1,508 calls, 1,374 of them on
spreadsheets the recordings create) were replayed against this emulator and the
answers compared; 1,216 match (899 before the fixes above), and 783 of the 790 of the
shapes the backend sends itself (the rest follow copy/paste and named ranges, not
modelled). tests/test_sheets_emulator.py pins what the recordings show.

No recording covers these requests the backend itself sends, so the emulator's
answers to them follow the API reference and stay conservative (strict where Google
might be lenient):

- ``appendDimension`` of columns (growing the grid for an appended header column);
- ``values.batchGet`` of a header row (``'t'!1:1``) with open-ended columns
  (``'t'!E2:E``), and ``values.batchUpdate`` bodies built by the backend (many
  one-column ranges, JSON ``null`` gaps, majorDimension ROWS);
- Korean sheet titles (recordings use ASCII and emoji titles; Korean ones are quoted);
- RAW text starting with ``=`` (the recordings type formulas USER_ENTERED only);
- the ko_KR locale's display forms (``2026. 11. 3``, ``오후``, ``₩``): the recordings
  are en_US;
- 429, 5xx (JSON or HTML), 401 and token refresh, "exceeds grid limits", refused
  payload sizes, 50,000-character cells, and the OAuth and IAM endpoints.

For tests: the request log and the faults are ``support.servers.LoopbackServer``'s;
every request is logged (``requests``) with its kind (``spreadsheets.get``,
``values.get``, ``values.batchGet``, ``values.update``, ``values.batchUpdate``,
``values.append``, ``values.clear``, ``values.batchClear``,
``spreadsheets.batchUpdate``, ``token``, ``allowedLocations``); ``fail()`` scripts
faults in Google's terms (any status with a JSON or HTML body, a dropped connection,
a slow answer) and ``on()`` runs a callback right before, or right after, a request
of some kind is applied (to change the sheet at the worst possible moment: between a
client's read and its write, or between its write and its next read). Helpers edit
the sheet as an operator would (``put``, ``sort_rows``, ``insert_rows``,
``delete_rows``, ``insert_columns``) and show it as displayed (``display``).
"""

from __future__ import annotations

import ast
import base64
import copy
import datetime as dt
import functools
import json
import operator
import re
import secrets
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.servers import Fault, HttpError, LoopbackServer, Reply, Request, json_reply

TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
SHEETS_SCOPE = "https://www.googleapis.com/auth/spreadsheets"
SHEETS_KINDS = frozenset({
    "spreadsheets.get", "spreadsheets.batchUpdate", "values.get", "values.batchGet",
    "values.update", "values.batchUpdate", "values.append", "values.clear",
    "values.batchClear",
})
WRITE_KINDS = frozenset({
    "spreadsheets.batchUpdate", "values.update", "values.batchUpdate", "values.append",
    "values.clear", "values.batchClear",
})
MAX_CELL_CHARS = 50_000
STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
    404: "NOT_FOUND", 408: "DEADLINE_EXCEEDED", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
_EPOCH = dt.datetime(1899, 12, 30)


# --------------------------------------------------------------------------- cells


@dataclass(frozen=True, slots=True)
class Typed:
    """A cell that is not plain text.

    ``value`` is a number (dates are serial day numbers), a bool, or for a formula
    its computed display value. ``fmt`` is the number format: ``""`` (automatic),
    ``"#,##0"`` (or ``"#,##0.00"``, as many decimals as zeros), ``"₩#,##0"``, ``"0%"``,
    a run of zeros such as ``"000"`` (pads), ``"DATE"`` or ``"DATE_TIME"`` (the
    locale's form) or ``"yyyy-mm-dd"`` (a date typed that way keeps that form).
    """

    value: float | bool | str
    fmt: str = ""
    formula: str | None = None


Cell = str | Typed | None  # None (or "") is an empty cell


def render(cell: Cell, option: str = "FORMATTED_VALUE", dates: str = "SERIAL_NUMBER",
           locale: str = "ko_KR") -> Any:
    """A cell as the API returns it under ``valueRenderOption`` / ``dateTimeRenderOption``."""
    if cell is None or cell.__class__ is str:
        return cell if cell is not None else ""
    assert isinstance(cell, Typed)
    if cell.formula is not None and option == "FORMULA":
        return cell.formula
    value = cell.value
    if option == "FORMATTED_VALUE" or isinstance(value, str):
        return _formatted(cell, locale)
    if isinstance(value, bool):
        return value
    if cell.fmt in DATE_FORMATS and dates == "FORMATTED_STRING":
        return _formatted(cell, locale)
    return int(value) if float(value).is_integer() else value


DATE_FORMATS = ("DATE", "DATE_TIME", "yyyy-mm-dd")
_GROUPED = re.compile(r"(₩?)#,##0(?:\.(0+))?")


def _formatted(cell: Typed, locale: str) -> str:
    value, fmt = cell.value, cell.fmt
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if fmt == "yyyy-mm-dd":
        moment = _EPOCH + dt.timedelta(days=round(value))
        return f"{moment:%Y-%m-%d}"
    if fmt in ("DATE", "DATE_TIME"):
        return _date_text(value, fmt == "DATE_TIME", locale)
    grouped = _GROUPED.fullmatch(fmt)
    if grouped:
        decimals = len(grouped[2] or "")
        return f"{grouped[1]}{value:,.{decimals}f}"
    if fmt == "0%":
        return f"{value * 100:.0f}%"
    if fmt and set(fmt) == {"0"}:
        return f"{int(value):0{len(fmt)}d}"
    return str(int(value)) if float(value).is_integer() else format(value, ".10g")


def _date_text(serial: float, with_time: bool, locale: str) -> str:
    moment = _EPOCH + dt.timedelta(milliseconds=round(serial * 86_400_000))
    if locale.startswith("en"):
        day = f"{moment.month}/{moment.day}/{moment.year}"
        return f"{day} {moment:%H:%M:%S}".lstrip("0") if with_time else day
    day = f"{moment.year}. {moment.month}. {moment.day}"
    if not with_time:
        return day
    half = "오전" if moment.hour < 12 else "오후"
    return f"{day} {half} {(moment.hour % 12) or 12}:{moment:%M:%S}"


_NUMBER = re.compile(r"(?P<won>₩)?(?P<sign>[-+]?)(?P<int>\d{1,3}(?:,\d{3})+|\d+)"
                     r"(?P<frac>\.\d+)?(?P<pct>%)?")
_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m1>\d{1,2})-(?P<d1>\d{1,2})|/(?P<m2>\d{1,2})/(?P<d2>\d{1,2})"
    r"|\.\s*(?P<m3>\d{1,2})\.\s*(?P<d3>\d{1,2})\.?)"
    r"(?:\s+(?:(?P<half>오전|오후)\s*)?(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?)?"
)


def user_entered(text: str) -> Cell:
    """A string as Sheets stores it when typed into a cell (ko_KR locale)."""
    if text == "":
        return None
    if text.startswith("'"):
        return text[1:]
    if text.startswith("="):
        return Typed(_formula_value(text), formula=text)
    stripped = text.strip()
    if stripped.upper() in ("TRUE", "FALSE"):
        return Typed(stripped.upper() == "TRUE")
    number = _NUMBER.fullmatch(stripped)
    if number:
        value = float(number["int"].replace(",", "") + (number["frac"] or ""))
        value = -value if number["sign"] == "-" else value
        if number["pct"]:
            return Typed(value / 100, "0%")
        fmt = ""
        if number["won"] or "," in number["int"]:  # typed grouped: keeps its decimals
            fmt = "₩" * bool(number["won"]) + "#,##0" + (
                "." + "0" * (len(number["frac"]) - 1) if number["frac"] else "")
        return Typed(value, fmt)
    date = _DATE.fullmatch(stripped)
    if date:
        serial = _serial(date)
        if serial is not None:
            if date["h"]:
                return Typed(serial, "DATE_TIME")
            return Typed(serial, "yyyy-mm-dd" if date["m1"] else "DATE")
    return text


def _serial(match: re.Match[str]) -> float | None:
    month = match["m1"] or match["m2"] or match["m3"]
    day = match["d1"] or match["d2"] or match["d3"]
    hour = int(match["h"] or 0)
    if match["half"]:
        hour = hour % 12 + (12 if match["half"] == "오후" else 0)
    try:
        moment = dt.datetime(int(match["y"]), int(month), int(day), hour,
                             int(match["mi"] or 0), int(match["s"] or 0))
    except ValueError:
        return None
    return (moment - _EPOCH) / dt.timedelta(days=1)


def _formula_value(formula: str) -> float | str:
    """What a formula shows: arithmetic on numbers and ``HYPERLINK``'s label are
    computed; any other formula shows ``#NAME?`` (the emulator has no function library)."""
    link = re.fullmatch(r'=HYPERLINK\("[^"]*"\s*,\s*"([^"]*)"\)', formula, re.IGNORECASE)
    if link:
        return link.group(1)
    try:
        return _arithmetic(ast.parse(formula[1:].strip(), mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError):
        return "#NAME?"


_OPERATORS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _arithmetic(node: ast.expr) -> float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _arithmetic(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_arithmetic(node.left), _arithmetic(node.right))
    raise ValueError("not arithmetic")


def raw_cell(value: Any) -> Cell:
    """A JSON value as stored by valueInputOption=RAW."""
    if isinstance(value, bool):
        return Typed(value)
    if isinstance(value, (int, float)):
        return Typed(float(value))
    text = str(value)
    return text if text else None


# --------------------------------------------------------------------------- A1


def column_letters(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def column_index(letters: str) -> int:
    """A -> 0, AA -> 26."""
    index = 0
    for ch in letters.upper():
        index = index * 26 + ord(ch) - 64
    return index - 1


def quote_title(title: str) -> str:
    """A title as the API writes it in ranges: quoted unless a plain name that cannot be
    read as a cell (``Sheet1`` bare, ``'D3'`` and ``'고객 목록'`` quoted)."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", title) and not _CELL_LIKE.fullmatch(title):
        return title
    return "'" + title.replace("'", "''") + "'"


_CELL_LIKE = re.compile(r"[A-Za-z]{1,3}[0-9]+|[Rr][0-9]*[Cc][0-9]*")


_REF = re.compile(r"([A-Za-z]*)(\d*)")


class ApiError(HttpError):
    """An error answer in Google's JSON format."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, _error_body(code, message), message)


@dataclass
class Bounds:
    """A parsed range: 0-based, end-exclusive; an open end stops at the grid."""

    sheet: Sheet
    r0: int
    c0: int
    r1: int
    c1: int

    def a1(self) -> str:
        """``Sheet1!A1:B2``; a single cell is ``Sheet1!A1``, as the API writes it."""
        start = f"{column_letters(self.c0)}{self.r0 + 1}"
        end = f"{column_letters(self.c1 - 1)}{self.r1}"
        ref = start if start == end else f"{start}:{end}"
        return f"{quote_title(self.sheet.title)}!{ref}"

    @property
    def single(self) -> bool:
        return self.r1 - self.r0 == 1 and self.c1 - self.c0 == 1


# --------------------------------------------------------------------------- model


@dataclass
class Sheet:
    sheet_id: int
    title: str
    row_count: int = 1000
    col_count: int = 26
    rows: list[list[Cell]] = field(default_factory=list)
    hidden: bool = False

    def get(self, r: int, c: int) -> Cell:
        row = self.rows[r] if r < len(self.rows) else None
        return row[c] if row is not None and c < len(row) else None

    def set(self, r: int, c: int, cell: Cell) -> None:
        while len(self.rows) <= r:
            self.rows.append([])
        row = self.rows[r]
        if len(row) <= c:
            row.extend([None] * (c + 1 - len(row)))
        row[c] = cell

    def properties(self, index: int) -> dict[str, Any]:
        props: dict[str, Any] = {
            "sheetId": self.sheet_id, "title": self.title, "index": index, "sheetType": "GRID",
            "gridProperties": {"rowCount": self.row_count, "columnCount": self.col_count}}
        if self.hidden:  # the API leaves false fields out
            props["hidden"] = True
        return props

    # Rows and columns as insertDimension / deleteDimension / sortRange move them: the
    # operator helpers of SheetsEmulator use these too, so both move cells alike.

    def insert(self, dimension: str, start: int, count: int) -> None:
        if dimension == "ROWS":
            if start < len(self.rows):
                self.rows[start:start] = [[] for _ in range(count)]
            self.row_count += count
        else:
            for row in self.rows:
                if len(row) > start:
                    row[start:start] = [None] * count
            self.col_count += count

    def delete(self, dimension: str, start: int, end: int) -> None:
        if dimension == "ROWS":
            del self.rows[start:end]
            self.row_count -= end - start
        else:
            for row in self.rows:
                del row[start:end]
            self.col_count -= end - start

    def sort(self, r0: int, r1: int, c0: int, c1: int, specs: list[tuple[int, bool]]) -> None:
        """Sort rows ``r0:r1`` of columns ``c0:c1`` (0-based, end-exclusive) by ``specs``
        (column, descending): numbers and dates before text, text without regard to
        case, blanks last either way; ties keep their order. Cells outside the columns
        stay where they are."""
        block = [[self.get(r, c) for c in range(c0, c1)] for r in range(r0, r1)]

        def compare(a: list[Cell], b: list[Cell]) -> int:
            for column, descending in specs:
                ka, kb = _sort_key(a[column - c0]), _sort_key(b[column - c0])
                if ka == kb:
                    continue
                if ka is None or kb is None:
                    return 1 if ka is None else -1
                order = -1 if ka < kb else 1
                return -order if descending else order
            return 0

        block.sort(key=functools.cmp_to_key(compare))
        for r, cells in enumerate(block, start=r0):
            for c, cell in enumerate(cells, start=c0):
                if cell is not None or self.get(r, c) is not None:
                    self.set(r, c, cell)


def _sort_key(cell: Cell) -> tuple[int, Any] | None:
    if cell is None or cell == "":
        return None
    if isinstance(cell, str):
        return (1, cell.casefold())
    if isinstance(cell.value, bool):
        return (2, cell.value)
    if isinstance(cell.value, str):
        return (1, cell.value.casefold())
    return (0, cell.value)


@dataclass
class Spreadsheet:
    spreadsheet_id: str
    title: str
    locale: str = "ko_KR"
    time_zone: str = "Asia/Seoul"
    sheets: list[Sheet] = field(default_factory=list)
    shared_with: set[str] | None = None  # None: every account may use it

    def sheet(self, title: str) -> Sheet:
        for sheet in self.sheets:
            if sheet.title == title:
                return sheet
        raise KeyError(title)

    def metadata(self) -> dict[str, Any]:
        return {
            "spreadsheetId": self.spreadsheet_id,
            "properties": {"title": self.title, "locale": self.locale,
                           "timeZone": self.time_zone, "autoRecalc": "ON_CHANGE"},
            "sheets": [{"properties": s.properties(i)} for i, s in enumerate(self.sheets)],
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{self.spreadsheet_id}/edit",
        }


@dataclass
class SheetsRequest(Request):
    """One request as the emulator saw it, with its kind (``values.get``, ``token``...)."""

    kind: str = field(init=False)
    route: list[str] = field(init=False)  # [spreadsheet id, decoded range]
    email: str | None = None  # the service account whose token it carried

    def __post_init__(self) -> None:
        self.kind, self.route = _classify(self.method, self.path)


@dataclass
class _Hook:
    kind: str
    fn: Callable[[SheetsEmulator], None]
    times: int | None
    when: str  # "before" or "after" the request is applied
    skip: int = 0  # requests of this kind to let pass first


# --------------------------------------------------------------------------- server


class SheetsEmulator(LoopbackServer):
    """The emulator; a context manager (``with SheetsEmulator() as emu: ...``)."""

    request_type = SheetsRequest

    def __init__(self, *, token_lifetime: int = 3600) -> None:
        super().__init__()
        self.token_lifetime = token_lifetime
        self.max_request_bytes = 10_485_760  # Google refuses bigger request bodies
        self.spreadsheets: dict[str, Spreadsheet] = {}
        self.accounts: dict[str, rsa.RSAPublicKey] = {}
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (email, expires at)
        self.hooks: list[_Hook] = []

    @property
    def token_uri(self) -> str:
        return self.url + "/token"

    # -- setup -------------------------------------------------------------------

    def add_account(self, email: str, public_key: rsa.RSAPublicKey) -> None:
        """Accept JWTs signed by this key for this service-account email."""
        with self.lock:
            self.accounts[email] = public_key

    def add_spreadsheet(self, spreadsheet_id: str, *, title: str = "고객 관리",
                        locale: str = "ko_KR", shared_with: Iterable[str] | None = None
                        ) -> Spreadsheet:
        with self.lock:
            book = Spreadsheet(spreadsheet_id, title, locale,
                               shared_with=None if shared_with is None else set(shared_with))
            self.spreadsheets[spreadsheet_id] = book
            return book

    def add_sheet(self, spreadsheet_id: str, title: str, *, rows: int = 1000,
                  cols: int = 26) -> Sheet:
        with self.lock:
            book = self.spreadsheets[spreadsheet_id]
            sheet_id = 1000 + len(book.sheets) if book.sheets else 0  # the first is gid=0
            sheet = Sheet(sheet_id, title, rows, cols)
            book.sheets.append(sheet)
            return sheet

    def sheet(self, spreadsheet_id: str, title: str) -> Sheet:
        return self.spreadsheets[spreadsheet_id].sheet(title)

    def put(self, spreadsheet_id: str, title: str, rows: Sequence[Sequence[Any]], *,
            start: str = "A1", input: str = "USER_ENTERED", grow: bool = True) -> None:  # noqa: A002
        """Enter values as an operator would (USER_ENTERED) or as they are (RAW).

        With ``grow`` the grid is enlarged to fit, as pasting does.
        """
        with self.lock:
            sheet = self.sheet(spreadsheet_id, title)
            match = _REF.fullmatch(start)
            assert match is not None
            c0, r0 = column_index(match[1]), int(match[2]) - 1
            convert = user_entered if input == "USER_ENTERED" else raw_cell
            if grow:
                sheet.row_count = max(sheet.row_count, r0 + len(rows))
                sheet.col_count = max(sheet.col_count, c0 + max(map(len, rows), default=0))
            for i, row in enumerate(rows):
                for j, value in enumerate(row):
                    if value is not None:
                        sheet.set(r0 + i, c0 + j, convert(value))

    def put_fast(self, spreadsheet_id: str, title: str, rows: list[list[str]]) -> None:
        """Replace the sheet's content by these text cells from A1 (benchmarks: no parsing)."""
        with self.lock:
            sheet = self.sheet(spreadsheet_id, title)
            sheet.rows = [list(row) for row in rows]
            sheet.row_count = max(sheet.row_count, len(rows))
            sheet.col_count = max(sheet.col_count, max(map(len, rows), default=0))

    def display(self, spreadsheet_id: str, title: str) -> list[list[str]]:
        """The sheet as shown (FORMATTED_VALUE), every row padded to the widest."""
        with self.lock:
            sheet = self.sheet(spreadsheet_id, title)
            book = self.spreadsheets[spreadsheet_id]
            width = max((len(r) for r in sheet.rows), default=0)
            return [[render(row[c] if c < len(row) else None, locale=book.locale)
                     for c in range(width)] for row in sheet.rows]

    def cell(self, spreadsheet_id: str, title: str, a1: str) -> Cell:
        match = _REF.fullmatch(a1)
        assert match is not None
        with self.lock:
            return self.sheet(spreadsheet_id, title).get(int(match[2]) - 1,
                                                         column_index(match[1]))

    # -- operator edits ----------------------------------------------------------

    def sort_rows(self, spreadsheet_id: str, title: str, column: int, *,
                  descending: bool = False, first: int = 2) -> None:
        """Sort rows ``first``.. (1-based) by the 0-based ``column``, like Data > Sort
        sheet with the header frozen: whole rows move, ordered as sortRange orders."""
        with self.lock:
            sheet = self.sheet(spreadsheet_id, title)
            sheet.sort(first - 1, sheet.row_count, 0, sheet.col_count, [(column, descending)])

    def insert_rows(self, spreadsheet_id: str, title: str, at: int,
                    rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows before 1-based row ``at`` (values entered as USER_ENTERED)."""
        with self.lock:
            sheet = self.sheet(spreadsheet_id, title)
            sheet.insert("ROWS", at - 1, len(rows))
            for i, row in enumerate(rows):
                for j, value in enumerate(row):
                    sheet.set(at - 1 + i, j, user_entered(str(value)))

    def delete_rows(self, spreadsheet_id: str, title: str, at: int, count: int = 1) -> None:
        """Delete ``count`` rows starting at 1-based row ``at``."""
        with self.lock:
            self.sheet(spreadsheet_id, title).delete("ROWS", at - 1, at - 1 + count)

    def insert_columns(self, spreadsheet_id: str, title: str, at: int, count: int = 1) -> None:
        """Insert empty columns before 0-based column ``at``."""
        with self.lock:
            self.sheet(spreadsheet_id, title).insert("COLUMNS", at, count)

    # -- test controls -----------------------------------------------------------

    def fail(self, kind: str = "*", status: int = 503, *, times: int | None = 1,
             html: bool = False, drop: bool = False, delay: float = 0.0,
             message: str | None = None, headers: dict[str, str] | None = None) -> Fault:
        """Answer the next ``times`` requests of ``kind`` (``"*"``: of any Sheets API
        kind) with ``status`` (None: forever), in Google's JSON error format or, with
        ``html``, as Google's front end's HTML page.

        ``status=0`` with a ``delay`` answers normally, late. ``drop`` closes the
        connection instead of answering.
        """

        def matches(request: Request) -> bool:
            found = request.kind  # type: ignore[attr-defined]
            return kind == found or (kind == "*" and found in SHEETS_KINDS)

        content_type, body = _fault_body(status, html, message)
        reply = Reply(status, delay, {"Content-Type": content_type, **(headers or {})}, body,
                      drop)
        return self.add_fault(Fault(reply, matches, times))

    def on(self, kind: str, fn: Callable[[SheetsEmulator], None], *, times: int | None = 1,
           when: str = "before", skip: int = 0) -> None:
        """Call ``fn(emulator)`` right before (or ``when="after"``: right after) the next
        ``times`` requests of ``kind`` are applied, once ``skip`` of them went by.

        "after" runs before the answer leaves, so the client cannot see the sheet as it
        was between the two.
        """
        assert when in ("before", "after")
        with self.lock:
            self.hooks.append(_Hook(kind, fn, times, when, skip))

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working: the next call gets a 401."""
        with self.lock:
            self.tokens.clear()

    def count(self, *kinds: str) -> int:
        """Requests logged of these kinds (every Sheets API kind when none is given)."""
        wanted = set(kinds) or SHEETS_KINDS
        with self.lock:
            return sum(1 for entry in self.requests if entry.kind in wanted)

    def kinds(self) -> list[str]:
        """The kinds of the Sheets API requests logged, in order."""
        with self.lock:
            return [entry.kind for entry in self.requests if entry.kind in SHEETS_KINDS]

    def writes(self) -> list[SheetsRequest]:
        with self.lock:
            return [entry for entry in self.requests if entry.kind in WRITE_KINDS]

    # -- request handling --------------------------------------------------------

    def answer(self, request: SheetsRequest) -> Reply:
        if len(request.body) > self.max_request_bytes:
            raise ApiError(400, "Request payload size exceeds the limit: "
                                f"{self.max_request_bytes} bytes.")
        return json_reply(*self._dispatch(request, _body(request.body, request.headers)))

    def _dispatch(self, request: SheetsRequest, body: Any) -> tuple[int, Any]:
        kind, route = request.kind, request.route
        if kind == "token":
            return self._token(body)
        if kind == "allowedLocations":
            raise ApiError(404, "Method not found.")
        if kind == "unknown":
            raise ApiError(404, f"{request.method} {urllib.parse.unquote(request.path)} is "
                                "not part of the emulated API")
        with self.lock:
            request.email = self._authenticate(request.headers)
            book = self._book(route[0], request.email)
            due = self._due_hooks(kind)
            for hook in due:
                if hook.when == "before":
                    hook.fn(self)
            payload = self._api(kind, book, route, request.query, body)
            for hook in due:
                if hook.when == "after":
                    hook.fn(self)
            return 200, payload

    def _due_hooks(self, kind: str) -> list[_Hook]:
        """The hooks to run on this request of ``kind``; spent ones are removed."""
        due = []
        for hook in [h for h in self.hooks if h.kind == kind]:
            if hook.skip:
                hook.skip -= 1
                continue
            if hook.times is not None:
                hook.times -= 1
                if hook.times <= 0:
                    self.hooks.remove(hook)
            due.append(hook)
        return due

    # -- OAuth ---------------------------------------------------------------------

    def _token(self, form: Any) -> tuple[int, Any]:
        form = form or {}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type",
                         "error_description": "Invalid grant_type."}
        try:
            email = self._verify_jwt(str(form.get("assertion", "")))
        except ValueError as exc:
            return 400, {"error": "invalid_grant", "error_description": str(exc)}
        token = "ya29.emu-" + secrets.token_hex(16)
        with self.lock:
            self.tokens[token] = (email, time.time() + self.token_lifetime)
        return 200, {"access_token": token, "expires_in": self.token_lifetime,
                     "token_type": "Bearer"}

    def _verify_jwt(self, assertion: str) -> str:
        """The service-account email of a valid assertion; ValueError says what is wrong."""
        parts = assertion.split(".")
        if len(parts) != 3:
            raise ValueError("Invalid JWT: not three segments.")
        try:
            header, claims = (json.loads(_b64decode(p)) for p in parts[:2])
            signature = _b64decode(parts[2])
        except (ValueError, TypeError) as exc:
            raise ValueError("Invalid JWT: not base64url JSON.") from exc
        if header.get("alg") != "RS256":
            raise ValueError(f"Invalid JWT: alg {header.get('alg')!r}, expected RS256.")
        email = claims.get("iss")
        key = self.accounts.get(email)
        if key is None:
            raise ValueError(f"Invalid JWT: unknown service account {email!r}.")
        try:
            key.verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(),
                       hashes.SHA256())
        except InvalidSignature:
            raise ValueError("Invalid JWT Signature.") from None
        now = time.time()
        if claims.get("aud") != TOKEN_AUDIENCE:
            raise ValueError(f"Invalid JWT: aud {claims.get('aud')!r}.")
        if SHEETS_SCOPE not in str(claims.get("scope", "")).split():
            raise ValueError("Invalid JWT: the spreadsheets scope is missing.")
        if not claims.get("exp", 0) > now or claims.get("iat", now) > now + 300:
            raise ValueError("Invalid JWT: Token must be a short-lived token and in a "
                             "reasonable timeframe.")
        return str(email)

    def _authenticate(self, headers: dict[str, str]) -> str:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip()
        found = self.tokens.get(token)
        if not token or found is None or found[1] < time.time():
            raise ApiError(401, "Request had invalid authentication credentials. Expected "
                                "OAuth 2 access token, login cookie or other valid "
                                "authentication credential.")
        return found[0]

    def _book(self, spreadsheet_id: str, email: str) -> Spreadsheet:
        book = self.spreadsheets.get(spreadsheet_id)
        if book is None:
            raise ApiError(404, "Requested entity was not found.")
        if book.shared_with is not None and email not in book.shared_with:
            raise ApiError(403, "The caller does not have permission")
        return book

    # -- Sheets API ----------------------------------------------------------------

    def _api(self, kind: str, book: Spreadsheet, route: list[str],
             query: dict[str, list[str]], body: Any) -> Any:
        if kind == "spreadsheets.get":
            if "fields" in query or "ranges" in query or _one(
                    query, "includeGridData", "false").lower() == "true":
                raise ApiError(400, "Field masks, ranges and grid data of spreadsheets.get "
                                    "are not emulated")
            return book.metadata()
        if kind == "values.get":
            return self._read(book, route[1], query)
        if kind == "values.batchGet":
            return {"spreadsheetId": book.spreadsheet_id,
                    "valueRanges": [self._read(book, r, query) for r in query.get("ranges", [])]}
        if kind == "values.batchUpdate":
            return self._batch_update_values(book, body or {})
        if kind == "values.update":
            option = _one(query, "valueInputOption", "")
            data = [{**_object(body), "range": route[1]}]
            result = self._batch_update_values(book, {"valueInputOption": option, "data": data},
                                               single=True)
            return result["responses"][0]
        if kind == "values.append":
            return self._append(book, route[1], _one(query, "valueInputOption", ""),
                                _object(body))
        if kind == "values.clear":
            return {"spreadsheetId": book.spreadsheet_id,
                    "clearedRange": self._clear(book, route[1])}
        if kind == "values.batchClear":
            ranges = _object(body).get("ranges", [])
            bounds = [self._bounds(book, text) for text in ranges]  # all parse, or none clears
            return {"spreadsheetId": book.spreadsheet_id,
                    "clearedRanges": [self._clear(book, b) for b in bounds]}
        if kind == "spreadsheets.batchUpdate":
            return self._batch_update_sheets(book, body or {})
        raise ApiError(404, f"{kind} is not emulated")

    def _clear(self, book: Spreadsheet, where: str | Bounds) -> str:
        bounds = where if isinstance(where, Bounds) else self._bounds(book, where)
        for r in range(bounds.r0, min(bounds.r1, len(bounds.sheet.rows))):
            for c in range(bounds.c0, bounds.c1):
                if bounds.sheet.get(r, c) is not None:
                    bounds.sheet.set(r, c, None)
        return bounds.a1()

    def _bounds(self, book: Spreadsheet, text: str) -> Bounds:
        """Parse an A1 range (``'title'!A1:B2``, ``title``, ``A:A``, ``2:2``, ``A2:C``)."""
        title, sep, ref = text.rpartition("!")
        if not sep:
            try:
                sheet = book.sheet(_unquote_title(text))
                return Bounds(sheet, 0, 0, sheet.row_count, sheet.col_count)
            except KeyError:
                title, ref = "", text
        try:
            sheet = book.sheet(_unquote_title(title)) if title else book.sheets[0]
        except (KeyError, IndexError):
            raise ApiError(400, f"Unable to parse range: {text}") from None
        first, _, last = ref.partition(":")
        start, end = _REF.fullmatch(first), _REF.fullmatch(last or first)
        if not first or start is None or end is None or not (start[0] and end[0]):
            raise ApiError(400, f"Unable to parse range: {text}")
        c0 = column_index(start[1]) if start[1] else 0
        r0 = int(start[2]) - 1 if start[2] else 0
        c1 = column_index(end[1]) + 1 if end[1] else sheet.col_count
        r1 = int(end[2]) if end[2] else sheet.row_count
        if end[1] and start[1] and c1 < c0 + 1:  # D4:A1 reads as A1:D4
            c0, c1 = c1 - 1, c0 + 1
        if end[2] and start[2] and r1 < r0 + 1:
            r0, r1 = r1 - 1, r0 + 1
        if r0 < 0 or r1 < r0 + 1 or c1 < c0 + 1:
            raise ApiError(400, f"Unable to parse range: {text}")
        if r1 > sheet.row_count or c1 > sheet.col_count:
            raise ApiError(400, f"Range ({text}) exceeds grid limits. Max rows: "
                                f"{sheet.row_count}, max columns: {sheet.col_count}")
        return Bounds(sheet, r0, c0, r1, c1)

    def _read(self, book: Spreadsheet, text: str, query: dict[str, list[str]]) -> dict[str, Any]:
        bounds = self._bounds(book, text)
        option = _one(query, "valueRenderOption", "FORMATTED_VALUE")
        dates = _one(query, "dateTimeRenderOption", "SERIAL_NUMBER")
        major = _one(query, "majorDimension", "ROWS")
        sheet, locale = bounds.sheet, book.locale
        grid: list[list[Any]] = []
        for row in sheet.rows[bounds.r0:bounds.r1]:
            cells = row[bounds.c0:bounds.c1]
            if any(c.__class__ is Typed for c in cells):
                cells = [render(c, option, dates, locale) for c in cells]
            else:
                cells = ["" if c is None else c for c in cells]
            while cells and cells[-1] == "":
                cells.pop()
            grid.append(cells)
        if major == "COLUMNS":
            width = max(map(len, grid), default=0)
            grid = [[row[c] if c < len(row) else "" for row in grid] for c in range(width)]
            for col in grid:
                while col and col[-1] == "":
                    col.pop()
        while grid and not grid[-1]:
            grid.pop()
        result: dict[str, Any] = {"range": bounds.a1(), "majorDimension": major}
        if grid:
            result["values"] = grid
        return result

    def _batch_update_values(self, book: Spreadsheet, body: dict[str, Any], *,
                             single: bool = False) -> dict[str, Any]:
        """values.batchUpdate (and, with ``single``, values.update): every range is
        checked before any is written, so a refused batch changes nothing.

        A range of one cell is where the values start (they may spread past it); a
        larger range must hold them. JSON ``null`` skips a cell; ``""`` clears it and
        counts as updated.
        """
        option = body.get("valueInputOption")
        if option not in ("RAW", "USER_ENTERED"):
            raise ApiError(400, "Invalid valueInputOption: must be RAW or USER_ENTERED")
        convert = raw_cell if option == "RAW" else (
            lambda v: user_entered(v) if isinstance(v, str) else raw_cell(v))
        planned: list[tuple[Bounds, list[list[Any]]]] = []
        for i, item in enumerate(body.get("data") or []):
            values = _values(item.get("values"), "data.values" if single else
                             f"data[{i}].values")
            bounds = self._bounds(book, item.get("range", ""))
            if item.get("majorDimension") == "COLUMNS":
                values = _transpose(values)
            height, width = len(values), max(map(len, values), default=0)
            if bounds.single:
                bounds = self._grid_range(bounds.sheet, bounds.r0, bounds.c0,
                                          max(height, 1), max(width, 1))
            elif height > bounds.r1 - bounds.r0 or width > bounds.c1 - bounds.c0:
                raise ApiError(400, f"Requested writing within range [{item['range']}], but "
                                    "tried writing beyond it.")
            for row in values:
                for value in row:
                    if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
                        raise ApiError(400, "Your input contains more than the maximum of "
                                            f"{MAX_CELL_CHARS} characters in a single cell.")
            planned.append((bounds, values))
        responses = []
        touched: dict[int, tuple[set[int], set[int], list[int]]] = {}
        for bounds, values in planned:
            rows, columns, cells = set(), set(), 0
            for i, row in enumerate(values):
                for j, value in enumerate(row):
                    if value is not None:
                        bounds.sheet.set(bounds.r0 + i, bounds.c0 + j, convert(value))
                        rows.add(bounds.r0 + i)
                        columns.add(bounds.c0 + j)
                        cells += 1
            height, width = len(values), max(map(len, values), default=0)
            written = Bounds(bounds.sheet, bounds.r0, bounds.c0, bounds.r0 + max(height, 1),
                             bounds.c0 + max(width, 1))
            responses.append(_nonzero({
                "spreadsheetId": book.spreadsheet_id, "updatedRange": written.a1(),
                "updatedRows": len(rows), "updatedColumns": len(columns),
                "updatedCells": cells}))
            all_rows, all_columns, count = touched.setdefault(id(bounds.sheet), (set(), set(), [0]))
            all_rows |= rows
            all_columns |= columns
            count[0] += cells
        return _nonzero({
            "spreadsheetId": book.spreadsheet_id,
            "totalUpdatedRows": sum(len(r) for r, _, _ in touched.values()),
            "totalUpdatedColumns": sum(len(c) for _, c, _ in touched.values()),
            "totalUpdatedCells": sum(n[0] for _, _, n in touched.values()),
            "totalUpdatedSheets": sum(1 for _, _, n in touched.values() if n[0]),
            "responses": responses})

    @staticmethod
    def _grid_range(sheet: Sheet, r0: int, c0: int, height: int, width: int) -> Bounds:
        bounds = Bounds(sheet, r0, c0, r0 + height, c0 + width)
        if bounds.r1 > sheet.row_count or bounds.c1 > sheet.col_count:
            raise ApiError(400, f"Range ({bounds.a1()}) exceeds grid limits. Max rows: "
                                f"{sheet.row_count}, max columns: {sheet.col_count}")
        return bounds

    def _append(self, book: Spreadsheet, text: str, option: str, body: dict[str, Any]
                ) -> dict[str, Any]:
        """values.append: after the table found in the range, growing the grid to fit.

        The table, as the recorded answers show it: the block of filled cells (joined
        side by side or one above the other) around the last filled cell of the
        range's last filled row. Values go below it, from its first column; with no
        table, at the range's first cell.
        """
        values = _values(body.get("values"), "data.values")
        if body.get("majorDimension") == "COLUMNS":
            values = _transpose(values)
        bounds = self._bounds(book, text)
        sheet = bounds.sheet
        table = _table(sheet, bounds)
        r0, c0 = (table.r1, table.c0) if table else (bounds.r0, bounds.c0)
        height, width = max(len(values), 1), max(max(map(len, values), default=0), 1)
        sheet.row_count = max(sheet.row_count, r0 + height)
        sheet.col_count = max(sheet.col_count, c0 + width)
        target = Bounds(sheet, r0, c0, r0 + height, c0 + width)
        result = self._batch_update_values(
            book, {"valueInputOption": option, "data": [{"range": target.a1(), "values": values}]},
            single=True)
        answer = {"spreadsheetId": book.spreadsheet_id}
        if table:
            answer["tableRange"] = table.a1()
        return {**answer, "updates": result["responses"][0]}

    def _batch_update_sheets(self, book: Spreadsheet, body: dict[str, Any]) -> dict[str, Any]:
        """spreadsheets.batchUpdate: all requests apply, or (on an error) none."""
        requests = _object(body).get("requests") or []
        saved = copy.deepcopy(book) if len(requests) > 1 else None
        replies: list[dict[str, Any]] = []
        try:
            for i, request in enumerate(requests):
                if not isinstance(request, dict) or len(request) != 1:
                    raise ApiError(400, f"Invalid requests[{i}]: exactly one kind of request "
                                        "must be set")
                (name, spec), = request.items()
                handler = getattr(self, f"_request_{name}", None)
                if handler is None:
                    raise ApiError(400, f"Invalid requests[{i}]: {name} is not emulated")
                try:
                    replies.append(handler(book, _object(spec)))
                except _Refused as exc:
                    raise ApiError(400, f"Invalid requests[{i}].{name}: {exc}") from None
        except ApiError:
            if saved is not None:
                book.__dict__.update(saved.__dict__)
            raise
        return {"spreadsheetId": book.spreadsheet_id, "replies": replies}

    def _request_appendDimension(self, book: Spreadsheet, spec: dict[str, Any]  # noqa: N802
                                 ) -> dict[str, Any]:
        sheet = _sheet_by_id(book, spec.get("sheetId"))
        dimension = _dimension(spec.get("dimension"))
        sheet.insert(dimension, sheet.row_count if dimension == "ROWS" else sheet.col_count,
                     _count(spec.get("length")))
        return {}

    def _request_insertDimension(self, book: Spreadsheet, spec: dict[str, Any]  # noqa: N802
                                 ) -> dict[str, Any]:
        sheet, dimension, start, end = _dimension_range(book, spec.get("range"))
        size = sheet.row_count if dimension == "ROWS" else sheet.col_count
        if start > size:
            raise _Refused(f"range.startIndex ({start}) is after the last "
                           f"{dimension.lower()[:-1]} ({size})")
        sheet.insert(dimension, start, end - start)
        return {}

    def _request_deleteDimension(self, book: Spreadsheet, spec: dict[str, Any]  # noqa: N802
                                 ) -> dict[str, Any]:
        sheet, dimension, start, end = _dimension_range(book, spec.get("range"))
        size = sheet.row_count if dimension == "ROWS" else sheet.col_count
        end = min(end, size)
        if start == 0 and end >= size:
            raise _Refused(f"You can't delete all the {dimension.lower()} on the sheet.")
        sheet.delete(dimension, start, end)
        return {}

    def _request_sortRange(self, book: Spreadsheet, spec: dict[str, Any]  # noqa: N802
                           ) -> dict[str, Any]:
        grid = _object(spec.get("range"))
        sheet = _sheet_by_id(book, grid.get("sheetId", 0))
        r0, r1 = int(grid.get("startRowIndex", 0)), int(grid.get("endRowIndex", sheet.row_count))
        c0 = int(grid.get("startColumnIndex", 0))
        c1 = int(grid.get("endColumnIndex", sheet.col_count))
        specs = []
        for sort in spec.get("sortSpecs") or []:
            column = int(sort.get("dimensionIndex", 0))
            if not c0 <= column < c1:
                raise _Refused(f"sortSpecs dimensionIndex {column} is outside the range")
            specs.append((column, sort.get("sortOrder", "ASCENDING") == "DESCENDING"))
        sheet.sort(r0, min(r1, sheet.row_count), c0, min(c1, sheet.col_count), specs)
        return {}

    def _request_updateSheetProperties(self, book: Spreadsheet,  # noqa: N802
                                       spec: dict[str, Any]) -> dict[str, Any]:
        props = _object(spec.get("properties"))
        sheet = _sheet_by_id(book, props.get("sheetId"))
        mask = _FieldMask(spec.get("fields"), props)
        unknown = mask.unknown({"title", "hidden", "index", "gridProperties.rowCount",
                                "gridProperties.columnCount"}, skip={"sheetId"})
        if unknown:
            raise _Refused(f"{unknown} is not emulated")
        grid = _object(props.get("gridProperties"))
        if mask.wants("title"):
            title = str(props.get("title") or "")
            if any(s.title == title for s in book.sheets if s is not sheet):
                raise _Refused(f'A sheet with the name "{title}" already exists. Please '
                               "enter another name.")
            sheet.title = title
        if mask.wants("hidden"):
            hidden = bool(props.get("hidden", False))
            if hidden and all(s.hidden for s in book.sheets if s is not sheet):
                raise _Refused("You can't hide all the sheets in a document.")
            sheet.hidden = hidden
        if mask.wants("gridProperties.rowCount"):
            sheet.row_count = _count(grid.get("rowCount"))
            del sheet.rows[sheet.row_count:]
        if mask.wants("gridProperties.columnCount"):
            sheet.col_count = _count(grid.get("columnCount"))
            for row in sheet.rows:
                del row[sheet.col_count:]
        if mask.wants("index"):  # the index counts positions before the move
            index = min(max(int(props.get("index", 0)), 0), len(book.sheets))
            old = book.sheets.index(sheet)
            book.sheets.insert(index, sheet)
            del book.sheets[old + (1 if index <= old else 0)]
        return {}

    def _request_updateSpreadsheetProperties(self, book: Spreadsheet,  # noqa: N802
                                             spec: dict[str, Any]) -> dict[str, Any]:
        props = _object(spec.get("properties"))
        mask = _FieldMask(spec.get("fields"), props)
        unknown = mask.unknown({"title", "locale", "timeZone"})
        if unknown:
            raise _Refused(f"{unknown} is not emulated")
        if mask.wants("title"):
            book.title = str(props.get("title") or "")
        if mask.wants("locale"):
            book.locale = str(props.get("locale") or "")
        if mask.wants("timeZone"):
            book.time_zone = str(props.get("timeZone") or "")
        return {}

    def _request_addSheet(self, book: Spreadsheet, spec: dict[str, Any]  # noqa: N802
                          ) -> dict[str, Any]:
        props = _object(spec.get("properties"))
        grid = _object(props.get("gridProperties"))
        title = str(props.get("title") or f"Sheet{len(book.sheets) + 1}")
        if any(s.title == title for s in book.sheets):
            raise _Refused(f'A sheet with the name "{title}" already exists. Please enter '
                           "another name.")
        sheet = self.add_sheet(book.spreadsheet_id, title, rows=grid.get("rowCount", 1000),
                               cols=grid.get("columnCount", 26))
        if "index" in props:
            book.sheets.remove(sheet)
            book.sheets.insert(min(max(int(props["index"]), 0), len(book.sheets)), sheet)
        sheet.hidden = bool(props.get("hidden", False))
        return {"addSheet": {"properties": sheet.properties(book.sheets.index(sheet))}}

    def _request_deleteSheet(self, book: Spreadsheet, spec: dict[str, Any]  # noqa: N802
                             ) -> dict[str, Any]:
        sheet = _sheet_by_id(book, spec.get("sheetId"))
        if len(book.sheets) == 1:
            raise _Refused("You can't remove all the sheets in a document.")
        book.sheets.remove(sheet)
        return {}


# --------------------------------------------------------------------------- helpers


class _Refused(Exception):
    """A spreadsheets.batchUpdate request the API refuses (400, with its index)."""


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _values(values: Any, where: str) -> list[list[Any]]:
    """The ``values`` of a ValueRange: a list of lists of scalars, else 400 as the API."""
    if values is None:
        return []
    if not isinstance(values, list):
        raise ApiError(400, f"Invalid value at '{where}' "
                            f"(type.googleapis.com/google.protobuf.ListValue), "
                            f"{json.dumps(values, ensure_ascii=False)}")
    for i, row in enumerate(values):
        if not isinstance(row, list):
            raise ApiError(400, f"Invalid value at '{where}[{i}]' "
                                f"(type.googleapis.com/google.protobuf.ListValue), "
                                f"{json.dumps(row, ensure_ascii=False)}")
        for value in row:
            if isinstance(value, (dict, list)):
                raise ApiError(400, f"Invalid value at '{where}[{i}]': a cell must be a "
                                    "string, number, boolean or null")
    return values


def _transpose(columns: list[list[Any]]) -> list[list[Any]]:
    height = max(map(len, columns), default=0)
    return [[col[r] if r < len(col) else None for col in columns] for r in range(height)]


def _nonzero(answer: dict[str, Any]) -> dict[str, Any]:
    """The API leaves out fields that are 0."""
    return {k: v for k, v in answer.items() if v != 0}


def _table(sheet: Sheet, bounds: Bounds) -> Bounds | None:
    """The table values.append finds in ``bounds`` (see ``_append``), or None."""
    def filled(r: int, c: int) -> bool:
        return sheet.get(r, c) not in (None, "")

    last = next((r for r in range(min(bounds.r1, len(sheet.rows)) - 1, bounds.r0 - 1, -1)
                 if any(filled(r, c) for c in range(bounds.c0, bounds.c1))), None)
    if last is None:
        return None
    start = (last, max(c for c in range(bounds.c0, bounds.c1) if filled(last, c)))
    seen, todo = {start}, [start]
    while todo:
        r, c = todo.pop()
        for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if (bounds.r0 <= nr < bounds.r1 and bounds.c0 <= nc < bounds.c1
                    and (nr, nc) not in seen and filled(nr, nc)):
                seen.add((nr, nc))
                todo.append((nr, nc))
    rows, cols = [r for r, _ in seen], [c for _, c in seen]
    return Bounds(sheet, min(rows), min(cols), max(rows) + 1, max(cols) + 1)


def _sheet_by_id(book: Spreadsheet, sheet_id: Any) -> Sheet:
    for sheet in book.sheets:
        if sheet.sheet_id == sheet_id:
            return sheet
    raise _Refused(f"No grid with id: {sheet_id}")


def _dimension(value: Any) -> str:
    if value not in ("ROWS", "COLUMNS"):
        raise _Refused(f"dimension must be ROWS or COLUMNS, not {value!r}")
    return str(value)


def _count(value: Any) -> int:
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise _Refused(f"{value!r} is not a count") from None
    if count < 0:
        raise _Refused(f"{count} is not a count")
    return count


def _dimension_range(book: Spreadsheet, value: Any) -> tuple[Sheet, str, int, int]:
    spec = _object(value)
    sheet = _sheet_by_id(book, spec.get("sheetId", 0))
    start, end = _count(spec.get("startIndex", 0)), _count(spec.get("endIndex", 0))
    if end <= start:
        raise _Refused(f"range.endIndex ({end}) must be after range.startIndex ({start})")
    return sheet, _dimension(spec.get("dimension")), start, end


class _FieldMask:
    """A request's ``fields``: comma-separated paths (``a.b`` or ``a/b``); ``*`` is all."""

    def __init__(self, text: Any, props: dict[str, Any]) -> None:
        paths = {p.strip().replace("/", ".") for p in str(text or "").split(",") if p.strip()}
        if "*" in paths:
            paths = set(_paths(props))
        self.paths = paths

    def wants(self, path: str) -> bool:
        return any(path == p or path.startswith(p + ".") for p in self.paths)

    def unknown(self, known: set[str], skip: frozenset[str] | set[str] = frozenset()
                ) -> str | None:
        for path in sorted(self.paths - set(skip)):
            if not any(k == path or k.startswith(path + ".") for k in known):
                return path
        return None


def _paths(props: dict[str, Any], prefix: str = "") -> list[str]:
    found = []
    for key, value in props.items():
        path = prefix + key
        found.extend(_paths(value, path + ".") if isinstance(value, dict) else [path])
    return found


def _classify(method: str, path: str) -> tuple[str, list[str]]:
    """(kind, [spreadsheet id, decoded range]) of a request path."""
    if path == "/token" and method == "POST":
        return "token", []
    if path.startswith("/v1/") and path.endswith("/allowedLocations"):
        return "allowedLocations", []
    prefix = "/v4/spreadsheets/"
    if not path.startswith(prefix):
        return "unknown", []
    rest = path[len(prefix):]
    ident, sep, tail = rest.partition("/")
    if not sep:
        ident, _, action = rest.partition(":")
        ident = urllib.parse.unquote(ident)
        if not action and method == "GET":
            return "spreadsheets.get", [ident]
        if action == "batchUpdate" and method == "POST":
            return "spreadsheets.batchUpdate", [ident]
        return "unknown", []
    ident = urllib.parse.unquote(ident)
    if tail in ("values:batchGet", "values:batchUpdate", "values:batchClear"):
        return "values." + tail.partition(":")[2], [ident]
    if tail.startswith("values/"):
        encoded = tail[len("values/"):]
        encoded, colon, action = encoded.rpartition(":")  # only a suffix keeps a literal ':'
        if not colon:
            encoded, action = action, ""
        decoded = urllib.parse.unquote(encoded)
        if action == "append" and method == "POST":
            return "values.append", [ident, decoded]
        if action == "clear" and method == "POST":
            return "values.clear", [ident, decoded]
        if not action and method == "GET":
            return "values.get", [ident, decoded]
        if not action and method == "PUT":
            return "values.update", [ident, decoded]
    return "unknown", []


def _body(raw: bytes, headers: dict[str, str]) -> Any:
    if not raw:
        return None
    kind = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    if "application/x-www-form-urlencoded" in kind:
        return {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _one(query: dict[str, list[str]], name: str, default: str) -> str:
    values = query.get(name)
    return values[0] if values else default


def _unquote_title(title: str) -> str:
    if len(title) >= 2 and title[0] == title[-1] == "'":
        return title[1:-1].replace("''", "'")
    return title


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _error_body(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message,
                      "status": STATUS_NAMES.get(code, "UNKNOWN")}}


def _fault_body(code: int, html: bool, message: str | None) -> tuple[str, bytes]:
    """(content type, body) of an error as Google answers it: its JSON error, or its
    front end's HTML page."""
    if html:
        return "text/html; charset=UTF-8", (
            f"<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Error {code} "
            f"(Server Error)!!1</title><p><b>{code}.</b> <ins>That’s an error.</ins>"
            "<p>The server encountered a temporary error and could not complete your "
            "request.<p>Please try again in 30 seconds. <ins>That’s all we know.</ins>"
            "</html>").encode()
    message = message or {
        429: "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per "
             "minute per user' of service 'sheets.googleapis.com'.",
        500: "Internal error encountered.",
        503: "The service is currently unavailable.",
    }.get(code, f"Error {code}")
    return "application/json; charset=UTF-8", json.dumps(_error_body(code, message)).encode()
