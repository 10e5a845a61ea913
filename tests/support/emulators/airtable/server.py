"""The Airtable emulator's server: setup, scripted faults, and Airtable's gatekeeping.

Before a request reaches the records routes (``records.RecordsApi``) it passes what
Airtable checks first, in Airtable's order: the token, the plan's monthly call cap,
then the per-base rate limit (5 requests a second, then 30 s of 429s). Time is the
server's ``clock``, so a test on a virtual clock plays out a penalty at once.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from tests.support.emulators.airtable.faults import (
    MONTHLY_CAP_BODY,
    RATE_LIMIT_BODY,
    ApiError,
    default_body,
)
from tests.support.emulators.airtable.fields import (
    CREATED_TIME,
    FIELD_TYPES,
    EmulatedTable,
    present,
)
from tests.support.emulators.airtable.meta import MetaApi
from tests.support.emulators.airtable.records import RecordsApi
from tests.support.servers import Fault, LoopbackServer, Reply, Request, json_reply


def _segments(path: str) -> list[str]:
    """A raw path's segments, percent-decoded."""
    return [unquote(s) for s in path.split("/") if s]


@dataclass
class AirtableRequest(Request):
    """One request as the emulator saw it (``at``: the emulator's clock)."""

    @property
    def base(self) -> str:
        """The base the request addressed (``/v0/{base}/...``), or ""."""
        segments = _segments(self.path)
        return segments[1] if len(segments) > 1 else ""

    @property
    def records_sent(self) -> int:
        try:
            body = self.json()
        except ValueError:
            return 0
        if isinstance(body, dict) and isinstance(body.get("records"), list):
            return len(body["records"])
        return 0


class AirtableEmulator(MetaApi, RecordsApi, LoopbackServer):
    """The emulator; a context manager (``with AirtableEmulator() as emu:``)."""

    request_type = AirtableRequest

    def __init__(self, *, tokens: Iterable[str] = ("patTestToken.sheetcrm",),
                 clock: Callable[[], float] = time.monotonic, rate_limit: int = 5,
                 penalty: float = 30.0, monthly_calls: int | None = None) -> None:
        super().__init__(clock=clock)
        self.tokens = set(tokens)
        self.rate_limit = rate_limit
        self.penalty = penalty
        self.monthly_calls = monthly_calls  # the plan's cap; None = unlimited
        self.month_calls = 0  # authenticated requests served or refused this month
        self.bases: dict[str, dict[str, EmulatedTable]] = {}
        self._storm_until = -float("inf")
        self._recent: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}
        self._iterators: dict[str, list[str]] = {}
        self._ids = itertools.count(1)

    # -- set-up and inspection -----------------------------------------------------------

    def add_table(self, base: str, name: str, fields: Mapping[str, str],
                  records: Iterable[Mapping[str, Any]] = (), *, table_id: str | None = None,
                  choices: Mapping[str, Iterable[str]] | None = None) -> EmulatedTable:
        """A table with ``fields`` (name -> type) and records given as field dicts.

        Records are stored as given (empty and false values dropped); select options
        are the ``choices`` plus whatever the records use.
        """
        for fname, ftype in fields.items():
            if ftype not in FIELD_TYPES:
                raise ValueError(f"unknown field type {ftype!r} for {fname!r}")
        with self.lock:
            table = EmulatedTable(table_id or self._new_id("tbl"), name, dict(fields))
            for fname, options in (choices or {}).items():
                table.choices[fname] = list(options)
            for values in records:
                self.insert(table, values)
            self.bases.setdefault(base, {})[table.id] = table
            return table

    def insert(self, table: EmulatedTable, values: Mapping[str, Any]) -> dict[str, Any]:
        """Add a record directly (no request), as the operator would in the UI."""
        with self.lock:
            record = {"id": self._new_id("rec"), "createdTime": CREATED_TIME,
                      "fields": {k: copy.deepcopy(v) for k, v in values.items() if present(v)}}
            for fname, value in record["fields"].items():
                if table.fields.get(fname) in ("singleSelect", "multipleSelects"):
                    options = table.choices.setdefault(fname, [])
                    for option in value if isinstance(value, list) else [value]:
                        if option not in options:
                            options.append(option)
            table.records.append(record)
            return record

    def add_view(self, base: str, table: str, name: str,
                 keep: Callable[[dict[str, Any]], bool]) -> None:
        """A view showing the records whose fields ``keep`` accepts."""
        self.table(base, table).views[name] = keep

    def table(self, base: str, name_or_id: str) -> EmulatedTable:
        for table in self.bases.get(base, {}).values():
            if name_or_id in (table.id, table.name):
                return table
        raise KeyError(f"{base}/{name_or_id}")

    def records(self, base: str, table: str) -> list[dict[str, Any]]:
        """A copy of the records as stored (empty and false fields absent)."""
        with self.lock:
            return copy.deepcopy(self.table(base, table).records)

    def by(self, base: str, table: str, key_field: str) -> dict[str, dict[str, Any]]:
        """Record fields by the value of ``key_field`` (records without it left out)."""
        return {r["fields"][key_field]: r["fields"] for r in self.records(base, table)
                if key_field in r["fields"]}

    # -- faults ------------------------------------------------------------------------

    def fail(self, status: int, *, method: str | None = None, path: str | None = None,
             skip: int = 0, times: int = 1, body: Any = None,
             headers: Mapping[str, str] | None = None, delay: float = 0.0,
             after_apply: bool = False) -> None:
        """Answer ``status`` to the matching requests after letting ``skip`` through.

        ``body`` defaults to Airtable's body for the status; ``after_apply`` processes
        the request first (the change is kept, only the answer is lost).
        """
        if body is None:
            body = default_body(status)

        def matches(request: Request) -> bool:
            return (method is None or request.method == method) and (
                path is None or path in "/" + "/".join(_segments(request.path)))

        reply = Reply(status, delay, {"Content-Type": "application/json; charset=UTF-8",
                                      **(headers or {})},
                      json.dumps(body, ensure_ascii=False).encode())
        self.add_fault(Fault(reply, matches, times, skip, after_apply))

    def new_month(self) -> None:
        """The billing month rolls over: the monthly call count starts again."""
        with self.lock:
            self.month_calls = 0

    def rate_limit_storm(self, seconds: float) -> None:
        """Answer 429 to every request for the next ``seconds`` of clock time."""
        with self.lock:
            self._storm_until = self.clock() + seconds

    # -- HTTP ----------------------------------------------------------------------------

    def answer(self, request: AirtableRequest) -> Reply:
        """Airtable's answer: authentication, the monthly cap, the rate limit, the route."""
        segments = _segments(request.path)
        try:
            body = request.json()
        except ValueError:
            body = ValueError
        auth = request.headers.get("authorization", "")
        if auth.removeprefix("Bearer ") not in self.tokens or not auth.startswith("Bearer "):
            raise ApiError(401, "AUTHENTICATION_REQUIRED", "Authentication required")
        self._check_month()
        self._check_rate(request.base, request.at)
        if body is ValueError:
            raise ApiError(400, "INVALID_REQUEST_UNKNOWN", "Invalid request: the body "
                           "could not be parsed as JSON")
        with self.lock:
            return json_reply(200, self._route(request.method, segments, request.query, body))

    def _check_month(self) -> None:
        """The plan's monthly cap: past it, every request is refused until next month."""
        with self.lock:
            self.month_calls += 1
            if self.monthly_calls is not None and self.month_calls > self.monthly_calls:
                raise ApiError(429, body=MONTHLY_CAP_BODY)

    def _check_rate(self, base: str, at: float) -> None:
        """Airtable's limit: 5 requests per second per base, then 30 s of 429s."""
        with self.lock:
            if at < self._storm_until or at < self._blocked_until.get(base, -float("inf")):
                raise ApiError(429, body=RATE_LIMIT_BODY)
            recent = self._recent.setdefault(base, deque())
            recent.append(at)
            while recent and recent[0] <= at - 1.0:
                recent.popleft()
            if len(recent) > self.rate_limit:
                self._blocked_until[base] = at + self.penalty
                raise ApiError(429, body=RATE_LIMIT_BODY)

