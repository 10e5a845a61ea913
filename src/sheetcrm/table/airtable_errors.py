"""What an Airtable failure means, in one line that says what to do.

Airtable answers errors in three body shapes (``{"error": {"type", "message"}}``,
``{"error": "NOT_FOUND"}``, ``{"errors": [{"error", "message"}]}``); ``error_parts``
reads all three. ``explain`` turns whatever a pyairtable call raised into an
``AirtableError`` that names the table, the action and the fix; a failure that was
retried says how many retries it got. Plans cap the API calls a workspace makes per
month: a call over the cap answers 429 ``PUBLIC_API_BILLING_LIMIT_EXCEEDED``, which
waiting does not cure, so it is never retried (``is_monthly_cap``) and says so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from requests import Response
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ConnectTimeout, HTTPError, RequestException, Timeout

from sheetcrm.errors import BackendError
from sheetcrm.i18n import _
from sheetcrm.model import WriteReport

MONTHLY_CAP = "PUBLIC_API_BILLING_LIMIT_EXCEEDED"  # the 429 of the monthly call cap
FREE_PLAN_CALLS = 1_000  # API calls per workspace per month on the Free plan
_UNKNOWN_FIELD = re.compile(r'Unknown field name: "(.*)"', re.DOTALL)


class AirtableError(BackendError):
    """An Airtable request failed. ``status`` and ``kind`` come from the response."""

    def __init__(self, message: str, *, status: int | None = None, kind: str = "",
                 detail: str = "") -> None:
        self.status = status
        self.kind = kind  # Airtable's error type, e.g. UNKNOWN_FIELD_NAME
        self.detail = detail  # Airtable's message
        super().__init__(message)


class AirtableWriteError(AirtableError):
    """A write stopped part way; ``report`` says what was written before it stopped."""

    def __init__(self, message: str, cause: AirtableError, report: WriteReport) -> None:
        super().__init__(message, status=cause.status, kind=cause.kind, detail=cause.detail)
        self.report = report


@dataclass(frozen=True)
class Where:
    """The table a message is about, as the operator configured it (never the token)."""

    source: str  # "Airtable base app… table '…'"
    endpoint: str
    base: str
    table: str
    timeout: tuple[float, float]  # (connect, read) seconds


def error_parts(data: bytes) -> tuple[str, str]:
    """Airtable's error type and message from a response body."""
    try:
        body = json.loads(data)
    except ValueError:
        return "", data[:200].decode("utf-8", "replace").strip()
    if not isinstance(body, dict):
        return "", ""
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("type", "")), str(error.get("message", ""))
    if isinstance(error, str):
        return error, str(body.get("message", ""))
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("error", "")), str(errors[0].get("message", ""))
    return "", ""


def is_monthly_cap(response: Response) -> bool:
    """A 429 that means the month's calls are spent, not "slow down"."""
    return response.status_code == 429 and error_parts(response.content)[0] == MONTHLY_CAP


def unknown_field(exc: AirtableError) -> str | None:
    """The field named by a 422 UNKNOWN_FIELD_NAME, if that is what ``exc`` is."""
    if exc.kind != "UNKNOWN_FIELD_NAME":
        return None
    match = _UNKNOWN_FIELD.search(exc.detail)
    return match.group(1) if match else None


def explain(exc: Exception, action: str, where: Where, retries: int) -> AirtableError:
    """One AirtableError for whatever a pyairtable call raised; ``retries`` is how many
    times the failing request was tried again."""
    prefix = f"{where.source}: {action}"
    if isinstance(exc, HTTPError):
        return _refused(exc, prefix, where, retries)
    if isinstance(exc, ConnectTimeout):
        return AirtableError(_("{prefix}: cannot connect to {endpoint} within {seconds} s",
                               prefix=prefix, endpoint=where.endpoint,
                               seconds=f"{where.timeout[0]:g}"))
    if isinstance(exc, Timeout):
        if retries:
            return AirtableError(_(
                "{prefix}: Airtable did not answer within {seconds} s, even when retried",
                prefix=prefix, seconds=f"{where.timeout[1]:g}"))
        return AirtableError(_("{prefix}: Airtable did not answer within {seconds} s",
                               prefix=prefix, seconds=f"{where.timeout[1]:g}"))
    if isinstance(exc, RequestsConnectionError):
        return AirtableError(_("{prefix}: cannot connect to {endpoint} ({error})",
                               prefix=prefix, endpoint=where.endpoint,
                               error=type(exc).__name__))
    if isinstance(exc, RequestException):
        return AirtableError(f"{prefix}: {type(exc).__name__}: {exc}")
    # pyairtable refused the response (TypeError, ValueError, KeyError)
    return AirtableError(_("{prefix}: unexpected response from {endpoint}: {error}",
                           prefix=prefix, endpoint=where.endpoint, error=type(exc).__name__))


def _refused(exc: HTTPError, prefix: str, where: Where, retries: int) -> AirtableError:
    """One line saying what Airtable refused and what to check."""
    response = exc.response
    status = response.status_code if response is not None else None
    kind, detail = error_parts(response.content) if response is not None else ("", "")
    if status == 429 and kind == MONTHLY_CAP:
        return monthly_cap(prefix, detail)
    if retries and status is not None and (status == 429 or status >= 500):
        if status == 429:
            message = _("{prefix}: Airtable kept answering 429 (rate limit) after "
                        "{retries} retries; try again later", prefix=prefix, retries=retries)
        else:
            message = _("{prefix}: Airtable kept answering {status} after {retries} retries; "
                        "try again later", prefix=prefix, status=status, retries=retries)
        return AirtableError(message, status=status, kind=kind, detail=detail)
    said = f"{status} {kind}".strip() + (f": {detail}" if detail else "")
    message = _("{prefix}: Airtable answered {said}", prefix=prefix, said=said)
    if status == 401:
        message += " — " + _("the token was refused; set AIRTABLE_TOKEN to a valid personal "
                             "access token (airtable.com/create/tokens)")
    elif status == 403:
        message += " — " + _(
            "check the table name or id {table!r} and that the token has the scopes "
            "data.records:read and data.records:write and access to base {base}",
            table=where.table, base=where.base)
    elif status == 404:
        message += " — " + _(
            "check the base id {base}, the table {table!r} and the endpoint {endpoint}",
            base=where.base, table=where.table, endpoint=where.endpoint)
    return AirtableError(message, status=status, kind=kind, detail=detail)


def monthly_cap(prefix: str, detail: str) -> AirtableError:
    """The workspace spent its monthly calls: what it means and what to do."""
    return AirtableError(_(
        "{prefix}: Airtable answered 429 {code}: the workspace has used all of its API "
        "calls for this month (the Free plan allows {calls}), so sheetcrm can neither read "
        "nor write the table until the count resets next month. Wait for the next month, "
        "upgrade the workspace's plan, or run less often ([schedule] every or cron; "
        "docs/airtable.md says what a schedule costs)", prefix=prefix, code=MONTHLY_CAP,
        calls=f"{FREE_PLAN_CALLS:,}"), status=429, kind=MONTHLY_CAP, detail=detail)
