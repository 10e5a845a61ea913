"""A loopback emulator of the Airtable Web API subset pyairtable uses, for tests and benches.

It speaks HTTP on 127.0.0.1 (a free port), so the real pyairtable, requests and
urllib3 code runs against it unchanged (``Api(..., endpoint_url=emulator.url)``).

Emulated (``/v0/...``):

- list records: ``GET {base}/{table}`` with ``pageSize`` (1-100), ``offset``,
  ``fields[]``, ``view``, ``maxRecords``; and ``POST {base}/{table}/listRecords`` with
  the same options in a JSON body (pyairtable switches to it for very long URLs).
  Pages are cut from a snapshot taken at the first page, as Airtable's iterators are.
- get one record: ``GET {base}/{table}/{recordId}``.
- create (``POST``), update (``PATCH``, ``PUT`` replaces) and upsert
  (``performUpsert.fieldsToMergeOn``) of at most 10 records per request, each request
  validated as a whole before anything is applied; ``typecast`` converts text the way
  Airtable does for the field types below and creates select options.
- Records omit empty and false fields: an unchecked checkbox, a blank text, an empty
  list are simply absent.
- Errors with Airtable's bodies: 401 ``AUTHENTICATION_REQUIRED``; 403
  ``INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND`` (unknown base or table); 404
  ``{"error": "NOT_FOUND"}`` (unknown route or record); 422 ``UNKNOWN_FIELD_NAME``,
  ``INVALID_VALUE_FOR_COLUMN``, ``INVALID_MULTIPLE_CHOICE_OPTIONS``,
  ``INVALID_RECORDS`` (more than 10), ``ROW_DOES_NOT_EXIST``, ``VIEW_NAME_NOT_FOUND``,
  ``INVALID_REQUEST_UNKNOWN``; 429 ``{"errors": [{"error": "RATE_LIMIT_REACHED", ...}]}``.
- Airtable's rate limit: more than ``rate_limit`` requests to one base within a second
  answers 429 and then refuses the base for ``penalty`` seconds.
- The plan's monthly call cap: with ``monthly_calls`` set, the requests of the month
  (``month_calls``, all bases: one workspace) beyond it answer 429
  ``{"errors": [{"error": "PUBLIC_API_BILLING_LIMIT_EXCEEDED", ...}]}`` until
  ``new_month()``, however long the client waits.

Time comes from ``clock`` (``time.monotonic`` by default); tests pass the ``now`` of
the ``support.clock.VirtualClock`` the client's pacer sleeps on, so a 30-second
penalty costs nothing. The request log (``requests``, each stamped with its time) and
the faults are ``support.servers.LoopbackServer``'s; ``fail()`` scripts one in
Airtable's terms (a status on the n-th matching request, optionally after applying
it, or a delay) and ``rate_limit_storm()`` refuses every request for a while.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from tests.support.servers import Fault, HttpError, LoopbackServer, Reply, Request, json_reply

TEXT_TYPES = {"singleLineText", "multilineText", "richText", "email", "url", "phoneNumber"}
NUMBER_TYPES = {"number", "currency", "percent", "rating", "duration"}
COMPUTED_TYPES = {"formula", "rollup", "multipleLookupValues", "count", "autoNumber",
                  "createdTime", "lastModifiedTime"}
WRITABLE_TYPES = TEXT_TYPES | NUMBER_TYPES | {
    "checkbox", "date", "dateTime", "singleSelect", "multipleSelects",
    "multipleRecordLinks", "multipleAttachments"}
FIELD_TYPES = WRITABLE_TYPES | COMPUTED_TYPES

MAX_RECORDS_PER_WRITE = 10
LIST_PARAMS = {"pageSize", "offset", "fields[]", "view", "maxRecords", "cellFormat",
               "returnFieldsByFieldId", "timeZone", "userLocale", "recordMetadata[]"}
LIST_BODY_KEYS = {"pageSize", "offset", "fields", "view", "maxRecords", "cellFormat",
                  "returnFieldsByFieldId", "recordMetadata"}
CREATED_TIME = "2026-01-01T00:00:00.000Z"
RATE_LIMIT_BODY = {"errors": [{"error": "RATE_LIMIT_REACHED",
                               "message": "Rate limit exceeded. Please try again later"}]}
MONTHLY_CAP_BODY = {"errors": [{"error": "PUBLIC_API_BILLING_LIMIT_EXCEEDED",
                                "message": "The workspace has reached the monthly API call "
                                           "limit of its billing plan"}]}


class ApiError(HttpError):
    """An answer other than 200, with Airtable's body."""

    def __init__(self, status: int, kind: str | None = None, message: str = "",
                 body: Any = None) -> None:
        if body is None:
            body = ({"error": "NOT_FOUND"} if kind is None
                    else {"error": {"type": kind, "message": message}})
        super().__init__(status, body, f"{status} {kind}: {message}")


def _invalid(kind: str, message: str) -> ApiError:
    return ApiError(422, kind, message)


@dataclass
class EmulatedTable:
    id: str
    name: str
    fields: dict[str, str]  # field name -> Airtable type
    records: list[dict[str, Any]] = field(default_factory=list)  # {id, createdTime, fields}
    choices: dict[str, list[str]] = field(default_factory=dict)  # select options
    views: dict[str, Callable[[dict[str, Any]], bool]] = field(default_factory=dict)

    def record(self, record_id: str) -> dict[str, Any] | None:
        return next((r for r in self.records if r["id"] == record_id), None)


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


class AirtableEmulator(LoopbackServer):
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
                      "fields": {k: copy.deepcopy(v) for k, v in values.items() if _present(v)}}
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
            body = _default_body(status)

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

    # -- routes --------------------------------------------------------------------------

    def _route(self, method: str, segments: list[str], query: dict[str, list[str]],
               body: Any) -> Any:
        if len(segments) < 3 or segments[0] != "v0" or segments[1] == "meta":
            raise ApiError(404)
        base, table_ref, rest = segments[1], segments[2], segments[3:]
        table = self._find_table(base, table_ref)
        if not rest:
            if method == "GET":
                return self._list(table, _list_options_from_query(query))
            if method == "POST":
                return self._create(table, _body(body))
            if method in ("PATCH", "PUT"):
                return self._update_many(table, _body(body), replace=method == "PUT")
        elif rest == ["listRecords"] and method == "POST":
            return self._list(table, _list_options_from_body(_body(body)))
        elif len(rest) == 1:
            record = table.record(rest[0])
            if record is None:
                raise ApiError(404)
            if method == "GET":
                return _visible(record, None)
            if method in ("PATCH", "PUT"):
                payload = _body(body)
                self._validate_fields(table, payload.get("fields"), bool(payload.get("typecast")))
                return self._apply(table, record, payload["fields"],
                                   bool(payload.get("typecast")), replace=method == "PUT")
        raise ApiError(404)

    def _find_table(self, base: str, ref: str) -> EmulatedTable:
        for table in self.bases.get(base, {}).values():
            if ref in (table.id, table.name):
                return table
        raise ApiError(403, "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
                       "Invalid permissions, or the requested model was not found. Check that "
                       "both your user and your token have the required permissions, and that "
                       "the model names and/or ids are correct.")

    def _list(self, table: EmulatedTable, options: dict[str, Any]) -> dict[str, Any]:
        page_size = _int_option(options, "pageSize", 100)
        if not 1 <= page_size <= 100:
            raise _invalid("INVALID_REQUEST_UNKNOWN", f"Invalid page size: {page_size}")
        fields = options.get("fields")
        for name in fields or []:
            if name not in table.fields:
                raise _invalid("UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
        offset = options.get("offset")
        iterator = None
        if offset:
            iterator, _, position_text = str(offset).partition("/")
            ids = self._iterators.get(iterator)
            if ids is None or not position_text.isdigit():
                raise _invalid("LIST_RECORDS_ITERATOR_NOT_AVAILABLE",
                               "Iterator not available: the offset is unknown or expired")
            position = int(position_text)
        else:
            ids = self._snapshot(table, options)
            position = 0
        page = ids[position:position + page_size]
        by_id = {r["id"]: r for r in table.records}
        answer: dict[str, Any] = {
            "records": [_visible(by_id[i], fields) for i in page if i in by_id]}
        if position + page_size < len(ids):
            iterator = iterator or self._new_id("itr")
            self._iterators[iterator] = ids
            answer["offset"] = f"{iterator}/{position + page_size}"
        return answer

    def _snapshot(self, table: EmulatedTable, options: dict[str, Any]) -> list[str]:
        """Record ids in order for a new listing (view filter, maxRecords)."""
        records = table.records
        view = options.get("view")
        if view:
            if view not in table.views:
                raise _invalid("VIEW_NAME_NOT_FOUND", f'Could not find view "{view}"')
            records = [r for r in records if table.views[view](r["fields"])]
        max_records = options.get("maxRecords")
        if max_records is not None:
            records = records[:_int_option(options, "maxRecords", 0)]
        return [r["id"] for r in records]

    def _create(self, table: EmulatedTable, payload: dict[str, Any]) -> Any:
        typecast = bool(payload.get("typecast"))
        if "records" not in payload:
            self._validate_fields(table, payload.get("fields"), typecast)
            return self._apply(table, None, payload["fields"], typecast, replace=False)
        records = self._records_payload(payload)
        for item in records:
            self._validate_fields(table, item.get("fields"), typecast)
        return {"records": [self._apply(table, None, item["fields"], typecast, replace=False)
                            for item in records]}

    def _update_many(self, table: EmulatedTable, payload: dict[str, Any], *, replace: bool
                     ) -> dict[str, Any]:
        typecast = bool(payload.get("typecast"))
        records = self._records_payload(payload)
        upsert = payload.get("performUpsert")
        merge_on = upsert.get("fieldsToMergeOn") if isinstance(upsert, dict) else None
        if upsert is not None and (not isinstance(merge_on, list) or not merge_on):
            raise _invalid("INVALID_REQUEST_UNKNOWN", "performUpsert needs fieldsToMergeOn")
        by_id = {r["id"]: r for r in table.records}
        targets: list[dict[str, Any] | None] = []
        for item in records:
            self._validate_fields(table, item.get("fields"), typecast)
            targets.append(self._target(table, by_id, item, merge_on))
        created: list[str] = []
        updated: list[str] = []
        out = []
        for item, target in zip(records, targets, strict=True):
            result = self._apply(table, target, item["fields"], typecast, replace=replace)
            (updated if target is not None else created).append(result["id"])
            out.append(result)
        answer: dict[str, Any] = {"records": out}
        if merge_on:
            answer.update(createdRecords=created, updatedRecords=updated)
        return answer

    def _target(self, table: EmulatedTable, by_id: dict[str, dict[str, Any]],
                item: dict[str, Any], merge_on: list[str] | None) -> dict[str, Any] | None:
        """The record an update addresses: by id, or by the merge fields (upsert)."""
        if "id" in item:
            record = by_id.get(str(item["id"]))
            if record is None:
                raise _invalid("ROW_DOES_NOT_EXIST",
                               f"Record ID {item['id']} does not exist in this table")
            return record
        if merge_on is None:
            raise _invalid("INVALID_RECORDS", "Each record needs an id (or use performUpsert)")
        for name in merge_on:
            if name not in table.fields:
                raise _invalid("UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
        wanted = [item["fields"].get(name) for name in merge_on]
        matches = [r for r in table.records
                   if [r["fields"].get(name) for name in merge_on] == wanted]
        if len(matches) > 1:
            raise _invalid("INVALID_VALUE_FOR_COLUMN", "Cannot upsert: more than one record "
                           f"matches the fields {merge_on}")
        return matches[0] if matches else None

    def _records_payload(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        records = payload.get("records")
        if not isinstance(records, list) or not records:
            raise _invalid("INVALID_RECORDS", "records must be a non-empty array")
        if len(records) > MAX_RECORDS_PER_WRITE:
            raise _invalid("INVALID_RECORDS", f"You can only send up to "
                           f"{MAX_RECORDS_PER_WRITE} records per request; got {len(records)}")
        for item in records:
            if not isinstance(item, dict) or not isinstance(item.get("fields"), dict):
                raise _invalid("INVALID_RECORDS", "each record needs a fields object")
        return records

    def _validate_fields(self, table: EmulatedTable, fields: Any, typecast: bool) -> None:
        if not isinstance(fields, dict):
            raise _invalid("INVALID_REQUEST_MISSING_FIELDS", "Could not find field \"fields\"")
        for name, value in fields.items():
            _coerce(table, name, value, typecast, create_options=False)

    def _apply(self, table: EmulatedTable, record: dict[str, Any] | None,
               fields: dict[str, Any], typecast: bool, *, replace: bool) -> dict[str, Any]:
        if record is None:
            record = {"id": self._new_id("rec"), "createdTime": CREATED_TIME, "fields": {}}
            table.records.append(record)
        elif replace:
            record["fields"] = {k: v for k, v in record["fields"].items()
                                if table.fields[k] in COMPUTED_TYPES}
        for name, value in fields.items():
            stored = _coerce(table, name, value, typecast, create_options=True)
            if _present(stored):
                record["fields"][name] = stored
            else:
                record["fields"].pop(name, None)
        return _visible(record, None)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):014d}"


# --------------------------------------------------------------------------- values


def _present(value: Any) -> bool:
    """Airtable leaves empty and false values out of records (a number 0 stays)."""
    if isinstance(value, bool):
        return value
    return value is not None and not (isinstance(value, (str, list, dict)) and not value)


def _visible(record: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    shown = record["fields"] if fields is None else {
        k: v for k, v in record["fields"].items() if k in fields}
    return {"id": record["id"], "createdTime": record["createdTime"],
            "fields": copy.deepcopy(shown)}


def _coerce(table: EmulatedTable, name: str, value: Any, typecast: bool, *,
            create_options: bool) -> Any:
    """The value Airtable would store, or the 422 it would answer."""
    ftype = table.fields.get(name)
    if ftype is None:
        raise _invalid("UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
    if ftype in COMPUTED_TYPES:
        raise _invalid("INVALID_VALUE_FOR_COLUMN",
                       f'Field "{name}" cannot accept a value because the field is computed')
    if value is None:
        return None
    try:
        return _CONVERT[ftype](table, name, value, typecast, create_options)
    except (TypeError, ValueError):
        raise _invalid("INVALID_VALUE_FOR_COLUMN",
                       f'Field "{name}" cannot accept the provided value') from None


def _text(table: EmulatedTable, name: str, value: Any, typecast: bool, create: bool) -> str:
    if isinstance(value, str):
        return value
    if typecast and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise TypeError(value)


def _number(table: EmulatedTable, name: str, value: Any, typecast: bool, create: bool) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if typecast and isinstance(value, str):
        text = value.replace(",", "").strip()
        if not text:
            return None
        number = float(text)
        return int(number) if number.is_integer() else number
    raise TypeError(value)


_TRUTHY = {"true", "1", "yes", "y", "checked", "on", "o", "✓", "✅"}


def _checkbox(table: EmulatedTable, name: str, value: Any, typecast: bool, create: bool) -> bool:
    if isinstance(value, bool):
        return value
    if typecast and isinstance(value, str):
        return value.strip().lower() in _TRUTHY
    raise TypeError(value)


def _date(table: EmulatedTable, name: str, value: Any, typecast: bool, create: bool) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    if typecast and len(value) > 10:
        return dt.datetime.fromisoformat(value).date().isoformat()
    return dt.date.fromisoformat(value).isoformat()


def _datetime(table: EmulatedTable, name: str, value: Any, typecast: bool, create: bool) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _option(table: EmulatedTable, name: str, option: Any, typecast: bool, create: bool) -> str:
    if not isinstance(option, str):
        raise TypeError(option)
    options = table.choices.setdefault(name, [])
    if option not in options:
        if not typecast:
            raise _invalid("INVALID_MULTIPLE_CHOICE_OPTIONS",
                           f'Insufficient permissions to create new select option ""{option}""')
        if create:
            options.append(option)
    return option


def _select(table: EmulatedTable, name: str, value: Any, typecast: bool, create: bool) -> Any:
    if value == "":
        return None
    return _option(table, name, value, typecast, create)


def _selects(table: EmulatedTable, name: str, value: Any, typecast: bool, create: bool) -> list:
    if typecast and isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        raise TypeError(value)
    return [_option(table, name, item, typecast, create) for item in value]


def _links(table: EmulatedTable, name: str, value: Any, typecast: bool, create: bool) -> list:
    if not isinstance(value, list) or not all(
            isinstance(v, str) and v.startswith("rec") for v in value):
        raise TypeError(value)
    return list(value)


def _attachments(table: EmulatedTable, name: str, value: Any, typecast: bool, create: bool
                 ) -> list:
    if not isinstance(value, list):
        raise TypeError(value)
    out = []
    for n, item in enumerate(value):
        if not isinstance(item, dict) or "url" not in item:
            raise TypeError(item)
        filename = item.get("filename") or str(item["url"]).rsplit("/", 1)[-1]
        out.append({"id": f"att{n:014d}", "url": item["url"], "filename": filename})
    return out


_CONVERT: dict[str, Callable[[EmulatedTable, str, Any, bool, bool], Any]] = {
    **dict.fromkeys(TEXT_TYPES, _text),
    **dict.fromkeys(NUMBER_TYPES, _number),
    "checkbox": _checkbox,
    "date": _date,
    "dateTime": _datetime,
    "singleSelect": _select,
    "multipleSelects": _selects,
    "multipleRecordLinks": _links,
    "multipleAttachments": _attachments,
}


# --------------------------------------------------------------------------- requests


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _invalid("INVALID_REQUEST_UNKNOWN", "Invalid request: expected a JSON object")
    return body


def _list_options_from_query(query: dict[str, list[str]]) -> dict[str, Any]:
    unknown = sorted(set(query) - LIST_PARAMS)
    if unknown:
        raise _invalid("INVALID_REQUEST_UNKNOWN",
                       f"Invalid request: parameter validation failed ({', '.join(unknown)})")
    options: dict[str, Any] = {k: v[-1] for k, v in query.items() if k != "fields[]"}
    if "fields[]" in query:
        options["fields"] = query["fields[]"]
    return options


def _list_options_from_body(body: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - LIST_BODY_KEYS)
    if unknown:
        raise _invalid("INVALID_REQUEST_UNKNOWN",
                       f"Invalid request: parameter validation failed ({', '.join(unknown)})")
    return {k: v for k, v in body.items() if v is not None}


def _int_option(options: dict[str, Any], name: str, default: int) -> int:
    value = options.get(name, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _invalid("INVALID_REQUEST_UNKNOWN", f"{name} must be a number") from None


def _default_body(status: int) -> Any:
    if status == 429:
        return RATE_LIMIT_BODY
    if status == 404:
        return {"error": "NOT_FOUND"}
    kinds = {401: ("AUTHENTICATION_REQUIRED", "Authentication required"),
             403: ("INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND", "Invalid permissions"),
             422: ("INVALID_VALUE_FOR_COLUMN", "Field cannot accept the provided value"),
             500: ("SERVER_ERROR", "Try again. If the problem persists, contact support."),
             502: ("BAD_GATEWAY", "Airtable's servers are restarting"),
             503: ("SERVICE_UNAVAILABLE", "The server could not process your request in time")}
    kind, message = kinds.get(status, ("UNKNOWN", f"status {status}"))
    return {"error": {"type": kind, "message": message}}
