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
- the schema (``meta``): list a base's tables (``GET meta/bases/{base}/tables``), create a
  table (``POST`` there) and add a field (``POST .../tables/{table}/fields``).
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

The package: ``fields`` (field types, what a write stores), ``faults`` (Airtable's
error bodies), ``records`` (the records routes), ``meta`` (the schema routes) and
``server`` (``AirtableEmulator``: setup, faults, the token, the monthly cap and the rate
limit). The names tests use are importable from the package itself.
"""

from tests.support.emulators.airtable.faults import MONTHLY_CAP_BODY, RATE_LIMIT_BODY, ApiError
from tests.support.emulators.airtable.fields import (
    COMPUTED_TYPES,
    CREATED_TIME,
    FIELD_TYPES,
    NUMBER_TYPES,
    TEXT_TYPES,
    WRITABLE_TYPES,
    EmulatedTable,
)
from tests.support.emulators.airtable.records import (
    LIST_BODY_KEYS,
    LIST_PARAMS,
    MAX_RECORDS_PER_WRITE,
)
from tests.support.emulators.airtable.server import AirtableEmulator, AirtableRequest

__all__ = [
    "COMPUTED_TYPES", "CREATED_TIME", "FIELD_TYPES", "LIST_BODY_KEYS", "LIST_PARAMS",
    "MAX_RECORDS_PER_WRITE", "MONTHLY_CAP_BODY", "NUMBER_TYPES", "RATE_LIMIT_BODY",
    "TEXT_TYPES", "WRITABLE_TYPES", "AirtableEmulator", "AirtableRequest", "ApiError",
    "EmulatedTable",
]
