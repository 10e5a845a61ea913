"""The daemon's log: one JSON line per event on stderr, every config secret masked.

journald keeps stderr, and logs get shared: a line holds counts and reasons, never
customer data (row keys, addresses, cell values), and passes through the current
config's ``Redactor`` (asked for at each line, so a reloaded config's secrets are
masked from its first line on).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sheetcrm.redact import Redactor

log = logging.getLogger("sheetcrm.daemon")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, event, message and the record's fields."""

    def __init__(self, redact: Callable[[], Redactor]) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", record.name),
        }
        message = record.getMessage()
        if message:
            data["message"] = message
        data.update(getattr(record, "fields", {}))
        if record.exc_info:
            data["trace"] = self.formatException(record.exc_info)
        return json.dumps(self.redact().deep(data), ensure_ascii=False, default=str)


def setup_logging(redact: Callable[[], Redactor], stream: Any = None) -> logging.Handler:
    """Send sheetcrm's and APScheduler's records to stderr as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(redact))
    for name, level in (("sheetcrm", logging.INFO), ("apscheduler", logging.WARNING)):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    return handler


def emit(event: str, level: int = logging.INFO, message: str = "", **fields: Any) -> None:
    """Log one structured event."""
    log.log(level, message, extra={"event": event, "fields": fields})
