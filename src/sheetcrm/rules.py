"""Tags and flow conditions, compiled once at load.

Conditions are Jinja expressions compiled to closures by ``expressions``; this
module supplies the helper functions they may call (time helpers and functions
over the ledger) and the per-row context those helpers read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from .config import Config, _quote_key
from .errors import ConfigError
from .expressions import CompiledExpression, compile_expression
from .ledger import ACTIVE, SENT, UNCERTAIN, Enrollment, LedgerState, SendRecord


class RowContext:
    """What helpers see while one row is evaluated."""

    __slots__ = ("now", "today", "tz", "key", "tags", "state")

    def __init__(self, now: datetime, tz: tzinfo, state: LedgerState) -> None:
        self.now = now
        self.today = now.astimezone(tz).date()
        self.tz = tz
        self.state = state
        self.key = ""
        self.tags: set[str] = set()

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
    return e is not None and e.status == ACTIVE


def finished(ctx: RowContext, flow: str) -> bool:
    e = ctx.enrollment(flow)
    return e is not None and e.status == "finished"


def _delivered(rec: SendRecord) -> bool:
    return rec.status in (SENT, UNCERTAIN)


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
    return tag in ctx.tags


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
}


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


def compile_rules(config: Config) -> Rules:
    """Compile every condition in the config; errors name the key path."""
    names = list(config.fields)
    tags = [
        (tag, _compile(src, names, f"tags.{_quote_key(tag)}"))
        for tag, src in config.tags.items()
    ]
    flows: dict[str, FlowRules] = {}
    for flow_name, flow in config.flows.items():
        where = f"flows.{_quote_key(flow_name)}"
        trigger_tag = flow.trigger if flow.trigger in config.tags else None
        source = f"tagged({flow.trigger!r})" if trigger_tag else flow.trigger
        trigger = _compile(source, names, f"{where}.trigger", hint=list(config.tags))
        goal = _compile(flow.goal, names, f"{where}.goal") if flow.goal else None
        flows[flow_name] = FlowRules(flow_name, trigger, trigger_tag, goal)
    return Rules(tags, flows)


def _compile(source: str, names: list[str], path: str,
             hint: list[str] | None = None) -> CompiledExpression:
    try:
        return compile_expression(source, names=names, helpers=HELPERS, path=path)
    except ConfigError as exc:
        if hint:
            raise ConfigError(f"{exc} (a trigger is a tag name — one of {hint} — "
                              "or an expression)") from None
        raise
