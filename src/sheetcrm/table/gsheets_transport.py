"""How the Google Sheets table's requests travel: gspread on our own session, rerouted
when asked, every API request paced and retried by ``sheetcrm.http``.

- **One seam.** gspread sends through a requests ``AuthorizedSession``; a
  ``SheetsAdapter`` mounted on it for the Sheets host runs every request (a 401 that
  google-auth answers with a fresh token and a replay included) through the table's
  pacer and retry policy, and counts it by kind (``values.get``,
  ``values.batchUpdate``, ...). gspread's ``BackOffHTTPClient`` is not used: it never
  gives up and skips HTML 5xx. Token requests go through a session of their own, on a
  ``TokenAdapter`` that retries failed connections with the same policy (google-auth
  retries the token endpoint's 429, 500, 503 and 504 itself); they are neither paced
  nor counted as Sheets requests.
- **Endpoint.** ``endpoint`` reroutes the Sheets, OAuth and IAM hosts (emulators,
  proxies) with a transport adapter; gspread copies its URLs at import, so patching
  them would do nothing.
- **One metadata read.** ``open_by_key`` fetches the whole metadata (every worksheet)
  but keeps only the spreadsheet's properties; ``MetadataClient`` keeps the rest, so
  finding the worksheet costs no second request. The table caches the ``Worksheet``
  picked from it; every values answer refreshes its grid size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import gspread
import requests
from google.auth.transport.requests import AuthorizedSession, Request
from google.oauth2 import service_account
from gspread.exceptions import IncorrectCellLabel
from gspread.http_client import HTTPClient
from gspread.utils import a1_range_to_grid_range
from requests.adapters import HTTPAdapter

from sheetcrm.errors import BackendError
from sheetcrm.http import SYSTEM_CLOCK, Clock, Pacer, RetryAdapter, RetryPolicy
from sheetcrm.i18n import _

SHEETS_HOST = "https://sheets.googleapis.com"
#: Hosts that ``endpoint`` replaces: the Sheets API, the OAuth token endpoint and the
#: IAM lookup google-auth makes in the background after a token is issued.
GOOGLE_HOSTS = (
    SHEETS_HOST,
    "https://oauth2.googleapis.com",
    "https://iamcredentials.googleapis.com",
)
#: The Sheets quota is 60 requests a minute per user (a service account is one); a
#: sliding window of 55 stays under it whatever the minute boundaries.
QUOTA = (55, 60.0)
#: 7 tries: a request is given up after about a minute of waiting, long enough for a
#: per-minute quota window to pass. No wait is longer than 32 s (Retry-After included).
DEFAULT_RETRY = RetryPolicy(attempts=7, base_delay=1.0, max_wait=32.0)
#: The clock tables wait on unless given a pacer; tests replace it with a virtual one.
default_clock: Clock = SYSTEM_CLOCK


def quota_pacer(clock: Clock | None = None) -> Pacer:
    """A pacer at the Sheets quota (55 requests in any minute), waiting on ``clock``."""
    limit, period = QUOTA
    return Pacer(limit, period, clock=clock or default_clock)


class RerouteAdapter(HTTPAdapter):
    """Send requests for the Google API hosts to ``endpoint`` instead (None: don't).

    ``endpoint`` is listed in ``__attrs__`` because google-auth deep-copies its request
    object (and with it this adapter) for background lookups.
    """

    __attrs__ = [*HTTPAdapter.__attrs__, "endpoint"]

    def __init__(self, endpoint: str | None, **kwargs: Any) -> None:
        self.endpoint = endpoint
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: Any = None, verify: bool | str = True,
             cert: str | tuple[str, str] | None = None,
             proxies: dict[str, str] | None = None) -> requests.Response:
        url = request.url or ""
        host = next((h for h in GOOGLE_HOSTS if url.startswith(h + "/")), None)
        if self.endpoint and host:
            request.url = self.endpoint + url[len(host):]
            proxies = requests.utils.get_environ_proxies(request.url)  # for the new host
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert,
                            proxies=proxies)


class SheetsAdapter(RerouteAdapter, RetryAdapter):
    """The Sheets API's requests: rerouted once, then paced, retried and counted."""

    def __init__(self, endpoint: str | None, pacer: Pacer, retry: RetryPolicy) -> None:
        super().__init__(endpoint, retry=retry, pacer=pacer, label=request_kind)


class TokenAdapter(RerouteAdapter, RetryAdapter):
    """Token and IAM requests: rerouted when asked, retried when the connection fails.

    Every attribute is in ``__attrs__``: google-auth deep-copies this adapter, which
    keeps only those, for its background lookups.
    """

    __attrs__ = [*RerouteAdapter.__attrs__, "retry", "pacer", "clock", "final", "label",
                 "counts", "last_attempts"]

    def __init__(self, endpoint: str | None, retry: RetryPolicy, clock: Clock) -> None:
        super().__init__(endpoint, retry=replace(retry, statuses=frozenset()), clock=clock)


def request_kind(request: requests.PreparedRequest) -> str:
    """``values.get``, ``values.batchUpdate``, ``spreadsheets.get``, ... for counting."""
    path = urlsplit(request.url or "").path
    _head, _sep, rest = path.partition("/spreadsheets/")
    _id, slash, tail = rest.partition("/")
    if not slash:
        return "spreadsheets.batchUpdate" if rest.endswith(":batchUpdate") else "spreadsheets.get"
    if tail.startswith("values:"):
        return "values." + tail.partition(":")[2]
    if ":" in tail.rpartition("/")[2]:
        return "values." + tail.rpartition(":")[2]
    return "values.update" if (request.method or "").lower() == "put" else "values.get"


class MetadataClient(HTTPClient):
    """gspread's HTTP client, keeping the last spreadsheet metadata it fetched."""

    last_metadata: Mapping[str, Any] | None = None

    def fetch_sheet_metadata(self, id: str, params: Any = None) -> Mapping[str, Any]:  # noqa: A002
        self.last_metadata = super().fetch_sheet_metadata(id, params=params)
        return self.last_metadata


def build_client(credentials: service_account.Credentials, endpoint: str | None,
                 timeout: tuple[float, float], adapter: SheetsAdapter) -> gspread.Client:
    """A gspread client on our own authorized session (see REFERENCE.md)."""
    auth_session = requests.Session()  # used by google-auth for tokens and IAM lookups
    tokens = TokenAdapter(endpoint, adapter.retry, adapter.clock)
    auth_session.mount("https://", tokens)
    auth_session.mount("http://", tokens)
    session = AuthorizedSession(credentials, auth_request=Request(auth_session))
    session.mount(SHEETS_HOST + "/", adapter)
    client = gspread.Client(auth=credentials, session=session, http_client=MetadataClient)
    http = client.http_client
    assert isinstance(http, MetadataClient)
    http.auth = credentials  # gspread keeps them only when it builds the session itself
    client.set_timeout(timeout)
    return client


def last_metadata(client: gspread.Client) -> Mapping[str, Any]:
    """The metadata ``open_by_key`` fetched last."""
    http = client.http_client
    assert isinstance(http, MetadataClient) and http.last_metadata is not None
    return http.last_metadata


# --------------------------------------------------------------------------- the worksheet


@dataclass
class Worksheet:
    """Cached worksheet metadata; the grid size is refreshed by every values answer."""

    spreadsheet: gspread.Spreadsheet
    sheet_id: int
    title: str
    rows: int
    columns: int


def pick_worksheet(spreadsheet: gspread.Spreadsheet, metadata: Mapping[str, Any], *,
                   title: str | None, gid: int | None) -> Worksheet:
    """The worksheet named ``title`` (or with sheet id ``gid``, or the first one), or a
    BackendError listing the titles there are."""
    sheets = [s.get("properties", {}) for s in metadata.get("sheets", [])]
    grids = [p for p in sheets if p.get("sheetType", "GRID") == "GRID"]
    if title is not None:
        found = [p for p in grids if p.get("title") == title]
    elif gid is not None:
        found = [p for p in grids if p.get("sheetId") == gid]
    else:
        found = grids[:1]
    if not found:
        titles = ", ".join(repr(p.get("title")) for p in grids) or _("none")
        wanted = (_("no worksheet named {title!r}", title=title) if title is not None
                  else _("no worksheet with gid {gid}", gid=gid) if gid is not None
                  else _("no worksheet"))
        raise BackendError(_(
            "spreadsheet {title!r} ({url}) has {wanted}; its worksheets are: {titles}. Set "
            "table.worksheet to one of them", title=spreadsheet.title,
            url=f"https://docs.google.com/spreadsheets/d/{spreadsheet.id}", wanted=wanted,
            titles=titles))
    props = found[0]
    grid = props.get("gridProperties", {})
    return Worksheet(spreadsheet, int(props.get("sheetId", 0)), str(props["title"]),
                     int(grid.get("rowCount", 0)), int(grid.get("columnCount", 0)))


def refresh_grid(sheet: Worksheet, answered: str, *, rows: bool) -> None:
    """Take the grid size from a values answer's range (``'t'!A1:Z1000``)."""
    # gspread's get_a1_from_absolute_range splits at the first "!", which a title may hold.
    try:
        grid = a1_range_to_grid_range(answered.rpartition("!")[2])
    except IncorrectCellLabel:
        return
    if "endColumnIndex" in grid:
        sheet.columns = grid["endColumnIndex"]
    if rows and "endRowIndex" in grid:
        sheet.rows = grid["endRowIndex"]
