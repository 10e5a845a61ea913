"""Tags and flow conditions, compiled once at load.

Conditions are Jinja expressions compiled to closures by ``expressions``; this
module supplies the helper functions they may call (time helpers and functions
over the ledger) and the per-row context those helpers read.

A helper that takes a name looks it up at run time, so a misspelt one
(``in_flow('paymnt')``, ``tagged('결제대기')``) would simply be false for every row,
forever. This module knows the flows and tags of the config, so it hands the
compiler a check for each such argument: a literal name that does not exist is
refused at load with the key path and a did-you-mean. Tags are worked out in the order
they are written, so a tag may only ask for the tags above it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Set
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sheetcrm.config import Config, _quote_key
from sheetcrm.errors import RuleError
from sheetcrm.expressions import (
    ArgumentCheck,
    CompiledExpression,
    UnknownValue,
    compile_expression,
    one_of,
    shown,
)
from sheetcrm.i18n import _
from sheetcrm.model import (
    DELIVERED,
    Enrollment,
    EnrollmentStatus,
    Event,
    EventKind,
    LedgerState,
    SendRecord,
)


class RowContext:
    """What helpers see while one row is evaluated."""

    __slots__ = ("now", "today", "tz", "key", "tags", "unknown_tags", "state")

    def __init__(self, now: datetime, tz: tzinfo, state: LedgerState) -> None:
        self.now = now
        self.today = now.astimezone(tz).date()
        self.tz = tz
        self.state = state
        self.key = ""
        self.tags: Set[str] = frozenset()  # the row's tags that are on
        # Tags not known on this row -> the field whose unreadable cell made them so.
        self.unknown_tags: dict[str, str] = {}

    def enrollment(self, flow: str) -> Enrollment | None:
        return self.state.enrollments.get((self.key, flow))

    def sends(self) -> list[SendRecord]:
        return self.state.sends_for(self.key)


# -- helpers: the first argument is always the RowContext --------------------------


def _local_date(ctx: RowContext, value: date | datetime) -> date:
    if isinstance(value, datetime):
        # Parsed cells are already in the configured zone: skip the conversion.
        return value.date() if value.tzinfo is ctx.tz else value.astimezone(ctx.tz).date()
    return value


def days_since(ctx: RowContext, value: date | datetime | None) -> int | None:
    """Calendar days from ``value`` to today in the configured time zone."""
    if value is None:
        return None
    return (ctx.today - _local_date(ctx, value)).days


def hours_since(ctx: RowContext, value: date | datetime | None) -> float | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.combine(value, datetime.min.time(), tzinfo=ctx.tz)
    return (ctx.now - value).total_seconds() / 3600


def now(ctx: RowContext) -> datetime:
    return ctx.now


def today(ctx: RowContext) -> date:
    return ctx.today


def in_flow(ctx: RowContext, flow: str) -> bool:
    e = ctx.enrollment(flow)
    return e is not None and e.status == EnrollmentStatus.ACTIVE


def finished(ctx: RowContext, flow: str) -> bool:
    e = ctx.enrollment(flow)
    return e is not None and e.status == "finished"


def _delivered(rec: SendRecord) -> bool:
    return rec.status in DELIVERED


def sent_count(ctx: RowContext, days: float | None = None, flow: str | None = None) -> int:
    """Messages delivered to this customer (within ``days``, in ``flow`` if given)."""
    since = ctx.now - timedelta(days=days) if days is not None else None
    return sum(
        1 for r in ctx.sends()
        if _delivered(r) and (flow is None or r.flow == flow)
        and (since is None or (r.finished_at or r.created_at) >= since)
    )


def days_since_last_sent(ctx: RowContext) -> int | None:
    times = [r.finished_at or r.created_at for r in ctx.sends() if _delivered(r)]
    return days_since(ctx, max(times)) if times else None


def tagged(ctx: RowContext, tag: str) -> bool:
    if tag in ctx.unknown_tags:
        raise UnknownValue(ctx.unknown_tags[tag])
    return tag in ctx.tags


# -- what came back (the ledger's events): automatic hits are never counted -------------


def _heard(ctx: RowContext, kind: EventKind, days: float | None = None,
           name: str | None = None) -> list[Event]:
    since = ctx.now - timedelta(days=days) if days is not None else None
    return [e for e in ctx.state.events_for(ctx.key)
            if e.kind is kind and not e.machine and (name is None or e.name == name)
            and (since is None or e.at >= since)]


def clicked(ctx: RowContext, days: float | None = None) -> bool:
    """The customer followed a link in a message (within ``days``)."""
    return bool(_heard(ctx, EventKind.CLICK, days))


def opened(ctx: RowContext, days: float | None = None) -> bool:
    """A message was opened (within ``days``): unreliable, image proxies open mail too."""
    return bool(_heard(ctx, EventKind.OPEN, days))


def replied(ctx: RowContext, days: float | None = None) -> bool:
    """The customer answered a message (within ``days``); auto-replies do not count."""
    return bool(_heard(ctx, EventKind.REPLY, days))


def bounced(ctx: RowContext) -> bool:
    """A message to this customer failed for good (a permanent bounce)."""
    return bool(_heard(ctx, EventKind.BOUNCE))


def unsubscribed(ctx: RowContext) -> bool:
    """The customer opted out (and did not undo it)."""
    return ctx.state.opted_out(ctx.key) is not None


def event_count(ctx: RowContext, name: str, days: float | None = None) -> int:
    """How many ``[events.NAME]`` events arrived for this customer (within ``days``)."""
    return len(_heard(ctx, EventKind.EXTERNAL, days, name))


def last_event(ctx: RowContext, name: str) -> datetime | None:
    """When the latest ``[events.NAME]`` event arrived for this customer."""
    heard = _heard(ctx, EventKind.EXTERNAL, None, name)
    return max(e.at for e in heard) if heard else None


HELPERS: dict[str, Callable[..., Any]] = {
    "days_since": days_since,
    "hours_since": hours_since,
    "now": now,
    "today": today,
    "in_flow": in_flow,
    "finished": finished,
    "sent_count": sent_count,
    "days_since_last_sent": days_since_last_sent,
    "tagged": tagged,
    "clicked": clicked,
    "opened": opened,
    "replied": replied,
    "bounced": bounced,
    "unsubscribed": unsubscribed,
    "event_count": event_count,
    "last_event": last_event,
}


#: Helpers that read nothing of the row but the time: a condition calling only these is
#: also compiled to run over a whole column of rows at once (``evaluate.Columns``).
ROW_FREE = frozenset({"days_since", "hours_since", "now", "today"})


@dataclass(frozen=True)
class FlowRules:
    name: str
    trigger: CompiledExpression
    trigger_tag: str | None  # the trigger is this tag's name
    goal: CompiledExpression | None


@dataclass(frozen=True)
class Rules:
    tags: list[tuple[str, CompiledExpression]]
    flows: dict[str, FlowRules]


#: ``sent_count(days=...)`` reaches back at most this far (about a hundred years).
MAX_DAYS = 36_500

Checks = dict[str, dict[str, ArgumentCheck]]


def compile_rules(config: Config) -> Rules:
    """Compile every condition in the config; errors name the key path."""
    names = list(config.fields)
    tag_names = list(config.tags)
    tags = [
        (tag, _compile(src, names, f"tags.{_quote_key(tag)}",
                       _checks(config, _tag_above(tag_names, i))))
        for i, (tag, src) in enumerate(config.tags.items())
    ]
    checks = _checks(config, one_of("tag", tag_names))  # flows run after every tag
    flows: dict[str, FlowRules] = {}
    for flow_name, flow in config.flows.items():
        where = f"flows.{_quote_key(flow_name)}"
        trigger_tag = flow.trigger if flow.trigger in config.tags else None
        source = f"tagged({flow.trigger!r})" if trigger_tag else flow.trigger
        trigger = _compile(source, names, f"{where}.trigger", checks,
                           hint=_trigger_hint(flow.trigger, tag_names))
        goal = _compile(flow.goal, names, f"{where}.goal", checks) if flow.goal else None
        flows[flow_name] = FlowRules(flow_name, trigger, trigger_tag, goal)
    return Rules(tags, flows)


def _checks(config: Config, tag: ArgumentCheck) -> Checks:
    """The literal arguments a condition's helpers are checked for at load."""
    flow = one_of("flow", list(config.flows))
    return {
        "in_flow": {"flow": flow},
        "finished": {"flow": flow},
        "sent_count": {"flow": flow, "days": _days},
        "tagged": {"tag": tag},
        "clicked": {"days": _days},
        "opened": {"days": _days},
        "replied": {"days": _days},
        "event_count": {"name": one_of("event", list(config.events)), "days": _days},
        "last_event": {"name": one_of("event", list(config.events))},
    }


def _tag_above(tags: list[str], index: int) -> ArgumentCheck:
    """Tags are worked out in order: the one at ``index`` sees only those above it."""
    known = one_of("tag", tags)

    def check(tag: Any) -> None:
        known(tag)
        if tag == tags[index]:
            raise ValueError(_("the tag {tag} cannot depend on itself", tag=repr(tag)))
        if tag in tags[index + 1 :]:
            raise ValueError(_("the tag {tag} is worked out after this one, so it is never "
                               "set yet here: move it above this tag in [tags]",
                               tag=repr(tag)))

    return check


def _days(days: Any) -> None:
    if days is None:
        return
    if isinstance(days, bool) or not isinstance(days, (int, float)) \
            or not 0 <= days <= MAX_DAYS:
        raise ValueError(_("days must be a number from 0 to {most}, not {value}",
                           most=f"{MAX_DAYS:,}", value=shown(days)))


def _trigger_hint(trigger: str, tags: list[str]) -> str:
    close = difflib.get_close_matches(trigger, tags, n=1)
    if close:
        return " " + _("(a trigger is a tag name or an expression; did you mean the tag "
                       "{tag}?)", tag=repr(close[0]))
    listed = ", ".join(repr(tag) for tag in tags) or _("none defined")
    return " " + _("(a trigger is a tag name — {tags} — or an expression)", tags=listed)


def _compile(source: str, names: list[str], path: str, checks: Checks,
             hint: str = "") -> CompiledExpression:
    try:
        return compile_expression(source, names=names, helpers=HELPERS, path=path,
                                  checks=checks, row_free=ROW_FREE)
    except RuleError as exc:
        if not hint:
            raise
        raise RuleError(str(exc).removeprefix(f"{path}: ") + hint, path=path) from None
