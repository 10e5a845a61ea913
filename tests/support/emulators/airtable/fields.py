"""Airtable's field types in the emulator: what each stores, and what it refuses.

A table is its fields (name -> type), its records and its select options. What a
write stores goes through one function, ``coerce``, per field type as Airtable does
(typecast or not, select options created or refused), so a create, an update, an
upsert and a replace all store and refuse alike. Records leave empty and false
values out, as Airtable's do.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.emulators.airtable.faults import invalid

TEXT_TYPES = {"singleLineText", "multilineText", "richText", "email", "url", "phoneNumber"}
NUMBER_TYPES = {"number", "currency", "percent", "rating", "duration"}
COMPUTED_TYPES = {"formula", "rollup", "multipleLookupValues", "count", "autoNumber",
                  "createdTime", "lastModifiedTime"}
WRITABLE_TYPES = TEXT_TYPES | NUMBER_TYPES | {
    "checkbox", "date", "dateTime", "singleSelect", "multipleSelects",
    "multipleRecordLinks", "multipleAttachments"}
FIELD_TYPES = WRITABLE_TYPES | COMPUTED_TYPES
CREATED_TIME = "2026-01-01T00:00:00.000Z"


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


def present(value: Any) -> bool:
    """Airtable leaves empty and false values out of records (a number 0 stays)."""
    if isinstance(value, bool):
        return value
    return value is not None and not (isinstance(value, (str, list, dict)) and not value)


def visible(record: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    shown = record["fields"] if fields is None else {
        k: v for k, v in record["fields"].items() if k in fields}
    return {"id": record["id"], "createdTime": record["createdTime"],
            "fields": copy.deepcopy(shown)}


def coerce(table: EmulatedTable, name: str, value: Any, typecast: bool, *,
            create_options: bool) -> Any:
    """The value Airtable would store, or the 422 it would answer."""
    ftype = table.fields.get(name)
    if ftype is None:
        raise invalid("UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
    if ftype in COMPUTED_TYPES:
        raise invalid("INVALID_VALUE_FOR_COLUMN",
                       f'Field "{name}" cannot accept a value because the field is computed')
    if value is None:
        return None
    try:
        return _CONVERT[ftype](table, name, value, typecast, create_options)
    except (TypeError, ValueError):
        raise invalid("INVALID_VALUE_FOR_COLUMN",
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
            raise invalid("INVALID_MULTIPLE_CHOICE_OPTIONS",
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
