"""A flow's steps in time: when the next one falls due, what it sends, and which
steps an entry skips. Pure: no I/O.

The A/B variant and the holdout group are stable draws from the key (``bucket``):
the same customer lands in the same group on every run and every machine.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sheetcrm.config import FlowSettings
from sheetcrm.i18n import _
from sheetcrm.model import Enrollment, EnrollmentStatus, PlannedSend


def idempotency_key(key: str, flow: str, entry: int, step: int) -> str:
    """Unique per (row key, flow, entry, step); safe in file names and headers."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]
    return f"sc-{flow}-e{entry}-s{step + 1}-{digest}"


def next_send(e: Enrollment, flow: FlowSettings, variant: str | None = None) -> PlannedSend:
    """The send of ``e``'s next step: when it is due, its idempotency key, its variant.

    The A/B variant is the customer's own (a stable draw from key, flow and step)
    unless ``variant`` names one (``check`` renders every variant).
    """
    i = e.next_step
    step = flow.steps[i]
    if variant is None and step.variants:
        variant = variant_for(e.key, e.flow, i, step.variants)
    return PlannedSend(
        key=e.key, flow=e.flow, step=i, steps=len(flow.steps), channel=step.channel,
        template=step.template, kind=step.kind, due_at=step_due(e, flow), enrollment=e,
        idem_key=idempotency_key(e.key, e.flow, e.entry, i), variant=variant,
    )


def step_due(e: Enrollment, flow: FlowSettings) -> datetime:
    """When ``e``'s next step falls due: its delay after the entry (or the anchor)."""
    return _base(e) + flow.steps[e.next_step].after


def bucket(key: str, flow: str, salt: str) -> float:
    """A stable number in [0, 1) from key and flow: the same customer, the same group."""
    digest = hashlib.sha256(f"{flow}\x1f{salt}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def variant_for(key: str, flow: str, step: int, weights: dict[str, float]) -> str:
    point = bucket(key, flow, f"variant{step}") * sum(weights.values())
    for name, weight in weights.items():
        point -= weight
        if point < 0:
            return name
    return next(reversed(weights))


def skip_overdue(e: Enrollment, flow: FlowSettings, now: datetime) -> str:
    """Skip steps overdue by more than the grace at entry: no blast over an old list."""
    skipped = []
    while e.next_step < len(flow.steps):
        if now - step_due(e, flow) <= flow.grace:
            break
        skipped.append(str(e.next_step + 1))
        e.next_step += 1
    if e.next_step >= len(flow.steps):
        e.exit(EnrollmentStatus.FINISHED, "all steps overdue at entry", now)
    if not skipped:
        return ""
    return _("step {steps} overdue by more than {grace} at entry", steps=", ".join(skipped),
             grace=_fmt_td(flow.grace))


def _base(e: Enrollment) -> datetime:
    return e.anchor_at or e.entered_at


def _fmt_td(td: timedelta) -> str:
    hours = td.total_seconds() / 3600
    return f"{hours / 24:g}d" if hours % 24 == 0 else f"{hours:g}h"
