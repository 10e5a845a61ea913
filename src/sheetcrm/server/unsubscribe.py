"""Unsubscribe at ``/u/TOKEN``: RFC 8058 one-click, and the page an ad's footer links.

Why it is built this way:

- **POST records, GET never does.** A mail provider's one-click button POSTs
  ``List-Unsubscribe=One-Click`` (no cookie, no login): the opt-out is stored at once
  and answered 200 with an empty body. Link scanners (SafeLinks, Proofpoint, …) GET
  every URL in a message, so ``GET`` (and ``HEAD``) only shows a page with a button
  (in the config's ``language``: the sample's Korean, or English); the button POSTs,
  and the page after it confirms and offers an undo (a POST that records the
  customer's opt-in).
- **Only a token we made counts.** The token is signed (``sheetcrm.tokens``) and holds
  the send's idempotency key; the ledger says whose send that was. A forged, altered
  or unknown token records nothing and gets an honest 404 page.
- **Once per change of mind.** An event's id is ``<send>:<kind>:<n>``, ``n`` the
  customer's opt-outs and opt-ins stored before it. A second POST (a retry, a double
  click) finds the customer already out and records nothing, and two at the same
  moment compute the same id, which the ledger stores once; an undo followed by a
  new opt-out are new changes and each counts.
- The pages name no customer (a forwarded mail's link shows no address), are never
  cached or framed, send no referrer (the URL is the token), and load nothing.
"""

from __future__ import annotations

import logging

from markupsafe import Markup, escape
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sheetcrm.i18n import N_, in_language
from sheetcrm.model import Event, EventKind
from sheetcrm.server.app import ServerContext, rule
from sheetcrm.tokens import read_token

log = logging.getLogger("sheetcrm.server")

PURPOSE = "u"  # the tokens' purpose and the routes' first path segment
SOURCE = "unsubscribe"
UNDO = "undo"  # the form field ``action`` of the undo button
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}


def routes() -> list[Rule]:
    return [rule(f"/{PURPOSE}/<token>", show, ["GET"]),
            rule(f"/{PURPOSE}/<token>", act, ["POST"])]


# -- handlers ------------------------------------------------------------------------


def show(request: Request, ctx: ServerContext, token: str) -> Response:
    """The page behind the link: a button, or the undo when already opted out."""
    found = _send(ctx, token)
    if found is None:
        return _not_found(ctx)
    key, _idem = found
    if _opted_out(ctx, key):
        return _page(ctx, "already")
    return _page(ctx, "confirm")


def act(request: Request, ctx: ServerContext, token: str) -> Response:
    """One-click (any body but the undo) or a button of the page: record, then answer."""
    found = _send(ctx, token)
    if found is None:
        return _not_found(ctx)
    key, idem_key = found
    action = request.form.get("action")
    kind = EventKind.OPT_IN if action == UNDO else EventKind.OPT_OUT
    via = "page" if action else "one-click"
    _record(ctx, key, idem_key, kind, via)
    if action is None:  # RFC 8058: 200, nothing to show
        return Response(b"", status=200, headers=HEADERS, content_type="text/plain")
    return _page(ctx, "undone" if kind is EventKind.OPT_IN else "done")


# -- the ledger ------------------------------------------------------------------------


def _send(ctx: ServerContext, token: str) -> tuple[str, str] | None:
    """(row key, idempotency key) of the send a valid token names, else None."""
    payload = read_token(ctx.secret, PURPOSE, token)
    idem_key = payload.get("i") if payload else None
    if not isinstance(idem_key, str):
        return None
    send = ctx.store().send_of(idem_key)
    return (send[0], idem_key) if send else None


_KINDS = (EventKind.OPT_OUT, EventKind.OPT_IN)


def _opted_out(ctx: ServerContext, key: str) -> bool:
    history = ctx.store().events_of(key, _KINDS)
    return bool(history) and history[-1].kind is EventKind.OPT_OUT


def _record(ctx: ServerContext, key: str, idem_key: str, kind: EventKind, via: str) -> bool:
    """Store the change of mind, unless the customer is already where it leads."""
    store = ctx.store()
    history = store.events_of(key, _KINDS)
    out = bool(history) and history[-1].kind is EventKind.OPT_OUT
    if out == (kind is EventKind.OPT_OUT):
        return False
    event = Event(source=SOURCE, event_id=f"{idem_key}:{kind}:{len(history)}", kind=kind,
                  key=key, at=ctx.now(), idem_key=idem_key, data={"via": via})
    stored = store.record_event(event)
    if stored:  # counts only: never the customer
        log.info("", extra={"event": "heard", "fields": {"kind": str(kind), "via": via}})
    return stored


# -- the pages -----------------------------------------------------------------------

_BUTTON = ('<form method="post"><input type="hidden" name="action" value="{action}">'
           '<button type="submit">{label}</button></form>')

_PAGES: dict[str, tuple[str, str, str, str, str]] = {
    # name: (title, heading, text, the button's action, its label); the words are the
    # catalogs' (sheetcrm.i18n), shown in the config's language
    "confirm": (N_("Unsubscribe"), N_("Unsubscribe from advertising mail"),
                N_("To stop receiving advertising mail from {sender}, press the button "
                   "below. Mail you need, such as payment and order notices, still comes."),
                "opt_out", N_("Unsubscribe now")),
    "done": (N_("Unsubscribed"), N_("You are unsubscribed"),
             N_("{sender} sends you no more advertising mail. If you pressed it by mistake, "
                "undo it with the button below."),
             UNDO, N_("Undo unsubscribe")),
    "already": (N_("Unsubscribe"), N_("You have already unsubscribed"),
                N_("{sender} sends you no advertising mail. To receive it again, press the "
                   "button below."),
                UNDO, N_("Undo unsubscribe")),
    "undone": (N_("Unsubscribe undone"), N_("Your unsubscribe is undone"),
               N_("You receive advertising mail from {sender} again. You can unsubscribe "
                  "again at any time with the link at the bottom of the mail."),
               "opt_out", N_("Unsubscribe again")),
}

_HTML = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;
padding:0 1rem;line-height:1.6;color:#222;word-break:keep-all}}
button{{font-size:1rem;padding:.6rem 1.2rem;cursor:pointer}}</style></head>
<body><main><h1>{heading}</h1><p>{text}</p>{button}</main></body></html>
"""


def _page(ctx: ServerContext, name: str) -> Response:
    lang = ctx.config.model.language
    title, heading, text, action, label = _PAGES[name]
    sender = ctx.config.sending.sender_name or in_language(lang, "us")
    html = _HTML.format(lang=lang, title=escape(in_language(lang, title)),
                        heading=escape(in_language(lang, heading)),
                        text=escape(in_language(lang, text, sender=sender)),
                        button=Markup(_BUTTON).format(action=action,
                                                      label=in_language(lang, label)))
    return Response(html, status=200, headers=HEADERS, content_type="text/html; charset=utf-8")


def _not_found(ctx: ServerContext) -> Response:
    """A link we did not make (or whose send this ledger does not know): nothing recorded."""
    lang = ctx.config.model.language
    title = in_language(lang, "This link cannot be checked")
    html = _HTML.format(
        lang=lang, title=escape(title), heading=escape(title),
        text=escape(in_language(lang, "The address seems cut off or changed. Press the "
                                      "unsubscribe link in the mail exactly as it came, or "
                                      "ask to unsubscribe as the bottom of the mail says.")),
        button="")
    return Response(html, status=404, headers=HEADERS, content_type="text/html; charset=utf-8")
