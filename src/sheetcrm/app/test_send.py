"""``sheetcrm test-send FLOW STEP --to ADDRESS``: one step, rendered for one customer,
sent to the operator only, through the step's real channel.

The message is the one ``preview`` renders (``build_message``, the customer's row,
tags and A/B variant), with four changes that make it a test and keep it one:

- it has its own idempotency key (``sc-test-…``): its Message-ID, its outbox file,
  its ``webhook-id`` and the tokens of its links are never a customer send's, so a
  click, an opt-out or a reply that answers it is nobody's;
- it goes to ``--to`` only: an email channel's recipient, a text channel's number,
  and for a webhook the payload's ``recipient``, with ``"test": true`` in the payload;
- its subject starts with ``[테스트]`` (an SMS's text too; an AlimTalk's text must
  match its approved template word for word, so it is left as it is);
- it is recorded in the ledger's ``test_sends``, never in ``sends``: no enrollment
  moves, no frequency cap counts it, ``report`` and ``status``'s counts leave it out.

The guards that protect customers (consent, quiet hours, the frequency cap) are not
asked: the message goes to the operator. ``[sending] paused`` still stops it, and an
address or number that belongs to a customer is refused: a test never reaches one.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sheetcrm.app.history import closest_key
from sheetcrm.app.rules import resolved
from sheetcrm.channels import make_channel
from sheetcrm.channels.base import Channel
from sheetcrm.channels.webhook import default_payload
from sheetcrm.config import Config, EmailSettings
from sheetcrm.config.channels import ChannelSettings, TextSettings, parse_address
from sheetcrm.core.evaluate import RowConditions
from sheetcrm.core.messages import build_message
from sheetcrm.core.rules import RowContext, Rules, compile_rules
from sheetcrm.core.schema import read_records
from sheetcrm.core.steps import next_send
from sheetcrm.errors import ChannelError, ConfigError, ExitStatus, SheetcrmError, TemplateError
from sheetcrm.expressions import ExpressionRuntimeError
from sheetcrm.expressions.compile import unknown
from sheetcrm.i18n import _
from sheetcrm.ledger import Ledger, TrialSend
from sheetcrm.ledger.schema import iso
from sheetcrm.model import Enrollment, LedgerState, Message, PlannedSend, Record, SendStatus
from sheetcrm.table import open_table
from sheetcrm.templates import Templates
from sheetcrm.texting import normalize_mobile, sms_type
from sheetcrm.texting.phone import EXPECTED_MOBILE

TEST_MARKER = "[테스트]"


class TrialError(SheetcrmError):
    """The test cannot be made as asked (a flow, step, row or address that will not do)."""

    exit_code = ExitStatus.USAGE


@dataclass(frozen=True)
class TrialOrder:
    """What the operator asked for: ``test-send FLOW STEP --to TO [--row] [--variant]``."""

    flow: str
    step: str  # the step's number (1 = the first) or its template's name
    to: str  # the operator's address (email), number (text) or name (webhook)
    row: str | None = None  # the customer's key; None = the first who could receive it
    variant: str | None = None  # an A/B variant; None = the customer's own


@dataclass
class TrialResult:
    """What was rendered for whom, and what became of the test."""

    flow: str
    step: int  # counts from 0
    steps: int
    channel: str
    channel_type: str
    template: str  # the step's (an A/B variant may have a file of its own)
    variant: str | None
    key: str
    line: int
    chosen: str  # given | in flow | any: how the row was picked
    to: str  # where it went, as sent
    subject: str
    text: str
    status: SendStatus
    detail: str = ""
    idem_key: str = ""
    text_marked: bool = True  # False for AlimTalk: its text is the approved template's
    exit_code: ExitStatus = ExitStatus.OK

    @property
    def label(self) -> str:
        return f"{self.flow} {self.step + 1}/{self.steps}"

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.update(step=self.step + 1, status=str(self.status))
        del data["exit_code"]
        return data


def send_test(config: Config, now: datetime, order: TrialOrder,
              channels: dict[str, Channel] | None = None) -> TrialResult:
    """Render the step for one customer and send it to ``order.to`` only."""
    if config.sending.paused:
        raise ConfigError(_("sending is paused, so no test is sent either; set it to false "
                            "to send a test"), path="sending.paused")
    config, templates = resolved(config)  # [rules]: the flows kept in the sheet
    flow = _flow(config, order.flow)
    step = _step(config, flow, order.step)
    settings = config.flows[flow].steps[step]
    variant = _variant(settings.variants, order.variant)
    channel_settings = config.channels[settings.channel]
    to = _recipient(channel_settings, order.to)
    rows = read_records(open_table(config).read(), config)
    _refuse_customer_address(config, channel_settings, rows.records, to)
    ledger = Ledger.open_readonly(config.state_path)
    try:
        state = ledger.load_state()
    finally:
        ledger.close()
    making = _Making(config, now, state, compile_rules(config), templates,
                     _test_key(flow, step))
    rec, chosen, send, message = making.pick(flow, step, variant, rows.records, order.row)
    message = _as_test(message, channel_settings, to)
    result = TrialResult(
        flow=flow, step=step, steps=send.steps, channel=send.channel,
        channel_type=channel_settings.type, template=send.template,
        variant=send.variant, key=rec.key, line=rec.line, chosen=chosen, to=message.recipient,
        subject=message.subject, text=message.text, status=SendStatus.PENDING,
        idem_key=send.idem_key,
        text_marked=not (isinstance(channel_settings, TextSettings)
                         and channel_settings.mode == "alimtalk"))
    _deliver(config, now, result, message, send, channels)
    return result


def _flow(config: Config, name: str) -> str:
    if name not in config.flows:
        listed = ", ".join(config.flows) or "(none)"
        raise TrialError(unknown("flow", name, list(config.flows), listed))
    return name


def _step(config: Config, flow: str, given: str) -> int:
    steps = config.flows[flow].steps
    text = given.strip()
    if text.isdigit() and 1 <= int(text) <= len(steps):
        return int(text) - 1
    for i, step in enumerate(steps):
        if step.template == text:
            return i
    templates = ", ".join(s.template for s in steps)
    raise TrialError(_("{given} is not a step of the flow {flow}; give its number, 1 to "
                       "{last}, or its template: {templates}", given=repr(given), flow=flow,
                       last=len(steps), templates=templates))


def _variant(variants: dict[str, float] | None, given: str | None) -> str | None:
    if given is None:
        return None
    if not variants:
        raise TrialError(_("--variant {given}: this step has no A/B variants",
                           given=repr(given)))
    if given not in variants:
        listed = ", ".join(variants)
        raise TrialError(unknown("variant", given, list(variants), listed))
    return given


def _recipient(settings: ChannelSettings, to: str) -> str:
    """``--to`` in the form the channel sends to, or TrialError saying what it needs."""
    to = to.strip()
    if isinstance(settings, TextSettings):
        try:
            return normalize_mobile(to)
        except ValueError:
            raise TrialError(_("--to {to} is not a number this channel can text; expected "
                               "{expected}", to=repr(to), expected=EXPECTED_MOBILE)) from None
    if isinstance(settings, EmailSettings):
        try:
            parse_address(to)
        except ValueError as exc:
            raise TrialError(_("--to {to} is not an email address: {problem}", to=repr(to),
                               problem=exc)) from None
    if not to:
        raise TrialError(_("--to is blank; give your own address or number"))
    return to


def _forms(value: object) -> Iterator[str]:
    """The ways a cell may name the same address or number as ``--to``."""
    text = str(value or "").strip()
    if not text:
        return
    yield text.casefold()
    if "<" in text and text.endswith(">"):
        yield text[text.rindex("<") + 1:-1].strip().casefold()
    if "@" not in text:
        try:
            phone = normalize_mobile(value)
        except ValueError:
            return
        yield phone


def _refuse_customer_address(config: Config, settings: ChannelSettings,
                             records: list[Record], to: str) -> None:
    """A test never reaches a customer: ``--to`` must be nobody's key, address or number."""
    mine = set(_forms(to))
    if isinstance(settings, EmailSettings):
        mine.add(str(parse_address(to).addr_spec).casefold())
    fields = {name for name, f in config.fields.items() if f.type in ("email", "phone")}
    if settings.recipient_field:
        fields.add(settings.recipient_field)
    for rec in records:
        cells = [rec.key, *(rec.values.get(name) for name in fields)]
        if any(form in mine for cell in cells for form in _forms(cell)):
            raise TrialError(_("--to {to} is the address or number of the customer on row "
                               "{row}; a test goes only to your own, never to a customer",
                               to=to, row=rec.line))


def _test_key(flow: str, step: int) -> str:
    """A key of the test's own, unlike any customer send's (``sc-FLOW-eN-sN-…``)."""
    return f"sc-test-{flow}-s{step + 1}-{uuid.uuid4().hex[:16]}"


@dataclass
class _Making:
    """What rendering the step for a customer needs."""

    config: Config
    now: datetime
    state: LedgerState
    rules: Rules
    templates: Templates
    idem_key: str

    def pick(self, flow: str, step: int, variant: str | None, records: list[Record],
             row: str | None) -> tuple[Record, str, PlannedSend, Message]:
        """The customer (the one asked for, else the first who could receive the step),
        how they were picked, the send and its message."""
        if row is not None:
            rec = self._given(records, row)
            made = self.render(rec, flow, step, variant, strict=True)
            assert made is not None  # strict: an error, never None
            return rec, "given", *made
        fallback = None
        for rec in records:  # rendered only while it can still change the choice
            if not rec.ok:
                continue
            in_flow = self._in_flow(rec, flow)
            if not in_flow and fallback is not None:
                continue
            made = self.render(rec, flow, step, variant, strict=False)
            if made is None:
                continue
            if in_flow:
                return rec, "in flow", *made
            fallback = (rec, "any", *made)
        if fallback is None:
            raise TrialError(_("no row can receive {flow} step {step}: every row has errors, "
                               "no recipient for its channel, or fails to render it; sheetcrm "
                               "check says why", flow=flow, step=step + 1))
        return fallback

    def _given(self, records: list[Record], key: str) -> Record:
        rec = next((r for r in records if r.key == key), None)
        if rec is None:
            close = closest_key(key, (r.key for r in records))
            raise TrialError(
                _("--row {key}: no row of the sheet has this key; did you mean {close}?",
                  key=repr(key), close=repr(close)) if close else
                _("--row {key}: no row of the sheet has this key", key=repr(key)))
        if not rec.ok:
            raise TrialError(_("--row {key}: row {row} has errors, so no flow acts on it: "
                               "{error}", key=repr(key), row=rec.line, error=rec.errors[0]))
        return rec

    def _in_flow(self, rec: Record, flow: str) -> bool:
        e = self.state.enrollments.get((rec.key, flow))
        if e is not None and e.active:
            return True
        try:
            return self._conditions(rec).triggered(flow) is True  # unknown: not in it
        except ExpressionRuntimeError:
            return False

    def _conditions(self, rec: Record) -> RowConditions:
        return RowConditions(self.rules, rec, RowContext(self.now, self.config.tz, self.state))

    def render(self, rec: Record, flow: str, step: int, variant: str | None, *,
               strict: bool) -> tuple[PlannedSend, Message] | None:
        """The step's message for ``rec`` under the test's own key; None (or, when
        ``strict``, an error) when that row cannot receive it."""
        settings = self.config.channels[self.config.flows[flow].steps[step].channel]
        field_name = settings.recipient_field
        try:
            if not rec.ok:
                raise TrialError(_("row {row} has errors: {error}", row=rec.line,
                                   error=rec.errors[0]))
            if field_name and not rec.values.get(field_name):
                raise TrialError(_("--row {key}: row {row} has no {field} to send this step "
                                   "to", key=repr(rec.key), row=rec.line, field=field_name))
            try:
                tags = [t for t, on in self._conditions(rec).tags().items() if on]
            except ExpressionRuntimeError:
                tags = []
            sample = Enrollment(key=rec.key, flow=flow, entry=1, entered_at=self.now,
                                anchor_at=None, next_step=step)
            send = dataclasses.replace(next_send(sample, self.config.flows[flow], variant),
                                       idem_key=self.idem_key)
            return send, build_message(rec, send, tags, self.now, self.config, self.templates)
        except (TrialError, TemplateError):
            if strict:
                raise
            return None


def _as_test(message: Message, settings: ChannelSettings, to: str) -> Message:
    """The message marked as a test and addressed to the operator only."""
    subject = message.subject
    if subject and not subject.startswith(TEST_MARKER):
        subject = f"{TEST_MARKER} {subject}"
    if isinstance(settings, TextSettings):
        meta, text = dict(message.meta), message.text
        if meta.get("type") != "ATA":  # AlimTalk: the approved template, word for word
            text = f"{TEST_MARKER} {text}"
            meta["type"] = sms_type(text)
        return dataclasses.replace(message, recipient=to, subject=subject, text=text, meta=meta)
    marked = dataclasses.replace(message, recipient=to, subject=subject)
    if isinstance(settings, EmailSettings):
        return marked
    # A webhook: the default payload names the operator as its recipient; a template's
    # own payload goes as rendered. Both say "test": true.
    payload = dict(message.payload) if message.payload is not None else default_payload(marked)
    payload["test"] = True
    return dataclasses.replace(marked, payload=payload)


def _deliver(config: Config, now: datetime, result: TrialResult, message: Message,
             send: PlannedSend, channels: dict[str, Channel] | None) -> None:
    """Record the test, send it, record how it went (the ledger's ``test_sends`` only)."""
    injected = (channels or {}).get(send.channel)
    channel = injected or make_channel(send.channel, config.channels[send.channel],
                                       base_dir=config.base_dir)
    ledger = Ledger.open(config.state_path)
    try:
        ledger.claim_test_send(TrialSend(
            send.idem_key, result.key, send.flow, send.step, send.channel, result.template,
            send.variant, send.kind, result.to, result.subject, SendStatus.PENDING, iso(now)))
        try:
            delivery = channel.send(message)
        except ChannelError as exc:
            result.status = SendStatus.UNCERTAIN if exc.uncertain else SendStatus.FAILED
            result.detail = str(exc)
            result.exit_code = (ExitStatus.CHANNEL_DOWN if exc.channel_down
                                else ExitStatus.FAILED)
            ledger.finish_test_send(send.idem_key, result.status, now, detail=result.detail)
            return
        result.status, result.detail = SendStatus.SENT, delivery.detail
        ledger.finish_test_send(send.idem_key, SendStatus.SENT, now,
                                message_id=delivery.message_id, detail=delivery.detail)
    finally:
        if injected is None:
            channel.close()
        ledger.close()
