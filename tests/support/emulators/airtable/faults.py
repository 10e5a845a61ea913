"""Airtable's error answers: the bodies it sends, and the exception that sends them.

``ApiError`` is what the emulator raises for an answer other than 200; a scripted
fault (``AirtableEmulator.fail``) uses the same bodies (``default_body``), so an
injected error and a real refusal read alike to pyairtable.
"""

from __future__ import annotations

from typing import Any

from tests.support.servers import HttpError

RATE_LIMIT_BODY = {"errors": [{"error": "RATE_LIMIT_REACHED",
                               "message": "Rate limit exceeded. Please try again later"}]}
MONTHLY_CAP_BODY = {"errors": [{"error": "PUBLIC_API_BILLING_LIMIT_EXCEEDED",
                                "message": "The workspace has reached the monthly API call "
                                           "limit of its billing plan"}]}


class ApiError(HttpError):
    """An answer other than 200, with Airtable's body."""

    def __init__(self, status: int, kind: str | None = None, message: str = "",
                 body: Any = None) -> None:
        if body is None:
            body = ({"error": "NOT_FOUND"} if kind is None
                    else {"error": {"type": kind, "message": message}})
        super().__init__(status, body, f"{status} {kind}: {message}")


def invalid(kind: str, message: str) -> ApiError:
    """A 422 of this kind: Airtable's answer to a request it understood and refuses."""
    return ApiError(422, kind, message)


def default_body(status: int) -> Any:
    """Airtable's body for an answer of ``status`` (a scripted fault's default)."""
    if status == 429:
        return RATE_LIMIT_BODY
    if status == 404:
        return {"error": "NOT_FOUND"}
    kinds = {401: ("AUTHENTICATION_REQUIRED", "Authentication required"),
             403: ("INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND", "Invalid permissions"),
             422: ("INVALID_VALUE_FOR_COLUMN", "Field cannot accept the provided value"),
             500: ("SERVER_ERROR", "Try again. If the problem persists, contact support."),
             502: ("BAD_GATEWAY", "Airtable's servers are restarting"),
             503: ("SERVICE_UNAVAILABLE", "The server could not process your request in time")}
    kind, message = kinds.get(status, ("UNKNOWN", f"status {status}"))
    return {"error": {"type": kind, "message": message}}
