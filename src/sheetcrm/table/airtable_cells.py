"""Airtable cell values as the text sheetcrm's typed fields parse.

The table interface speaks text, so records are turned into rows of cells the way an
operator reads them in Airtable (a checked box is ``TRUE``, an unchecked one is
blank, a multiple select is ``a, b``), and sheetcrm's typed-field parsers do the rest.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["cell_text"]


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
