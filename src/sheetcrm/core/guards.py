"""Sending guards: every due send passes these checks, and a held send says why.

Two kinds of hold:

- *deferred* (the step stays due and is reconsidered next run): the kill switch,
  quiet hours, public holidays, the frequency cap, the minimum gap between two
  messages to one customer (``min_gap``), a blank recipient, a cell the send needs
  that could not be read (recipient, consent, opt-out, or a field the template
  uses), the blast-radius stop;
- *skipped* (the step is passed over for good and the flow moves on): a holdout
  customer's step, an ad to someone without consent, anything but a transactional
  message to someone who opted out or is on the suppression list. Sending the
  day-3 offer a month late, once consent arrives, would be the wrong message.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from sheetcrm.config import EmailSettings
from sheetcrm.core.messages import unreadable_in_template
from sheetcrm.errors import ConfigError
from sheetcrm.i18n import _
from sheetcrm.model import DELIVERED, EventKind, Hold, LedgerState

if TYPE_CHECKING:
    from sheetcrm.config import Config
    from sheetcrm.model import PlannedSend, Record
    from sheetcrm.templates import Templates


def load_suppression(config: Config) -> frozenset[str]:
    """Keys and addresses never to advertise to: one per line, ``#`` comments."""
    name = config.sending.suppression
    if not name:
        return frozenset()
    path = config.resolve(name)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise ConfigError(_("cannot read the suppression list {path}: {problem}", path=path,
                            problem=exc.strerror),
                          path="sending.suppression") from None
    return frozenset(s.strip().lower() for s in lines if s.strip() and not s.startswith("#"))


class Guards:
    """The checks of one run: built once, asked once per due send."""

    def __init__(self, config: Config, now: datetime, state: LedgerState,
                 suppressed: frozenset[str], templates: Templates | None = None) -> None:
        self.config = config
        self.sending = config.sending
        self.now = now
        self.local = now.astimezone(config.tz)
        self.state = state
        self.suppressed = suppressed
        self.templates = templates
        self.planned: dict[str, int] = {}  # sends already let through this run, per key

    def check(self, send: PlannedSend, rec: Record) -> Hold | None:
        """The first reason this send may not go now, or None."""
        s = self.sending
        if send.enrollment.holdout:
            return Hold(_("holdout: control group, no message"), skip=True)
        ad = send.kind == "ad"
        unread = self._unreadable(send, rec, ad)
        if unread:
            return Hold(unread)
        if ad and s.consent and not rec.values.get(s.consent):
            return Hold(_("no consent to advertising ({field} is not true)", field=s.consent),
                        skip=True)
        if ad and self._opted_out(rec, send):
            return Hold(_("opted out: only transactional messages"), skip=True)
        if self._bounced(send, rec):
            return Hold(_("the address bounced for good: nothing more is sent to it"),
                        skip=True)
        if s.paused:
            return Hold(_("paused (sending.paused = true)"))
        to_field = self.config.channels[send.channel].recipient_field
        if to_field and not rec.values.get(to_field):
            return Hold(_("no recipient: field {field} is blank", field=repr(to_field)))
        if send.kind in s.quiet_kinds:
            hold = self._quiet() or self._holiday()
            if hold:
                return hold
        return self._frequency(send.key) or self._spacing(send.key)

    def let_through(self, send: PlannedSend) -> None:
        self.planned[send.key] = self.planned.get(send.key, 0) + 1

    def _unreadable(self, send: PlannedSend, rec: Record, ad: bool) -> str | None:
        """A cell this send needs could not be read: it waits (nothing on a guess)."""
        if not rec.unknown:
            return None
        s = self.sending
        needed = [self.config.channels[send.channel].recipient_field]
        if ad:
            needed += [s.consent, s.unsubscribed]
        for field in needed:
            if field and field in rec.unknown:
                column = self.config.fields[field].column
                return _("the cell {column} could not be read and this message needs it; "
                         "it waits until the cell is fixed", column=repr(column))
        if self.templates is None:
            return None
        return unreadable_in_template(rec, send, self.config, self.templates)
    def _opted_out(self, rec: Record, send: PlannedSend) -> bool:
        field = self.sending.unsubscribed
        if field and rec.values.get(field):
            return True
        if self.state.opted_out(rec.key) is not None:  # heard back: honoured at once
            return True
        if not self.suppressed:
            return False
        to_field = self.config.channels[send.channel].recipient_field
        address = str(rec.values.get(to_field) or "") if to_field else ""
        return rec.key.lower() in self.suppressed or address.lower() in self.suppressed

    def _bounced(self, send: PlannedSend, rec: Record) -> bool:
        """Whether this email would go to an address that bounced for good.

        The address, not the customer, is what bounced: once the operator corrects the
        cell, mail goes out again, and a webhook about the same customer is not held.
        """
        channel = self.config.channels[send.channel]
        if not isinstance(channel, EmailSettings):
            return False
        to_field = channel.recipient_field
        address = str(rec.values.get(to_field) or "") if to_field else rec.key
        return any(e.kind is EventKind.BOUNCE
                   and str(e.data.get("address", "")).strip().lower() == address.strip().lower()
                   for e in self.state.events_for(rec.key))

    def _quiet(self) -> Hold | None:
        window = self.sending.quiet_hours
        if window is None or not window.contains(self.local.time()):
            return None
        until = self._next_time(window.end)
        return Hold(_("quiet hours {start}–{end} ({timezone}): deferred to {until}",
                      start=f"{window.start:%H:%M}", end=f"{window.end:%H:%M}",
                      timezone=self.config.model.timezone, until=f"{until:%Y-%m-%d %H:%M}"))

    def _holiday(self) -> Hold | None:
        if not self.sending.skip_holidays:
            return None
        today = self.local.date()
        if today not in self._holidays:
            return None
        day = today
        while day in self._holidays:
            day += timedelta(days=1)
        start = self.sending.quiet_hours.end if self.sending.quiet_hours else time(0)
        name = self._holidays.get(today)
        return Hold(_("public holiday ({name}): deferred to {until}", name=name,
                      until=f"{day:%Y-%m-%d} {start:%H:%M}"))

    @cached_property
    def _holidays(self) -> dict[date, str]:
        import holidays

        year = self.local.year
        return dict(holidays.country_holidays("KR", years=[year, year + 1]))

    def _next_time(self, at: time) -> datetime:
        candidate = self.local.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
        return candidate if candidate > self.local else candidate + timedelta(days=1)

    def _spacing(self, key: str) -> Hold | None:
        """``min_gap``: a message waits while the customer's last one is younger."""
        gap = self.sending.min_gap
        if gap is None:
            return None
        shown = _duration_text(gap)
        if self.planned.get(key):
            return Hold(_("min_gap {gap}: another message goes to this customer in this run; "
                          "this one waits for a later run", gap=shown))
        times = [r.finished_at or r.created_at for r in self.state.sends_for(key)
                 if r.status in DELIVERED]
        last = max(times, default=None)
        if last is None or self.now - last >= gap:
            return None
        until = (last + gap).astimezone(self.config.tz)
        return Hold(_("min_gap {gap}: the last message to this customer went out {last}; "
                      "this one waits until {until}", gap=shown,
                      last=f"{last.astimezone(self.config.tz):%Y-%m-%d %H:%M}",
                      until=f"{until:%Y-%m-%d %H:%M}"))

    def _frequency(self, key: str) -> Hold | None:
        cap = self.sending.frequency_cap
        if cap is None:
            return None
        limit, period = cap
        since = self.now - period
        delivered = sum(
            1 for r in self.state.sends_for(key)
            if r.status in DELIVERED and (r.finished_at or r.created_at) > since
        )
        if delivered + self.planned.get(key, 0) >= limit:
            days = period.total_seconds() / 86400
            return Hold(_("frequency cap {limit}/{days}d reached", limit=limit,
                          days=f"{days:g}"))
        return None


def _duration_text(td: timedelta) -> str:
    """A duration as the config writes it: ``1h``, ``90m``, ``2d``."""
    seconds = int(td.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def blast_radius_limit(config: Config, rows: int) -> int | None:
    """The most sends one run may make, or None for no limit."""
    limits = []
    if config.sending.max_sends_per_run is not None:
        limits.append(config.sending.max_sends_per_run)
    if config.sending.max_share_per_run is not None:
        limits.append(max(1, int(rows * config.sending.max_share_per_run)))
    return min(limits) if limits else None
