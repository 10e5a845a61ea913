"""Airtable backend: the real pyairtable client, kept inside Airtable's rate limits.

Records become rows of text cells as an operator reads them (``airtable_cells.py``),
and sheetcrm's typed-field parsers do the rest.

Airtable allows 5 requests per second per base and, after a 429, refuses every call
for 30 seconds. pyairtable's default retry gives up after about 3 seconds, so this
module mounts ``sheetcrm.http``'s ``RetryAdapter`` on pyairtable's session instead:
every HTTP attempt, first tries and retries alike, waits for the table's pacer, which
spaces requests 1/4.5 s apart (a steady pace rather than bursts of 5, which network
jitter could squeeze into one of Airtable's seconds) and holds all traffic back for
at least 30 s (or ``Retry-After``) after a 429. The pacer belongs to the table, and a
daemon keeps its table, so the penalty holds across its runs; two tables of one base
keep one pace only when given the same pacer (``base_pacer``). The clock is injected,
so tests run the 30-second penalties in virtual time.

Writes find records by key at write time: the key field is listed again (pages of
100), then only the cells that still differ are sent with ``batch_update``, 10 records
per request, ``typecast=True``. When a request fails after earlier ones succeeded the
error says how many records were written; the next run recomputes the projection from
the ledger and writes what is still different, so nothing is sent twice.

Plans also cap the API calls a workspace makes per month (Free: 1,000). A call over
the cap answers 429 too, with ``PUBLIC_API_BILLING_LIMIT_EXCEEDED``: waiting 30 s does
not help, so that answer is never retried and says what to do (``airtable_errors.py``).
``monthly_budget_warning`` estimates what the configured schedule spends per month,
so ``check`` can say so before the cap is hit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pyairtable import Api
from pyairtable.utils import chunked
from requests.exceptions import RequestException

from sheetcrm.config.table import AirtableSettings
from sheetcrm.errors import ConfigError
from sheetcrm.http import SYSTEM_CLOCK, Clock, HttpOptions, Pacer, RetryAdapter, RetryPolicy
from sheetcrm.i18n import _, ngettext
from sheetcrm.model import CellUpdate, Snapshot, WriteReport
from sheetcrm.table.airtable_cells import cell_text
from sheetcrm.table.airtable_errors import (
    FREE_PLAN_CALLS,
    MONTHLY_CAP,
    AirtableError,
    AirtableWriteError,
    Where,
    explain,
    is_monthly_cap,
    unknown_field,
)
from sheetcrm.table.airtable_tabs import BATCH_SIZE, PAGE_SIZE, RuleTables
from sheetcrm.table.base import TableContext, match_rows

if TYPE_CHECKING:
    from pyairtable.api.table import Table as ApiTable
    from pyairtable.api.types import UpdateRecordDict, WritableFields

    from sheetcrm.config import Config

__all__ = ["MONTHLY_CAP", "AirtableError", "AirtableTable", "AirtableWriteError", "Clock",
           "Pacer", "base_pacer", "cell_text", "default_clock", "monthly_budget_warning",
           "requests_per_run", "runs_per_month"]

T = TypeVar("T")

DEFAULT_ENDPOINT = "https://api.airtable.com"
TOKEN_ENV = "AIRTABLE_TOKEN"
#: A pseudo-column holding each record's id (``recXXXXXXXXXXXXXX``); a field whose
#: column is ``_id`` makes the record id the row key.
RECORD_ID_COLUMN = "_id"

REQUESTS_PER_SECOND = 4.5  # Airtable allows 5 per base; keep a margin
RATE_LIMIT_PENALTY = 30.0  # seconds Airtable refuses every call after a 429
MAX_WAIT = 300.0  # seconds; no wait between tries is longer (Retry-After included)
TIMEOUT = (5.0, 30.0)  # (connect, read) seconds, on every request
MAX_RETRIES = 6  # per request: 6 x 30 s covers a long 429 storm, and then gives up
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MONTH = timedelta(days=30)

#: Field type to create in Airtable for each owned (writeback) column.
SUGGESTED_TYPES = {
    "tags": "single line text",
    "flow": "long text",
    "last_sent": "single line text",
    "error": "long text",
}

#: The clock tables wait on unless given one; tests replace it with a virtual one.
default_clock: Clock = SYSTEM_CLOCK


def base_pacer(clock: Clock | None = None) -> Pacer:
    """A pacer at Airtable's pace for one base, with its 30 s penalty after a 429."""
    return Pacer(1, 1.0 / REQUESTS_PER_SECOND, clock=clock or default_clock,
                 penalty=RATE_LIMIT_PENALTY)


def retry_policy(max_retries: int = MAX_RETRIES) -> RetryPolicy:
    """429s and 5xx retried ``max_retries`` times, a timed-out request once."""
    return RetryPolicy(attempts=max_retries + 1, base_delay=1.0, max_wait=MAX_WAIT,
                       statuses=RETRY_STATUSES, timeout_retries=1)


# --------------------------------------------------------------------------- table


class AirtableTable(RuleTables):
    """A customer table in an Airtable base, read and written through pyairtable.

    ``columns`` are the fields to read, in snapshot order (``_id`` is the record id);
    ``owned`` maps the columns sheetcrm writes to the field type suggested when they
    are missing. ``requests`` counts every HTTP attempt this table made, retries
    included. ``http.pacer`` defaults to one of the table's own (``base_pacer()``);
    pass another table's to share its pace and penalty. Retries wait on the pacer's
    clock.
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
        http: HttpOptions = HttpOptions(),
        tabs: Sequence[str] = (),
    ) -> None:
        self.base = base
        self.tabs = tuple(tabs)  # rule tables ([rules]) of the same base, read with it
        self._tab_records: dict[str, tuple[list[str], list[str]]] = {}  # header, ids
        self._staged: dict[str, dict[tuple[int, int], str]] = {}
        self.table = table
        self.view = view
        self.endpoint = http.endpoint or DEFAULT_ENDPOINT
        self.columns = list(dict.fromkeys(columns))
        self.owned = dict(owned or {})
        self.timeout = http.timeout or TIMEOUT
        self.pacer = http.pacer or base_pacer()
        self._transport = RetryAdapter(http.retry or retry_policy(), pacer=self.pacer,
                                       final=is_monthly_cap)
        self._api_table = self._connect(token)

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
        pacer = base_pacer(clock) if clock is not None else None
        return cls(token=token, base=settings.base, table=settings.table, columns=columns,
                   owned=owned, view=settings.view,
                   http=HttpOptions(endpoint=settings.endpoint, pacer=pacer),
                   tabs=context.tabs)

    def __repr__(self) -> str:  # never the token
        return f"<AirtableTable {self.source}>"

    @property
    def source(self) -> str:
        """Where the table lives, for messages."""
        if self.view:
            return _("Airtable base {base} table {table!r} view {view!r}",
                     base=self.base, table=self.table, view=self.view)
        return _("Airtable base {base} table {table!r}", base=self.base, table=self.table)

    @property
    def requests(self) -> int:
        """HTTP requests made so far, every retry included."""
        return self._transport.attempts

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
        # Airtable's grid numbers records from 1, with no header row.
        return Snapshot(header=header, rows=rows, source=self.source,
                        lines=list(range(1, len(rows) + 1)), tabs=self._read_tabs())

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
            raise AirtableError(_("{source}: the key field {key!r} is not in the table",
                                   source=self.source, key=key))
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
                records = self._call(_("list records"), partial(self._api_table.all, **options))
            except AirtableError as exc:
                name = unknown_field(exc)
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
        also = (" " + _("Also missing: {fields}.", fields=", ".join(map(repr, others)))
                if others else "")
        raise AirtableError(_(
            "{source} has no field {fields}, which sheetcrm writes. Airtable cannot create "
            "fields through the records API: add them to the table with these types, then "
            "run again: {wanted}.", source=self.source, fields=", ".join(map(repr, absent)),
            wanted=wanted) + also)

    @staticmethod
    def _field_names(columns: Sequence[str]) -> list[str]:
        """Fields to ask for: the record id is not a field."""
        return [c for c in dict.fromkeys(columns) if c != RECORD_ID_COLUMN]

    # -- writing ---------------------------------------------------------------------

    def _check_writable(self, columns: list[str]) -> None:
        if "" in columns:
            raise AirtableError(_("{source}: an update names a blank column",
                                  source=self.source))
        if RECORD_ID_COLUMN in columns:
            raise AirtableError(_("{source}: {column!r} is the record id; it cannot be written",
                                  source=self.source, column=RECORD_ID_COLUMN))

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
        for record_id, update in match_rows(updates, ids_by_key, report):
            column = update.column.strip()
            if cell_text(current[record_id].get(column)) != update.value:
                # None clears a field of any type; text goes as text, typecast does the rest.
                patches.setdefault(record_id, {})[column] = update.value or None
        return [{"id": record_id, "fields": fields} for record_id, fields in patches.items()]

    def _update(self, changes: list[UpdateRecordDict], report: WriteReport) -> None:
        """Send ``changes`` 10 records per request; on failure say how far it got."""
        for chunk in chunked(changes, BATCH_SIZE):
            try:
                self._call(_("update records"),
                           partial(self._api_table.batch_update, chunk, typecast=True))
            except AirtableError as exc:
                raise AirtableWriteError(_(
                    "{error} — {written} of {total} records were written before this; the "
                    "next run writes the rest", error=exc, written=report.rows_written,
                    total=len(changes)), exc, report) from exc
            report.rows_written += len(chunk)
            report.cells_written += sum(len(change["fields"]) for change in chunk)

    # -- HTTP --------------------------------------------------------------------------

    def _connect(self, token: str) -> ApiTable:
        """A pyairtable table whose session is paced, bounded and timed out."""
        api = Api(token, timeout=self.timeout,  # type: ignore[arg-type]  # floats work
                  retry_strategy=None, endpoint_url=self.endpoint)
        api.session.mount("https://", self._transport)
        api.session.mount("http://", self._transport)
        return api.table(self.base, self.table)

    def _call(self, action: str, call: Callable[[], T]) -> T:
        """Run one pyairtable call; every failure becomes an AirtableError."""
        try:
            return call()
        except (RequestException, TypeError, ValueError, KeyError) as exc:
            # TypeError, ValueError, KeyError: a response pyairtable rejects.
            where = Where(self.source, self.endpoint, self.base, self.table, self.timeout)
            retries = max(self._transport.last_attempts - 1, 0)
            raise explain(exc, action, where, retries) from None


# --------------------------------------------------------------------------- config


def _columns(context: TableContext) -> tuple[list[str], dict[str, str]]:
    """Snapshot columns (field columns, then owned ones) and owned column -> type."""
    owned: dict[str, str] = {}
    for column, role in context.writeback.items():
        if column == RECORD_ID_COLUMN:
            raise ConfigError(_("{column!r} is the Airtable record id and cannot be written; "
                                "name another column", column=RECORD_ID_COLUMN),
                              path=f"writeback.{role}")
        owned[column] = SUGGESTED_TYPES[role]
    return list(dict.fromkeys([*context.columns, *owned])), owned


def _token(configured: str | None, env: Mapping[str, str]) -> str:
    """The personal access token, checked for shape without ever showing it."""
    token = (configured if configured is not None else env.get(TOKEN_ENV, "")).strip()
    if not token:
        raise ConfigError(_(
            "no Airtable token: set the environment variable {variable} to a personal access "
            "token, or token = \"{reference}\" here", variable=TOKEN_ENV,
            reference=f"${{{TOKEN_ENV}}}"), path="table.token")
    if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
        raise ConfigError(_(
            "the token (hidden) contains spaces, line breaks or non-ASCII characters; "
            "copy it again from airtable.com/create/tokens"), path="table.token")
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


def monthly_budget_warning(config: Config, rows: int, *, now: datetime | None = None,
                           tab_rows: Mapping[str, int] | None = None) -> str | None:
    """A warning when the schedule would spend more Airtable calls a month than allowed.

    The estimate is the least a month costs: ``rows`` records read on every run, and
    with ``[rules]`` each rule table listed too (``tab_rows``: its records, as read;
    a page of 100 at least), with no writes (a run that changes cells costs more, see
    ``requests_per_run``). The allowance is ``[table] monthly_calls``, or the Free
    plan's 1,000 when unset. None for other backends, without a schedule, or when the
    estimate fits.
    """
    from sheetcrm.config import parse_duration

    settings = config.table
    if not isinstance(settings, AirtableSettings):
        return None
    runs = runs_per_month(config, now=now)
    if runs is None:
        return None
    per_run = requests_per_run(rows) + sum(
        requests_per_run((tab_rows or {}).get(tab, 0)) for tab in config.rule_tabs.values())
    monthly = runs * per_run
    budget = settings.monthly_calls
    allowance = budget or FREE_PLAN_CALLS
    if monthly <= allowance:
        return None
    schedule = config.model.schedule
    setting = f'cron = "{schedule.cron}"' if schedule.cron else f'every = "{schedule.every}"'
    over = (_("over [table] monthly_calls = {budget}", budget=f"{budget:,}") if budget else
            _("over the {calls} calls a month of Airtable's Free plan (on a paid plan, set "
              "[table] monthly_calls to its allowance)", calls=f"{FREE_PLAN_CALLS:,}"))
    fits = next((every for every in _EVERY_CHOICES
                 if math.floor(MONTH / parse_duration(every)) * per_run <= allowance), None)
    advice = (_('run less often, e.g. every = "{every}" (about {calls} calls a month)',
                every=fits, calls=f"{math.floor(MONTH / parse_duration(fits)) * per_run:,}")
              if fits else _("even one sync a day costs more than that: upgrade the plan, "
                             "or set monthly_calls to what the plan really allows"))
    return ngettext(
        "[schedule] {setting} runs about {runs} syncs a month; on {rows} records each costs "
        "at least {n} Airtable API call (more when cells change), about {monthly} a month, "
        "{over}. Once the workspace's calls are spent, Airtable refuses every request until "
        "next month; {advice}",
        "[schedule] {setting} runs about {runs} syncs a month; on {rows} records each costs "
        "at least {n} Airtable API calls (more when cells change), about {monthly} a month, "
        "{over}. Once the workspace's calls are spent, Airtable refuses every request until "
        "next month; {advice}", per_run, setting=setting, runs=f"{runs:,}", rows=f"{rows:,}",
        monthly=f"{monthly:,}", over=over, advice=advice)
