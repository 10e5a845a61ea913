"""Clicks and opens: ``GET /c/TOKEN`` redirects to a message's link, ``GET /o/TOKEN``
is its open pixel; each hit is stored as an event.

Why it is built this way:

- **Never an open redirect.** A click token is signed and holds the URL the message
  held (``core.links`` made it): the redirect goes there and nowhere else. A forged,
  altered or truncated token, or one made for another purpose, is a 404 and records
  nothing.
- **The customer always gets through.** The hit is stored before the answer, as every
  handler does; if the store fails (the ledger busy past its timeout, a disk error)
  the click is lost, with a log line that says so, but the 302 still goes out: a
  customer is never left at an error page for a link in our own mail.
- **Machines are kept, marked, and not counted.** A HEAD, a request without a user
  agent or with a known scanner's or HTTP library's, and a hit within
  ``AUTOMATIC_WITHIN`` of the send's delivery (link scanners such as Proofpoint,
  Safe Links or Mimecast follow every link as the mail arrives; Google's and Apple's
  image proxies fetch every image) are stored with ``machine=True`` and the reason;
  the expression helpers (``clicked()``, ``opened()``) and the report leave them out.
  Image proxies' own user agents are not treated as machines: they also fetch when a
  person opens the mail (the lesson of bot filters that dropped every Gmail open).
  The delivery time is the one the ledger holds: the run's clock when the send was
  marked sent.
- **A double click is one click.** The event id is the token's digest, the minute
  and whether it was a machine: a reload or a second click within the minute adds
  nothing, and a scanner's hit never hides the customer's.
- **Opens are opt-in** (``[server] track_opens``) and unreliable: recorded only when
  asked for, always shown as such. With ``track_clicks`` or ``track_opens`` turned
  off later, old links still redirect and old pixels still load; nothing is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from werkzeug.exceptions import NotFound
from werkzeug.routing import Rule
from werkzeug.urls import iri_to_uri
from werkzeug.wrappers import Request, Response

from sheetcrm.model import Event, EventKind
from sheetcrm.server.app import ServerContext, rule
from sheetcrm.tokens import read_token

log = logging.getLogger("sheetcrm.server")

#: A hit this soon after the send's delivery is a machine's (scanners follow on arrival).
AUTOMATIC_WITHIN = timedelta(seconds=10)

# User agents of link scanners, crawlers and HTTP libraries; not image proxies.
_MACHINE_AGENTS = re.compile(
    r"bot\b|bot/|crawler|spider|scanner|preview|proofpoint|barracuda|mimecast|safelinks"
    r"|symantec|messagelabs|trend ?micro|forcepoint|sophos|fortiguard|ironport|zscaler"
    r"|python-requests|python-urllib|aiohttp|httpx|curl/|wget/|go-http-client|java/"
    r"|okhttp|libwww|httpclient|headlesschrome|phantomjs|facebookexternalhit",
    re.IGNORECASE)

# A transparent 1x1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_NO_STORE = {"Cache-Control": "no-store, max-age=0", "Referrer-Policy": "no-referrer"}


def routes() -> list[Rule]:
    """``/c/TOKEN`` (clicks) and ``/o/TOKEN`` (the open pixel)."""
    return [rule("/c/<token>", click, ["GET", "HEAD"]),
            rule("/o/<token>", open_pixel, ["GET", "HEAD"])]


def click(request: Request, ctx: ServerContext, token: str) -> Response:
    """Record the click, then send the customer on to the link the message held."""
    payload = read_token(ctx.secret, "c", token)
    idem_key = payload.get("i") if payload else None
    url = payload.get("u") if payload else None
    if not isinstance(idem_key, str) or not isinstance(url, str) or not _web_link(url):
        raise NotFound()
    if ctx.settings.track_clicks:
        _record(request, ctx, EventKind.CLICK, idem_key, token, {"url": url})
    return Response(f"Redirecting to {iri_to_uri(url)}\n", status=302,
                    headers={"Location": iri_to_uri(url), **_NO_STORE},
                    content_type="text/plain; charset=utf-8")


def open_pixel(request: Request, ctx: ServerContext, token: str) -> Response:
    """Record the open (unreliable, opt-in) and answer a transparent 1x1 image."""
    payload = read_token(ctx.secret, "o", token)
    idem_key = payload.get("i") if payload else None
    if not isinstance(idem_key, str):
        raise NotFound()
    if ctx.settings.track_opens:
        _record(request, ctx, EventKind.OPEN, idem_key, token, {})
    return Response(PIXEL, status=200, headers=_NO_STORE, content_type="image/gif")


def automatic(request: Request, delivered_at: datetime | None, now: datetime) -> str:
    """Why a hit looks like a machine's, or "" when it looks like a person's."""
    if request.method == "HEAD":
        return "HEAD request"
    agent = request.headers.get("User-Agent", "").strip()
    if not agent:
        return "no user agent"
    if _MACHINE_AGENTS.search(agent):
        return "scanner or HTTP library"
    if delivered_at is None:
        return "before the send was recorded as delivered"
    if now - delivered_at < AUTOMATIC_WITHIN:
        return "seconds after delivery"
    return ""


def _record(request: Request, ctx: ServerContext, kind: EventKind, idem_key: str,
            token: str, data: dict[str, str]) -> None:
    """Store the hit for the customer the send went to; a lost record is only logged."""
    now = ctx.now()
    try:
        store = ctx.store()
        send = store.send_of(idem_key)
        if send is None:  # a message this ledger never sent (another ledger, a lost one)
            return
        why = automatic(request, store.delivered_at(idem_key), now)
        digest = hashlib.sha256(token.encode("ascii", "replace")).hexdigest()[:32]
        event_id = f"{digest}:{now.astimezone(UTC):%Y%m%dT%H%M}:{'m' if why else 'p'}"
        if why:
            data = {**data, "automatic": why}
        store.record_event(Event(source=str(kind), event_id=event_id, kind=kind, key=send[0],
                                 at=now, idem_key=idem_key, data=data, machine=bool(why)))
    except Exception as exc:  # the customer still gets through; the log says what was lost
        log.error("", extra={"event": f"{kind}_not_recorded",
                             "fields": {"error": type(exc).__name__}})


def _web_link(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
