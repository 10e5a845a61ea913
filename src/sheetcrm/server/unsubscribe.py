"""Unsubscribe at ``/u/TOKEN``: RFC 8058 one-click, and the page an ad's footer links.

Why it is built this way:

- **POST records, GET never does.** A mail provider's one-click button POSTs
  ``List-Unsubscribe=One-Click`` (no cookie, no login): the opt-out is stored at once
  and answered 200 with an empty body. Link scanners (SafeLinks, Proofpoint, …) GET
  every URL in a message, so ``GET`` (and ``HEAD``) only shows a Korean page with a
  button; the button POSTs, and the page after it confirms and offers an undo (a
  POST that records the customer's opt-in).
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
        return _not_found()
    key, _ = found
    if _opted_out(ctx, key):
        return _page(ctx, "already")
    return _page(ctx, "confirm")


def act(request: Request, ctx: ServerContext, token: str) -> Response:
    """One-click (any body but the undo) or a button of the page: record, then answer."""
    found = _send(ctx, token)
    if found is None:
        return _not_found()
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

_PAGES: dict[str, tuple[str, str, str, str]] = {
    # name: (title, heading, text, the button's action and label as "action|label")
    "confirm": ("수신 거부", "광고 메일 수신 거부",
                "{sender}에서 보내는 광고 메일을 더 이상 받지 않으시려면 아래 버튼을 눌러 "
                "주세요. 결제·주문 안내처럼 꼭 필요한 메일은 계속 받으십니다.",
                "opt_out|수신 거부하기"),
    "done": ("수신 거부 완료", "수신 거부가 완료되었습니다",
             "이제 {sender}의 광고 메일을 보내 드리지 않습니다. 잘못 누르셨다면 아래 "
             "버튼으로 취소하실 수 있습니다.",
             f"{UNDO}|수신 거부 취소"),
    "already": ("수신 거부", "이미 수신 거부하셨습니다",
                "{sender}의 광고 메일은 보내 드리지 않고 있습니다. 다시 받으시려면 아래 "
                "버튼을 눌러 주세요.",
                f"{UNDO}|수신 거부 취소"),
    "undone": ("수신 거부 취소", "수신 거부를 취소했습니다",
               "{sender}의 광고 메일을 다시 받으십니다. 언제든 메일 하단의 링크로 다시 "
               "거부하실 수 있습니다.",
               "opt_out|다시 수신 거부하기"),
}

_HTML = """<!doctype html>
<html lang="ko"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;
padding:0 1rem;line-height:1.6;color:#222;word-break:keep-all}}
button{{font-size:1rem;padding:.6rem 1.2rem;cursor:pointer}}</style></head>
<body><main><h1>{heading}</h1><p>{text}</p>{button}</main></body></html>
"""


def _page(ctx: ServerContext, name: str) -> Response:
    title, heading, text, button = _PAGES[name]
    sender = ctx.config.sending.sender_name or "저희"
    action, label = button.split("|")
    html = _HTML.format(title=escape(title), heading=escape(heading),
                        text=escape(text.format(sender=sender)),
                        button=Markup(_BUTTON).format(action=action, label=label))
    return Response(html, status=200, headers=HEADERS, content_type="text/html; charset=utf-8")


def _not_found() -> Response:
    """A link we did not make (or whose send this ledger does not know): nothing recorded."""
    html = _HTML.format(
        title="링크를 확인할 수 없습니다", heading="링크를 확인할 수 없습니다",
        text=escape("주소가 잘렸거나 바뀐 것 같습니다. 받으신 메일의 수신 거부 링크를 그대로 "
                    "눌러 주시거나, 메일 하단의 안내에 따라 수신 거부를 요청해 주세요."),
        button="")
    return Response(html, status=404, headers=HEADERS, content_type="text/html; charset=utf-8")
