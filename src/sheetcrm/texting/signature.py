"""Solapi's request signature: the ``Authorization`` header every API call carries.

A pure function of the key, the secret, the time and a salt, here (low in the layers)
because two parts of sheetcrm sign Solapi requests: the channel that sends
(``channels.solapi``) and the endpoint that confirms a delivery report with Solapi's
message list before believing it (``server.reports``). Both must make a fresh salt
for every attempt: Solapi refuses a signature it has seen (``DuplicatedSignature``)
and a date more than 15 minutes from its clock (``RequestTimeTooSkewed``).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime


def authorization(api_key: str, api_secret: str, date: str, salt: str) -> str:
    """Solapi's ``Authorization`` value for this date and salt."""
    signature = hmac.new(api_secret.encode(), (date + salt).encode(), hashlib.sha256).hexdigest()
    return f"HMAC-SHA256 apiKey={api_key}, date={date}, salt={salt}, signature={signature}"


def iso_date(seconds: float) -> str:
    """ISO 8601 in UTC, to the millisecond: ``2026-11-25T01:02:03.456Z``."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
