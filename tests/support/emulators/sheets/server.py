"""The Sheets emulator's server: accounts, spreadsheets, what a test controls, and
the handling of each request (OAuth, then the Sheets API).

The API itself is in the sibling modules (``values``, ``batch_update``, ``a1``,
``grid``, ``cells``); this class holds the state they work on and the test's
handles on it: setup, the operator's edits, faults, hooks and the request log
(``support.servers.LoopbackServer``'s). Every request is answered under the
server's lock, so a hook sees the sheet exactly between two requests.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.emulators.sheets import batch_update, values
from tests.support.emulators.sheets.a1 import REF, column_index, parse_range
from tests.support.emulators.sheets.cells import Cell, raw_cell, render, user_entered
from tests.support.emulators.sheets.faults import ApiError, fault_body
from tests.support.emulators.sheets.grid import Sheet, Spreadsheet
from tests.support.emulators.sheets.routing import (
    SHEETS_KINDS,
    WRITE_KINDS,
    SheetsRequest,
    as_object,
    one,
    parse_body,
)
from tests.support.servers import Fault, LoopbackServer, Reply, Request, json_reply

TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
SHEETS_SCOPE = "https://www.googleapis.com/auth/spreadsheets"


@dataclass
class _Hook:
    kind: str
    fn: Callable[[SheetsEmulator], None]
    times: int | None
    when: str  # "before" or "after" the request is applied
    skip: int = 0  # requests of this kind to let pass first


class SheetsEmulator(LoopbackServer):
    """The emulator; a context manager (``with SheetsEmulator() as emu: ...``)."""

    request_type = SheetsRequest

    def __init__(self, *, token_lifetime: int = 3600) -> None:
        super().__init__()
        self.token_lifetime = token_lifetime
        self.max_request_bytes = 10_485_760  # Google refuses bigger request bodies
        self.spreadsheets: dict[str, Spreadsheet] = {}
        self.accounts: dict[str, rsa.RSAPublicKey] = {}
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (email, expires at)
        self.hooks: list[_Hook] = []

    @property
    def token_uri(self) -> str:
        return self.url + "/token"

    # -- setup -------------------------------------------------------------------

    def add_account(self, email: str, public_key: rsa.RSAPublicKey) -> None:
        """Accept JWTs signed by this key for this service-account email."""
        with self.lock:
            self.accounts[email] = public_key

    def add_spreadsheet(self, spreadsheet_id: str, *, title: str = "고객 관리",
                        locale: str = "ko_KR", shared_with: Iterable[str] | None = None
                        ) -> Spreadsheet:
        with self.lock:
            book = Spreadsheet(spreadsheet_id, title, locale,
                               shared_with=None if shared_with is None else set(shared_with))
            self.spreadsheets[spreadsheet_id] = book
            return book

    def add_sheet(self, spreadsheet_id: str, title: str, *, rows: int = 1000,
                  cols: int = 26) -> Sheet:
        with self.lock:
            return self.spreadsheets[spreadsheet_id].add_sheet(title, rows, cols)

    def sheet(self, spreadsheet_id: str, title: str) -> Sheet:
        return self.spreadsheets[spreadsheet_id].sheet(title)

    def put(self, spreadsheet_id: str, title: str, rows: Sequence[Sequence[Any]], *,
            start: str = "A1", input: str = "USER_ENTERED", grow: bool = True) -> None:  # noqa: A002
        """Enter values as an operator would (USER_ENTERED) or as they are (RAW).

        With ``grow`` the grid is enlarged to fit, as pasting does.
        """
        with self.lock:
            sheet = self.sheet(spreadsheet_id, title)
            match = REF.fullmatch(start)
            assert match is not None
            c0, r0 = column_index(match[1]), int(match[2]) - 1
            convert = user_entered if input == "USER_ENTERED" else raw_cell
            if grow:
                sheet.row_count = max(sheet.row_count, r0 + len(rows))
                sheet.col_count = max(sheet.col_count, c0 + max(map(len, rows), default=0))
            for i, row in enumerate(rows):
                for j, value in enumerate(row):
                    if value is not None:
                        sheet.set(r0 + i, c0 + j, convert(value))

    def put_fast(self, spreadsheet_id: str, title: str, rows: list[list[str]]) -> None:
        """Replace the sheet's content by these text cells from A1 (benchmarks: no parsing)."""
        with self.lock:
            sheet = self.sheet(spreadsheet_id, title)
            sheet.rows = [list(row) for row in rows]
            sheet.row_count = max(sheet.row_count, len(rows))
            sheet.col_count = max(sheet.col_count, max(map(len, rows), default=0))

    def display(self, spreadsheet_id: str, title: str) -> list[list[str]]:
        """The sheet as shown (FORMATTED_VALUE), every row padded to the widest."""
        with self.lock:
            sheet = self.sheet(spreadsheet_id, title)
            book = self.spreadsheets[spreadsheet_id]
            width = max((len(r) for r in sheet.rows), default=0)
            return [[render(row[c] if c < len(row) else None, locale=book.locale)
                     for c in range(width)] for row in sheet.rows]

    def cell(self, spreadsheet_id: str, title: str, a1: str) -> Cell:
        match = REF.fullmatch(a1)
        assert match is not None
        with self.lock:
            return self.sheet(spreadsheet_id, title).get(int(match[2]) - 1,
                                                         column_index(match[1]))

    # -- operator edits ----------------------------------------------------------

    def sort_rows(self, spreadsheet_id: str, title: str, column: int, *,
                  descending: bool = False, first: int = 2) -> None:
        """Sort rows ``first``.. (1-based) by the 0-based ``column``, like Data > Sort
        sheet with the header frozen: whole rows move, ordered as sortRange orders."""
        with self.lock:
            sheet = self.sheet(spreadsheet_id, title)
            sheet.sort(first - 1, sheet.row_count, 0, sheet.col_count, [(column, descending)])

    def insert_rows(self, spreadsheet_id: str, title: str, at: int,
                    rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows before 1-based row ``at`` (values entered as USER_ENTERED)."""
        with self.lock:
            sheet = self.sheet(spreadsheet_id, title)
            sheet.insert("ROWS", at - 1, len(rows))
            for i, row in enumerate(rows):
                for j, value in enumerate(row):
                    sheet.set(at - 1 + i, j, user_entered(str(value)))

    def delete_rows(self, spreadsheet_id: str, title: str, at: int, count: int = 1) -> None:
        """Delete ``count`` rows starting at 1-based row ``at``."""
        with self.lock:
            self.sheet(spreadsheet_id, title).delete("ROWS", at - 1, at - 1 + count)

    def insert_columns(self, spreadsheet_id: str, title: str, at: int, count: int = 1) -> None:
        """Insert empty columns before 0-based column ``at``."""
        with self.lock:
            self.sheet(spreadsheet_id, title).insert("COLUMNS", at, count)

    # -- test controls -----------------------------------------------------------

    def fail(self, kind: str = "*", status: int = 503, *, times: int | None = 1,
             html: bool = False, drop: bool = False, delay: float = 0.0,
             message: str | None = None, headers: dict[str, str] | None = None) -> Fault:
        """Answer the next ``times`` requests of ``kind`` (``"*"``: of any Sheets API
        kind) with ``status`` (None: forever), in Google's JSON error format or, with
        ``html``, as Google's front end's HTML page.

        ``status=0`` with a ``delay`` answers normally, late. ``drop`` closes the
        connection instead of answering.
        """

        def matches(request: Request) -> bool:
            found = request.kind  # type: ignore[attr-defined]
            return kind == found or (kind == "*" and found in SHEETS_KINDS)

        content_type, body = fault_body(status, html, message)
        reply = Reply(status, delay, {"Content-Type": content_type, **(headers or {})}, body,
                      drop)
        return self.add_fault(Fault(reply, matches, times))

    def on(self, kind: str, fn: Callable[[SheetsEmulator], None], *, times: int | None = 1,
           when: str = "before", skip: int = 0) -> None:
        """Call ``fn(emulator)`` right before (or ``when="after"``: right after) the next
        ``times`` requests of ``kind`` are applied, once ``skip`` of them went by.

        "after" runs before the answer leaves, so the client cannot see the sheet as it
        was between the two.
        """
        assert when in ("before", "after")
        with self.lock:
            self.hooks.append(_Hook(kind, fn, times, when, skip))

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working: the next call gets a 401."""
        with self.lock:
            self.tokens.clear()

    def count(self, *kinds: str) -> int:
        """Requests logged of these kinds (every Sheets API kind when none is given)."""
        wanted = set(kinds) or SHEETS_KINDS
        with self.lock:
            return sum(1 for entry in self.requests if entry.kind in wanted)

    def kinds(self) -> list[str]:
        """The kinds of the Sheets API requests logged, in order."""
        with self.lock:
            return [entry.kind for entry in self.requests if entry.kind in SHEETS_KINDS]

    def writes(self) -> list[SheetsRequest]:
        with self.lock:
            return [entry for entry in self.requests if entry.kind in WRITE_KINDS]

    # -- request handling --------------------------------------------------------

    def answer(self, request: SheetsRequest) -> Reply:
        if len(request.body) > self.max_request_bytes:
            raise ApiError(400, "Request payload size exceeds the limit: "
                                f"{self.max_request_bytes} bytes.")
        return json_reply(*self._dispatch(request, parse_body(request.body, request.headers)))

    def _dispatch(self, request: SheetsRequest, body: Any) -> tuple[int, Any]:
        kind, route = request.kind, request.route
        if kind == "token":
            return self._token(body)
        if kind == "allowedLocations":
            raise ApiError(404, "Method not found.")
        if kind == "unknown":
            raise ApiError(404, f"{request.method} {urllib.parse.unquote(request.path)} is "
                                "not part of the emulated API")
        with self.lock:
            request.email = self._authenticate(request.headers)
            book = self._book(route[0], request.email)
            due = self._due_hooks(kind)
            for hook in due:
                if hook.when == "before":
                    hook.fn(self)
            payload = self._api(kind, book, route, request.query, body)
            for hook in due:
                if hook.when == "after":
                    hook.fn(self)
            return 200, payload

    def _due_hooks(self, kind: str) -> list[_Hook]:
        """The hooks to run on this request of ``kind``; spent ones are removed."""
        due = []
        for hook in [h for h in self.hooks if h.kind == kind]:
            if hook.skip:
                hook.skip -= 1
                continue
            if hook.times is not None:
                hook.times -= 1
                if hook.times <= 0:
                    self.hooks.remove(hook)
            due.append(hook)
        return due

    # -- OAuth ---------------------------------------------------------------------

    def _token(self, form: Any) -> tuple[int, Any]:
        form = form or {}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type",
                         "error_description": "Invalid grant_type."}
        try:
            email = self._verify_jwt(str(form.get("assertion", "")))
        except ValueError as exc:
            return 400, {"error": "invalid_grant", "error_description": str(exc)}
        token = "ya29.emu-" + secrets.token_hex(16)
        with self.lock:
            self.tokens[token] = (email, time.time() + self.token_lifetime)
        return 200, {"access_token": token, "expires_in": self.token_lifetime,
                     "token_type": "Bearer"}

    def _verify_jwt(self, assertion: str) -> str:
        """The service-account email of a valid assertion; ValueError says what is wrong."""
        parts = assertion.split(".")
        if len(parts) != 3:
            raise ValueError("Invalid JWT: not three segments.")
        try:
            header, claims = (json.loads(_b64decode(p)) for p in parts[:2])
            signature = _b64decode(parts[2])
        except (ValueError, TypeError) as exc:
            raise ValueError("Invalid JWT: not base64url JSON.") from exc
        if header.get("alg") != "RS256":
            raise ValueError(f"Invalid JWT: alg {header.get('alg')!r}, expected RS256.")
        email = claims.get("iss")
        key = self.accounts.get(email)
        if key is None:
            raise ValueError(f"Invalid JWT: unknown service account {email!r}.")
        try:
            key.verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(),
                       hashes.SHA256())
        except InvalidSignature:
            raise ValueError("Invalid JWT Signature.") from None
        now = time.time()
        if claims.get("aud") != TOKEN_AUDIENCE:
            raise ValueError(f"Invalid JWT: aud {claims.get('aud')!r}.")
        if SHEETS_SCOPE not in str(claims.get("scope", "")).split():
            raise ValueError("Invalid JWT: the spreadsheets scope is missing.")
        if not claims.get("exp", 0) > now or claims.get("iat", now) > now + 300:
            raise ValueError("Invalid JWT: Token must be a short-lived token and in a "
                             "reasonable timeframe.")
        return str(email)

    def _authenticate(self, headers: dict[str, str]) -> str:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip()
        found = self.tokens.get(token)
        if not token or found is None or found[1] < time.time():
            raise ApiError(401, "Request had invalid authentication credentials. Expected "
                                "OAuth 2 access token, login cookie or other valid "
                                "authentication credential.")
        return found[0]

    def _book(self, spreadsheet_id: str, email: str) -> Spreadsheet:
        book = self.spreadsheets.get(spreadsheet_id)
        if book is None:
            raise ApiError(404, "Requested entity was not found.")
        if book.shared_with is not None and email not in book.shared_with:
            raise ApiError(403, "The caller does not have permission")
        return book

    # -- Sheets API ----------------------------------------------------------------

    def _api(self, kind: str, book: Spreadsheet, route: list[str],
             query: dict[str, list[str]], body: Any) -> Any:
        if kind == "spreadsheets.get":
            if "fields" in query or "ranges" in query or one(
                    query, "includeGridData", "false").lower() == "true":
                raise ApiError(400, "Field masks, ranges and grid data of spreadsheets.get "
                                    "are not emulated")
            return book.metadata()
        if kind == "values.get":
            return values.read(book, route[1], query)
        if kind == "values.batchGet":
            return {"spreadsheetId": book.spreadsheet_id,
                    "valueRanges": [values.read(book, r, query) for r in query.get("ranges", [])]}
        if kind == "values.batchUpdate":
            return values.batch_update(book, body or {})
        if kind == "values.update":
            option = one(query, "valueInputOption", "")
            data = [{**as_object(body), "range": route[1]}]
            result = values.batch_update(book, {"valueInputOption": option, "data": data},
                                         single=True)
            return result["responses"][0]
        if kind == "values.append":
            return values.append(book, route[1], one(query, "valueInputOption", ""),
                                 as_object(body))
        if kind == "values.clear":
            return {"spreadsheetId": book.spreadsheet_id,
                    "clearedRange": values.clear(book, route[1])}
        if kind == "values.batchClear":
            ranges = as_object(body).get("ranges", [])
            bounds = [parse_range(book, text) for text in ranges]  # all parse, or none clears
            return {"spreadsheetId": book.spreadsheet_id,
                    "clearedRanges": [values.clear(book, b) for b in bounds]}
        if kind == "spreadsheets.batchUpdate":
            return batch_update.apply(book, body or {})
        raise ApiError(404, f"{kind} is not emulated")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
