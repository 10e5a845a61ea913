"""What the operator reads when a Google Sheets request fails: one line that names the
spreadsheet, what was being done, and what to do about it.

The API's own message is quoted when it sent JSON; an HTML error page (a proxy's, or
Google's front end during an outage) is named, never pasted. Retried failures say how
many attempts were made, so "quota exceeded" after 7 tries reads differently from a
first refusal.
"""

from __future__ import annotations

from dataclasses import dataclass

import google.auth.exceptions
import requests
from gspread.exceptions import APIError, SpreadsheetNotFound

from sheetcrm.errors import BackendError
from sheetcrm.i18n import _


@dataclass(frozen=True)
class Access:
    """How the table reaches the spreadsheet, as messages name it (never the key)."""

    spreadsheet_id: str
    client_email: str
    project_id: str
    credentials_path: str
    token_uri: str


def explain(exc: BaseException, action: str, *, where: str, access: Access,
            read_timeout: float, attempts: int) -> BackendError:
    """A BackendError that says what failed and what the operator can do about it."""
    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, PermissionError) and isinstance(exc.__cause__, APIError):
        exc = exc.__cause__  # gspread turns a 403 from open_by_key into PermissionError
    if isinstance(exc, SpreadsheetNotFound):
        return BackendError(not_found(access.spreadsheet_id))
    if isinstance(exc, APIError):
        return BackendError(_api_message(exc, action, where, access, attempts))
    if isinstance(exc, requests.Timeout):
        return BackendError(_("{where}: no answer within {seconds} s while {action}, after "
                              "{attempts} attempts", where=where, seconds=f"{read_timeout:g}",
                              action=action, attempts=attempts))
    if isinstance(exc, requests.ConnectionError):
        return BackendError(_("{where}: cannot connect while {action}, after {attempts} "
                              "attempts ({error})", where=where, action=action,
                              attempts=attempts, error=type(exc).__name__))
    if isinstance(exc, google.auth.exceptions.TransportError):
        return BackendError(_("{where}: cannot reach the token endpoint {uri} while {action} "
                              "({error}); the next run tries again", where=where,
                              uri=access.token_uri, action=action, error=type(exc).__name__))
    if isinstance(exc, google.auth.exceptions.RefreshError):
        return BackendError(_(
            "{where}: could not get an access token from {uri} while {action}: {reason}. "
            "Check the service-account key file {file}", where=where, uri=access.token_uri,
            action=action, reason=short(str(exc.args[0]) if exc.args else str(exc)),
            file=access.credentials_path or "(table.credentials)"))
    return BackendError(_("{where}: {error} while {action}: {reason}", where=where,
                          error=type(exc).__name__, action=action, reason=short(str(exc))))


def _api_message(exc: APIError, action: str, where: str, access: Access, attempts: int) -> str:
    status = exc.response.status_code
    said = detail(exc)
    if status == 403:
        return _("{where}: permission denied while {action} ({said}). Share the spreadsheet "
                 "with the service account {email} (Share → add that email as Editor), and "
                 "check that the Google Sheets API is enabled in project {project}",
                 where=where, action=action, said=said, email=access.client_email,
                 project=access.project_id or _("(see the key file)"))
    if status == 404:
        return not_found(access.spreadsheet_id)
    if status == 401:
        return _("{where}: the service account's credentials were rejected (HTTP 401) while "
                 "{action}; check {file}", where=where, action=action,
                 file=access.credentials_path or "table.credentials")
    if status == 429:
        return _("{where}: quota exceeded (HTTP 429) while {action}, still after {attempts} "
                 "attempts; the next run picks up where this one stopped", where=where,
                 action=action, attempts=attempts)
    if status >= 500:
        return _("{where}: the Sheets API is unavailable (HTTP {status}, {said}) while "
                 "{action}, after {attempts} attempts; the next run picks up where this one "
                 "stopped", where=where, status=status, said=said, action=action,
                 attempts=attempts)
    return _("{where}: HTTP {status} while {action}: {said}", where=where, status=status,
             action=action, said=said)


def not_found(spreadsheet_id: str) -> str:
    return _("Google Sheets: spreadsheet {id!r} not found; check table.spreadsheet (the part "
             "between /d/ and /edit in the sheet's URL)", id=spreadsheet_id)



def detail(exc: APIError) -> str:
    """The API's own message; an HTML error page is named, not pasted."""
    if exc.code == -1:  # the body was not JSON
        body = exc.response.text.lstrip()[:200].lower()
        return _("an HTML error page") if body.startswith(("<!doctype", "<html")) else short(body)
    return f"{exc.error.get('status', exc.code)}: {short(str(exc.error.get('message', '')))}"


def short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def too_large(exc: APIError) -> bool:
    status = exc.response.status_code
    return status == 413 or (status == 400 and "payload size exceeds" in detail(exc))


def beyond_grid(exc: APIError) -> bool:
    return exc.response.status_code == 400 and "exceeds grid limits" in detail(exc)


def unparsable_range(exc: APIError) -> bool:
    return exc.response.status_code == 400 and "Unable to parse range" in detail(exc)
