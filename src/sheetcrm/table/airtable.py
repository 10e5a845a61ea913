"""Airtable backend: the real pyairtable client, kept inside Airtable's rate limits.

The table interface speaks text, so records are turned into rows of cells the way an
operator reads them in Airtable (a checked box is ``TRUE``, an unchecked one is blank,
a multiple select is ``a, b``), and sheetcrm's typed-field parsers do the rest.

Airtable allows 5 requests per second per base and, after a 429, refuses every call
for 30 seconds. pyairtable's default retry gives up after about 3 seconds, so this
module installs its own: every HTTP attempt (first tries and urllib3's retries alike)
passes through one pacer per base, which spaces requests under the limit and holds
all traffic back for at least 30 s (or ``Retry-After``) after a 429. The clock and
the sleep are injected, so tests run the 30-second penalties in virtual time.

Writes find records by key at write time: the key field is listed again (pages of
100), then only the cells that still differ are sent with ``batch_update``, 10 records
per request, ``typecast=True``. When a request fails after earlier ones succeeded the
error says how many records were written; the next run recomputes the projection from
the ledger and writes what is still different, so nothing is sent twice.

Plans also cap the API calls a workspace makes per month (Free: 1,000). A call over
the cap answers 429 too, with ``PUBLIC_API_BILLING_LIMIT_EXCEEDED``: waiting 30 s does
not help, so that answer is never retried and says what to do.
``monthly_budget_warning`` estimates what the configured schedule spends per month,
so ``check`` can say so before the cap is hit.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pyairtable import Api
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from requests.exceptions import (
    ConnectionError as RequestsConnectionError,
)
from requests.exceptions import (
    ConnectTimeout,
    HTTPError,
    ReadTimeout,
    RequestException,
    RetryError,
    Timeout,
)
from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from sheetcrm.config.table import AirtableSettings
from sheetcrm.errors import BackendError, ConfigError
from sheetcrm.model import CellUpdate, Snapshot, WriteReport
from sheetcrm.table.base import TableContext

if TYPE_CHECKING:
    from pyairtable.api.table import Table as ApiTable
    from pyairtable.api.types import UpdateRecordDict, WritableFields
    from urllib3.response import BaseHTTPResponse

    from sheetcrm.config import Config

__all__ = ["AirtableError", "AirtableTable", "Clock", "Pacer", "cell_text", "default_clock",
           "monthly_budget_warning", "requests_per_run", "runs_per_month"]

T = TypeVar("T")

DEFAULT_ENDPOINT = "https://api.airtable.com"
TOKEN_ENV = "AIRTABLE_TOKEN"
#: A pseudo-column holding each record's id (``recXXXXXXXXXXXXXX``); a field whose
#: column is ``_id`` makes the record id the row key.
RECORD_ID_COLUMN = "_id"

PAGE_SIZE = 100  # Airtable's maximum page
BATCH_SIZE = 10  # Airtable's maximum records per write request
REQUESTS_PER_SECOND = 4.5  # Airtable allows 5 per base; keep a margin
RATE_LIMIT_PENALTY = 30.0  # seconds Airtable refuses every call after a 429
MAX_WAIT = 300.0  # cap on a Retry-After we honour
TIMEOUT = (5.0, 30.0)  # (connect, read) seconds, on every request
MAX_RETRIES = 6  # per request: 6 x 30 s covers a long 429 storm, and then gives up
RETRY_STATUSES = (429, 500, 502, 503, 504)
MONTHLY_CAP = "PUBLIC_API_BILLING_LIMIT_EXCEEDED"  # the 429 of the monthly call cap
FREE_PLAN_CALLS = 1_000  # API calls per workspace per month on the Free plan
MONTH = timedelta(days=30)

#: Field type to create in Airtable for each owned (writeback) column.
SUGGESTED_TYPES = {
    "tags": "single line text",
    "flow": "long text",
    "last_sent": "single line text",
    "error": "long text",
}

_UNKNOWN_FIELD = re.compile(r'Unknown field name: "(.*)"', re.DOTALL)
_TOO_MANY = re.compile(r"too many (\d{3}) error responses")


# --------------------------------------------------------------------------- time


class Clock:
    """Where pacing reads the time and waits: the system clock, or a virtual one in tests.

    It also holds the pacer of every base, so all tables of one base (the runner opens
    one to read and another to write) share a pace and a 429 penalty.
    """

    def __init__(
        self,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.now = now
        self.sleep = sleep
        self._pacers: dict[tuple[str, str], Pacer] = {}
        self._lock = threading.Lock()

    def pacer(self, endpoint: str, base: str) -> Pacer:
        """The one pacer of ``base`` at ``endpoint``."""
        with self._lock:
            key = (endpoint, base)
            if key not in self._pacers:
                self._pacers[key] = Pacer(self)
            return self._pacers[key]


#: The clock ``from_settings`` uses; tests replace it with a virtual one.
default_clock = Clock()


class Pacer:
    """Spaces one base's requests under its rate limit and holds off after a 429."""

    def __init__(self, clock: Clock, per_second: float = REQUESTS_PER_SECOND) -> None:
        self.clock = clock
        self.interval = 1.0 / per_second
        self._next = -math.inf  # earliest start of the next request
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until the next request may start, and book its slot."""
        with self._lock:
            delay = self._next - self.clock.now()
            if delay > 0:
                self.clock.sleep(delay)
            self._next = self.clock.now() + self.interval

    def hold(self, seconds: float) -> None:
        """No request before ``seconds`` from now (a 429 penalty, a backoff)."""
        with self._lock:
            self._next = max(self._next, self.clock.now() + seconds)


class _Gate:
    """Every HTTP attempt of one table passes here: paced for the base, and counted."""

    def __init__(self, pacer: Pacer) -> None:
        self.pacer = pacer
        self.attempts = 0

    def enter(self) -> None:
        self.pacer.wait()
        self.attempts += 1


class _PacedRetry(Retry):
    """urllib3's Retry, waiting through the pacer instead of ``time.sleep``.

    A 429 holds the base for at least 30 s (longer if ``Retry-After`` says so), and
    the hold is booked in ``increment`` so it applies even when the retries run out
    and the next call comes from another request or another table of the base.
    """

    gate: _Gate | None = None

    def new(self, **kw: Any) -> _PacedRetry:
        retry = super().new(**kw)
        retry.gate = self.gate
        return retry

    def increment(self, method: str | None = None, url: str | None = None,
                  response: BaseHTTPResponse | None = None, error: Exception | None = None,
                  _pool: Any = None, _stacktrace: Any = None) -> _PacedRetry:
        if response is not None and response.status == 429:
            kind, detail = _error_parts(response.read(decode_content=True))
            if kind == MONTHLY_CAP:  # no retry, no 30 s wait: the month's calls are spent
                raise _MonthlyCapReached(detail)
            if self.gate is not None:
                wait = max(RATE_LIMIT_PENALTY, self._retry_after(response) or 0.0)
                self.gate.pacer.hold(min(wait, MAX_WAIT))
        return super().increment(method, url, response, error, _pool, _stacktrace)  # type: ignore[return-value]

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        """Wait for the retry's turn: a 429's hold is booked already; otherwise honour
        ``Retry-After`` (a 503 may send one) or back off exponentially."""
        assert self.gate is not None
        if response is None or response.status != 429:
            after = self._retry_after(response) if response is not None else None
            backoff = after if after is not None else self.get_backoff_time()
            self.gate.pacer.hold(min(backoff, MAX_WAIT))
        self.gate.enter()

    def _retry_after(self, response: BaseHTTPResponse) -> float | None:
        try:
            return self.get_retry_after(response)
        except InvalidHeader:
            return None


class _PacedAdapter(HTTPAdapter):
    """Paces and counts the first attempt of each request (retries pass the Retry)."""

    def __init__(self, gate: _Gate, retry: Retry) -> None:
        self.gate = gate
        super().__init__(max_retries=retry)

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        self.gate.enter()
        return super().send(request, *args, **kwargs)


# --------------------------------------------------------------------------- values


def cell_text(value: Any) -> str:
    """An Airtable cell value as the text sheetcrm's typed fields parse.

    Checkbox true is ``TRUE`` (false is absent from records: blank); numbers are
    plain (``149000``, ``12.5``); dates and date-times stay ISO 8601 as Airtable sends
    them; selects, links, lookups and attachments become items joined by ``", "``.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number_text(value)
    if isinstance(value, list):
        return ", ".join(text for text in map(cell_text, value) if text)
    if isinstance(value, dict):
        return _object_text(value)
    return str(value)


def _number_text(value: float) -> str:
    """``149000.0`` -> ``149000``; NaN and infinity (formula errors) are blank."""
    if not math.isfinite(value):
        return ""
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


_OBJECT_KEYS = ("filename", "name", "text", "value", "label", "email", "url", "error")


def _object_text(value: dict[str, Any]) -> str:
    """Attachments by file name, collaborators by name, barcodes by text, AI text by value."""
    if "specialValue" in value:
        return ""
    for key in _OBJECT_KEYS:
        if value.get(key) not in (None, ""):
            return cell_text(value[key])
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# --------------------------------------------------------------------------- errors


class AirtableError(BackendError):
    """An Airtable request failed. ``status`` and ``kind`` come from the response."""

    def __init__(self, message: str, *, status: int | None = None, kind: str = "",
                 detail: str = "") -> None:
        self.status = status
        self.kind = kind  # Airtable's error type, e.g. UNKNOWN_FIELD_NAME
        self.detail = detail  # Airtable's message
        super().__init__(message)


class AirtableWriteError(AirtableError):
    """A write stopped part way; ``report`` says what was written before it stopped."""

    def __init__(self, message: str, cause: AirtableError, report: WriteReport) -> None:
        super().__init__(message, status=cause.status, kind=cause.kind, detail=cause.detail)
        self.report = report


class _MonthlyCapReached(Exception):
    """A 429 ``PUBLIC_API_BILLING_LIMIT_EXCEEDED``, raised out of the retry to stop it."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _error_body(response: Response | None) -> tuple[str, str]:
    """Airtable's error type and message from any of its three body shapes."""
    if response is None:
        return "", ""
    return _error_parts(response.content)


def _error_parts(data: bytes) -> tuple[str, str]:
    """Airtable's error type and message from a response body."""
    try:
        body = json.loads(data)
    except ValueError:
        return "", data[:200].decode("utf-8", "replace").strip()
    if not isinstance(body, dict):
        return "", ""
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("type", "")), str(error.get("message", ""))
    if isinstance(error, str):
        return error, str(body.get("message", ""))
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("error", "")), str(errors[0].get("message", ""))
    return "", ""


# --------------------------------------------------------------------------- table


class AirtableTable:
    """A customer table in an Airtable base, read and written through pyairtable.

    ``columns`` are the fields to read, in snapshot order (``_id`` is the record id);
    ``owned`` maps the columns sheetcrm writes to the field type suggested when they
    are missing. ``requests`` counts every HTTP attempt this table made, retries
    included.
    """

    def __init__(
        self,
        *,
        token: str,
        base: str,
        table: str,
        columns: Sequence[str],
        owned: Mapping[str, str] | None = None,
        view: str | None = None,
        endpoint: str = DEFAULT_ENDPOINT,
        clock: Clock | None = None,
        timeout: tuple[float, float] = TIMEOUT,
        max_retries: int = MAX_RETRIES,
    ) -> None:
        self.base = base
        self.table = table
        self.view = view
        self.endpoint = endpoint
        self.columns = list(dict.fromkeys(columns))
        self.owned = dict(owned or {})
        self.timeout = timeout
        clock = clock or default_clock
        self._gate = _Gate(clock.pacer(endpoint, base))
        self._api_table = self._connect(token, max_retries)

    @classmethod
    def from_settings(cls, settings: AirtableSettings, context: TableContext, *,
                      clock: Clock | None = None) -> AirtableTable:
        """The table of ``[table] backend = "airtable"`` (validated at load).

        The token is ``[table] token`` (normally ``"${AIRTABLE_TOKEN}"``) or, when that
        is unset, the environment variable ``AIRTABLE_TOKEN``; a missing or malformed
        one is a ConfigError naming ``table.token``. It never appears in a message.
        """
        columns, owned = _columns(context)
        secret = settings.token.get_secret_value() if settings.token is not None else None
        token = _token(secret, context.env)
        return cls(token=token, base=settings.base, table=settings.table, columns=columns,
                   owned=owned, view=settings.view,
                   endpoint=settings.endpoint or DEFAULT_ENDPOINT, clock=clock)

    def __repr__(self) -> str:  # never the token
        return f"<AirtableTable {self.source}>"

    @property
    def source(self) -> str:
        """Where the table lives, for messages."""
        view = f" view {self.view!r}" if self.view else ""
        return f"Airtable base {self.base} table {self.table!r}{view}"

    @property
    def requests(self) -> int:
        """HTTP requests made so far, every retry included."""
        return self._gate.attempts

    # -- the Table protocol ----------------------------------------------------------

    def read(self) -> Snapshot:
        """All records of the table (or view), the configured fields only, as text.

        A configured field missing from the table is left out of the header (sheetcrm
        then names it), but a missing owned field is an error now, before anything is
        sent: Airtable cannot create fields through the records API.
        """
        records, missing = self._list(self._field_names(self.columns))
        self._require(missing, [c for c in self.columns if c in self.owned])
        header = [column for column in self.columns if column not in missing]
        rows = [self._row(record, header) for record in records]
        return Snapshot(header=header, rows=rows, source=self.source)

    def write(self, key_column: str, updates: list[CellUpdate]) -> WriteReport:
        """Apply ``updates`` to the records holding their keys now.

        The key field and the written fields are listed again, so a record sorted,
        deleted or re-keyed since ``read`` is never misdirected and only cells that
        still differ are sent. Missing and duplicate keys are reported, not written.
        """
        if not updates:
            return WriteReport()
        started = self.requests
        key = key_column.strip()
        columns = list(dict.fromkeys(update.column.strip() for update in updates))
        self._check_writable(columns)
        records, missing = self._list(self._field_names([key, *columns]))
        if key in missing:
            raise AirtableError(f"{self.source}: the key field {key!r} is not in the table")
        self._require(missing, columns)
        report = WriteReport()
        changes = self._changes(records, key, updates, report)
        try:
            self._update(changes, report)
        finally:
            report.requests = self.requests - started
        return report

    # -- reading ---------------------------------------------------------------------

    def _list(self, fields: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
        """Every record with ``fields`` (pages of 100), and the fields the table lacks.

        Airtable answers a listing that names an unknown field with a 422 naming it;
        that field is dropped and the listing asked again (once per missing field).
        """
        missing: list[str] = []
        while True:
            options: dict[str, Any] = {"page_size": PAGE_SIZE, "fields": fields}
            if self.view:
                options["view"] = self.view
            try:
                records = self._call("list records", partial(self._api_table.all, **options))
            except AirtableError as exc:
                name = _unknown_field(exc)
                if name is None or name not in fields:
                    raise
                missing.append(name)
                fields = [f for f in fields if f != name]
                continue
            return cast("list[dict[str, Any]]", records), missing

    def _row(self, record: dict[str, Any], header: list[str]) -> list[str]:
        fields = record.get("fields", {})
        return [record["id"] if column == RECORD_ID_COLUMN else cell_text(fields.get(column))
                for column in header]

    def _require(self, missing: list[str], needed: list[str]) -> None:
        """Fail with what to create when fields sheetcrm writes are not in the table."""
        absent = [column for column in needed if column in missing]
        if not absent:
            return
        wanted = ", ".join(f"{c!r} ({self.owned.get(c, 'single line text')})" for c in absent)
        others = [c for c in missing if c not in absent]
        also = f" Also missing: {', '.join(map(repr, others))}." if others else ""
        raise AirtableError(
            f"{self.source} has no field {', '.join(map(repr, absent))}, which sheetcrm "
            f"writes. Airtable cannot create fields through the records API: add them to "
            f"the table with these types, then run again: {wanted}.{also}"
        )

    @staticmethod
    def _field_names(columns: Sequence[str]) -> list[str]:
        """Fields to ask for: the record id is not a field."""
        return [c for c in dict.fromkeys(columns) if c != RECORD_ID_COLUMN]

    # -- writing ---------------------------------------------------------------------

    def _check_writable(self, columns: list[str]) -> None:
        if "" in columns:
            raise AirtableError(f"{self.source}: an update names a blank column")
        if RECORD_ID_COLUMN in columns:
            raise AirtableError(f"{self.source}: {RECORD_ID_COLUMN!r} is the record id; "
                                "it cannot be written")

    def _changes(self, records: list[dict[str, Any]], key: str, updates: list[CellUpdate],
                 report: WriteReport) -> list[UpdateRecordDict]:
        """``batch_update`` payloads for the cells that differ, per record found by key."""
        ids_by_key: dict[str, list[str]] = {}
        current: dict[str, dict[str, Any]] = {}
        for record in records:
            current[record["id"]] = fields = record.get("fields", {})
            value = record["id"] if key == RECORD_ID_COLUMN else cell_text(fields.get(key))
            if value.strip():
                ids_by_key.setdefault(value.strip(), []).append(record["id"])
        patches: dict[str, WritableFields] = {}
        missing: dict[str, None] = {}
        ambiguous: dict[str, None] = {}
        for update in updates:
            ids = ids_by_key.get(update.key.strip(), []) if update.key.strip() else []
            if len(ids) != 1:
                (ambiguous if ids else missing)[update.key] = None
                continue
            column = update.column.strip()
            if cell_text(current[ids[0]].get(column)) != update.value:
                # None clears a field of any type; text goes as text, typecast does the rest.
                patches.setdefault(ids[0], {})[column] = update.value or None
        report.missing_keys = list(missing)
        report.ambiguous_keys = list(ambiguous)
        return [{"id": record_id, "fields": fields} for record_id, fields in patches.items()]

    def _update(self, changes: list[UpdateRecordDict], report: WriteReport) -> None:
        """Send ``changes`` 10 records per request; on failure say how far it got."""
        for chunk in _chunks(changes, BATCH_SIZE):
            try:
                self._call("update records",
                           partial(self._api_table.batch_update, chunk, typecast=True))
            except AirtableError as exc:
                raise AirtableWriteError(
                    f"{exc} — {report.rows_written} of {len(changes)} records were written "
                    f"before this; the next run writes the rest", exc, report) from exc
            report.rows_written += len(chunk)
            report.cells_written += sum(len(change["fields"]) for change in chunk)

    # -- HTTP --------------------------------------------------------------------------

    def _connect(self, token: str, max_retries: int) -> ApiTable:
        """A pyairtable table whose session is paced, bounded and timed out."""
        retry = _PacedRetry(
            total=max_retries, connect=2, read=1, status_forcelist=RETRY_STATUSES,
            allowed_methods=None,  # 429 means not processed; our PATCHes are idempotent
            backoff_factor=0.5, respect_retry_after_header=True, raise_on_status=True,
        )
        retry.gate = self._gate
        api = Api(token, timeout=self.timeout, retry_strategy=retry,  # type: ignore[arg-type]
                  endpoint_url=self.endpoint)
        adapter = _PacedAdapter(self._gate, retry)
        api.session.mount("https://", adapter)
        api.session.mount("http://", adapter)
        return api.table(self.base, self.table)

    def _call(self, action: str, call: Callable[[], T]) -> T:
        """Run one pyairtable call; every failure becomes an AirtableError."""
        try:
            return call()
        except _MonthlyCapReached as exc:
            raise self._monthly_cap(action, exc.detail) from None
        except RetryError as exc:
            raise self._gave_up(action, exc) from None
        except HTTPError as exc:
            raise self._http_error(action, exc) from None
        except (Timeout, RequestsConnectionError) as exc:
            raise AirtableError(f"{self.source}: {action}: {self._unreachable(exc)}") from None
        except RequestException as exc:
            raise AirtableError(f"{self.source}: {action}: {type(exc).__name__}: {exc}") from None
        except (TypeError, ValueError, KeyError) as exc:  # a response pyairtable rejects
            raise AirtableError(f"{self.source}: {action}: unexpected response from "
                                f"{self.endpoint}: {type(exc).__name__}") from None

    def _unreachable(self, exc: RequestException) -> str:
        """Timeouts and connection failures, once urllib3's retries are spent."""
        text = str(exc)
        if isinstance(exc, ConnectTimeout) or "connect timeout" in text.lower():
            return f"cannot connect to {self.endpoint} within {self.timeout[0]:g} s"
        if isinstance(exc, ReadTimeout) or "read timed out" in text.lower():
            return f"Airtable did not answer within {self.timeout[1]:g} s, even when retried"
        return f"cannot connect to {self.endpoint} ({type(exc).__name__})"

    def _gave_up(self, action: str, exc: RetryError) -> AirtableError:
        """Retries ran out (a 429 storm, a 5xx outage)."""
        match = _TOO_MANY.search(str(exc))
        status = int(match.group(1)) if match else None
        what = ("kept answering 429 (rate limit)" if status == 429
                else f"kept answering {status}" if status else "kept failing")
        return AirtableError(
            f"{self.source}: {action}: Airtable {what} after {MAX_RETRIES} retries; "
            "try again later", status=status)

    def _http_error(self, action: str, exc: HTTPError) -> AirtableError:
        """One line saying what Airtable refused and what to check."""
        response = exc.response
        status = response.status_code if response is not None else None
        kind, detail = _error_body(response)
        if status == 429 and kind == MONTHLY_CAP:
            return self._monthly_cap(action, detail)
        if status == 429:
            self._gate.pacer.hold(RATE_LIMIT_PENALTY)
        said = f"{status} {kind}".strip() + (f": {detail}" if detail else "")
        hint = {
            401: "the token was refused; set AIRTABLE_TOKEN to a valid personal access token "
                 "(airtable.com/create/tokens)",
            403: f"check the table name or id {self.table!r} and that the token has the "
                 f"scopes data.records:read and data.records:write and access to base "
                 f"{self.base}",
            404: f"check the base id {self.base}, the table {self.table!r} and the endpoint "
                 f"{self.endpoint}",
        }.get(status or 0, "")
        message = f"{self.source}: {action}: Airtable answered {said}"
        return AirtableError(message + (f" — {hint}" if hint else ""), status=status,
                             kind=kind, detail=detail)


    def _monthly_cap(self, action: str, detail: str) -> AirtableError:
        """The workspace spent its monthly calls: what it means and what to do."""
        return AirtableError(
            f"{self.source}: {action}: Airtable answered 429 {MONTHLY_CAP}: the workspace "
            f"has used all of its API calls for this month (the Free plan allows "
            f"{FREE_PLAN_CALLS:,}), so sheetcrm can neither read nor write the table until "
            "the count resets next month. Wait for the next month, upgrade the workspace's "
            "plan, or run less often ([schedule] every or cron; docs/airtable.md says what a "
            "schedule costs)", status=429, kind=MONTHLY_CAP, detail=detail)


def _unknown_field(exc: AirtableError) -> str | None:
    """The field named by a 422 UNKNOWN_FIELD_NAME, if that is what ``exc`` is."""
    if exc.kind != "UNKNOWN_FIELD_NAME":
        return None
    match = _UNKNOWN_FIELD.search(exc.detail)
    return match.group(1) if match else None


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --------------------------------------------------------------------------- config


def _columns(context: TableContext) -> tuple[list[str], dict[str, str]]:
    """Snapshot columns (field columns, then owned ones) and owned column -> type."""
    owned: dict[str, str] = {}
    for column, role in context.writeback.items():
        if column == RECORD_ID_COLUMN:
            raise ConfigError(f"{RECORD_ID_COLUMN!r} is the Airtable record id and cannot be "
                              "written; name another column", path=f"writeback.{role}")
        owned[column] = SUGGESTED_TYPES[role]
    return list(dict.fromkeys([*context.columns, *owned])), owned


def _token(configured: str | None, env: Mapping[str, str]) -> str:
    """The personal access token, checked for shape without ever showing it."""
    token = (configured if configured is not None else env.get(TOKEN_ENV, "")).strip()
    if not token:
        raise ConfigError(
            f"no Airtable token: set the environment variable {TOKEN_ENV} to a personal "
            f"access token, or token = \"${{{TOKEN_ENV}}}\" here", path="table.token")
    if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
        raise ConfigError(
            "the token (hidden) contains spaces, line breaks or non-ASCII characters; "
            "copy it again from airtable.com/create/tokens", path="table.token")
    return token


# --------------------------------------------------------------------------- monthly calls


def requests_per_run(rows: int, changed: int = 0) -> int:
    """API calls one sync makes on ``rows`` records when ``changed`` of them get new cells.

    A page of 100 records to read; to write, the keys listed again (pages of 100) and
    one PATCH per 10 changed records. Retries after errors come on top.
    """
    pages = max(1, math.ceil(rows / PAGE_SIZE))
    if changed <= 0:
        return pages
    return 2 * pages + math.ceil(changed / BATCH_SIZE)


def runs_per_month(config: Config, *, now: datetime | None = None) -> int | None:
    """Syncs the configured ``[schedule]`` makes in 30 days; None when there is none.

    ``cron`` wins over ``every``, as in ``sheetcrm run``; its fire times are counted in
    the 30 days from ``now`` (default: the present) in the config's time zone.
    """
    from apscheduler.triggers.cron import CronTrigger

    from sheetcrm.config import parse_duration

    schedule = config.model.schedule
    if schedule.cron:
        trigger = CronTrigger.from_crontab(schedule.cron, timezone=config.tz)
        start = (now or datetime.now(config.tz)).astimezone(config.tz)
        end, runs = start + MONTH, 0
        fire = trigger.get_next_fire_time(None, start)
        while fire is not None and fire < end:
            runs += 1
            fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
        return runs
    if schedule.every:
        return math.floor(MONTH / parse_duration(schedule.every))
    return None


_EVERY_CHOICES = ("5m", "10m", "15m", "20m", "30m", "1h", "2h", "3h", "4h", "6h", "8h", "12h",
                  "1d")


def monthly_budget_warning(config: Config, rows: int, *, now: datetime | None = None
                           ) -> str | None:
    """A warning when the schedule would spend more Airtable calls a month than allowed.

    The estimate is the least a month costs: ``rows`` records read on every run, with
    no writes (a run that changes cells costs more, see ``requests_per_run``). The
    allowance is ``[table] monthly_calls``, or the Free plan's 1,000 when unset. None
    for other backends, without a schedule, or when the estimate fits.
    """
    from sheetcrm.config import parse_duration

    settings = config.table
    if not isinstance(settings, AirtableSettings):
        return None
    runs = runs_per_month(config, now=now)
    if runs is None:
        return None
    per_run = requests_per_run(rows)
    monthly = runs * per_run
    budget = settings.monthly_calls
    allowance = budget or FREE_PLAN_CALLS
    if monthly <= allowance:
        return None
    schedule = config.model.schedule
    setting = f'cron = "{schedule.cron}"' if schedule.cron else f'every = "{schedule.every}"'
    over = (f"over [table] monthly_calls = {budget:,}" if budget else
            f"over the {FREE_PLAN_CALLS:,} calls a month of Airtable's Free plan "
            "(on a paid plan, set [table] monthly_calls to its allowance)")
    fits = next((every for every in _EVERY_CHOICES
                 if math.floor(MONTH / parse_duration(every)) * per_run <= allowance), None)
    advice = (f'; run less often, e.g. every = "{fits}" (about '
              f"{math.floor(MONTH / parse_duration(fits)) * per_run:,} calls a month)"
              if fits else "; even one sync a day costs more than that: upgrade the plan, "
              "or set monthly_calls to what the plan really allows")
    return (f"[schedule] {setting} runs about {runs:,} syncs a month; on {rows:,} records "
            f"each costs at least {per_run} Airtable API call{'s' if per_run > 1 else ''} "
            f"(more when cells change), about {monthly:,} a month, {over}. Once the "
            f"workspace's calls are spent, Airtable refuses every request until next "
            f"month{advice}")
