"""Outside events: ``POST /e/NAME`` for each ``[events.NAME]`` (payments, form answers).

A request is taken in four steps, and answered as soon as the event is stored:

1. **Proved** over its raw bytes, before anything is parsed, by its source's own
   scheme (``sources``: Standard Webhooks, Tally, Stripe), or for a payment provider
   that does not sign (``payments``: Toss, PortOne V1) by looking the payment up with
   the provider's API.
2. **Read**: the row key from the dotted ``key`` path, and each ``set`` field, a
   value written in the config or ``{ from = "a.path" }`` in the payload. A path may
   pick an element of a list by index or by its ``key``, ``label``, ``name`` or
   ``id``: for Tally, ``data.fields.이메일`` is the answer to the question labelled
   이메일 (choices as their texts). Each value must fit its field's type.
3. **Stored** in the ledger as an ``external`` event (name = NAME, data = the cell
   text of each ``set`` field), once per provider event id: a retry or a replay
   stores nothing more and is answered 200 all the same (and counted for ``status``).
4. **Applied** by the next run (``core.events``): written once, through the run's
   batched write, so the operator's later edit of the cell wins.

Whatever is turned away (a bad or missing signature, a stale timestamp, a body too
large or not JSON, a path not in the payload, a payment the provider does not
confirm) is answered with its status (401, 400, 413, 503) and a one-line reason,
and counted in the ledger by event name and reason for ``sheetcrm status``. No
part of the request is kept or logged. Nothing is half-applied: an event is stored
whole, or not at all.

Text messages' delivery reports (``source = "solapi"`` / ``"nhn"``) come to the same
address and are turned away the same way, but they set no field: each names a sent
message whose delivery state it settles in the ledger (``reports``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Protocol, cast

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sheetcrm.config import Config
from sheetcrm.config.hearing import EventSettings
from sheetcrm.errors import CellError
from sheetcrm.fields import cell_text, make_parser
from sheetcrm.i18n import N_
from sheetcrm.model import Event, EventKind
from sheetcrm.server import payments, reports
from sheetcrm.server.app import EventStore, ServerContext, rule
from sheetcrm.server.sources import DUPLICATE, Heard, Refused, form_or_json, verify

log = logging.getLogger("sheetcrm.server")
UNKNOWN = "?"  # the name refusals of a name no [events.NAME] has are counted under
MAX_KEY = 500  # characters of a row key
ANSWER_FIELDS = ("key", "label", "name", "id")  # what picks an element of a list


class RefusalLog(EventStore, Protocol):
    """The store, counting what the endpoint turned away (the Ledger does)."""

    def record_refusal(self, name: str, reason: str, status: int, at: datetime) -> None: ...


def routes() -> list[Rule]:
    return [rule("/e/<name>", receive, ["POST"])]


class _Receive:
    """The handler of ``POST /e/NAME``; ``too_large`` answers a body over the limit."""

    def __call__(self, request: Request, ctx: ServerContext, name: str) -> Response:
        settings = ctx.config.events.get(name)
        if settings is None:
            return _refuse(ctx, UNKNOWN, Refused(404, N_("no such event name"),
                                                 "no [events.NAME] has this name"))
        try:
            raw = request.get_data(cache=False)
        except RequestEntityTooLarge:
            return self.too_large(ctx, name)
        headers = {k.lower(): v for k, v in request.headers.items()}
        if settings.reports:
            return _reports(ctx, name, settings, raw, headers, dict(request.args.items()))
        try:
            event = _event(name, settings, raw, headers, ctx)
        except Refused as refused:
            return _refuse(ctx, name, refused)
        if ctx.store().record_event(event):
            return _text(200, "stored")
        _count(ctx, name, DUPLICATE, 200)  # answered 2xx all the same: nothing to retry
        return _text(200, "already stored")

    def too_large(self, ctx: ServerContext, name: str) -> Response:
        counted = name if name in ctx.config.events else UNKNOWN
        return _refuse(ctx, counted, Refused(413, N_("body too large"),
                                             f"more than {ctx.settings.max_body} bytes"))


receive = _Receive()


def _reports(ctx: ServerContext, name: str, settings: EventSettings, raw: bytes,
             headers: dict[str, str], query: dict[str, str]) -> Response:
    """Delivery reports: applied in the ledger at once; what is passed over is counted."""
    store = cast(reports.DeliveryStore, ctx.store())
    try:
        taken = reports.take(settings, raw, headers, query, store, ctx.config, ctx.now())
    except Refused as refused:
        return _refuse(ctx, name, refused)
    for reason, n in taken.ignored.items():
        for _ in range(n):
            _count(ctx, name, reason, 200)
    return _text(200, taken.answer())


def _event(name: str, settings: EventSettings, raw: bytes, headers: dict[str, str],
           ctx: ServerContext) -> Event:
    """The event a proven request carries, read whole, or Refused."""
    heard = _prove(settings, raw, headers, ctx.now())
    key = _key(settings, heard.payload, ctx.config)
    values = _values(settings, heard.payload, ctx.config)
    return Event(source=f"events.{name}", event_id=heard.event_id, kind=EventKind.EXTERNAL,
                 key=key, at=ctx.now(), name=name, data={"set": values})


def _prove(settings: EventSettings, raw: bytes, headers: dict[str, str], now: datetime
           ) -> Heard:
    if settings.source == "toss":
        return payments.confirm_toss(settings, form_or_json(raw, headers))
    if settings.source == "portone":
        return payments.confirm_portone(settings, form_or_json(raw, headers))
    return verify(settings, raw, headers, now)


def _key(settings: EventSettings, payload: dict[str, Any], config: Config) -> str:
    """The row key at the ``key`` path, as the key field's type accepts it."""
    assert settings.key is not None  # required for these sources (config)
    value = resolve(payload, settings.key, N_("key path not in payload"))
    try:
        text = cell_text(value)
    except ValueError:
        raise Refused(400, N_("key is not text"), f"{settings.key} holds an object") from None
    if not text:
        raise Refused(400, N_("key is blank"), f"{settings.key} is blank")
    if len(text) > MAX_KEY:
        raise Refused(400, N_("key too long"))
    _fits(text, config, config.table.key, N_("key does not fit its field"))
    return text


def _values(settings: EventSettings, payload: dict[str, Any], config: Config
            ) -> dict[str, str]:
    """Field -> cell text of each ``set`` field (a blank answer sets nothing)."""
    values: dict[str, str] = {}
    for field_name, spec in settings.set.items():
        if isinstance(spec, dict):
            value = resolve(payload, spec["from"], N_("a set path not in payload"))
        else:
            value = spec
        try:
            text = cell_text(value)
        except ValueError:
            raise Refused(400, N_("a set value is not text"),
                          f"set.{field_name} is an object, not a value") from None
        if text:
            _fits(text, config, field_name, N_("a set value does not fit its field"))
            values[field_name] = text
    return values


def _fits(text: str, config: Config, field_name: str, reason: str) -> None:
    """``text`` parses as the field's type, as the next run will read it."""
    try:
        make_parser(config.fields[field_name].type, column=field_name, tz=config.tz)(text)
    except CellError as exc:
        raise Refused(400, reason, f"field {field_name!r} takes {exc.expected}") from None


def resolve(payload: Any, path: str, reason: str) -> Any:
    """The value at a dotted ``path``; Refused(400, ``reason``) when it is not there.

    In a list, a part is an index or picks the first element (an object) whose
    ``key``, ``label``, ``name`` or ``id`` it equals; an element picked so stands for
    its answer when it has a ``value`` (Tally's questions), choices given as option
    ids read as the options' texts.
    """
    node = payload
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and _index(part) < len(node):
            node = node[_index(part)]
        elif isinstance(node, list):
            picked = next((item for item in node if isinstance(item, dict)
                           and any(item.get(f) == part for f in ANSWER_FIELDS)), None)
            if picked is None:
                raise Refused(400, reason, f"{path!r} is not in the payload")
            node = _answer(picked)
        else:
            raise Refused(400, reason, f"{path!r} is not in the payload")
    return node


def _index(part: str) -> int:
    """A path part as a list index (ASCII digits only), or one past any list's end."""
    return int(part) if part.isascii() and part.isdigit() and len(part) < 10 else 2**62


def _answer(item: dict[str, Any]) -> Any:
    """A question's answer: its ``value``, with option ids as the options' texts."""
    if "value" not in item:
        return item
    value, options = item["value"], item.get("options")
    if isinstance(value, list) and isinstance(options, list):
        texts = {o.get("id"): o.get("text") for o in options if isinstance(o, dict)}
        return [texts.get(v, v) if isinstance(v, str) else v for v in value]
    return value


def _refuse(ctx: ServerContext, name: str, refused: Refused) -> Response:
    """Count the refusal by name and reason, log it (no request data), answer it."""
    _count(ctx, name, refused.reason, refused.status)
    detail = f": {refused.detail}" if refused.detail else ""
    return _text(refused.status, f"{refused.reason}{detail}")


def _count(ctx: ServerContext, name: str, reason: str, status: int) -> None:
    """One more request of ``name`` turned away or ignored, in the ledger and the log."""
    cast(RefusalLog, ctx.store()).record_refusal(name, reason, status, ctx.now())
    log.info("", extra={"event": "event_refused",
                        "fields": {"name": name, "reason": reason, "status": status}})


def _text(status: int, text: str) -> Response:
    return Response(f"{text}\n", status=status, content_type="text/plain; charset=utf-8")
