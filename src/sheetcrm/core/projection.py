"""What the sheet shows: a human-readable projection of the ledger.

Computed fresh every run from the ledger and compared with the cells as read, so
only cells whose text changes are written, and a run that crashed before writing
is reconciled by the next one.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import cache

from sheetcrm.config import Config
from sheetcrm.core.wording import said_in
from sheetcrm.i18n import LANGUAGES, N_, Language, _, current_language, in_language
from sheetcrm.model import (
    DELIVERED,
    RESTORED,
    CellUpdate,
    DeliveryState,
    Enrollment,
    EnrollmentStatus,
    EventKind,
    LedgerState,
    Record,
    SendStatus,
)

# The words sheetcrm writes into its cells, in the config's ``language`` (translated
# where written: a sheet is written in the language its config asks for). They are
# read back in either language (``_either``): a sheet written by a Korean run keeps
# its flow states and opt-outs when the config turns to English.
EXIT_LABELS = {
    EnrollmentStatus.FINISHED: N_("done"),
    EnrollmentStatus.CONVERTED: N_("converted (goal met)"),
    EnrollmentStatus.REPLIED: N_("ended (replied)"),
    EnrollmentStatus.LEFT: N_("ended (no longer true)"),
    EnrollmentStatus.FAILED: N_("failed"),
}
OPTED_OUT = N_("opted out")
BOUNCED = N_("mail bounced ({status})")
NOT_DELIVERED = N_("{what} not delivered")
NOT_DELIVERED_CODE = N_("{what} not delivered ({code})")
ALIMTALK, TEXT, SUBSTITUTE = (N_("AlimTalk"), N_("text message"),
                              N_("AlimTalk and its SMS substitute"))
NO_REASON = N_("no reason given")
TO_CHECK = N_("to be checked")
# The provider's code and words as texting.reports keeps them: "3104 카카오톡 미사용자",
# or inside NHN Cloud's "AlimTalk not delivered (3020 …); the SMS substitute failed too".
_CODE = r"(?P<code>-?[A-Za-z]{0,4}\d{3,5})"
_REASON = re.compile(rf"^{_CODE} (?P<words>.+)$")
_WRAPPED_REASON = re.compile(rf"\({_CODE} (?P<words>[^()]+)\)")
LATEST = N_("latest")
ENGAGEMENT_LABELS = {EventKind.CLICK: N_("clicks"), EventKind.REPLY: N_("replies")}
HOLDOUT = N_("holdout")
NEXT = N_("next")


def _either(message: str, **values: str) -> str:
    """A pattern for ``message`` as any language writes it, each ``{value}`` replaced by
    the pattern given (the forms are read from the catalogs, as core.wording does)."""
    forms = []
    for language in LANGUAGES:
        said = in_language(language, message)
        parts = re.split(r"\{(\w+)\}", said)  # text, name, text, name, ..., text
        forms.append("".join(values[part] if i % 2 else re.escape(part)
                             for i, part in enumerate(parts)))
    return "(?:" + "|".join(sorted(set(forms), key=len, reverse=True)) + ")"


_DATE = r"\d{4}-\d{2}-\d{2}"
# "payment 1/3 · 다음 2026-11-25 10:00" or "payment 3/3 완료 2026-11-27 (대조군)", or in English
# "payment 1/3 · next 2026-11-25 10:00", "payment 3/3 done 2026-11-27 (holdout)".
_FLOW_PART = re.compile(
    rf"^(?P<flow>[\w-]+) (?P<done>\d+)/(?P<n>\d+)"
    rf"(?: · {_either(NEXT)} (?P<due>{_DATE} \d{{2}}:\d{{2}})"
    rf"| (?P<label>{'|'.join(_either(label) for label in EXIT_LABELS.values())}|\S+)"
    rf" (?P<exited>{_DATE}))"
    rf"(?P<holdout> \({_either(HOLDOUT)}\))?$"
)


_LAST_SENT = re.compile(rf"^{_DATE} \d{{2}}:\d{{2}} \S+ \(\S+\)(?: \({_either(TO_CHECK)}\))?$")


_OPT_OUT = re.compile(rf"^{_DATE} {_either(OPTED_OUT)}$")
_ENGAGEMENT = re.compile(
    rf"^(?:(?:{'|'.join(_either(label) for label in ENGAGEMENT_LABELS.values())})"
    rf" \d+ · )+{_either(LATEST)} {_DATE}$")
# The notes that end an error cell, each after "; ": the bounce ("2026-11-28 메일
# 반송(5.1.1): 550 ...") and the text message not delivered ("2026-11-25 알림톡
# 미전달(3104): 카카오톡 미사용자"), in either language.
_WHAT = "(?:" + "|".join(_either(what) for what in (SUBSTITUTE, ALIMTALK, TEXT)) + ")"
_NOTE = re.compile("(?:^|; )" + _DATE + " (?:" + "|".join((
    _either(BOUNCED, status=r"5\.\d{1,3}\.\d{1,3}"),
    _either(NOT_DELIVERED_CODE, what=_WHAT, code=r"[^()]{1,20}"),
    _either(NOT_DELIVERED, what=_WHAT))) + "): ")


def written_by_sheetcrm(role: str, text: str, rec: Record, config: Config) -> bool:
    """Whether a writeback cell's text is what sheetcrm itself writes there.

    How a lost or new ledger tells sheetcrm's own columns from the operator's: tags
    are tag names, flow and last-sent cells have their own forms, and an error cell
    is sheetcrm's when it says exactly what this run finds wrong with the row.
    """
    if role == "tags":
        return all(t.strip() in config.tags for t in text.split(","))
    if role == "flow":
        return all(_FLOW_PART.match(part.strip()) for part in text.split(" | "))
    if role == "last_sent":
        return bool(_LAST_SENT.match(text))
    if role == "opt_out":
        return bool(_OPT_OUT.match(text))
    if role == "engagement":
        return bool(_ENGAGEMENT.match(text))
    # Notes (a bounce, a text message not delivered), written last, may follow. The
    # errors may have been written by a run in the other language.
    errors = "; ".join(rec.errors)
    if _says(text, errors):
        return True
    here = current_language()
    for other in LANGUAGES:
        if other != here and rec.errors:
            said = [said_in(e, here, other) for e in rec.errors]
            if None not in said and _says(text, "; ".join(s for s in said if s is not None)):
                return True
    return False


def _says(text: str, errors: str) -> bool:
    """The error cell ``text`` is ``errors``, perhaps followed by notes."""
    return text == errors or any(text[: note.start()] == errors
                                 for note in _NOTE.finditer(text))


@dataclass(frozen=True)
class ForeignColumn:
    """A writeback column that holds values sheetcrm did not write."""

    column: str
    role: str  # tags | flow | last_sent | error
    rows: int  # rows whose cell sheetcrm would overwrite

    def message(self) -> str:
        return _("writeback.{role}: column {column} already holds values sheetcrm did not "
                 "write ({rows} row(s)), and sync would overwrite them. Point "
                 "writeback.{role} at a new or empty column, or let sheetcrm take it over "
                 "with adopt = [{adopt}] in [writeback]", role=self.role,
                 column=repr(self.column), rows=self.rows,
                 adopt=json.dumps(self.column, ensure_ascii=False))


def column_ownership(header: list[str], records: list[Record], config: Config,
                     known: dict[str, str]) -> tuple[dict[str, str], list[ForeignColumn]]:
    """Which writeback columns sheetcrm may write, and how each became its own.

    Returns the origin of every writeback column (``created``, ``empty``, ``adopted``,
    ``recognised``, or what the ledger remembers) and the columns refused because
    rows sheetcrm would write hold the operator's values there (invariant 8: never
    taken over silently).
    """
    origins: dict[str, str] = {}
    foreign: list[ForeignColumn] = []
    present = set(header)
    adopt = set(config.writeback.adopt)
    for column, role in config.writeback.roles().items():
        if column in known:
            origins[column] = known[column]
        elif column not in present:
            origins[column] = "created"
        elif column in adopt:
            origins[column] = "adopted"
        else:
            filled = [rec for rec in records if rec.current.get(column, "").strip()]
            theirs = sum(1 for rec in filled
                         if not written_by_sheetcrm(role, rec.current[column].strip(), rec,
                                                    config))
            if theirs:
                foreign.append(ForeignColumn(column, role, theirs))
            else:
                origins[column] = "recognised" if filled else "empty"
    return origins, foreign


def flow_text(e: Enrollment, config: Config) -> str:
    """``payment 1/3 · 다음 2026-11-26 09:00`` or ``payment 1/3 전환(목표 달성) 2026-11-25``."""
    tz = config.tz
    flow = config.flows.get(e.flow)
    n = len(flow.steps) if flow else 0
    lang = config.model.language
    mark = f" ({in_language(lang, HOLDOUT)})" if e.holdout else ""
    if e.status == "active" and flow is not None:
        due = (e.anchor_at or e.entered_at) + flow.steps[e.next_step].after
        nxt = in_language(lang, NEXT)
        return f"{e.flow} {e.next_step}/{n} · {nxt} {_local(due, tz):%Y-%m-%d %H:%M}{mark}"
    known = EXIT_LABELS.get(e.status)
    label = in_language(lang, known) if known else str(e.status)
    when = f" {_local(e.exited_at, tz):%Y-%m-%d}" if e.exited_at else ""
    return f"{e.flow} {e.next_step}/{n} {label}{when}{mark}"


class UnreadableFlowCell(ValueError):
    """A flow cell (typed or edited by hand) that does not say a flow state."""


def enrollments_from_sheet(key: str, cell: str, config: Config) -> dict[str, Enrollment]:
    """What the flow column shows, as enrollments: how a fresh ledger avoids re-sending.

    A row showing ``payment 2/3 · 다음 …`` has had two steps sent; with an empty
    ledger (lost, or a new machine) those two are not sent again. A part naming a
    flow the config no longer has is passed over; a part that cannot be read (typed
    by hand: ``payment 1/3 · 다음 2026-02-30 10:00``) raises UnreadableFlowCell.
    """
    found: dict[str, Enrollment] = {}
    exit_status = _exit_statuses()
    for part in cell.split(" | "):
        part = part.strip()
        m = _FLOW_PART.match(part)
        if m and m["flow"] not in config.flows:
            continue
        try:
            if not m:
                raise ValueError(_("not in the form 'payment 1/3 · next 2026-11-25 10:00'"))
            flow = config.flows[m["flow"]]
            done = min(int(m["done"]), len(flow.steps))
            e = Enrollment(key=key, flow=m["flow"], entry=1, entered_at=datetime.min,
                           anchor_at=None, next_step=done, holdout=bool(m["holdout"]),
                           via="sheet")
            # The pattern holds them to 2026-11-25 10:00 and 2026-11-25, which
            # fromisoformat reads (a day that does not exist still fails), ~40x strptime.
            if m["due"] and done < len(flow.steps):
                due = datetime.fromisoformat(m["due"]).replace(tzinfo=config.tz)
                e.entered_at = due - flow.steps[done].after
            else:
                status = exit_status.get(m["label"] or "", EnrollmentStatus.FINISHED)
                exited = datetime.fromisoformat(m["exited"] or m["due"][:10])
                e.exit(status, RESTORED, exited.replace(tzinfo=config.tz))
                e.entered_at = e.exited_at or e.entered_at
        except (ValueError, OverflowError) as exc:
            raise UnreadableFlowCell(_(
                "{column}: cannot read {part} ({problem}); fix it or clear the cell to "
                "start this customer afresh", column=config.writeback.flow, part=repr(part),
                problem=exc)) from None
        found[e.flow] = e
    return found


@cache
def _exit_statuses() -> dict[str, EnrollmentStatus]:
    """An exit label, in either language, to the status it stands for."""
    return {in_language(language, label): status for status, label in EXIT_LABELS.items()
            for language in LANGUAGES}


def opt_out_text(key: str, state: LedgerState, tz: tzinfo, language: Language) -> str:
    """``2026-11-28 수신 거부``: when the customer opted out (blank after an undo)."""
    when = state.opted_out(key)
    return f"{_local(when, tz):%Y-%m-%d} {in_language(language, OPTED_OUT)}" if when else ""


def bounce_text(key: str, state: LedgerState, tz: tzinfo, language: Language) -> str:
    """``2026-11-28 메일 반송(5.1.1): 550 5.1.1 User unknown``: the latest permanent bounce.

    It goes in the error column: the address is what the operator must fix, and
    nothing more is sent to the customer meanwhile (the guards).
    """
    bounces = [e for e in state.events_for(key) if e.kind is EventKind.BOUNCE]
    if not bounces:
        return ""
    latest = bounces[-1]
    status = str(latest.data.get("status") or "5.0.0")
    reason = " ".join(str(latest.data.get("reason") or "").split()) or status
    bounced = in_language(language, BOUNCED, status=status)
    return f"{_local(latest.at, tz):%Y-%m-%d} {bounced}: {reason}"


def delivery_text(key: str, state: LedgerState, config: Config) -> str:
    """``2026-11-25 알림톡 미전달(3104): 카카오톡 미사용자``: the latest text message the
    provider reported it could not deliver (``문자`` for an SMS/LMS, ``알림톡·대체 문자``
    when the SMS sent in place of an AlimTalk failed too), in Korean first and then the
    provider's own code and words.

    It goes in the error column until a later message to the customer is reported
    delivered: the number (or KakaoTalk) is what the operator may have to look at. A
    failed delivery is never sent again.
    """
    reported = [r for r in state.sends_for(key)
                if r.delivery in (DeliveryState.DELIVERED, DeliveryState.FAILED)]
    if not reported:
        return ""
    latest = max(reported, key=lambda r: r.delivered_at or r.finished_at or r.created_at)
    if latest.delivery is not DeliveryState.FAILED:
        return ""
    when = latest.delivered_at or latest.finished_at or latest.created_at
    detail = " ".join((latest.delivery_detail or "").split())
    settings = config.channels.get(latest.channel)
    what = ALIMTALK if getattr(settings, "mode", "sms") == "alimtalk" else TEXT
    if "substitute failed" in detail:
        what = SUBSTITUTE
    m = _REASON.match(detail) or _WRAPPED_REASON.search(detail)
    words = m["words"].strip() if m else detail
    lang = config.model.language
    what = in_language(lang, what)
    note = (in_language(lang, NOT_DELIVERED_CODE, what=what, code=m["code"]) if m
            else in_language(lang, NOT_DELIVERED, what=what))
    return f"{_local(when, tz=config.tz):%Y-%m-%d} {note}: {words or in_language(lang, NO_REASON)}"


def engagement_text(key: str, state: LedgerState, tz: tzinfo, language: Language) -> str:
    """``클릭 2 · 답장 1 · 최근 2026-11-28``: what the customer did, automatic hits left out.

    Opens are not shown: image proxies open mail nobody read.
    """
    heard = [e for e in state.events_for(key)
             if not e.machine and e.kind in ENGAGEMENT_LABELS]
    if not heard:
        return ""
    counts = Counter(e.kind for e in heard)
    parts = [f"{in_language(language, label)} {counts[kind]}"
             for kind, label in ENGAGEMENT_LABELS.items() if counts[kind]]
    latest = max(e.at for e in heard)
    return f"{' · '.join(parts)} · {in_language(language, LATEST)} {_local(latest, tz):%Y-%m-%d}"


def last_sent_text(key: str, state: LedgerState, tz: tzinfo, language: Language) -> str:
    sends = state.sends_by_key.get(key)
    if not sends:
        return ""
    delivered = [r for r in sends if r.status in DELIVERED]
    if not delivered:
        return ""
    last = max(delivered, key=lambda r: r.finished_at or r.created_at)
    when = _local(last.finished_at or last.created_at, tz)
    mark = "" if last.status == SendStatus.SENT else f" ({in_language(language, TO_CHECK)})"
    return f"{when:%Y-%m-%d %H:%M} {last.template} ({last.channel}){mark}"


def project(records: list[Record], tags: dict[str, list[str]], state: LedgerState,
            config: Config) -> list[CellUpdate]:
    """Cell updates that bring every owned column in line with the ledger.

    Each column's texts are worked out for all rows at once; a row the ledger holds
    nothing about (no send, no event: most rows on a first run) has blank ledger
    columns without a call. The updates come row by row, in column order, as always.
    """
    wb, tz, lang = config.writeback, config.tz, config.model.language
    keys = [rec.key for rec in records]
    sends, events = state.sends_by_key, state.events_by_key
    wanted: dict[str, list[str | None]] = {}  # column -> each row's text (None: not set)
    if wb.tags:
        joined: dict[tuple[str, ...], str] = {}  # each set of tags written once (~70 B a row)
        wanted[wb.tags] = [_joined(tags[key], joined) if key in tags else None
                           for key in keys]
    if wb.flow:
        wanted[wb.flow] = _flow_column(keys, state, config)
    if wb.last_sent:
        wanted[wb.last_sent] = [last_sent_text(key, state, tz, lang) if key in sends else ""
                                for key in keys]
    if wb.error:
        wanted[wb.error] = [_error_text(rec, state, config)
                            if rec.key in sends or rec.key in events else "; ".join(rec.errors)
                            for rec in records]
    if wb.opt_out:
        wanted[wb.opt_out] = [opt_out_text(key, state, tz, lang) if key in events else ""
                              for key in keys]
    if wb.engagement:
        wanted[wb.engagement] = [engagement_text(key, state, tz, lang) if key in events else ""
                                 for key in keys]
    columns = list(wanted.items())
    updates: list[CellUpdate] = []
    for n, rec in enumerate(records):
        for column, texts in columns:
            text = texts[n]
            if text is not None and column not in rec.keep \
                    and rec.current.get(column, "") != text:
                updates.append(CellUpdate(rec.key, column, text))
    return updates


def _joined(tags: list[str], joined: dict[tuple[str, ...], str]) -> str:
    key = tuple(tags)
    text = joined.get(key)
    if text is None:
        text = joined[key] = ", ".join(tags)
    return text


def _error_text(rec: Record, state: LedgerState, config: Config) -> str:
    """The row's errors, then a bounce or a failed delivery the ledger heard of."""
    notes = [note for note in (bounce_text(rec.key, state, config.tz, config.model.language),
                               delivery_text(rec.key, state, config)) if note]
    return "; ".join([*rec.errors, *notes])


def _flow_column(keys: list[str], state: LedgerState, config: Config) -> list[str | None]:
    """Each row's flow cell: its enrollments in the config's flow order."""
    in_flow: dict[str, list[Enrollment]] = {name: [] for name in config.flows}
    for (_key, name), e in state.enrollments.items():
        if name in in_flow:
            in_flow[name].append(e)
    # Most rows share a few flow states (entered in the same run): format each once.
    texts: dict[tuple[object, ...], str] = {}

    def text_of(e: Enrollment) -> str:
        memo_key = (e.flow, e.status, e.next_step, e.entered_at, e.anchor_at, e.exited_at,
                    e.holdout)
        text = texts.get(memo_key)
        if text is None:
            text = texts[memo_key] = flow_text(e, config)
        return text

    # A row's cell grows flow by flow, and each combination is made once: 200k rows
    # in two flows made 200k equal cells (and a list per row to gather them, 38 MB).
    cells: dict[str, str] = {}
    joined: dict[tuple[str, str], str] = {}
    for enrollments in in_flow.values():
        for e in enrollments:
            text = text_of(e)
            before = cells.get(e.key)
            if before is not None:
                both = joined.get((before, text))
                if both is None:
                    both = joined[before, text] = f"{before} | {text}"
                text = both
            cells[e.key] = text
    return [cells.get(key, "") for key in keys]


def _local(dt: datetime | None, tz: tzinfo) -> datetime:
    assert dt is not None
    return dt.astimezone(tz)
