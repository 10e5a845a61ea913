"""The schema endpoints of the Airtable emulator: list a base's tables, create a
table, add a field to a table.

A mixin of ``AirtableEmulator`` placed before ``RecordsApi``: a ``/v0/meta/...`` path
is answered here, every other one goes on to the records routes. Tables and fields
are the emulator's own (``EmulatedTable``), so a table created here takes records at
once. Field ids are derived from the table and the field's position, stable for a
table's life, as Airtable's are. Refusals are Airtable's: 422 ``DUPLICATE_TABLE_NAME``,
``DUPLICATE_OR_EMPTY_FIELD_NAME``, ``INVALID_FIELD_TYPE``, and 404 for a table that is
not in the base.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.emulators.airtable.faults import ApiError, invalid
from tests.support.emulators.airtable.fields import WRITABLE_TYPES, EmulatedTable

#: Types a table's first (primary) field may have when a table is created.
PRIMARY_TYPES = {"singleLineText", "multilineText", "email", "url", "phoneNumber", "number",
                 "date", "dateTime"}


class MetaApi:
    """Airtable's ``/v0/meta/bases/{base}/tables[/{table}/fields]`` routes."""

    bases: dict[str, dict[str, EmulatedTable]]
    _new_id: Callable[[str], str]  # RecordsApi's

    def _route(self, method: str, segments: list[str], query: dict[str, list[str]],
               body: Any) -> Any:
        if segments[:3] != ["v0", "meta", "bases"] or len(segments) < 5 \
                or segments[4] != "tables":
            return super()._route(method, segments, query, body)  # type: ignore[misc]
        base, rest = segments[3], segments[5:]
        if not rest and method == "GET":
            return {"tables": [schema(t) for t in self.bases.get(base, {}).values()]}
        if not rest and method == "POST":
            return schema(self._create_table(base, body))
        if len(rest) == 2 and rest[1] == "fields" and method == "POST":
            table = next((t for t in self.bases.get(base, {}).values()
                          if rest[0] in (t.id, t.name)), None)
            if table is None:
                raise ApiError(404)
            name, ftype = _field(body)
            if name in table.fields:
                raise invalid("DUPLICATE_OR_EMPTY_FIELD_NAME", f"Field {name!r} exists")
            table.fields[name] = ftype
            return field_schema(table, name)
        raise ApiError(404)

    def _create_table(self, base: str, body: Any) -> EmulatedTable:
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) \
                or not body["name"].strip() or not isinstance(body.get("fields"), list) \
                or not body["fields"]:
            raise invalid("INVALID_REQUEST_UNKNOWN", "a table needs a name and fields")
        tables = self.bases.setdefault(base, {})
        if any(t.name == body["name"] for t in tables.values()):
            raise invalid("DUPLICATE_TABLE_NAME", f"Table {body['name']!r} exists")
        fields: dict[str, str] = {}
        for number, spec in enumerate(body["fields"]):
            name, ftype = _field(spec)
            if name in fields:
                raise invalid("DUPLICATE_OR_EMPTY_FIELD_NAME", f"Field {name!r} is twice")
            if number == 0 and ftype not in PRIMARY_TYPES:
                raise invalid("INVALID_FIELD_TYPE", f"{ftype} cannot be the primary field")
            fields[name] = ftype
        table = EmulatedTable(self._new_id("tbl"), body["name"], fields)
        tables[table.id] = table
        return table


def _field(spec: Any) -> tuple[str, str]:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) \
            or not spec["name"].strip():
        raise invalid("DUPLICATE_OR_EMPTY_FIELD_NAME", "a field needs a name")
    if spec.get("type") not in WRITABLE_TYPES:
        raise invalid("INVALID_FIELD_TYPE", f"unknown field type {spec.get('type')!r}")
    return spec["name"], spec["type"]


def field_schema(table: EmulatedTable, name: str) -> dict[str, Any]:
    number = list(table.fields).index(name)
    return {"id": f"fld{table.id[3:]}{number:03d}", "name": name, "type": table.fields[name]}


def schema(table: EmulatedTable) -> dict[str, Any]:
    """A table as the meta API describes it: id, name, fields in order, its views."""
    fields = [field_schema(table, name) for name in table.fields]
    return {"id": table.id, "name": table.name,
            "primaryFieldId": fields[0]["id"] if fields else None, "fields": fields,
            "views": [{"id": f"viw{table.id[3:]}", "name": "Grid view", "type": "grid"}]}
