"""The domain's plain types: rows, flow state, sends, plans, messages. No I/O, no behaviour
beyond what keeps a value consistent (an enrollment exits through one method).

Every layer may import this module; of sheetcrm's it imports only i18n's marker. Statuses are
enums whose values are the words stored in the ledger and shown in JSON.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, cast

from sheetcrm.i18n import N_


class EnrollmentStatus(StrEnum):
    """Where a customer stands in one flow."""

    ACTIVE = "active"
    CONVERTED = "converted"  # the goal was met
    REPLIED = "replied"  # the customer replied, in a flow with ``exit_on_reply``
    LEFT = "left"  # the trigger stopped being true (or the flow was removed)
    FINISHED = "finished"  # the last step is done
    FAILED = "failed"  # a send failed for good


class SendStatus(StrEnum):
    """What became of one step's message."""

    PENDING = "pending"  # claimed: recorded before it leaves
    SENT = "sent"
    RETRY = "retry"  # failed for now; may be claimed again
    FAILED = "failed"
    UNCERTAIN = "uncertain"  # may have arrived (a crash, a lost answer): never re-sent
    SKIPPED = "skipped"  # passed over for a lasting reason (no consent, opted out)


class DeliveryState(StrEnum):
    """What a provider that reports delivery later said about a sent message."""

    ACCEPTED = "accepted"  # taken by the provider (Solapi's 2000): no report yet
    DELIVERED = "delivered"  # reached the phone (by AlimTalk, or by its SMS substitute)
    FAILED = "failed"  # will not reach it; the report's reason says why


class EventKind(StrEnum):
    """What came back from a customer, a mailbox or a provider."""

    OPT_OUT = "opt_out"  # unsubscribed (one-click POST, the page's button, a mailto)
    OPT_IN = "opt_in"  # the undo of an opt-out
    CLICK = "click"
    OPEN = "open"  # unreliable (image proxies, Apple MPP): never shown without saying so
    BOUNCE = "bounce"  # a permanent delivery failure
    REPLY = "reply"
    EXTERNAL = "external"  # a provider's webhook: ``name`` says which [events.NAME]


#: Sends that reached (or may have reached) the customer.
DELIVERED = frozenset({SendStatus.SENT, SendStatus.UNCERTAIN})
#: Sends whose idempotency key must never be sent again.
SETTLED = frozenset({SendStatus.SENT, SendStatus.PENDING, SendStatus.UNCERTAIN,
                     SendStatus.FAILED, SendStatus.SKIPPED})


#: Rows still to be parsed, a block at a time: (rows, the line number of each).
Blocks = Iterator[tuple[list[list[str]], list[int]]]
#: Rows parsed and typed at a time: large enough that a column's repeats are parsed
#: once per block, small enough that a block is a small part of a run's memory.
BLOCK_ROWS = 16384


class Snapshot:
    """The table as read: header names and rows of text cells.

    Rows may be shorter than the header (missing trailing cells read as "").
    ``lines`` holds each row's number as the sheet shows it (Excel and Sheets count
    the header as row 1 and keep counting over blank rows left out of ``rows``);
    ``None`` when the header is row 1 and the rows follow it without a gap.
    ``tabs`` holds the rule tabs (``[rules]``) read with the customers: tab name ->
    its rows as text, header first, blank rows kept (a row's number is its index + 1);
    a configured tab that does not exist is absent.

    A backend that parses its rows itself (a CSV file) may leave them to be parsed
    when they are read (``later``): ``rows`` and ``lines`` parse what is left when first
    asked for, and ``blocks`` hands them over a block at a time, so a run that types
    each row once never holds every row of a large file as text (200k rows: 170 MB).
    """

    __slots__ = ("_later", "_lines", "_rows", "header", "source", "tabs")

    def __init__(self, header: list[str], rows: list[list[str]], source: str = "",
                 lines: list[int] | None = None,
                 tabs: dict[str, list[list[str]]] | None = None, *,
                 later: Blocks | None = None) -> None:
        self.header, self.source = header, source  # source: file path, sheet URL
        self._rows, self._lines = rows, lines
        self.tabs = tabs if tabs is not None else {}
        self._later = later

    @property
    def rows(self) -> list[list[str]]:
        self._parse_the_rest()
        return self._rows

    @rows.setter
    def rows(self, rows: list[list[str]]) -> None:
        self._rows = rows

    @property
    def lines(self) -> list[int] | None:
        self._parse_the_rest()
        return self._lines

    @lines.setter
    def lines(self, lines: list[int] | None) -> None:
        self._lines = lines

    def _parse_the_rest(self) -> None:
        if self._later is None:
            return
        later, self._later = self._later, None
        lines = (self._lines if self._lines is not None
                 else list(range(2, len(self._rows) + 2)))
        for rows, numbers in later:
            self._rows += rows
            lines += numbers
        self._lines = lines

    def blocks(self, size: int, *, let_go: bool) -> Blocks:
        """The rows and their line numbers, ``size`` rows at a time, then the blocks
        left to parse. With ``let_go`` each block is taken out of the snapshot as it is
        handed over (the caller keeps what it needs of it); ``rows`` is empty after."""
        if not let_go:
            self._parse_the_rest()
        rows, lines, count = self._rows, self._lines, len(self._rows)
        for start in range(0, count, size):  # counted before any row is taken
            numbers = (lines[start:start + size] if lines is not None
                       else list(range(start + 2, min(start + size, count) + 2)))
            if let_go:  # taken off the front: nothing else holds the block's rows
                block = rows[:size]
                del rows[:size]
            else:
                block = rows[start:start + size]
            yield block, numbers
        if let_go:
            later, self._later = self._later, None
            yield from later or ()
            self._rows, self._lines = [], None


@dataclass(frozen=True, slots=True)
class CellUpdate:
    """Set ``column`` of the row whose key column holds ``key`` to ``value``."""

    key: str
    column: str
    value: str


@dataclass
class WriteReport:
    """What a write did."""

    cells_written: int = 0
    rows_written: int = 0
    columns_added: list[str] = field(default_factory=list)
    missing_keys: list[str] = field(default_factory=list)  # key no longer in the table
    ambiguous_keys: list[str] = field(default_factory=list)  # key now on several rows
    # Rows that moved (sorted, inserted, deleted) while the write was in flight and
    # were found by key and written again, so no row keeps another customer's state.
    repaired_keys: list[str] = field(default_factory=list)
    requests: int = 0  # API requests spent (0 for local files)
    added_keys: list[str] = field(default_factory=list)  # rows added (a form's intake)


# What a record's values become once forgotten: empty, and read-only.
_FORGOTTEN = cast(dict[str, Any], MappingProxyType({}))


class _SharedEmpty(list[str]):
    """An empty list no one may fill: the one a row read without a problem shares."""

    def _refuse(self, *args: object) -> None:
        raise TypeError("shared by every clean row: give the row a list of its own")

    append = extend = insert = remove = clear = _refuse  # type: ignore[assignment]
    __setitem__ = __delitem__ = __iadd__ = _refuse  # type: ignore[assignment]


# A row read without a problem shares these (read-only) rather than holding an empty
# list and dict of its own, 22 MB at 200k rows; a row that gets an error gets its own.
NO_ERRORS: list[str] = _SharedEmpty()
ALL_READ = cast(dict[str, str], MappingProxyType({}))


@dataclass(slots=True)
class Record:
    """One customer row.

    ``line`` is the row number the operator sees in the sheet (the header is row 1),
    for messages only: writes always go by key.
    """

    line: int
    key: str
    values: dict[str, Any]
    current: dict[str, str]  # writeback column -> cell text as read
    errors: list[str] = field(default_factory=list)  # what the row's error cell says
    keep: tuple[str, ...] = ()  # writeback columns left as they are (could not be read)
    # Fields whose cell could not be read (value None), each with its message, which
    # is in ``errors`` too: what reads them waits, the rest of the row goes on.
    unknown: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Nothing is wrong with the row: every cell read, nothing failed on it."""
        return not self.errors

    @property
    def usable(self) -> bool:
        """The row can be worked on: its only errors, if any, are unreadable cells."""
        return len(self.errors) <= len(self.unknown)

    def forget_values(self) -> None:
        """The row is planned and no message is due to it: what is left (its cells
        written back) reads the cells as read, never the typed values, which at 200k
        rows are the run's largest part. A later write into ``values`` fails loudly."""
        self.values = _FORGOTTEN

    def settle(self, name: str, value: Any) -> None:
        """Field ``name`` is known after all (an event set it): its error goes."""
        self.values[name] = value
        if name in self.unknown:  # only a row's own dict has entries
            message = self.unknown.pop(name)
            if message in self.errors:
                self.errors.remove(message)


@dataclass
class RowProblem:
    """A row that cannot be addressed by key (blank or duplicate key)."""

    line: int
    key: str
    message: str


@dataclass
class TypedRows:
    records: list[Record]  # rows with a unique, non-blank key (possibly with cell errors)
    problems: list[RowProblem]  # rows never acted on nor written
    missing_writeback: list[str]  # owned columns not yet in the header


#: Why an enrollment ended, as the ledger keeps it: stable English words whatever the
#: language (what a query or a later version reads), translated with ``_()`` where
#: shown. A reason not among these (an older version's) is shown as stored.
GOAL_MET = N_("goal met")
TRIGGER_GONE = N_("trigger no longer true")
REPLIED = N_("replied")
LAST_STEP_DONE = N_("last step done")
RESTORED = N_("restored from the sheet")


@dataclass(slots=True)
class Enrollment:
    """One customer's pass through one flow."""

    key: str
    flow: str
    entry: int
    entered_at: datetime
    anchor_at: datetime | None
    next_step: int = 0
    status: EnrollmentStatus = EnrollmentStatus.ACTIVE
    exited_at: datetime | None = None
    exit_reason: str | None = None
    id: int | None = None
    holdout: bool = False
    via: str = "trigger"

    @property
    def active(self) -> bool:
        return self.status is EnrollmentStatus.ACTIVE

    def exit(self, status: EnrollmentStatus, reason: str, now: datetime) -> None:
        """Leave the flow: the one way an enrollment ends."""
        self.status, self.exited_at, self.exit_reason = status, now, reason[:200]

    def clone(self) -> Enrollment:
        """A copy the planner may change (copy.copy is slow on slotted classes)."""
        return Enrollment(self.key, self.flow, self.entry, self.entered_at, self.anchor_at,
                          self.next_step, self.status, self.exited_at, self.exit_reason,
                          self.id, self.holdout, self.via)


@dataclass(slots=True)
class SendRecord:
    idem_key: str
    key: str
    flow: str
    entry: int
    step: int
    channel: str
    template: str
    kind: str
    status: SendStatus
    created_at: datetime
    finished_at: datetime | None = None
    variant: str | None = None
    # What the provider reported later (texting channels only; None elsewhere).
    delivery: DeliveryState | None = None
    delivered_at: datetime | None = None
    delivery_detail: str | None = None


@dataclass(slots=True)
class Event:
    """One thing heard back, stored before it is answered and applied at most once.

    ``source`` and ``event_id`` identify it (a provider's event id, a token and its
    moment): the same pair is stored once, however often it is delivered. ``machine``
    marks a hit that looks automatic (a link scanner, a HEAD, an image proxy): kept,
    but not counted by the expression helpers. ``idem_key`` is the send it answers.
    """

    source: str  # unsubscribe | click | open | mailbox | events.NAME
    event_id: str
    kind: EventKind
    key: str  # the row key ("" when unknown yet: an intake form)
    at: datetime
    name: str = ""  # [events.NAME] for external events
    idem_key: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    machine: bool = False
    id: int | None = None
    applied_at: datetime | None = None


@dataclass
class LedgerState:
    """Everything the planner needs from the ledger, loaded in a few queries."""

    enrollments: dict[tuple[str, str], Enrollment] = field(default_factory=dict)  # latest
    sends_by_key: dict[str, list[SendRecord]] = field(default_factory=lambda: defaultdict(list))
    sent_keys: set[str] = field(default_factory=set)  # idempotency keys never to send again
    owned_columns: dict[str, str] = field(default_factory=dict)  # sheet column -> origin
    config_flows: list[str] | None = None  # the config's flows at the last sync
    events_by_key: dict[str, list[Event]] = field(default_factory=lambda: defaultdict(list))

    @property
    def fresh(self) -> bool:
        """Nothing recorded yet: a new (or lost and recreated) ledger."""
        return not self.enrollments and not self.sends_by_key

    def sends_for(self, key: str) -> list[SendRecord]:
        return self.sends_by_key.get(key, [])

    def events_for(self, key: str) -> list[Event]:
        """What came back for this customer, oldest first."""
        return self.events_by_key.get(key, [])

    def opted_out(self, key: str) -> datetime | None:
        """When the customer opted out, if the latest opt-out was not undone since."""
        latest = None
        for event in self.events_for(key):
            if event.kind is EventKind.OPT_OUT:
                latest = event.at
            elif event.kind is EventKind.OPT_IN:
                latest = None
        return latest


@dataclass(slots=True)
class PlannedSend:
    key: str
    flow: str
    step: int  # 0-based
    steps: int
    channel: str
    template: str
    kind: str
    due_at: datetime
    enrollment: Enrollment
    idem_key: str
    variant: str | None = None

    @property
    def label(self) -> str:
        return f"{self.flow} {self.step + 1}/{self.steps}"

    def advance(self, now: datetime) -> None:
        """Move the enrollment past this step (after a send, or a send given up)."""
        e = self.enrollment
        e.next_step = self.step + 1
        if e.next_step >= self.steps:
            e.exit(EnrollmentStatus.FINISHED, LAST_STEP_DONE, now)


@dataclass(frozen=True)
class Message:
    """A rendered message, ready for a channel.

    ``idempotency_key`` is unique per (row key, flow, entry, step): email uses it
    for the Message-ID, webhooks for ``webhook-id``, the outbox for the file name.
    """

    idempotency_key: str
    recipient: str  # email address for email channels; the row key for webhooks
    subject: str
    text: str
    html: str | None = None
    kind: str = "transactional"  # "transactional" | "ad"
    payload: dict[str, Any] | None = None  # webhook body; None -> channel default
    meta: dict[str, str] = field(default_factory=dict)  # key, flow, step, template
    # An ad's opt-out page (``[server] public_url`` + ``/u/TOKEN``): the footer links it
    # and email puts it in List-Unsubscribe. None without ``[server]``.
    unsubscribe: str | None = None


@dataclass(frozen=True)
class Delivery:
    """What a channel reports after a successful send."""

    message_id: str
    detail: str = ""  # e.g. the outbox file path or the HTTP status
    # The provider took the message and reports delivery later (Solapi, NHN Cloud):
    # the ledger records the send as ``accepted`` until the report arrives.
    accepted: bool = False


@dataclass(frozen=True)
class DeliveryReport:
    """A provider's later word on one message, read from its webhook or its query API.

    ``message_id`` is the one the channel returned when it sent (``Delivery.message_id``).
    ``state`` is DELIVERED or FAILED, or None while the outcome is not final (an
    AlimTalk that failed and whose SMS substitute is still on its way).
    """

    provider: str  # solapi | nhn
    message_id: str
    state: DeliveryState | None
    reason: str = ""  # the provider's code and words, e.g. "3104 카카오톡 미사용자"
    at: datetime | None = None


@dataclass(frozen=True)
class Hold:
    reason: str
    skip: bool = False  # True: pass over the step for good; False: try again next run


@dataclass(slots=True)
class HeldSend:
    send: PlannedSend
    reason: str
    skip: bool = False  # passed over for good (the flow moves on), not deferred


@dataclass(slots=True)
class FlowMove:
    key: str
    flow: str
    action: str  # enter | converted | left | skip
    detail: str = ""


@dataclass(slots=True)
class TagChange:
    key: str
    before: list[str]
    after: list[str]


@dataclass(slots=True)
class RowError:
    line: int
    key: str
    message: str
    kind: str = "row"  # row (cells, key, state) | rule (a condition failed on this row)


@dataclass
class EventWrites:
    """What outside events (``[events.NAME]``) not yet applied write in this run.

    ``updates`` set fields of rows the table holds; ``new_rows`` are keys of rows to
    add (events of an ``append = true`` source), whose cells are in ``updates`` too.
    ``applied`` lists, per row key, the events these cells carry: marked applied once
    the write has landed on that row, never before. ``waiting`` counts, per event
    name, the events that stay for a later run, ``reasons`` why (per name, the first
    reason met: no key or value), and ``notes`` say it as ``plan`` prints it.
    """

    updates: list[CellUpdate] = field(default_factory=list)
    new_rows: list[str] = field(default_factory=list)
    applied: dict[str, list[int]] = field(default_factory=dict)
    waiting: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many events this write applies."""
        return sum(len(ids) for ids in self.applied.values())


@dataclass
class Plan:
    now: datetime
    rows_read: int
    records: list[Record]
    tags: dict[str, list[str]]  # key -> tags now (rows that evaluated cleanly)
    tag_changes: list[TagChange] = field(default_factory=list)
    moves: list[FlowMove] = field(default_factory=list)
    sends: list[PlannedSend] = field(default_factory=list)
    held: list[HeldSend] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    enrollments: list[Enrollment] = field(default_factory=list)  # new or changed, to save
    evaluations: int = 0
    stopped: str = ""  # why sends of this run were held as a whole (blast radius, flows)
    notes: list[str] = field(default_factory=list)  # what the operator should know
    broken_rules: list[str] = field(default_factory=list)  # rules that failed on every row
    # Flows to remember as the config's after this run (None: keep what the ledger has,
    # so a flow change that stopped sending is noticed again next run).
    flows_seen: list[str] | None = None
    retired_flows: list[str] = field(default_factory=list)  # removed flows to close
    owned_columns: dict[str, str] = field(default_factory=dict)  # writeback column -> origin
    events: EventWrites = field(default_factory=EventWrites)  # outside events to write

    def row_error(self, rec: Record, message: str, kind: str = "row") -> None:
        """Mark one row: the message goes in its error cell and the run's row errors."""
        rec.errors = [*rec.errors, message]  # its own list (a clean row shares NO_ERRORS)
        self.errors.append(RowError(rec.line, rec.key, message, kind))
