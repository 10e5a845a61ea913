"""The records endpoints of the Airtable emulator: list, get, create, update, upsert.

A mixin of ``AirtableEmulator``, holding no state of its own: the bases, the list
iterators and the id counter are the emulator's, set up in its ``__init__``. Every
write is validated whole (at most 10 records, every field coerced) before anything
is applied, as Airtable does; a listing is cut into pages from a snapshot taken at
its first page, as Airtable's iterators are.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.support.emulators.airtable.faults import ApiError, invalid
from tests.support.emulators.airtable.fields import (
    COMPUTED_TYPES,
    CREATED_TIME,
    EmulatedTable,
    coerce,
    present,
    visible,
)

MAX_RECORDS_PER_WRITE = 10
LIST_PARAMS = {"pageSize", "offset", "fields[]", "view", "maxRecords", "cellFormat",
               "returnFieldsByFieldId", "timeZone", "userLocale", "recordMetadata[]"}
LIST_BODY_KEYS = {"pageSize", "offset", "fields", "view", "maxRecords", "cellFormat",
                  "returnFieldsByFieldId", "recordMetadata"}


class RecordsApi:
    """Airtable's ``/v0/{base}/{table}[/{record}]`` routes over the emulator's bases."""

    bases: dict[str, dict[str, EmulatedTable]]
    _iterators: dict[str, list[str]]
    _ids: Iterator[int]

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
                return visible(record, None)
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
            raise invalid("INVALID_REQUEST_UNKNOWN", f"Invalid page size: {page_size}")
        fields = options.get("fields")
        for name in fields or []:
            if name not in table.fields:
                raise invalid("UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
        offset = options.get("offset")
        iterator = None
        if offset:
            iterator, _, position_text = str(offset).partition("/")
            ids = self._iterators.get(iterator)
            if ids is None or not position_text.isdigit():
                raise invalid("LIST_RECORDS_ITERATOR_NOT_AVAILABLE",
                               "Iterator not available: the offset is unknown or expired")
            position = int(position_text)
        else:
            ids = self._snapshot(table, options)
            position = 0
        page = ids[position:position + page_size]
        by_id = {r["id"]: r for r in table.records}
        answer: dict[str, Any] = {
            "records": [visible(by_id[i], fields) for i in page if i in by_id]}
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
                raise invalid("VIEW_NAME_NOT_FOUND", f'Could not find view "{view}"')
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
            raise invalid("INVALID_REQUEST_UNKNOWN", "performUpsert needs fieldsToMergeOn")
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
                raise invalid("ROW_DOES_NOT_EXIST",
                               f"Record ID {item['id']} does not exist in this table")
            return record
        if merge_on is None:
            raise invalid("INVALID_RECORDS", "Each record needs an id (or use performUpsert)")
        for name in merge_on:
            if name not in table.fields:
                raise invalid("UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
        wanted = [item["fields"].get(name) for name in merge_on]
        matches = [r for r in table.records
                   if [r["fields"].get(name) for name in merge_on] == wanted]
        if len(matches) > 1:
            raise invalid("INVALID_VALUE_FOR_COLUMN", "Cannot upsert: more than one record "
                           f"matches the fields {merge_on}")
        return matches[0] if matches else None

    def _records_payload(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        records = payload.get("records")
        if not isinstance(records, list) or not records:
            raise invalid("INVALID_RECORDS", "records must be a non-empty array")
        if len(records) > MAX_RECORDS_PER_WRITE:
            raise invalid("INVALID_RECORDS", f"You can only send up to "
                           f"{MAX_RECORDS_PER_WRITE} records per request; got {len(records)}")
        for item in records:
            if not isinstance(item, dict) or not isinstance(item.get("fields"), dict):
                raise invalid("INVALID_RECORDS", "each record needs a fields object")
        return records

    def _validate_fields(self, table: EmulatedTable, fields: Any, typecast: bool) -> None:
        if not isinstance(fields, dict):
            raise invalid("INVALID_REQUEST_MISSING_FIELDS", "Could not find field \"fields\"")
        for name, value in fields.items():
            coerce(table, name, value, typecast, create_options=False)

    def _apply(self, table: EmulatedTable, record: dict[str, Any] | None,
               fields: dict[str, Any], typecast: bool, *, replace: bool) -> dict[str, Any]:
        if record is None:
            record = {"id": self._new_id("rec"), "createdTime": CREATED_TIME, "fields": {}}
            table.records.append(record)
        elif replace:
            record["fields"] = {k: v for k, v in record["fields"].items()
                                if table.fields[k] in COMPUTED_TYPES}
        for name, value in fields.items():
            stored = coerce(table, name, value, typecast, create_options=True)
            if present(stored):
                record["fields"][name] = stored
            else:
                record["fields"].pop(name, None)
        return visible(record, None)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):014d}"


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid("INVALID_REQUEST_UNKNOWN", "Invalid request: expected a JSON object")
    return body


def _list_options_from_query(query: dict[str, list[str]]) -> dict[str, Any]:
    unknown = sorted(set(query) - LIST_PARAMS)
    if unknown:
        raise invalid("INVALID_REQUEST_UNKNOWN",
                       f"Invalid request: parameter validation failed ({', '.join(unknown)})")
    options: dict[str, Any] = {k: v[-1] for k, v in query.items() if k != "fields[]"}
    if "fields[]" in query:
        options["fields"] = query["fields[]"]
    return options


def _list_options_from_body(body: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - LIST_BODY_KEYS)
    if unknown:
        raise invalid("INVALID_REQUEST_UNKNOWN",
                       f"Invalid request: parameter validation failed ({', '.join(unknown)})")
    return {k: v for k, v in body.items() if v is not None}


def _int_option(options: dict[str, Any], name: str, default: int) -> int:
    value = options.get(name, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid("INVALID_REQUEST_UNKNOWN", f"{name} must be a number") from None
