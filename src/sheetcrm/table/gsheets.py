"""Google Sheets backend: the real gspread client, a constant number of requests per run.

Why it is built the way it is:

- **Requests per run.** The Sheets API allows 60 reads and 60 writes per minute per
  user (a service account is one user). A run costs at most 5, whatever the row
  count: the worksheet metadata (read once, then cached on the instance, so a daemon
  pays it once), one values read, one re-read of the header row, key column and
  written columns right before writing, one ``values.batchUpdate`` holding every
  changed cell, and one read of the same columns right after it. Nothing to change
  means no write and no re-read at all.
- **Render options.** Values are read as ``FORMATTED_VALUE``: cells arrive as the
  operator sees them, so leading zeros survive (text ``007`` or a ``000`` format) and
  dates come as Korean display forms (``2025. 6. 1``, ``2025. 6. 1 오후 3:04:05``) that
  the field parsers accept, as they accept serial numbers typed as plain numbers.
  ``UNFORMATTED_VALUE`` would turn ``007`` into 7.
- **Writes by key, verified.** Rows are never addressed by the position seen at read
  time: the key column is re-read right before writing and every update goes to the
  row that holds its key *then*. The API has no conditional write, so a sort, insert
  or delete between that re-read and the ``batchUpdate`` would still put cells in
  another customer's row. So the key and written columns are read again right after
  writing. If the keys (and columns) are where they were, every cell landed and
  nothing more happens. Otherwise a customer whose cells are not in its row now gets
  them written there, and a row that holds a value this write sent to someone else
  gets back what it held before (known from the re-read; a row that appeared
  meanwhile is cleared). That repeats at most ``MAX_REPAIRS`` times (one write and
  one read each, only when rows moved); rows that keep moving end in a BackendError
  that says so. Developer metadata would move with inserted and deleted rows, but not
  with a sort (which moves cell values, not rows), so it cannot replace the check.
  Keys that vanished or now appear twice are reported and not written. Writes are
  RAW, so a value like ``=HYPERLINK(...)`` stays text.
- **Quotas and faults.** Every API call goes through one choke point
  (``_GuardedHTTPClient.request``): a sliding-window limiter keeps under 60 requests
  a minute per service account, and 429s, 5xx (JSON or HTML bodies), timeouts and
  connection errors are retried with bounded, jittered exponential backoff. gspread's
  ``BackOffHTTPClient`` is not used: it never gives up and skips HTML 5xx.
- **Endpoint.** ``endpoint`` reroutes the Sheets, OAuth and IAM hosts (emulators,
  proxies) with a transport adapter; gspread copies its URLs at import, so patching
  them would do nothing. The service-account file's ``token_uri`` is honoured.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import google.auth.exceptions
import gspread
import requests
from google.auth.transport.requests import AuthorizedSession, Request
from google.oauth2 import service_account
from gspread.exceptions import APIError, SpreadsheetNotFound
from gspread.http_client import HTTPClient
from gspread.urls import SPREADSHEET_VALUES_BATCH_UPDATE_URL
from requests.adapters import HTTPAdapter

from sheetcrm.config.table import GoogleSheetsSettings, parse_spreadsheet
from sheetcrm.errors import BackendError, ConfigError
from sheetcrm.model import CellUpdate, Snapshot, WriteReport
from sheetcrm.table.base import TableContext, column_positions, match_rows

T = TypeVar("T")

SCOPES = ("https://www.googleapis.com/auth/spreadsheets",)
#: Hosts that ``endpoint`` replaces: the Sheets API, the OAuth token endpoint and the
#: IAM lookup google-auth makes in the background after a token is issued.
GOOGLE_HOSTS = (
    "https://sheets.googleapis.com",
    "https://oauth2.googleapis.com",
    "https://iamcredentials.googleapis.com",
)
CREDENTIALS_ENV = "GOOGLE_APPLICATION_CREDENTIALS"
SERVICE_ACCOUNT_FIELDS = ("type", "project_id", "private_key_id", "private_key",
                          "client_email", "token_uri")
DEFAULT_TIMEOUT = (10.0, 60.0)  # (connect, read) seconds, on every request
MAX_CELL_CHARS = 50_000  # the API refuses the whole batch if one cell is longer
#: A write body above this is split into several batchUpdates (the API refuses bodies
#: of about 10 MB; the first run over 100k Korean rows, about 8 MB, still fits in one).
MAX_REQUEST_BYTES = 9_000_000
MIN_REQUEST_BYTES = 4096  # halving a refused body stops here
#: Skipped rows (JSON null) that a write range may bridge rather than start a new
#: range: a null costs 7 bytes, a new range about 50.
GAP_FILL = 8
#: Repair writes (each followed by one more check) a write may need when rows move
#: under it; past that, rows are moving faster than they can be followed.
MAX_REPAIRS = 3
#: Writes refused because rows were deleted past the grid's end while in flight:
#: each is planned again from a fresh re-read.
MAX_PLANS = 3
#: Reads of the header row when a column moved since the last one.
MAX_HEADER_READS = 3
_READ_PARAMS = {"valueRenderOption": "FORMATTED_VALUE", "majorDimension": "ROWS"}
_JSON_UTF8 = {"Content-Type": "application/json; charset=utf-8"}
_BODY_HEAD = b'{"valueInputOption":"RAW","data":['
_BODY_TAIL = b"]}"
_RANGE_END = re.compile(r":\$?([A-Z]+)\$?(\d+)$")


# --------------------------------------------------------------------------- pacing


class RateLimiter:
    """At most ``limit`` requests in any ``period`` seconds (a sliding window).

    The Sheets quota is counted per minute per user; a sliding window of 55 a minute
    stays under 60 whatever the minute boundaries. ``clock`` and ``sleep`` are
    injectable so tests do not wait.
    """

    def __init__(self, limit: int = 55, period: float = 60.0, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.limit = limit
        self.period = period
        self.clock = clock
        self.sleep = sleep
        self.waited = 0.0  # seconds spent waiting, in total
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait until one more request fits in the window; return the seconds waited."""
        with self._lock:
            now = self.clock()
            while self._sent and self._sent[0] <= now - self.period:
                self._sent.popleft()
            wait = 0.0
            if len(self._sent) >= self.limit:
                wait = self._sent[0] + self.period - now
                self.sleep(wait)
                self.waited += wait
                now = max(self.clock(), self._sent[0] + self.period)
                self._sent.popleft()
            self._sent.append(now)
            return wait


_LIMITERS: dict[str, RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def shared_limiter(client_email: str) -> RateLimiter:
    """The process-wide limiter of one service account: the quota is per user."""
    with _LIMITERS_LOCK:
        return _LIMITERS.setdefault(client_email, RateLimiter())


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter.

    ``attempts`` counts the first try. The n-th wait is drawn from [½, 1] × min(max_delay,
    base_delay × 2ⁿ) (so clients that failed together do not retry together), or the
    server's ``Retry-After`` when longer. With the defaults a request is given up after
    about a minute of waiting: long enough for a per-minute quota window to pass.
    """

    attempts: int = 7
    base_delay: float = 1.0
    max_delay: float = 32.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random  # uniform in [0, 1)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** retry)
        wait = ceiling * (0.5 + 0.5 * self.jitter())
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait


DEFAULT_RETRY = RetryPolicy()


class RequestGuard:
    """Paces, retries and counts every API request of one table."""

    def __init__(self, limiter: RateLimiter, retry: RetryPolicy) -> None:
        self.limiter = limiter
        self.retry = retry
        self.counts: Counter[str] = Counter()  # attempts sent, by kind
        self.last_attempts = 0  # attempts made by the last request

    def run(self, kind: str, send: Callable[[], T]) -> T:
        """Call ``send`` until it succeeds, fails for good, or the attempts run out."""
        for attempt in range(1, self.retry.attempts + 1):
            self.limiter.acquire()
            self.counts[kind] += 1
            self.last_attempts = attempt
            try:
                return send()
            except Exception as exc:
                if attempt >= self.retry.attempts or not _retryable(exc):
                    raise
                self.retry.sleep(self.retry.delay(attempt - 1, _retry_after(exc)))
        raise AssertionError("unreachable")


def _retryable(exc: Exception) -> bool:
    """429, 408 and 5xx answers (whatever the body), timeouts and dropped connections."""
    if isinstance(exc, APIError):
        status = exc.response.status_code
        return status in (408, 429) or status >= 500
    return isinstance(exc, (requests.Timeout, requests.ConnectionError,
                            google.auth.exceptions.TransportError))


def _retry_after(exc: Exception) -> float | None:
    if not isinstance(exc, APIError):
        return None
    try:
        return float(exc.response.headers.get("Retry-After", ""))
    except ValueError:
        return None


# --------------------------------------------------------------------------- transport


class _RerouteAdapter(HTTPAdapter):
    """Send requests for the Google API hosts to ``endpoint`` instead.

    ``endpoint`` is listed in ``__attrs__`` because google-auth deep-copies its request
    object (and with it this adapter) for background lookups.
    """

    __attrs__ = [*HTTPAdapter.__attrs__, "endpoint"]

    def __init__(self, endpoint: str, **kwargs: Any) -> None:
        self.endpoint = endpoint
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: Any = None, verify: bool | str = True,
             cert: str | tuple[str, str] | None = None,
             proxies: dict[str, str] | None = None) -> requests.Response:
        url = request.url or ""
        for host in GOOGLE_HOSTS:
            if url.startswith(host + "/"):
                request.url = self.endpoint + url[len(host):]
                proxies = requests.utils.get_environ_proxies(request.url)  # for the new host
                break
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert,
                            proxies=proxies)


def _reroute(session: requests.Session, endpoint: str) -> None:
    adapter = _RerouteAdapter(endpoint)
    for host in GOOGLE_HOSTS:
        session.mount(host + "/", adapter)


class _GuardedHTTPClient(HTTPClient):
    """gspread's HTTP client, with every request paced, retried and counted.

    It also keeps the last spreadsheet metadata it fetched: ``open_by_key`` fetches the
    whole metadata (every worksheet) but keeps only the spreadsheet's properties, and
    asking for a worksheet would fetch it again. One request instead of two.
    """

    guard: RequestGuard
    last_metadata: Mapping[str, Any] | None = None

    def request(self, method: str, endpoint: str, params: Any = None, data: Any = None,
                json: Any = None, files: Any = None, headers: Any = None
                ) -> requests.Response:
        def send() -> requests.Response:
            return super(_GuardedHTTPClient, self).request(
                method, endpoint, params=params, data=data, json=json, files=files,
                headers=headers)

        return self.guard.run(_kind(method, endpoint), send)

    def fetch_sheet_metadata(self, id: str, params: Any = None) -> Mapping[str, Any]:  # noqa: A002
        self.last_metadata = super().fetch_sheet_metadata(id, params=params)
        return self.last_metadata


def _kind(method: str, url: str) -> str:
    """``values.get``, ``values.batchUpdate``, ``spreadsheets.get``, ... for counting."""
    path = urlsplit(url).path
    _, _, rest = path.partition("/spreadsheets/")
    _, slash, tail = rest.partition("/")
    if not slash:
        return "spreadsheets.batchUpdate" if rest.endswith(":batchUpdate") else "spreadsheets.get"
    if tail.startswith("values:"):
        return "values." + tail.partition(":")[2]
    if ":" in tail.rpartition("/")[2]:
        return "values." + tail.rpartition(":")[2]
    return "values.update" if method.lower() == "put" else "values.get"


def _build_client(credentials: service_account.Credentials, endpoint: str | None,
                  timeout: tuple[float, float], guard: RequestGuard) -> gspread.Client:
    """A gspread client on our own authorized session (see REFERENCE.md)."""
    auth_session = requests.Session()  # used by google-auth for tokens and IAM lookups
    session = AuthorizedSession(credentials, auth_request=Request(auth_session))
    if endpoint:
        _reroute(session, endpoint)
        _reroute(auth_session, endpoint)
    client = gspread.Client(auth=credentials, session=session, http_client=_GuardedHTTPClient)
    http = client.http_client
    assert isinstance(http, _GuardedHTTPClient)
    http.auth = credentials  # gspread keeps them only when it builds the session itself
    http.guard = guard
    client.set_timeout(timeout)
    return client


# --------------------------------------------------------------------------- the table


@dataclass
class _Worksheet:
    """Cached worksheet metadata; the grid size is refreshed by every values answer."""

    spreadsheet: gspread.Spreadsheet
    sheet_id: int
    title: str
    rows: int
    columns: int


@dataclass
class _Layout:
    """The header, key column and written columns as read at one moment."""

    header: list[str]
    keys: list[str]  # key cell of each row after the header row, in sheet order
    cells: dict[str, list[str]]  # written column name -> its cells below the header
    positions: dict[str, int]  # 0-based column of the key and written columns found
    columns: int  # grid width now

    @property
    def height(self) -> int:
        """Rows below the header that hold a key or a written cell."""
        return max([len(self.keys), *map(len, self.cells.values())])

    def cell(self, name: str, index: int) -> str:
        column = self.cells.get(name, [])
        return column[index] if index < len(column) else ""


@dataclass
class _Plan:
    """One write as planned from the read right before it, and what checking it needs."""

    names: list[str]  # the written columns, in order of first appearance
    positions: dict[str, int]  # their columns (and the key's) when planned
    before: _Layout  # the rows as read right before the write
    row_of: dict[str, int] = field(default_factory=dict)  # key on one row then -> its index
    shared: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # blank or repeated
    # key -> column -> every cell its rows held then
    cells: dict[tuple[int, int], str] = field(default_factory=dict)  # (row, column) -> value
    intended: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> column -> value
    sent: dict[str, set[str]] = field(default_factory=dict)  # column -> values sent to rows

    def held(self, key: str, name: str) -> Collection[str]:
        """What the rows of ``key`` held in column ``name`` right before the write."""
        index = self.row_of.get(key)
        if index is not None:
            return (self.before.cell(name, index),)
        return self.shared.get(key, {}).get(name, ())

    def restore(self, key: str, name: str) -> str:
        """What a row of ``key`` gets back: its cell before the write, if it had one row."""
        index = self.row_of.get(key)
        return self.before.cell(name, index) if index is not None else ""


@dataclass
class _Run:
    """Consecutive rows of one column to write; None cells are skipped by the API."""

    column: int
    first: int  # 1-based sheet row
    values: list[str | None] = field(default_factory=list)


class GoogleSheetsTable:
    """A customer table in one worksheet of a Google spreadsheet.

    ``service_account_info`` is the parsed service-account JSON. ``worksheet`` is a
    title; ``gid`` a sheet id (from a URL's ``#gid=``); neither means the first
    worksheet. ``limiter`` defaults to the process-wide one of the service account,
    ``retry`` to ``DEFAULT_RETRY``. ``requests`` counts the Sheets API requests sent,
    retries included (a 401 that google-auth answers by refreshing the token and
    replaying counts once); token requests are not counted.
    """

    def __init__(self, spreadsheet_id: str, service_account_info: Mapping[str, Any], *,
                 worksheet: str | None = None, gid: int | None = None, header_row: int = 1,
                 endpoint: str | None = None,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 limiter: RateLimiter | None = None, retry: RetryPolicy | None = None,
                 max_request_bytes: int = MAX_REQUEST_BYTES,
                 credentials_path: str = "") -> None:
        credentials = _credentials(service_account_info, credentials_path)
        self.spreadsheet_id = spreadsheet_id
        self.worksheet = worksheet
        self.gid = gid
        self.header_row = header_row
        self.client_email: str = credentials.service_account_email
        self.token_uri = str(service_account_info.get("token_uri", ""))
        self.project_id = str(service_account_info.get("project_id", ""))
        self.credentials_path = credentials_path
        self.timeout = timeout
        self.max_request_bytes = max_request_bytes
        self.guard = RequestGuard(limiter or shared_limiter(self.client_email),
                                  retry or DEFAULT_RETRY)
        self._client = _build_client(credentials, endpoint, timeout, self.guard)
        self._sheet: _Worksheet | None = None
        self._header: list[str] = []  # as last read: where the key column probably is
        self._width = 0  # widest row last read: appended columns go past it

    @classmethod
    def from_settings(cls, settings: GoogleSheetsSettings, context: TableContext
                      ) -> GoogleSheetsTable:
        """The table of ``[table] backend = "gsheets"`` (validated at load); the key
        file is read here (ConfigError naming ``table.credentials``).

        Keep the instance across runs (the daemon does): it caches the worksheet
        metadata, so a tick costs one request less than a one-off sync.
        """
        key, gid = parse_spreadsheet(settings.spreadsheet)
        path = _credentials_path(settings.credentials, context)
        return cls(key, load_service_account(path), worksheet=settings.worksheet, gid=gid,
                   header_row=settings.header_row, endpoint=settings.endpoint,
                   credentials_path=str(path))

    # -- the Table protocol ---------------------------------------------------------

    @property
    def requests(self) -> int:
        """API requests sent by this table so far, retries included."""
        return sum(self.guard.counts.values())

    @property
    def request_counts(self) -> dict[str, int]:
        """Requests sent so far, by kind (``values.get``, ``values.batchUpdate``, ...)."""
        return dict(self.guard.counts)

    @property
    def source(self) -> str:
        """Where the table is, for messages."""
        title = self._sheet.title if self._sheet else self.worksheet
        sheet = f"worksheet {title!r}" if title else "first worksheet"
        return f"{sheet} of https://docs.google.com/spreadsheets/d/{self.spreadsheet_id}"

    def read(self) -> Snapshot:
        """Header (row ``header_row``) and non-blank rows below it, in one values request."""
        data = self._sheet_call("reading the cells", lambda sheet: self._read_values(sheet))
        rows: list[list[str]] = data.get("values", [])
        h = self.header_row
        header = [cell.strip() for cell in rows[h - 1]] if len(rows) >= h else []
        body = [row for row in rows[h:] if any(cell.strip() for cell in row)]
        self._header = header
        self._width = max(map(len, body), default=0)
        return Snapshot(header=header, rows=body, source=self.source)

    def write(self, key_column: str, updates: list[CellUpdate]) -> WriteReport:
        """Apply ``updates`` to the rows that hold their keys now, in one batchUpdate.

        The header row, key column and written columns are re-read first (one request),
        so rows sorted, inserted or deleted since read() never misdirect a write, and
        read again right after it (one request), so rows that moved while the write
        was in flight are found and repaired (see the module docstring). A named column
        missing from the header is appended past the last used column, growing the
        grid if needed (one more request); it is added even when none of its updates
        lands. Only the given cells are sent, RAW.
        """
        if not updates:
            return WriteReport()
        before = self.requests
        key_column = key_column.strip()
        for _ in range(MAX_PLANS):
            report = WriteReport()
            plan = self._plan(key_column, updates, report)
            if not plan.cells:
                break
            if self._send(plan.cells):
                self._settle(key_column, plan, report)
                break
        else:
            raise BackendError(
                f"{self.source}: rows were deleted while writing, {MAX_PLANS} times in a row, "
                f"and every write went past the sheet's last row; nothing was written. "
                f"Leave the rows in place for a moment and run sync again")
        report.requests = self.requests - before
        return report

    # -- requests ---------------------------------------------------------------------

    def _worksheet(self) -> _Worksheet:
        """The worksheet's metadata: one request the first time, then cached."""
        if self._sheet is None:
            spreadsheet = self._call("opening the spreadsheet",
                                     lambda: self._client.open_by_key(self.spreadsheet_id))
            http = self._client.http_client
            assert isinstance(http, _GuardedHTTPClient) and http.last_metadata is not None
            self._sheet = self._pick(spreadsheet, http.last_metadata)
        return self._sheet

    def _pick(self, spreadsheet: gspread.Spreadsheet, metadata: Mapping[str, Any]
              ) -> _Worksheet:
        """The configured worksheet, or a BackendError listing the titles there are."""
        sheets = [s.get("properties", {}) for s in metadata.get("sheets", [])]
        grids = [p for p in sheets if p.get("sheetType", "GRID") == "GRID"]
        if self.worksheet is not None:
            found = [p for p in grids if p.get("title") == self.worksheet]
        elif self.gid is not None:
            found = [p for p in grids if p.get("sheetId") == self.gid]
        else:
            found = grids[:1]
        if not found:
            titles = ", ".join(repr(p.get("title")) for p in grids) or "none"
            wanted = (f"no worksheet named {self.worksheet!r}" if self.worksheet is not None
                      else f"no worksheet with gid {self.gid}" if self.gid is not None
                      else "no worksheet")
            raise BackendError(
                f"spreadsheet {spreadsheet.title!r} "
                f"(https://docs.google.com/spreadsheets/d/{self.spreadsheet_id}) has "
                f"{wanted}; its worksheets are: {titles}. Set table.worksheet to one of them")
        props = found[0]
        grid = props.get("gridProperties", {})
        return _Worksheet(spreadsheet, int(props.get("sheetId", 0)), str(props["title"]),
                          int(grid.get("rowCount", 0)), int(grid.get("columnCount", 0)))

    def _read_values(self, sheet: _Worksheet) -> dict[str, Any]:
        data = sheet.spreadsheet.values_get(_a1(sheet.title), params=dict(_READ_PARAMS))
        _refresh_grid(sheet, data.get("range", ""), rows=True)
        return data

    def _plan(self, key_column: str, updates: list[CellUpdate], report: WriteReport) -> _Plan:
        """Read the rows as they are now and place every update (grows the grid if needed)."""
        names = list(dict.fromkeys(name for u in updates if (name := u.column.strip())))
        layout = self._layout(key_column, names, _positions(self._header, [key_column, *names]),
                              "re-reading the header and key column")
        columns, added = column_positions(layout.header, max(len(layout.header), self._width),
                                          updates, self.source)
        report.columns_added = added
        plan = _Plan(names, {name: columns[name] for name in names}
                     | {key_column: layout.positions[key_column]}, layout)
        rows_by_key = _rows_by_key(layout)
        for key, rows in rows_by_key.items():
            if key and len(rows) == 1:
                plan.row_of[key] = rows[0]
            else:
                plan.shared[key] = {name: {layout.cell(name, i) for i in rows} for name in names}
        for index, update in match_rows(updates, rows_by_key, report):
            name, value = update.column.strip(), _fit(update.value)
            plan.cells[(self.header_row + 1 + index, columns[name])] = value
            plan.intended.setdefault(update.key.strip(), {})[name] = value
            plan.sent.setdefault(name, set()).add(value)
        report.cells_written = len(plan.cells)
        report.rows_written = len({row for row, _ in plan.cells})
        for name in added:
            plan.cells[(self.header_row, columns[name])] = name
        if plan.cells:
            needed = max(column for _, column in plan.cells) + 1
            if needed > layout.columns:
                self._grow(needed - layout.columns)
        return plan

    def _settle(self, key_column: str, plan: _Plan, report: WriteReport) -> None:
        """Check the rows right after writing; repair what moved; report what is gone."""
        repaired: dict[str, None] = {}
        placed = (plan.before.keys, plan.positions)  # the rows the last write was placed by
        check = _Check({}, [], [], [])  # as they were then: every written key on one row
        for attempt in range(MAX_REPAIRS + 1):
            now = self._layout(key_column, plan.names, plan.positions,
                               "checking the rows after writing")
            lost = [name for name in plan.names if name not in now.positions]
            if lost:
                raise BackendError(
                    f"{self.source}: column {lost[0]!r} left the header row (row "
                    f"{self.header_row}) while writing, so the cells written under it "
                    f"cannot be checked; put the header back and run sync again")
            if (now.keys, now.positions) == placed:  # nothing moved: every cell landed
                check = _Check({}, [], check.missing, check.ambiguous)
                break
            check = _check(now, plan, self.header_row)
            if not check.fixes:
                break
            if attempt == MAX_REPAIRS:
                keys = ", ".join(repr(k) for k in check.moved[:5]) or "rows without a key"
                raise BackendError(
                    f"{self.source}: rows kept moving (sorted, inserted or deleted) while "
                    f"writing; after {MAX_REPAIRS} repairs {len(check.fixes)} cells still "
                    f"hold another row's values ({keys}). Leave the rows in place for a "
                    f"moment and run sync again: it rewrites every owned cell that differs")
            repaired.update(dict.fromkeys(check.moved))
            names = {column: name for name, column in now.positions.items()}
            for (_, column), value in check.fixes.items():
                plan.sent.setdefault(names[column], set()).add(value)
            plan.positions = now.positions
            placed = (now.keys, now.positions)
            self._send(check.fixes)  # refused only if rows went past the grid: checked next
        report.missing_keys = list(dict.fromkeys([*report.missing_keys, *check.missing]))
        report.ambiguous_keys = list(dict.fromkeys([*report.ambiguous_keys, *check.ambiguous]))
        report.repaired_keys = [key for key in repaired if key not in check.missing]

    def _layout(self, key_column: str, names: list[str], guess: dict[str, int],
                action: str) -> _Layout:
        """Header, key column and ``names`` now: one values.batchGet at the guessed
        columns, one more for each column found elsewhere in the header."""
        wanted = list(dict.fromkeys([key_column, *names]))
        for _ in range(MAX_HEADER_READS):
            asked = {name: guess[name] for name in wanted if name in guess}
            header, cells = self._read_columns(sorted(set(asked.values())), action)
            found = _positions(header, wanted)
            if key_column not in found:
                raise BackendError(f"{self.source}: key column {key_column!r} is not in the "
                                   f"header (row {self.header_row})")
            if all(asked.get(name) == column for name, column in found.items()):
                break
            guess = found
        else:
            raise BackendError(f"{self.source}: the header row (row {self.header_row}) kept "
                               f"changing while {action}; leave the columns in place for a "
                               f"moment and run sync again")
        self._header = header
        keys = [cell.strip() for cell in cells.get(found[key_column], [])]
        return _Layout(header, keys, {name: cells.get(found[name], []) for name in names
                                      if name in found}, found, self._worksheet().columns)

    def _read_columns(self, columns: list[int], action: str
                      ) -> tuple[list[str], dict[int, list[str]]]:
        """The header row and the cells below it in ``columns``, in one values.batchGet.

        Columns past the grid's edge hold nothing and are not asked for.
        """
        def fetch(sheet: _Worksheet) -> tuple[list[int], list[dict[str, Any]]]:
            h = self.header_row
            ranges = [_a1(sheet.title, f"{h}:{h}")]
            asked = [c for c in columns if c < sheet.columns] if sheet.rows > h else []
            for column in asked:
                letter = column_letter(column)
                ranges.append(_a1(sheet.title, f"{letter}{h + 1}:{letter}"))
            got = sheet.spreadsheet.values_batch_get(ranges, params=dict(_READ_PARAMS))
            answers = got.get("valueRanges", [])
            _refresh_grid(sheet, answers[0].get("range", "") if answers else "", rows=False)
            return asked, answers

        asked, answers = self._sheet_call(action, fetch)
        header_rows = answers[0].get("values", []) if answers else []
        header = [cell.strip() for cell in header_rows[0]] if header_rows else []
        cells = {column: [str(row[0]) if row else "" for row in answer.get("values", [])]
                 for column, answer in zip(asked, answers[1:], strict=False)}
        return header, cells

    def _grow(self, columns: int) -> None:
        """Add ``columns`` columns at the right of the grid (writes past it would fail)."""
        def grow(sheet: _Worksheet) -> None:
            sheet.spreadsheet.batch_update({"requests": [{"appendDimension": {
                "sheetId": sheet.sheet_id, "dimension": "COLUMNS", "length": columns}}]})
            sheet.columns += columns

        self._sheet_call("adding columns", grow)

    def _send(self, cells: dict[tuple[int, int], str]) -> bool:
        """One values.batchUpdate, RAW (more only for bodies past ``max_request_bytes``).

        The body is UTF-8 JSON built here rather than by ``json=``, which escapes every
        Hangul syllable as 6 bytes: UTF-8 takes 3, so 100k rows of Korean writeback
        fit in one request instead of two. False when the API refused it because a
        cell now lies past the grid (rows deleted meanwhile): the caller reads again.
        """
        def send(sheet: _Worksheet) -> bool:
            url = SPREADSHEET_VALUES_BATCH_UPDATE_URL % sheet.spreadsheet.id
            limit = self.max_request_bytes
            while True:
                try:
                    for body in _bodies(_runs(cells), sheet.title, limit):
                        self._client.http_client.request("post", url, data=body,
                                                         headers=_JSON_UTF8)
                    return True
                except APIError as exc:  # refused as too large: halve (writes are idempotent)
                    if _beyond_grid(exc):
                        return False
                    if not _too_large(exc) or limit <= MIN_REQUEST_BYTES:
                        raise
                    limit //= 2

        return self._sheet_call("writing the cells", send)

    def _sheet_call(self, action: str, fn: Callable[[_Worksheet], T]) -> T:
        """Run ``fn`` on the worksheet; if its cached title no longer parses (renamed or
        deleted since a daemon cached it), fetch the metadata again and retry once."""
        cached = self._sheet is not None
        sheet = self._worksheet()
        try:
            return fn(sheet)
        except APIError as exc:
            if not (cached and _unparsable_range(exc)):
                raise self._error(exc, action) from exc
        except Exception as exc:
            raise self._error(exc, action) from exc
        self._sheet = None
        sheet = self._worksheet()
        return self._call(action, lambda: fn(sheet))

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except BackendError:
            raise
        except Exception as exc:
            raise self._error(exc, action) from exc

    # -- errors -------------------------------------------------------------------------

    def _error(self, exc: BaseException, action: str) -> BackendError:
        """A BackendError that says what failed and what the operator can do about it."""
        if isinstance(exc, BackendError):
            return exc
        if isinstance(exc, PermissionError) and isinstance(exc.__cause__, APIError):
            exc = exc.__cause__  # gspread turns a 403 from open_by_key into PermissionError
        if isinstance(exc, SpreadsheetNotFound):
            return BackendError(self._not_found())
        where = f"Google Sheets ({self.source})"
        attempts = self.guard.last_attempts
        if isinstance(exc, APIError):
            return BackendError(self._api_message(exc, where, action, attempts))
        if isinstance(exc, requests.Timeout):
            return BackendError(f"{where}: no answer within {self.timeout[1]:g} s while "
                                f"{action}, after {attempts} attempts")
        if isinstance(exc, (requests.ConnectionError, google.auth.exceptions.TransportError)):
            return BackendError(f"{where}: cannot connect while {action}, after {attempts} "
                                f"attempts ({type(exc).__name__})")
        if isinstance(exc, google.auth.exceptions.RefreshError):
            return BackendError(
                f"{where}: could not get an access token from {self.token_uri} while "
                f"{action}: {_short(str(exc.args[0]) if exc.args else str(exc))}. Check the "
                f"service-account key file {self.credentials_path or '(table.credentials)'}")
        return BackendError(f"{where}: {type(exc).__name__} while {action}: {_short(str(exc))}")

    def _api_message(self, exc: APIError, where: str, action: str, attempts: int) -> str:
        status = exc.response.status_code
        detail = _detail(exc)
        if status == 403:
            return (f"{where}: permission denied while {action} ({detail}). Share the "
                    f"spreadsheet with the service account {self.client_email} (Share → "
                    f"add that email as Editor), and check that the Google Sheets API is "
                    f"enabled in project {self.project_id or '(see the key file)'}")
        if status == 404:
            return self._not_found()
        if status == 401:
            return (f"{where}: the service account's credentials were rejected (HTTP 401) "
                    f"while {action}; check {self.credentials_path or 'table.credentials'}")
        if status == 429:
            return (f"{where}: quota exceeded (HTTP 429) while {action}, still after "
                    f"{attempts} attempts; the next run picks up where this one stopped")
        if status >= 500:
            return (f"{where}: the Sheets API is unavailable (HTTP {status}, {detail}) while "
                    f"{action}, after {attempts} attempts; the next run picks up where this "
                    f"one stopped")
        return f"{where}: HTTP {status} while {action}: {detail}"

    def _not_found(self) -> str:
        return (f"Google Sheets: spreadsheet {self.spreadsheet_id!r} not found; check "
                f"table.spreadsheet (the part between /d/ and /edit in the sheet's URL)")


# --------------------------------------------------------------------------- settings


def _credentials_path(value: str | None, context: TableContext) -> Path:
    if value:
        return context.resolve(value)
    env = context.env.get(CREDENTIALS_ENV)
    if env:
        return Path(env).expanduser()
    raise ConfigError(f"no service-account key file: set table.credentials to the JSON "
                      f"key's path, or the {CREDENTIALS_ENV} environment variable",
                      path="table.credentials")


def load_service_account(path: Path) -> dict[str, Any]:
    """The parsed service-account key file; ConfigError (never showing the key) if not."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{str(path)!r} not found; expected the service account's JSON "
                          "key file (Google Cloud console → IAM → Service accounts → Keys)",
                          path="table.credentials") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not JSON"
        raise ConfigError(f"{str(path)!r} cannot be read ({reason}); expected a "
                          "service-account JSON key file", path="table.credentials") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        kind = info.get("type") if isinstance(info, dict) else type(info).__name__
        raise ConfigError(f"{str(path)!r} holds a {kind!r} credential; expected a "
                          "service-account key (\"type\": \"service_account\")",
                          path="table.credentials")
    missing = [name for name in SERVICE_ACCOUNT_FIELDS if not info.get(name)]
    if missing:
        raise ConfigError(f"{str(path)!r} lacks {', '.join(missing)}; expected a "
                          "service-account key file as Google Cloud downloads it",
                          path="table.credentials")
    return info


def _credentials(info: Mapping[str, Any], path: str) -> service_account.Credentials:
    """Service-account credentials for the Sheets scope; the key is never shown."""
    missing = [name for name in ("client_email", "private_key", "token_uri") if not info.get(name)]
    if missing:
        raise ConfigError(f"{path or 'the service-account info'} lacks {', '.join(missing)}; "
                          "expected a service-account JSON key file", path="table.credentials")
    try:
        return service_account.Credentials.from_service_account_info(dict(info),
                                                                     scopes=list(SCOPES))
    except (ValueError, TypeError, KeyError):
        raise ConfigError(f"{path or 'the service-account info'}: private_key is not a valid "
                          "PEM private key; expected a service-account JSON key file as Google "
                          "Cloud downloads it", path="table.credentials") from None


# --------------------------------------------------------------------------- A1 and writes


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _column_index(letters: str) -> int:
    index = 0
    for ch in letters:
        index = index * 26 + ord(ch) - 64
    return index - 1


def _a1(title: str, ref: str = "") -> str:
    """``'title'!ref`` with quotes doubled; Korean titles work once quoted."""
    quoted = "'" + title.replace("'", "''") + "'"
    return f"{quoted}!{ref}" if ref else quoted


def _refresh_grid(sheet: _Worksheet, answered: str, *, rows: bool) -> None:
    """Take the grid size from a values answer's range (``'t'!A1:Z1000``)."""
    match = _RANGE_END.search(answered)
    if match is None:
        return
    sheet.columns = _column_index(match.group(1)) + 1
    if rows:
        sheet.rows = int(match.group(2))


def _too_large(exc: APIError) -> bool:
    status = exc.response.status_code
    return status == 413 or (status == 400 and "payload size exceeds" in _detail(exc))


def _beyond_grid(exc: APIError) -> bool:
    return exc.response.status_code == 400 and "exceeds grid limits" in _detail(exc)


def _unparsable_range(exc: APIError) -> bool:
    return exc.response.status_code == 400 and "Unable to parse range" in _detail(exc)


def _detail(exc: APIError) -> str:
    """The API's own message; an HTML error page is named, not pasted."""
    if exc.code == -1:  # the body was not JSON
        body = exc.response.text.lstrip()[:200].lower()
        return "an HTML error page" if body.startswith(("<!doctype", "<html")) else _short(body)
    return f"{exc.error.get('status', exc.code)}: {_short(str(exc.error.get('message', '')))}"


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _positions(header: list[str], names: list[str]) -> dict[str, int]:
    """The first column of each name that is in the header."""
    found: dict[str, int] = {}
    for column, cell in enumerate(header):
        if cell in names:
            found.setdefault(cell, column)
    return found


@dataclass
class _Check:
    """What the read right after a write found."""

    fixes: dict[tuple[int, int], str]  # (row, column) -> value that belongs there
    moved: list[str]  # keys of the rows those fixes are for
    missing: list[str]  # written keys on no row now
    ambiguous: list[str]  # written keys on several rows now


def _rows_by_key(layout: _Layout) -> dict[str, list[int]]:
    """Row indexes of each key (blank too) among the rows read."""
    rows: dict[str, list[int]] = defaultdict(list)
    for index, key in enumerate(layout.keys):
        rows[key].append(index)
    rows[""].extend(range(len(layout.keys), layout.height))  # written cells, no key
    return dict(rows)


def _check(now: _Layout, plan: _Plan, header_row: int) -> _Check:
    """Compare every row's written columns with what belongs there.

    A row whose key was written and is on that row alone must hold exactly its
    update. Any other row must not hold a value this write sent into that column
    unless that row held it before or it is its own update: else it received another
    row's cells, and gets back what it held before the write ("" for a row that was
    not there then). Edits to other values are left alone.
    """
    height = now.height
    keys = now.keys + [""] * (height - len(now.keys))
    rows_by_key = _rows_by_key(now)
    columns = [(name, now.positions[name], now.cells.get(name, []), plan.sent.get(name, set()))
               for name in plan.names]
    fixes: dict[tuple[int, int], str] = {}
    moved: dict[str, None] = {}
    nothing: dict[str, str] = {}
    for index, key in enumerate(keys):
        own = plan.intended.get(key, nothing) if key else nothing
        alone = own is not nothing and len(rows_by_key[key]) == 1
        for name, column, cells, sent in columns:
            value = cells[index] if index < len(cells) else ""
            want = own.get(name) if alone else None
            if want is None:
                if (value not in sent or value == own.get(name)
                        or value in plan.held(key, name)):
                    continue
                want = plan.restore(key, name)
            if value != want:
                fixes[(header_row + 1 + index, column)] = want
                if key:
                    moved[key] = None
    return _Check(fixes, list(moved), [key for key in plan.intended if key not in rows_by_key],
                  [key for key in plan.intended if len(rows_by_key.get(key, ())) > 1])


def _fit(value: str) -> str:
    """A value the API accepts: one over 50,000 characters would fail the whole batch."""
    return value if len(value) <= MAX_CELL_CHARS else value[: MAX_CELL_CHARS - 1] + "…"


def _runs(cells: dict[tuple[int, int], str]) -> list[_Run]:
    """Cells grouped into vertical runs, bridging short gaps with skipped (None) cells."""
    by_column: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for (row, column), value in cells.items():
        by_column[column].append((row, value))
    runs: list[_Run] = []
    for column in sorted(by_column):
        run: _Run | None = None
        for row, value in sorted(by_column[column]):
            if run is None or row - (run.first + len(run.values)) > GAP_FILL:
                run = _Run(column, row)
                runs.append(run)
            run.values.extend([None] * (row - run.first - len(run.values)))
            run.values.append(value)
    return runs


def _bodies(runs: list[_Run], title: str, limit: int) -> Iterator[bytes]:
    """values.batchUpdate bodies of at most about ``limit`` bytes (one, unless huge).

    Each run is serialised once; a run that does not fit in the current body is cut
    at a row boundary, and the rest starts the next body.
    """
    parts: list[bytes] = []
    size = len(_BODY_HEAD) + len(_BODY_TAIL)
    overhead = 80 + 2 * len(title.encode())  # the range, its key and majorDimension
    for run in runs:
        start, pending = 0, overhead
        for index, value in enumerate(run.values):
            cost = 7 if value is None else 6 + (len(value) if value.isascii()
                                                else len(value.encode()))
            if size + pending + cost > limit and (index > start or parts):
                if index > start:
                    parts.append(_piece(title, run, start, index))
                yield _BODY_HEAD + b",".join(parts) + _BODY_TAIL
                parts, size = [], len(_BODY_HEAD) + len(_BODY_TAIL)
                start, pending = index, overhead
            pending += cost
        part = _piece(title, run, start, len(run.values))
        parts.append(part)
        size += len(part) + 1
    if parts:
        yield _BODY_HEAD + b",".join(parts) + _BODY_TAIL


def _piece(title: str, run: _Run, start: int, end: int) -> bytes:
    """One ValueRange (rows ``start:end`` of a run) as UTF-8 JSON; null cells are skipped."""
    letter = column_letter(run.column)
    first, last = run.first + start, run.first + end - 1
    value_range = {"range": _a1(title, f"{letter}{first}:{letter}{last}"),
                   "majorDimension": "ROWS",
                   "values": [[value] for value in run.values[start:end]]}
    return json.dumps(value_range, ensure_ascii=False, separators=(",", ":")).encode()
