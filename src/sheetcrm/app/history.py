"""``sheetcrm history KEY``: everything the ledger holds about one customer, newest first.

Every tag change a sync recorded, every pass through a flow (entered, and how it
ended: converted, replied, left, finished, failed, with the reason), every step's
message with its outcome (sent, failed, uncertain, skipped with the reason, and the
provider's delivery report), everything heard back (opt-outs, clicks, replies,
bounces, providers' events) and the operator's test sends rendered for this customer.

The ledger is opened read-only and nothing is written. Each item is worded here as
whole sentences, one literal per shape, so that a translation can take each as it
is; the time is the config's time zone. Items of the same moment keep the order a
run makes them in (tags, exits on the goal or the trigger, entries, messages, the
end of a flow), and are listed the other way round, the newest first.

When the ledger knows nothing of the key, the sheet is read: a customer on it has no
history yet, and a key on neither is a mistake, answered with the closest key.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from enum import IntEnum, StrEnum
from typing import Any

from sheetcrm.app.rules import last_accepted
from sheetcrm.config import Config
from sheetcrm.core.schema import read_records
from sheetcrm.errors import ExitStatus, SheetcrmError
from sheetcrm.i18n import N_, _
from sheetcrm.ledger import EnrollmentRow, Ledger, SendRow, TagChange, TrialSend
from sheetcrm.model import DeliveryState, EnrollmentStatus, Event, EventKind, SendStatus
from sheetcrm.table import open_table


class UnknownKeyError(SheetcrmError):
    """No customer has this key, in the ledger or in the sheet."""

    exit_code = ExitStatus.USAGE


class Kind(StrEnum):
    """What an item of a history is about."""

    TAGS = "tags"
    FLOW = "flow"
    MESSAGE = "message"
    EVENT = "event"
    TEST = "test"


class _Order(IntEnum):
    """Within one moment, the order in which a run makes things happen."""

    TAGS = 0
    EXIT_ON_READ = 1  # converted, replied, left: decided on the rows as read
    ENTER = 2
    MESSAGE = 3
    EXIT_AFTER_SEND = 4  # finished (the last step went), failed (a send failed)
    TEST = 5
    EVENT = 6


@dataclass(frozen=True)
class Item:
    """One thing that happened to the customer."""

    at: datetime  # in the config's time zone
    kind: Kind
    what: str  # a word for scripts: entered, converted, sent, skipped, click, ...
    text: str  # what happened, in sentences
    data: dict[str, Any] = field(default_factory=dict)
    order: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {**self.data, "at": self.at.isoformat(), "kind": str(self.kind),
                "what": self.what, "text": self.text}


@dataclass
class History:
    """A customer's items, the newest first (at most the limit asked for)."""

    key: str
    timezone: str
    items: list[Item]
    total: int  # items recorded, shown or not

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "timezone": self.timezone, "total": self.total,
                "shown": len(self.items), "items": [i.as_dict() for i in self.items]}


def customer_history(config: Config, key: str, limit: int | None = None) -> History:
    """Everything recorded about ``key``, newest first; UnknownKeyError for a key that
    is neither in the ledger nor in the sheet."""
    ledger = Ledger.open_readonly(config.state_path)
    try:
        in_force = last_accepted(config, ledger)  # rules kept in the sheet: their flows
        items = _items(ledger, key, in_force.config if in_force else config)
        known = ledger.known_keys() if not items else set()
    finally:
        ledger.close()
    if not items:
        _require_in_sheet(config, key, known)
    ranked = sorted(enumerate(items), key=lambda n: (n[1].at, n[1].order, n[0]), reverse=True)
    items = [item for _n, item in ranked]
    return History(key, config.model.timezone, items[:limit] if limit else items, len(items))


def _items(ledger: Ledger, key: str, config: Config) -> list[Item]:
    words = _Words(config)
    words.rulesets = ledger.send_rulesets(key)
    return [*words.tags(ledger.tag_changes_of(key)),
            *words.flows(ledger.enrollments_of(key)),
            *words.messages(ledger.sends_to(key)),
            *words.events(ledger.events_of(key, list(EventKind))),
            *words.tests(ledger.test_sends_for(key))]


def _require_in_sheet(config: Config, key: str, known: set[str]) -> None:
    """A key with no history: fine when the sheet has it, else a did-you-mean error."""
    keys = set(known)
    try:
        rows = read_records(open_table(config).read(), config)
    except SheetcrmError:
        rows = None  # the sheet cannot be read: suggest from the ledger alone
    if rows is not None:
        keys.update(r.key for r in rows.records)
        keys.update(p.key for p in rows.problems if p.key)
        if key in keys:
            return
    close = closest_key(key, keys)
    if close is not None:
        raise UnknownKeyError(_("no customer has the key {key}; did you mean {close}?",
                                key=repr(key), close=repr(close)))
    raise UnknownKeyError(_("no customer has the key {key}, in the ledger or in the sheet",
                            key=repr(key)))


def _reason(text: str | None) -> str:
    """A stored reason, ready to end a sentence."""
    return (text or "").strip().rstrip(".") or _("no reason was recorded")


def closest_key(key: str, keys: Iterable[str]) -> str | None:
    """The key meant by a mistyped one: the same but for case, else the closest."""
    keys = list(keys)
    folded = [k for k in keys if k.casefold() == key.casefold()]
    if folded:
        return folded[0]
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    return close[0] if close else None


def _variant(template: str, variant: str | None) -> str:
    return (_("{template}, variant {variant}", template=template, variant=variant)
            if variant else template)


_FLOW_ENDS = {
    EnrollmentStatus.CONVERTED: N_("Left the flow {flow} as converted: {why}."),
    EnrollmentStatus.REPLIED: N_("Left the flow {flow} because the customer replied."),
    EnrollmentStatus.LEFT: N_("Left the flow {flow}: {why}."),
    EnrollmentStatus.FINISHED: N_("Finished the flow {flow}: {why}."),
    EnrollmentStatus.FAILED: N_("Left the flow {flow} because a message could not be sent: "
                                "{why}."),
}
_MESSAGES = {
    SendStatus.SENT: N_("Sent {step} ({template}) by {channel}."),
    SendStatus.FAILED: N_("Sending {step} ({template}) by {channel} failed: {detail}."),
    SendStatus.RETRY: N_("Sending {step} ({template}) by {channel} failed and will be tried "
                         "again: {detail}."),
    SendStatus.UNCERTAIN: N_("Sending {step} ({template}) by {channel} may have reached the "
                             "customer, so it is never sent again: {detail}."),
    SendStatus.SKIPPED: N_("Skipped {step} ({template}) for good: {detail}."),
    SendStatus.PENDING: N_("Sending {step} ({template}) by {channel} began and has not been "
                           "marked done."),
}
_TESTS = {
    SendStatus.SENT: N_("Test of {step} ({template}) sent to {to}, rendered for this "
                        "customer."),
    SendStatus.FAILED: N_("Test of {step} ({template}) to {to} failed: {detail}."),
    SendStatus.UNCERTAIN: N_("Test of {step} ({template}) to {to} may have arrived: "
                             "{detail}."),
    SendStatus.PENDING: N_("Test of {step} ({template}) to {to} began and has not been "
                           "marked done."),
}
_TEST_OTHER = N_("Test of {step} ({template}) to {to}.")


class _Words:
    """Turns ledger rows into items, worded in whole sentences."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.tz: tzinfo = config.tz
        self.rulesets: dict[tuple[str, int, int], str] = {}  # send -> its rule set

    def when(self, text: str) -> datetime:
        return datetime.fromisoformat(text).astimezone(self.tz)

    def step(self, flow: str, step: int) -> str:
        """``payment 2/3``: the flow and the step as plan and sync show them."""
        settings = self.config.flows.get(flow)
        return f"{flow} {step + 1}/{len(settings.steps)}" if settings else f"{flow} {step + 1}"

    def tags(self, changes: list[TagChange]) -> Iterable[Item]:
        for c in changes:
            added, removed = ", ".join(c.added), ", ".join(c.removed)
            if c.added and c.removed:
                text = _("Tags added: {added}. Tags removed: {removed}.", added=added,
                         removed=removed)
            elif c.added:
                text = _("Tags added: {added}.", added=added)
            else:
                text = _("Tags removed: {removed}.", removed=removed)
            yield Item(self.when(c.at), Kind.TAGS, "tags", text,
                       {"added": c.added, "removed": c.removed}, _Order.TAGS)

    def flows(self, rows: list[EnrollmentRow]) -> Iterable[Item]:
        for e in rows:
            data = {"flow": e.flow, "entry": e.entry, "holdout": e.holdout, "via": e.via}
            yield Item(self.when(e.entered_at), Kind.FLOW, "entered", self._entered(e), data,
                       _Order.ENTER)
            if e.exited_at is None or e.status == EnrollmentStatus.ACTIVE:
                continue
            why = _reason(e.exit_reason)
            status = EnrollmentStatus(e.status)
            text = _(_FLOW_ENDS[status], flow=e.flow, why=why)
            order = (_Order.EXIT_AFTER_SEND if status in (EnrollmentStatus.FINISHED,
                                                          EnrollmentStatus.FAILED)
                     else _Order.EXIT_ON_READ)
            yield Item(self.when(e.exited_at), Kind.FLOW, str(status), text,
                       {**data, "reason": why}, order)

    def _entered(self, e: EnrollmentRow) -> str:
        if e.via == "handoff":
            text = _("Entered the flow {flow}, handed over when another flow finished.",
                     flow=e.flow)
        elif e.via == "sheet":
            text = _("Entered the flow {flow} as the sheet's flow column showed it.",
                     flow=e.flow)
        else:
            text = _("Entered the flow {flow}.", flow=e.flow)
        if e.entry > 1:
            text += " " + _("It is entry number {entry} into this flow.", entry=e.entry)
        if e.holdout:
            text += " " + _("In the holdout group: tracked for the goal, sent nothing.")
        return text

    def messages(self, rows: list[SendRow]) -> Iterable[Item]:
        for s in rows:
            step = self.step(s.flow, s.step)
            template = _variant(s.template, s.variant)
            detail = _reason(s.detail)
            status = SendStatus(s.status)
            text = _(_MESSAGES[status], step=step, template=template, channel=s.channel,
                     detail=detail)
            if s.attempts > 1:
                text += " " + _("Tried {attempts} times.", attempts=s.attempts)
            text += self._delivery(s)
            ruleset = self.rulesets.get((s.flow, s.entry, s.step))
            if ruleset and self.config.rule_tabs:  # the rules are edited in the sheet
                text += " " + _("Rule set {hash}.", hash=ruleset)
            data = {"ruleset": ruleset,
                    "flow": s.flow, "step": s.step + 1, "template": s.template,
                    "variant": s.variant, "channel": s.channel, "message_kind": s.kind,
                    "status": s.status, "detail": s.detail or "", "delivery": s.delivery,
                    "delivered_at": s.delivered_at and self.when(s.delivered_at).isoformat(),
                    "delivery_detail": s.delivery_detail}
            yield Item(self.when(s.finished_at or s.created_at), Kind.MESSAGE, str(status),
                       text, data, _Order.MESSAGE)

    def _delivery(self, s: SendRow) -> str:
        if s.delivery is None:
            return ""
        reported = self.when(s.delivered_at) if s.delivered_at else None
        at = f"{reported:%Y-%m-%d %H:%M}" if reported else _("an unknown time")
        if s.delivery == DeliveryState.DELIVERED:
            return " " + _("The provider reported it delivered at {at}.", at=at)
        if s.delivery == DeliveryState.FAILED:
            return " " + _("The provider reported it not delivered at {at}: {why}.", at=at,
                           why=_reason(s.delivery_detail))
        return " " + _("The provider took it; no delivery report yet.")

    def events(self, events: list[Event]) -> Iterable[Item]:
        for e in events:
            data: dict[str, Any] = {"source": e.source, **e.data}
            why = str(e.data.get("automatic", ""))
            url = str(e.data.get("url", ""))
            if e.kind is EventKind.OPT_OUT:
                text = _("Opted out (through {via}).", via=e.data.get("via", e.source))
            elif e.kind is EventKind.OPT_IN:
                text = _("Took the opt-out back.")
            elif e.kind is EventKind.CLICK:
                text = (_("An automatic visit to {url} was not counted as a click: {why}.",
                          url=url, why=why)
                        if e.machine else _("Clicked {url}.", url=url))
            elif e.kind is EventKind.OPEN:
                text = (_("An automatic open was not counted: {why}.", why=why) if e.machine
                        else _("Opened a message (unreliable: image proxies open mail too)."))
            elif e.kind is EventKind.BOUNCE:
                bounce = _reason(e.data.get("reason") or e.data.get("status"))
                text = _("A message bounced: {why}.", why=bounce)
            elif e.kind is EventKind.REPLY:
                text = _("Replied to a message.")
            else:
                values = ", ".join(f"{k} = {v}" for k, v in (e.data.get("set") or {}).items())
                text = (_("The event {name} arrived and sets {values}.", name=e.name,
                          values=values) if values
                        else _("The event {name} arrived.", name=e.name))
            if e.machine:
                data["automatic"] = why
            yield Item(e.at.astimezone(self.tz), Kind.EVENT, str(e.kind), text, data,
                       _Order.EVENT)

    def tests(self, rows: list[TrialSend]) -> Iterable[Item]:
        for t in rows:
            step = self.step(t.flow, t.step)
            template = _variant(t.template, t.variant)
            detail = _reason(t.detail)
            shape = _TESTS.get(SendStatus(t.status), _TEST_OTHER)
            text = _(shape, step=step, template=template, to=t.recipient, detail=detail)
            data = {"flow": t.flow, "step": t.step + 1, "template": t.template,
                    "variant": t.variant, "channel": t.channel, "to": t.recipient,
                    "status": t.status, "detail": t.detail or ""}
            yield Item(self.when(t.finished_at or t.created_at), Kind.TEST, t.status, text,
                       data, _Order.TEST)
