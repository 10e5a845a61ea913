"""Google Sheets backend: the real gspread client, a constant number of requests per run.

Why it is built the way it is:

- **Requests per run.** The Sheets API allows 60 reads and 60 writes per minute per
  user (a service account is one user). A run costs at most 5, whatever the row
  count: the worksheet metadata (read once, then cached on the instance, so a daemon
  pays it once), one values read, one re-read of the header row, key column and
  written columns right before writing, one ``values.batchUpdate`` holding every
  changed cell, and one read of the same columns right after it. Nothing to change
  means no write and no re-read at all. The rule tabs (``[rules]``) cost nothing more:
  they are ranges of the same values read (a ``values.batchGet``), and their ``상태``
  cells ride in the writeback's ``values.batchUpdate`` (alone, one request, only when
  a ``상태`` changes and no customer cell does), at the rows that still hold what was
  judged (``gsheets_status.py``: the tabs are re-read with the key column, or by one
  values.batchGet when no customer cell is written).
- **Render options.** Values are read as ``FORMATTED_VALUE``: cells arrive as the
  operator sees them, so leading zeros survive (text ``007`` or a ``000`` format) and
  dates come as Korean display forms (``2025. 6. 1``, ``2025. 6. 1 오후 3:04:05``) that
  the field parsers accept, as they accept serial numbers typed as plain numbers.
  ``UNFORMATTED_VALUE`` would turn ``007`` into 7.
- **Writes by key, verified.** Rows are never addressed by the position seen at read
  time: the key and written columns are re-read right before writing, every update
  goes to the row that holds its key *then*, and the same columns are read again
  right after writing to repair cells that rows moving in flight put elsewhere
  (``gsheets_write.py`` says how). Writes are RAW, so ``=HYPERLINK(...)`` stays text.
- **Quotas and faults.** Every API request passes one ``SheetsAdapter``
  (``gsheets_transport.py``): the table's pacer keeps it under 55 requests in any
  minute, and 429s, 5xx (JSON or HTML bodies), timeouts and dropped connections are
  retried with bounded, jittered exponential backoff (``sheetcrm.http``). The pacer
  belongs to the table, and a daemon keeps its table, so the pace holds across its
  runs. Two tables on one service account (two configs in one process) each keep
  their own pace: together they may pass 60 a minute and meet 429s, which the retries
  ride out; give both the same ``Pacer`` to share the quota instead.
- **Endpoint.** ``endpoint`` reroutes the Sheets, OAuth and IAM hosts (emulators,
  proxies). The service-account file's ``token_uri`` is honoured.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from gspread.exceptions import APIError
from gspread.urls import SPREADSHEET_VALUES_BATCH_UPDATE_URL

from sheetcrm.config.table import GoogleSheetsSettings, parse_spreadsheet
from sheetcrm.errors import BackendError
from sheetcrm.http import HttpOptions
from sheetcrm.i18n import _
from sheetcrm.model import CellUpdate, Snapshot, WriteReport
from sheetcrm.table.base import TableContext, column_positions
from sheetcrm.table.gsheets_account import (
    CREDENTIALS_ENV,
    credentials,
    credentials_path,
    load_service_account,
)
from sheetcrm.table.gsheets_errors import (
    Access,
    beyond_grid,
    explain,
    too_large,
    unparsable_range,
)
from sheetcrm.table.gsheets_status import Identity, status_cells
from sheetcrm.table.gsheets_tab import TabCell, tab_requests, tab_titles
from sheetcrm.table.gsheets_transport import (
    DEFAULT_RETRY,
    SheetsAdapter,
    Worksheet,
    build_client,
    last_metadata,
    pick_worksheet,
    quota_pacer,
    refresh_grid,
)
from sheetcrm.table.gsheets_write import (
    Check,
    Layout,
    Plan,
    a1,
    bodies,
    check_rows,
    column_letter,
    place,
    positions,
    vertical_runs,
    written_columns,
)

__all__ = ["CREDENTIALS_ENV", "DEFAULT_RETRY", "GoogleSheetsTable", "column_letter",
           "load_service_account", "parse_spreadsheet", "quota_pacer"]

T = TypeVar("T")

DEFAULT_TIMEOUT = (10.0, 60.0)  # (connect, read) seconds, on every request
#: A write body above this is split into several batchUpdates (the API refuses bodies
#: of about 10 MB; the first run over 100k Korean rows, about 8 MB, still fits in one).
MAX_REQUEST_BYTES = 9_000_000
MIN_REQUEST_BYTES = 4096  # halving a refused body stops here
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


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class SheetPlace:
    """Which tab and which row holds the header: the first tab and row 1 unless said."""

    worksheet: str | None = None  # the tab's title
    gid: int | None = None  # the tab's id (from a pasted URL's #gid=)
    header_row: int = 1


class GoogleSheetsTable:
    """A customer table in one worksheet of a Google spreadsheet.

    ``service_account_info`` is the parsed service-account JSON. ``worksheet`` is a
    title; ``gid`` a sheet id (from a URL's ``#gid=``); neither means the first
    worksheet. ``pacer`` defaults to one of the table's own at the quota (see the
    module docstring for two tables on one service account), ``retry`` to
    ``DEFAULT_RETRY``; retries wait on the pacer's clock. ``requests`` counts the Sheets
    API requests sent, retries included (a 401 that google-auth answers by refreshing
    the token and replaying counts as the two requests it is); token requests are not
    counted.
    """

    def __init__(self, spreadsheet_id: str, service_account_info: Mapping[str, Any], *,
                 place: SheetPlace = SheetPlace(), http: HttpOptions = HttpOptions(),
                 max_request_bytes: int = MAX_REQUEST_BYTES,
                 credentials_path: str = "", tabs: tuple[str, ...] = ()) -> None:
        signed = credentials(service_account_info, credentials_path)
        endpoint = http.endpoint
        timeout = http.timeout or DEFAULT_TIMEOUT
        self.spreadsheet_id = spreadsheet_id
        self.worksheet = place.worksheet
        self.gid = place.gid
        self.header_row = place.header_row
        self.client_email: str = signed.service_account_email
        self.token_uri = str(service_account_info.get("token_uri", ""))
        self.project_id = str(service_account_info.get("project_id", ""))
        self.credentials_path = credentials_path
        self.timeout = timeout
        self.max_request_bytes = max_request_bytes
        self.pacer = http.pacer or quota_pacer()
        self.retry = http.retry or DEFAULT_RETRY
        self._transport = SheetsAdapter(endpoint, self.pacer, self.retry)
        self._client = build_client(signed, endpoint, timeout, self._transport)
        self.tabs = tabs  # rule tabs ([rules]), read in the same values.batchGet
        self._titles: set[str] = set()  # every tab's title, from the last metadata read
        self._staged: dict[str, dict[Identity, list[str]]] = {}  # rule tab -> statuses
        self._tabs_now: dict[str, list[list[str]]] = {}  # staged tabs, re-read to write
        self._sheet: Worksheet | None = None
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
        path = credentials_path(settings.credentials, context)
        place = SheetPlace(settings.worksheet, gid, settings.header_row)
        return cls(key, load_service_account(path), place=place,
                   http=HttpOptions(endpoint=settings.endpoint), credentials_path=str(path),
                   tabs=context.tabs)

    # -- the Table protocol ---------------------------------------------------------

    @property
    def requests(self) -> int:
        """API requests sent by this table so far, retries included."""
        return self._transport.attempts

    @property
    def request_counts(self) -> dict[str, int]:
        """Requests sent so far, by kind (``values.get``, ``values.batchUpdate``, ...)."""
        return dict(self._transport.counts)

    @property
    def source(self) -> str:
        """Where the table is, for messages."""
        title = self._sheet.title if self._sheet else self.worksheet
        url = f"https://docs.google.com/spreadsheets/d/{self.spreadsheet_id}"
        if title:
            return _("worksheet {title!r} of {url}", title=title, url=url)
        return _("first worksheet of {url}", url=url)

    def read(self) -> Snapshot:
        """Header (row ``header_row``) and non-blank rows below it, in one values request."""
        if self.tabs and self._sheet is not None and not set(self.tabs) <= self._titles:
            self._sheet = None  # a rule tab missing: look again whether it was added since
        data, tabs = self._sheet_call(_("reading the cells"),
                                      lambda sheet: self._read_values(sheet))
        rows: list[list[str]] = data.get("values", [])
        h = self.header_row
        header = [cell.strip() for cell in rows[h - 1]] if len(rows) >= h else []
        # Blank rows are left out, and still counted: the grid's row numbers.
        kept = [n for n in range(h, len(rows)) if any(cell.strip() for cell in rows[n])]
        body = [rows[n] for n in kept]
        self._header = header
        self._width = max(map(len, body), default=0)
        self._tabs_now = {}
        return Snapshot(header=header, rows=body, source=self.source,
                        lines=[n + 1 for n in kept], tabs=tabs)

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
        for _plan in range(MAX_PLANS):
            report = WriteReport()
            plan = self._plan(key_column, updates, report)
            if not plan.cells:
                break
            if self._send(plan.cells):
                self._settle(key_column, plan, report)
                break
        else:
            raise BackendError(_(
                "{source}: rows were deleted while writing, {times} times in a row, and every "
                "write went past the sheet's last row; nothing was written. Leave the rows in "
                "place for a moment and run sync again", source=self.source, times=MAX_PLANS))
        report.requests = self.requests - before
        return report

    def write_tab(self, title: str, rows: list[list[TabCell]]) -> int:
        """Make tab ``title`` hold exactly ``rows`` (added if missing): one metadata read,
        then one ``spreadsheets.batchUpdate`` (``gsheets_tab.py``). Returns the requests
        spent. The customer worksheet is not touched."""
        before = self.requests

        def write() -> None:
            spreadsheet = self._client.open_by_key(self.spreadsheet_id)
            spreadsheet.batch_update(tab_requests(last_metadata(self._client), title, rows))

        self._call(_("writing the tab {title!r}", title=title), write)
        return self.requests - before

    def tab_titles(self) -> list[str]:
        """The titles of the spreadsheet's tabs, from its metadata (one request)."""
        def titles() -> list[str]:
            self._client.open_by_key(self.spreadsheet_id)
            return tab_titles(last_metadata(self._client))

        return self._call(_("reading the tabs"), titles)

    # -- requests ---------------------------------------------------------------------

    def _worksheet(self) -> Worksheet:
        """The worksheet's metadata: one request the first time, then cached."""
        if self._sheet is None:
            spreadsheet = self._call(_("opening the spreadsheet"),
                                     lambda: self._client.open_by_key(self.spreadsheet_id))
            metadata = last_metadata(self._client)
            self._sheet = pick_worksheet(spreadsheet, metadata, title=self.worksheet,
                                         gid=self.gid)
            self._titles = {str(s.get("properties", {}).get("title"))
                            for s in metadata.get("sheets", [])}
        return self._sheet

    def _read_values(self, sheet: Worksheet
                     ) -> tuple[dict[str, Any], dict[str, list[list[str]]]]:
        """The customer tab's values, and the rule tabs' in the same request."""
        tabs = [tab for tab in self.tabs if tab in self._titles and tab != sheet.title]
        if not tabs:
            data = sheet.spreadsheet.values_get(a1(sheet.title), params=dict(_READ_PARAMS))
            refresh_grid(sheet, data.get("range", ""), rows=True)
            return data, {}
        ranges = [a1(sheet.title), *(a1(tab) for tab in tabs)]
        got = sheet.spreadsheet.values_batch_get(ranges, params=dict(_READ_PARAMS))
        answers = got.get("valueRanges", [])
        data = answers[0] if answers else {}
        refresh_grid(sheet, data.get("range", ""), rows=True)
        return data, {tab: [[str(cell) for cell in row] for row in answer.get("values", [])]
                      for tab, answer in zip(tabs, answers[1:], strict=False)}

    def stage_tab_statuses(self, tab: str, statuses: dict[Identity, list[str]]) -> None:
        """The ``상태`` of a rule tab's rows, by row content, to send with the next
        write's values.batchUpdate (or by ``flush_tab_cells`` when it sends none)."""
        self._staged[tab] = statuses

    def flush_tab_cells(self) -> int:
        """Send the staged rule-tab cells no write took along; the requests spent."""
        if not self._staged:
            return 0
        before = self.requests
        if set(self._staged) - set(self._tabs_now):  # no write re-read them
            self._read_columns([], _("reading the rule tabs"))
        self._send({})
        return self.requests - before

    def _plan(self, key_column: str, updates: list[CellUpdate], report: WriteReport) -> Plan:
        """Read the rows as they are now and place every update (grows the grid if needed)."""
        names = written_columns(updates)
        layout = self._layout(key_column, names, positions(self._header, [key_column, *names]),
                              "re-reading the header and key column")
        columns, added = column_positions(layout.header, max(len(layout.header), self._width),
                                          updates, self.source)
        report.columns_added = added
        plan = place(layout, key_column, updates, columns, self.header_row, report)
        for name in added:
            plan.cells[(self.header_row, columns[name])] = name
        if plan.cells:
            needed = max(column for _row, column in plan.cells) + 1
            if needed > layout.columns:
                self._grow(needed - layout.columns)
        return plan

    def _settle(self, key_column: str, plan: Plan, report: WriteReport) -> None:
        """Check the rows right after writing; repair what moved; report what is gone."""
        repaired: dict[str, None] = {}
        placed = (plan.before.keys, plan.positions)  # the rows the last write was placed by
        check = Check({}, [], [], [])  # as they were then: every written key on one row
        for attempt in range(MAX_REPAIRS + 1):
            now = self._layout(key_column, plan.names, plan.positions,
                               _("checking the rows after writing"))
            lost = [name for name in plan.names if name not in now.positions]
            if lost:
                raise BackendError(_(
                    "{source}: column {column!r} left the header row (row {row}) while "
                    "writing, so the cells written under it cannot be checked; put the header "
                    "back and run sync again", source=self.source, column=lost[0],
                    row=self.header_row))
            if (now.keys, now.positions) == placed:  # nothing moved: every cell landed
                check = Check({}, [], check.missing, check.ambiguous)
                break
            check = check_rows(now, plan, self.header_row)
            if not check.fixes:
                break
            if attempt == MAX_REPAIRS:
                keys = (", ".join(repr(k) for k in check.moved[:5])
                        or _("rows without a key"))
                raise BackendError(_(
                    "{source}: rows kept moving (sorted, inserted or deleted) while writing; "
                    "after {repairs} repairs {cells} cells still hold another row's values "
                    "({keys}). Leave the rows in place for a moment and run sync again: it "
                    "rewrites every owned cell that differs", source=self.source,
                    repairs=MAX_REPAIRS, cells=len(check.fixes), keys=keys))
            repaired.update(dict.fromkeys(check.moved))
            names = {column: name for name, column in now.positions.items()}
            for (_key, column), value in check.fixes.items():
                plan.sent.setdefault(names[column], set()).add(value)
            plan.positions = now.positions
            placed = (now.keys, now.positions)
            self._send(check.fixes)  # refused only if rows went past the grid: checked next
        report.missing_keys = list(dict.fromkeys([*report.missing_keys, *check.missing]))
        report.ambiguous_keys = list(dict.fromkeys([*report.ambiguous_keys, *check.ambiguous]))
        report.repaired_keys = [key for key in repaired if key not in check.missing]

    def _layout(self, key_column: str, names: list[str], guess: dict[str, int],
                action: str) -> Layout:
        """Header, key column and ``names`` now: one values.batchGet at the guessed
        columns, one more for each column found elsewhere in the header."""
        wanted = list(dict.fromkeys([key_column, *names]))
        for _read in range(MAX_HEADER_READS):
            asked = {name: guess[name] for name in wanted if name in guess}
            header, cells = self._read_columns(sorted(set(asked.values())), action)
            found = positions(header, wanted)
            if key_column not in found:
                raise BackendError(_("{source}: key column {column!r} is not in the header "
                                     "(row {row})", source=self.source, column=key_column,
                                     row=self.header_row))
            if all(asked.get(name) == column for name, column in found.items()):
                break
            guess = found
        else:
            raise BackendError(_("{source}: the header row (row {row}) kept changing while "
                                 "{action}; leave the columns in place for a moment and run "
                                 "sync again", source=self.source, row=self.header_row,
                                 action=action))
        self._header = header
        keys = [cell.strip() for cell in cells.get(found[key_column], [])]
        return Layout(header, keys, {name: cells.get(found[name], []) for name in names
                                     if name in found}, found, self._worksheet().columns)

    def _read_columns(self, columns: list[int], action: str
                      ) -> tuple[list[str], dict[int, list[str]]]:
        """The header row and the cells below it in ``columns``, in one values.batchGet.

        Columns past the grid's edge hold nothing and are not asked for.
        """
        def fetch(sheet: Worksheet) -> tuple[list[int], list[dict[str, Any]]]:
            h = self.header_row
            ranges = [a1(sheet.title, f"{h}:{h}")]
            asked = [c for c in columns if c < sheet.columns] if sheet.rows > h else []
            for column in asked:
                letter = column_letter(column)
                ranges.append(a1(sheet.title, f"{letter}{h + 1}:{letter}"))
            ranges += [a1(tab) for tab in self._staged]  # the rule tabs' 상태, placed now
            got = sheet.spreadsheet.values_batch_get(ranges, params=dict(_READ_PARAMS))
            answers = got.get("valueRanges", [])
            refresh_grid(sheet, answers[0].get("range", "") if answers else "", rows=False)
            return asked, answers

        asked, answers = self._sheet_call(action, fetch)
        self._tabs_now.update({tab: [[str(cell) for cell in row] for row in a.get("values", [])]
                               for tab, a in zip(self._staged, answers[1 + len(asked):],
                                                 strict=False)})
        header_rows = answers[0].get("values", []) if answers else []
        header = [cell.strip() for cell in header_rows[0]] if header_rows else []
        cells = {column: [str(row[0]) if row else "" for row in answer.get("values", [])]
                 for column, answer in zip(asked, answers[1:], strict=False)}
        return header, cells

    def _grow(self, columns: int) -> None:
        """Add ``columns`` columns at the right of the grid (writes past it would fail)."""
        def grow(sheet: Worksheet) -> None:
            sheet.spreadsheet.batch_update({"requests": [{"appendDimension": {
                "sheetId": sheet.sheet_id, "dimension": "COLUMNS", "length": columns}}]})
            sheet.columns += columns

        self._sheet_call(_("adding columns"), grow)

    def _send(self, cells: dict[tuple[int, int], str]) -> bool:
        """One values.batchUpdate, RAW (more only for bodies past ``max_request_bytes``).

        The body is UTF-8 JSON built here rather than by ``json=``, which escapes every
        Hangul syllable as 6 bytes: UTF-8 takes 3, so 100k rows of Korean writeback
        fit in one request instead of two. False when the API refused it because a
        cell now lies past the grid (rows deleted meanwhile): the caller reads again.
        """
        def send(sheet: Worksheet) -> bool:
            url = SPREADSHEET_VALUES_BATCH_UPDATE_URL % sheet.spreadsheet.id
            limit = self.max_request_bytes
            while True:
                try:
                    tabs = {tab: vertical_runs(status_cells(self._tabs_now.get(tab, []), said))
                            for tab, said in self._staged.items()}
                    for body in bodies(vertical_runs(cells), sheet.title, limit, tabs):
                        self._client.http_client.request("post", url, data=body,
                                                         headers=_JSON_UTF8)
                    self._staged = {}
                    return True
                except APIError as exc:  # refused as too large: halve (writes are idempotent)
                    if beyond_grid(exc):
                        return False
                    if not too_large(exc) or limit <= MIN_REQUEST_BYTES:
                        raise
                    limit //= 2

        return self._sheet_call(_("writing the cells"), send)

    def _sheet_call(self, action: str, fn: Callable[[Worksheet], T]) -> T:
        """Run ``fn`` on the worksheet; if its cached title no longer parses (renamed or
        deleted since a daemon cached it), fetch the metadata again and retry once."""
        cached = self._sheet is not None
        sheet = self._worksheet()
        try:
            return fn(sheet)
        except APIError as exc:
            if not (cached and unparsable_range(exc)):
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

    def _error(self, exc: BaseException, action: str) -> BackendError:
        access = Access(self.spreadsheet_id, self.client_email, self.project_id,
                        self.credentials_path, self.token_uri)
        return explain(exc, action, where=f"Google Sheets ({self.source})", access=access,
                       read_timeout=self.timeout[1], attempts=self._transport.last_attempts)
