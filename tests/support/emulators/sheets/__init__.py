"""A loopback emulator of the Google Sheets API v4 subset gspread uses, plus OAuth.

The real gspread and google-auth code runs against it unpatched: point the backend's
``endpoint`` at ``emulator.url`` and the service-account file's ``token_uri`` at
``emulator.token_uri`` (or leave it at Google's and let ``endpoint`` reroute it).

What it keeps, because the backend's correctness depends on it:

- **OAuth**: ``POST /token`` takes the RS256 JWT-bearer grant and checks its signature
  against the public key registered with ``add_account``, its ``iss``, ``aud``
  (always ``https://oauth2.googleapis.com/token``), ``scope`` and ``exp``. API calls
  need a live bearer token, else 401 (``expire_tokens()`` forces a refresh).
  ``GET /v1/projects/-/serviceAccounts/{email}/allowedLocations`` answers 404.
- **Typed cells**: text is ``str``; numbers, booleans, dates and formulas are ``Typed``
  with a number format. ``FORMATTED_VALUE`` renders them as a Korean-locale sheet shows
  them (``149,000``, ``2026. 11. 3``, ``2026. 11. 20 오후 9:30:00``, ``TRUE``, ``007`` for
  a ``000`` format); ``UNFORMATTED_VALUE`` gives numbers, booleans and serial dates
  (or ``FORMATTED_STRING`` dates); ``FORMULA`` gives formulas.
- **RAW vs USER_ENTERED**: RAW stores strings as text (``=HYPERLINK(...)`` stays text);
  USER_ENTERED parses as if typed (``=`` makes a formula, ``007`` becomes 7, dates
  become dates and an ISO date keeps its ``2020-01-01`` form, ``2,000,000.01`` keeps its
  decimals, a leading ``'`` forces text; formulas of plain arithmetic are computed,
  others show ``#NAME?``). JSON ``null`` skips a cell, ``""`` clears it.
- **Ranges as the API writes them**: ``Sheet1!A1`` for one cell, ``D4:A1`` read as
  ``A1:D4``, titles quoted unless plain (``'D3'`` is quoted). Values written at a single
  cell spread from it; a larger range must hold them. Answers count updated rows,
  columns and cells, and leave out counts of 0. A body whose ``values`` is not a list
  of rows is a 400 INVALID_ARGUMENT and stores nothing.
- **values.append** writes below the table it finds in the range (the block of filled
  cells around the last filled cell of the last filled row), from its first column;
  ``tableRange`` only when there is one.
- **Rows and sheets move as in Google**: ``insertDimension``, ``deleteDimension``,
  ``appendDimension``, ``sortRange`` (numbers before text, text without regard to
  case, blanks last; only the range's columns move), ``addSheet`` (with the caller's
  ``sheetId`` when given; a taken one is refused), ``deleteSheet``,
  ``updateSheetProperties`` (``fields`` honoured; the last visible sheet cannot be
  hidden), ``updateSpreadsheetProperties`` and ``updateCells`` (``userEnteredValue``
  only: ``stringValue`` stays text, numbers and booleans are typed; within a ``range``
  the cells the rows do not reach are cleared); a batch applies whole or not at all.
  The operator helpers below move cells with the same code.
- **Ragged rows**: trailing empty cells and rows are dropped; an empty middle row is ``[]``.
- **Grid limits**: each sheet has a row and column count; reading or writing an
  explicit range past it is a 400 "exceeds grid limits"; open-ended ranges are clamped;
  ``values.append`` and ``appendDimension`` grow it.
- **Errors** in Google's JSON format (``{"error": {"code", "message", "status"}}``),
  403 for a spreadsheet not shared with the caller, 404 for an unknown one. What it
  does not model (formats, merges, named ranges, filters, protected ranges, field
  masks, copy/paste) is refused with a 400 that says so, never answered wrongly.

Checked against Google: the Sheets API calls recorded in gspread's test cassettes
(repository burnash/gspread, tests/cassettes: 1,508 calls, 1,374 of them on
spreadsheets the recordings create) were replayed against this emulator and the
answers compared; 1,216 match (899 before the fixes above), and 783 of the 790 of the
shapes the backend sends itself (the rest follow copy/paste and named ranges, not
modelled). tests/test_sheets_emulator.py pins what the recordings show.

No recording covers these requests the backend itself sends, so the emulator's
answers to them follow the API reference and stay conservative (strict where Google
might be lenient):

- ``appendDimension`` of columns (growing the grid for an appended header column);
- the report tab's batch: ``addSheet`` with a chosen ``sheetId`` and ``updateCells``
  over a whole-sheet ``range`` in the same request (from the API reference:
  UpdateCellsRequest clears the ``fields`` wherever ``rows`` do not cover ``range``);
- ``values.batchGet`` of a header row (``'t'!1:1``) with open-ended columns
  (``'t'!E2:E``), and ``values.batchUpdate`` bodies built by the backend (many
  one-column ranges, JSON ``null`` gaps, majorDimension ROWS);
- Korean sheet titles (recordings use ASCII and emoji titles; Korean ones are quoted);
- RAW text starting with ``=`` (the recordings type formulas USER_ENTERED only);
- the ko_KR locale's display forms (``2026. 11. 3``, ``오후``, ``₩``): the recordings
  are en_US;
- 429, 5xx (JSON or HTML), 401 and token refresh, "exceeds grid limits", refused
  payload sizes, 50,000-character cells, and the OAuth and IAM endpoints.

For tests: the request log and the faults are ``support.servers.LoopbackServer``'s;
every request is logged (``requests``) with its kind (``spreadsheets.get``,
``values.get``, ``values.batchGet``, ``values.update``, ``values.batchUpdate``,
``values.append``, ``values.clear``, ``values.batchClear``,
``spreadsheets.batchUpdate``, ``token``, ``allowedLocations``); ``fail()`` scripts
faults in Google's terms (any status with a JSON or HTML body, a dropped connection,
a slow answer) and ``on()`` runs a callback right before, or right after, a request
of some kind is applied (to change the sheet at the worst possible moment: between a
client's read and its write, or between its write and its next read). Helpers edit
the sheet as an operator would (``put``, ``sort_rows``, ``insert_rows``,
``delete_rows``, ``insert_columns``) and show it as displayed (``display``).

The package, one module per part of the API: ``cells`` (typed cells, display forms,
typing), ``grid`` (spreadsheets, sheets, rows and columns moving), ``a1`` (ranges),
``faults`` (Google's error bodies), ``routing`` (request kinds), ``values`` (the
values endpoints), ``batch_update`` (spreadsheets.batchUpdate) and ``server``
(``SheetsEmulator``: OAuth, setup, operator edits, test controls). The names tests
use are importable from the package itself.
"""

from tests.support.emulators.sheets.a1 import Bounds, column_index, column_letters, quote_title
from tests.support.emulators.sheets.cells import (
    DATE_FORMATS,
    Cell,
    Typed,
    raw_cell,
    render,
    user_entered,
)
from tests.support.emulators.sheets.faults import STATUS_NAMES, ApiError
from tests.support.emulators.sheets.grid import Sheet, Spreadsheet
from tests.support.emulators.sheets.routing import SHEETS_KINDS, WRITE_KINDS, SheetsRequest
from tests.support.emulators.sheets.server import SHEETS_SCOPE, TOKEN_AUDIENCE, SheetsEmulator
from tests.support.emulators.sheets.values import MAX_CELL_CHARS

__all__ = [
    "DATE_FORMATS", "MAX_CELL_CHARS", "SHEETS_KINDS", "SHEETS_SCOPE", "STATUS_NAMES",
    "TOKEN_AUDIENCE", "WRITE_KINDS", "ApiError", "Bounds", "Cell", "Sheet",
    "SheetsEmulator", "SheetsRequest", "Spreadsheet", "Typed", "column_index",
    "column_letters", "quote_title", "raw_cell", "render", "user_entered",
]
