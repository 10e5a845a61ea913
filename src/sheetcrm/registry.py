"""A class named by ``"module:Class"`` text, imported when it is first asked for.

The registries of table backends (``sheetcrm.table.BACKENDS``) and channel types
(``sheetcrm.channels.CHANNEL_TYPES``) list every kind by name, so that a config is
checked against all of them, while a run imports only the kinds it uses: the Google,
Airtable and providers' clients are slow to import and a config uses few of them.
"""

from __future__ import annotations

import importlib
from typing import Any


def named(spec: str) -> Any:
    """The attribute ``spec`` names (``"sheetcrm.table.csv:CsvTable"``), imported now."""
    module, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module), attribute)
