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
        return BackendError(f"{where}: no answer within {read_timeout:g} s while "
                            f"{action}, after {attempts} attempts")
    if isinstance(exc, requests.ConnectionError):
        return BackendError(f"{where}: cannot connect while {action}, after {attempts} "
                            f"attempts ({type(exc).__name__})")
    if isinstance(exc, google.auth.exceptions.TransportError):
        return BackendError(f"{where}: cannot reach the token endpoint {access.token_uri} "
                            f"while {action} ({type(exc).__name__}); the next run tries again")
    if isinstance(exc, google.auth.exceptions.RefreshError):
        return BackendError(
            f"{where}: could not get an access token from {access.token_uri} while "
            f"{action}: {short(str(exc.args[0]) if exc.args else str(exc))}. Check the "
            f"service-account key file {access.credentials_path or '(table.credentials)'}")
    return BackendError(f"{where}: {type(exc).__name__} while {action}: {short(str(exc))}")


def _api_message(exc: APIError, action: str, where: str, access: Access, attempts: int) -> str:
    status = exc.response.status_code
    said = detail(exc)
    if status == 403:
        return (f"{where}: permission denied while {action} ({said}). Share the "
                f"spreadsheet with the service account {access.client_email} (Share → "
                f"add that email as Editor), and check that the Google Sheets API is "
                f"enabled in project {access.project_id or '(see the key file)'}")
    if status == 404:
        return not_found(access.spreadsheet_id)
    if status == 401:
        return (f"{where}: the service account's credentials were rejected (HTTP 401) "
                f"while {action}; check {access.credentials_path or 'table.credentials'}")
    if status == 429:
        return (f"{where}: quota exceeded (HTTP 429) while {action}, still after "
                f"{attempts} attempts; the next run picks up where this one stopped")
    if status >= 500:
        return (f"{where}: the Sheets API is unavailable (HTTP {status}, {said}) while "
                f"{action}, after {attempts} attempts; the next run picks up where this "
                f"one stopped")
    return f"{where}: HTTP {status} while {action}: {said}"


def not_found(spreadsheet_id: str) -> str:
    return (f"Google Sheets: spreadsheet {spreadsheet_id!r} not found; check "
            f"table.spreadsheet (the part between /d/ and /edit in the sheet's URL)")



def detail(exc: APIError) -> str:
    """The API's own message; an HTML error page is named, not pasted."""
    if exc.code == -1:  # the body was not JSON
        body = exc.response.text.lstrip()[:200].lower()
        return "an HTML error page" if body.startswith(("<!doctype", "<html")) else short(body)
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
