"""Errors as Google answers them: the API's JSON error body, and the faults a test
scripts (``SheetsEmulator.fail``) in the same forms.

One place for both, so that an error the emulator raises itself (``ApiError``) and
one a test injects (a 429 quota answer, a 503 HTML page from Google's front end)
read exactly alike to the client.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.servers import HttpError

STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
    404: "NOT_FOUND", 408: "DEADLINE_EXCEEDED", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}


class ApiError(HttpError):
    """An error answer in Google's JSON format."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, error_body(code, message), message)


def error_body(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message,
                      "status": STATUS_NAMES.get(code, "UNKNOWN")}}


def fault_body(code: int, html: bool, message: str | None) -> tuple[str, bytes]:
    """(content type, body) of an error as Google answers it: its JSON error, or its
    front end's HTML page."""
    if html:
        return "text/html; charset=UTF-8", (
            f"<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Error {code} "
            f"(Server Error)!!1</title><p><b>{code}.</b> <ins>That’s an error.</ins>"
            "<p>The server encountered a temporary error and could not complete your "
            "request.<p>Please try again in 30 seconds. <ins>That’s all we know.</ins>"
            "</html>").encode()
    message = message or {
        429: "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per "
             "minute per user' of service 'sheets.googleapis.com'.",
        500: "Internal error encountered.",
        503: "The service is currently unavailable.",
    }.get(code, f"Error {code}")
    return "application/json; charset=UTF-8", json.dumps(error_body(code, message)).encode()
