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
  become dates, a leading ``'`` forces text). JSON ``null`` skips a cell, ``""`` clears it.
- **Ragged rows**: trailing empty cells and rows are dropped; an empty middle row is ``[]``.
- **Grid limits**: each sheet has a row and column count; reading or writing an
  explicit range past it is a 400 "exceeds grid limits"; open-ended ranges are clamped;
  ``values.append`` and ``appendDimension`` grow it.
- **Errors** in Google's JSON format (``{"error": {"code", "message", "status"}}``),
  403 for a spreadsheet not shared with the caller, 404 for an unknown one.

For tests: every request is logged with its kind (``spreadsheets.get``,
``values.get``, ``values.batchGet``, ``values.update``, ``values.batchUpdate``,
``values.append``, ``spreadsheets.batchUpdate``, ``token``, ``allowedLocations``);
``fail()`` injects faults (any status with a JSON or HTML body, a dropped connection,
a slow answer) and ``on()`` runs a callback right before, or right after, a request
of some kind is applied (to change the sheet at the worst possible moment: between a
client's read and its write, or between its write and its next read). Helpers edit the sheet
as an operator would (``put``, ``sort_rows``, ``insert_rows``, ``delete_rows``,
``insert_columns``) and show it as displayed (``display``).
"""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import json
import re
import secrets
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from servers import LoopbackHTTP

TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
SHEETS_SCOPE = "https://www.googleapis.com/auth/spreadsheets"
SHEETS_KINDS = frozenset({
    "spreadsheets.get", "spreadsheets.batchUpdate", "values.get", "values.batchGet",
    "values.update", "values.batchUpdate", "values.append", "values.clear",
})
WRITE_KINDS = frozenset({
    "spreadsheets.batchUpdate", "values.update", "values.batchUpdate", "values.append",
    "values.clear",
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
    ``"#,##0"``, ``"₩#,##0"``, ``"0%"``, a run of zeros such as ``"000"`` (pads),
    ``"DATE"`` or ``"DATE_TIME"``.
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
    if cell.fmt in ("DATE", "DATE_TIME") and dates == "FORMATTED_STRING":
        return _formatted(cell, locale)
    return int(value) if float(value).is_integer() else value


def _formatted(cell: Typed, locale: str) -> str:
    value, fmt = cell.value, cell.fmt
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if fmt in ("DATE", "DATE_TIME"):
        return _date_text(value, fmt == "DATE_TIME", locale)
    if fmt == "#,##0":
        return f"{round(value):,}"
    if fmt == "₩#,##0":
        return f"₩{round(value):,}"
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
        fmt = "₩#,##0" if number["won"] else ("#,##0" if "," in number["int"] else "")
        return Typed(value, fmt)
    date = _DATE.fullmatch(stripped)
    if date:
        serial = _serial(date)
        if serial is not None:
            return Typed(serial, "DATE_TIME" if date["h"] else "DATE")
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


def _formula_value(formula: str) -> str:
    link = re.fullmatch(r'=HYPERLINK\("[^"]*"\s*,\s*"([^"]*)"\)', formula, re.IGNORECASE)
    return link.group(1) if link else "#NAME?"


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
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", title):
        return title
    return "'" + title.replace("'", "''") + "'"


_REF = re.compile(r"([A-Za-z]*)(\d*)")


class ApiError(Exception):
    """An error answer in Google's JSON format."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Bounds:
    """A parsed range: 0-based, end-exclusive; an open end stops at the grid."""

    sheet: Sheet
    r0: int
    c0: int
    r1: int
    c1: int

    def a1(self) -> str:
        start = f"{column_letters(self.c0)}{self.r0 + 1}"
        end = f"{column_letters(self.c1 - 1)}{self.r1}"
        return f"{quote_title(self.sheet.title)}!{start}:{end}"


# --------------------------------------------------------------------------- model


@dataclass
class Sheet:
    sheet_id: int
    title: str
    row_count: int = 1000
    col_count: int = 26
    rows: list[list[Cell]] = field(default_factory=list)

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
        return {"sheetId": self.sheet_id, "title": self.title, "index": index,
                "sheetType": "GRID",
                "gridProperties": {"rowCount": self.row_count, "columnCount": self.col_count}}


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
class Logged:
    """One request as the emulator saw it."""

    kind: str
    method: str
    path: str  # percent-decoded
    query: dict[str, list[str]]
    body: Any  # parsed JSON or form fields, None when empty
    status: int = 0
    email: str | None = None


@dataclass
class Fault:
    """Answer the next ``times`` requests of ``kind`` (or every kind: ``"*"``) badly."""

    kind: str = "*"
    status: int = 503
    times: int | None = 1  # None: forever
    html: bool = False
    drop: bool = False  # close the connection without answering
    delay: float = 0.0  # seconds to wait first (a slow answer; with status 0, then answer)
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Hook:
    kind: str
    fn: Callable[[SheetsEmulator], None]
    times: int | None
    when: str  # "before" or "after" the request is applied
    skip: int = 0  # requests of this kind to let pass first


# --------------------------------------------------------------------------- server


class SheetsEmulator(LoopbackHTTP):
    """The emulator; a context manager (``with SheetsEmulator() as emu: ...``)."""

    def __init__(self, *, token_lifetime: int = 3600) -> None:
        self.token_lifetime = token_lifetime
        self.max_request_bytes = 10_485_760  # Google refuses bigger request bodies
        self.spreadsheets: dict[str, Spreadsheet] = {}
        self.accounts: dict[str, rsa.RSAPublicKey] = {}
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (email, expires at)
        self.log: list[Logged] = []
        self.faults: list[Fault] = []
        self.hooks: list[_Hook] = []
        self.serving: weakref.WeakSet[threading.Thread] = weakref.WeakSet()  # handler threads
        self.lock = threading.RLock()
        super().__init__(self._handler_class())
        self._httpd.daemon_threads = True

    # -- lifecycle ---------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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

    def sort_rows(self, spreadsheet_id: str, title: str, *, first: int = 2,
                  key: Callable[[list[str]], Any] | None = None, reverse: bool = False) -> None:
        """Sort rows ``first``.. (1-based) by their displayed cells, like Data > Sort range."""
        with self.lock:
            sheet = self.sheet(spreadsheet_id, title)
            head, body = sheet.rows[: first - 1], sheet.rows[first - 1:]
            shown = [([render(c) for c in row], row) for row in body]
            shown.sort(key=lambda pair: (key or (lambda cells: cells))(pair[0]),
                       reverse=reverse)
            sheet.rows = head + [row for _, row in shown]

    def insert_rows(self, spreadsheet_id: str, title: str, at: int,
                    rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows before 1-based row ``at`` (values entered as USER_ENTERED)."""
        with self.lock:
            sheet = self.sheet(spreadsheet_id, title)
            while len(sheet.rows) < at - 1:
                sheet.rows.append([])
            new = [[user_entered(str(v)) for v in row] for row in rows]
            sheet.rows[at - 1:at - 1] = new
            sheet.row_count += len(new)

    def delete_rows(self, spreadsheet_id: str, title: str, at: int, count: int = 1) -> None:
        """Delete ``count`` rows starting at 1-based row ``at``."""
        with self.lock:
            sheet = self.sheet(spreadsheet_id, title)
            del sheet.rows[at - 1:at - 1 + count]
            sheet.row_count -= count

    def insert_columns(self, spreadsheet_id: str, title: str, at: int, count: int = 1) -> None:
        """Insert empty columns before 0-based column ``at``."""
        with self.lock:
            sheet = self.sheet(spreadsheet_id, title)
            for row in sheet.rows:
                if len(row) > at:
                    row[at:at] = [None] * count
            sheet.col_count += count

    # -- test controls -----------------------------------------------------------

    def fail(self, kind: str = "*", status: int = 503, *, times: int | None = 1,
             html: bool = False, drop: bool = False, delay: float = 0.0,
             message: str | None = None, headers: dict[str, str] | None = None) -> Fault:
        """Answer the next ``times`` requests of ``kind`` with ``status`` (None: forever).

        ``status=0`` with a ``delay`` answers normally, late. ``drop`` closes the
        connection instead of answering.
        """
        fault = Fault(kind, status, times, html, drop, delay, message, dict(headers or {}))
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

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
            return sum(1 for entry in self.log if entry.kind in wanted)

    def kinds(self) -> list[str]:
        """The kinds of the Sheets API requests logged, in order."""
        with self.lock:
            return [entry.kind for entry in self.log if entry.kind in SHEETS_KINDS]

    def writes(self) -> list[Logged]:
        with self.lock:
            return [entry for entry in self.log if entry.kind in WRITE_KINDS]

    def clear_log(self) -> None:
        with self.lock:
            self.log.clear()

    # -- request handling --------------------------------------------------------

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        emulator = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Google's front ends
            # Headers and body leave in one segment: separate small writes on a kept-alive
            # connection would stall 40 ms each on Nagle + delayed ACK.
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def setup(self) -> None:
                emulator.serving.add(threading.current_thread())
                super().setup()

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                answer = emulator._answer(self.command, self.path, dict(self.headers), raw)
                if answer is None:  # a dropped connection
                    self.close_connection = True
                    return
                status, headers, body = answer
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    self.close_connection = True  # the client gave up (a timeout test)

            do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler

    def _answer(self, method: str, target: str, headers: dict[str, str], raw: bytes
                ) -> tuple[int, dict[str, str], bytes] | None:
        """(status, headers, body) for one request; None to drop the connection."""
        path, _, query_text = target.partition("?")
        query = urllib.parse.parse_qs(query_text, keep_blank_values=True)
        kind, route = _classify(method, path)
        too_large = len(raw) > self.max_request_bytes
        entry = Logged(kind, method, urllib.parse.unquote(path), query,
                       None if too_large else _body(raw, headers))
        with self.lock:
            self.log.append(entry)
            fault = self._take_fault(kind)
        if fault is not None:
            if fault.delay:
                self._stopping.wait(fault.delay)
            if fault.drop:
                entry.status = -1
                return None
            if fault.status:
                entry.status = fault.status
                return _fault_answer(fault)
        try:
            if too_large:
                raise ApiError(400, "Request payload size exceeds the limit: "
                                    f"{self.max_request_bytes} bytes.")
            status, payload = self._dispatch(kind, route, method, query, headers, entry)
        except ApiError as exc:
            status, payload = exc.code, _error_body(exc.code, exc.message)
        entry.status = status
        body = json.dumps(payload, ensure_ascii=False).encode()
        return status, {"Content-Type": "application/json; charset=UTF-8"}, body

    def _take_fault(self, kind: str) -> Fault | None:
        for fault in self.faults:
            if fault.kind in (kind, "*") and (fault.kind != "*" or kind in SHEETS_KINDS):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                return fault
        return None

    def _dispatch(self, kind: str, route: list[str], method: str, query: dict[str, list[str]],
                  headers: dict[str, str], entry: Logged) -> tuple[int, Any]:
        if kind == "token":
            return self._token(entry.body)
        if kind == "allowedLocations":
            raise ApiError(404, "Method not found.")
        if kind == "unknown":
            raise ApiError(404, f"{method} {entry.path} is not part of the emulated API")
        with self.lock:
            entry.email = self._authenticate(headers)
            book = self._book(route[0], entry.email)
            due = self._due_hooks(kind)
            for hook in due:
                if hook.when == "before":
                    hook.fn(self)
            payload = self._api(kind, book, route, query, entry.body)
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
            data = [{**(body or {}), "range": route[1]}]
            result = self._batch_update_values(book, {"valueInputOption": option, "data": data})
            return result["responses"][0]
        if kind == "values.append":
            return self._append(book, route[1], _one(query, "valueInputOption", ""), body or {})
        if kind == "values.clear":
            bounds = self._bounds(book, route[1])
            for r in range(bounds.r0, min(bounds.r1, len(bounds.sheet.rows))):
                for c in range(bounds.c0, bounds.c1):
                    if bounds.sheet.get(r, c) is not None:
                        bounds.sheet.set(r, c, None)
            return {"spreadsheetId": book.spreadsheet_id, "clearedRange": bounds.a1()}
        if kind == "spreadsheets.batchUpdate":
            return self._batch_update_sheets(book, body or {})
        raise ApiError(404, f"{kind} is not emulated")

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

    def _batch_update_values(self, book: Spreadsheet, body: dict[str, Any]) -> dict[str, Any]:
        option = body.get("valueInputOption")
        if option not in ("RAW", "USER_ENTERED"):
            raise ApiError(400, "Invalid valueInputOption: must be RAW or USER_ENTERED")
        convert = raw_cell if option == "RAW" else (
            lambda v: user_entered(v) if isinstance(v, str) else raw_cell(v))
        planned = []
        for item in body.get("data", []):
            bounds = self._bounds(book, item.get("range", ""))
            values = item.get("values") or []
            if item.get("majorDimension") == "COLUMNS":
                width = max(map(len, values), default=0)
                values = [[col[r] if r < len(col) else None for col in values]
                          for r in range(width)]
            if len(values) > bounds.r1 - bounds.r0 or any(
                    len(row) > bounds.c1 - bounds.c0 for row in values):
                raise ApiError(400, f"Requested writing within range [{item['range']}], but "
                                    "tried writing beyond it.")
            for row in values:
                for value in row:
                    if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
                        raise ApiError(400, "Your input contains more than the maximum of "
                                            f"{MAX_CELL_CHARS} characters in a single cell.")
            planned.append((bounds, values))
        responses, total = [], 0
        for bounds, values in planned:  # validated first: a failing batch changes nothing
            cells = 0
            for i, row in enumerate(values):
                for j, value in enumerate(row):
                    if value is not None:
                        bounds.sheet.set(bounds.r0 + i, bounds.c0 + j, convert(value))
                        cells += 1
            total += cells
            responses.append({"spreadsheetId": book.spreadsheet_id, "updatedRange": bounds.a1(),
                              "updatedRows": len(values), "updatedCells": cells})
        return {"spreadsheetId": book.spreadsheet_id, "totalUpdatedCells": total,
                "totalUpdatedSheets": len({id(b.sheet) for b, _ in planned}),
                "responses": responses}

    def _append(self, book: Spreadsheet, text: str, option: str, body: dict[str, Any]
                ) -> dict[str, Any]:
        """values.append: write after the last non-empty row of the range, growing the grid."""
        bounds = self._bounds(book, text)
        sheet = bounds.sheet
        last = max((r for r, row in enumerate(sheet.rows)
                    if any(c not in (None, "") for c in row[bounds.c0:bounds.c1])), default=-1)
        values = body.get("values") or []
        width = max(map(len, values), default=1)
        sheet.row_count = max(sheet.row_count, last + 1 + len(values))
        target = (f"{quote_title(sheet.title)}!{column_letters(bounds.c0)}{last + 2}:"
                  f"{column_letters(bounds.c0 + width - 1)}{last + 1 + max(len(values), 1)}")
        result = self._batch_update_values(
            book, {"valueInputOption": option, "data": [{"range": target, "values": values}]})
        return {"spreadsheetId": book.spreadsheet_id, "tableRange": bounds.a1(),
                "updates": result["responses"][0]}

    def _batch_update_sheets(self, book: Spreadsheet, body: dict[str, Any]) -> dict[str, Any]:
        replies: list[dict[str, Any]] = []
        for i, request in enumerate(body.get("requests", [])):
            (name, spec), = request.items()
            if name == "appendDimension":
                sheet = self._sheet_by_id(book, spec.get("sheetId"), i)
                attr = "row_count" if spec.get("dimension") == "ROWS" else "col_count"
                setattr(sheet, attr, getattr(sheet, attr) + int(spec.get("length", 0)))
                replies.append({})
            elif name == "updateSheetProperties":
                props = spec.get("properties", {})
                sheet = self._sheet_by_id(book, props.get("sheetId"), i)
                grid = props.get("gridProperties", {})
                if "title" in props:
                    sheet.title = props["title"]
                if "rowCount" in grid:
                    sheet.row_count = int(grid["rowCount"])
                    del sheet.rows[sheet.row_count:]
                if "columnCount" in grid:
                    sheet.col_count = int(grid["columnCount"])
                    for row in sheet.rows:
                        del row[sheet.col_count:]
                replies.append({})
            elif name == "addSheet":
                props = spec.get("properties", {})
                grid = props.get("gridProperties", {})
                sheet = self.add_sheet(book.spreadsheet_id, props.get("title", "Sheet"),
                                       rows=grid.get("rowCount", 1000),
                                       cols=grid.get("columnCount", 26))
                replies.append({"addSheet": {"properties": sheet.properties(
                    len(book.sheets) - 1)}})
            else:
                raise ApiError(400, f"Invalid requests[{i}]: {name} is not emulated")
        return {"spreadsheetId": book.spreadsheet_id, "replies": replies}

    @staticmethod
    def _sheet_by_id(book: Spreadsheet, sheet_id: Any, index: int) -> Sheet:
        for sheet in book.sheets:
            if sheet.sheet_id == sheet_id:
                return sheet
        raise ApiError(400, f"Invalid requests[{index}]: No grid with id: {sheet_id}")


# --------------------------------------------------------------------------- helpers


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
    if tail in ("values:batchGet", "values:batchUpdate"):
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


def _fault_answer(fault: Fault) -> tuple[int, dict[str, str], bytes]:
    code = fault.status
    if fault.html:
        body = (f"<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Error {code} "
                f"(Server Error)!!1</title><p><b>{code}.</b> <ins>That’s an error.</ins>"
                "<p>The server encountered a temporary error and could not complete your "
                "request.<p>Please try again in 30 seconds. <ins>That’s all we know.</ins>"
                "</html>").encode()
        return code, {"Content-Type": "text/html; charset=UTF-8", **fault.headers}, body
    message = fault.message or {
        429: "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per "
             "minute per user' of service 'sheets.googleapis.com'.",
        500: "Internal error encountered.",
        503: "The service is currently unavailable.",
    }.get(code, f"Error {code}")
    body = json.dumps(_error_body(code, message)).encode()
    return code, {"Content-Type": "application/json; charset=UTF-8", **fault.headers}, body
