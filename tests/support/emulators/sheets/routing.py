"""Which Sheets API request a path and method are, and the parts of a request.

Every request is logged with its kind (``values.get``, ``token``, ...) as it
arrives, before anything is checked: tests count and script faults by kind, and a
fault must match a request the emulator would refuse as well as one it would
answer. So the classification stands alone, apart from what answers each kind.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from tests.support.servers import Request

SHEETS_KINDS = frozenset({
    "spreadsheets.get", "spreadsheets.batchUpdate", "values.get", "values.batchGet",
    "values.update", "values.batchUpdate", "values.append", "values.clear",
    "values.batchClear",
})
WRITE_KINDS = frozenset({
    "spreadsheets.batchUpdate", "values.update", "values.batchUpdate", "values.append",
    "values.clear", "values.batchClear",
})


@dataclass
class SheetsRequest(Request):
    """One request as the emulator saw it, with its kind (``values.get``, ``token``...)."""

    kind: str = field(init=False)
    route: list[str] = field(init=False)  # [spreadsheet id, decoded range]
    email: str | None = None  # the service account whose token it carried

    def __post_init__(self) -> None:
        self.kind, self.route = classify(self.method, self.path)


def classify(method: str, path: str) -> tuple[str, list[str]]:
    """(kind, [spreadsheet id, decoded range]) of a request path."""
    if path == "/token" and method == "POST":
        return "token", []
    if path.startswith("/v1/") and path.endswith("/allowedLocations"):
        return "allowedLocations", []
    prefix = "/v4/spreadsheets/"
    if not path.startswith(prefix):
        return "unknown", []
    rest = path[len(prefix):]
    ident, sep, tail = rest.partition("/")
    if not sep:
        ident, _, action = rest.partition(":")
        ident = urllib.parse.unquote(ident)
        if not action and method == "GET":
            return "spreadsheets.get", [ident]
        if action == "batchUpdate" and method == "POST":
            return "spreadsheets.batchUpdate", [ident]
        return "unknown", []
    ident = urllib.parse.unquote(ident)
    if tail in ("values:batchGet", "values:batchUpdate", "values:batchClear"):
        return "values." + tail.partition(":")[2], [ident]
    if tail.startswith("values/"):
        encoded = tail[len("values/"):]
        encoded, colon, action = encoded.rpartition(":")  # only a suffix keeps a literal ':'
        if not colon:
            encoded, action = action, ""
        decoded = urllib.parse.unquote(encoded)
        if action == "append" and method == "POST":
            return "values.append", [ident, decoded]
        if action == "clear" and method == "POST":
            return "values.clear", [ident, decoded]
        if not action and method == "GET":
            return "values.get", [ident, decoded]
        if not action and method == "PUT":
            return "values.update", [ident, decoded]
    return "unknown", []


def parse_body(raw: bytes, headers: dict[str, str]) -> Any:
    if not raw:
        return None
    kind = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    if "application/x-www-form-urlencoded" in kind:
        return {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def one(query: dict[str, list[str]], name: str, default: str) -> str:
    """The first value of a query parameter, or ``default``."""
    values = query.get(name)
    return values[0] if values else default


def as_object(value: Any) -> dict[str, Any]:
    """A JSON value if it is an object, else ``{}`` (what the API reads as unset)."""
    return value if isinstance(value, dict) else {}
