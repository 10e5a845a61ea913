"""``sheetcrm check``: find every problem before anything is sent.

``check`` catches what ``sync`` would hit: config, rules, templates, columns, keys
and cells; every tag, trigger and goal evaluated against every row (a type error
such as ``date >= 14`` shows here, not in the middle of a send); every template a
flow step can reach (each A/B variant too) rendered against the rows that could
receive it; the writeback columns and flow changes the planner would stop on; that
ads by email have a working unsubscribe link (``[server]``, reached over https); that
apprise understands every ``[alerts]`` URL; text messages have a mobile number on
every row and carriers' characters; and, with ``--connect``, each channel reached
without sending anything and the mailbox logged in to without reading any mail.

``check`` is run after every edit of the config, so it loads only what the config
asks for: the alert URLs' checker (with the daemon's alerting and its scheduler) and
the rule tabs' reader are imported when the config has ``[alerts]`` or ``[rules]``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime

from sheetcrm.config import Config, StepSettings, _quote_key
from sheetcrm.config.channels import EmailSettings, TextSettings
from sheetcrm.core.engine import make_plan
from sheetcrm.core.evaluate import RowConditions
from sheetcrm.core.guards import load_suppression
from sheetcrm.core.messages import (
    AD_MARKER,
    build_message,
    context_for,
    misspelled_marker,
    template_name,
)
from sheetcrm.core.projection import column_ownership
from sheetcrm.core.rules import RowContext, Rules, compile_rules
from sheetcrm.core.schema import header_problems, read_records
from sheetcrm.core.steps import next_send
from sheetcrm.errors import ChannelError, ConfigError, SheetcrmError, TemplateError
from sheetcrm.expressions import ExpressionRuntimeError
from sheetcrm.i18n import _
from sheetcrm.ledger import Ledger
from sheetcrm.ledger.lookback import check_keep
from sheetcrm.model import Enrollment, LedgerState, PlannedSend, Record
from sheetcrm.table import open_table
from sheetcrm.templates import Templates
from sheetcrm.texting import masked, normalize_mobile, outside_euc_kr
from sheetcrm.texting.phone import EXPECTED_MOBILE as EXPECTED

MAX_PER_TEMPLATE = 5
_ASKS_A_REPLY = re.compile(r"답장|회신|답신|\breply\b", re.IGNORECASE)


@dataclass
class Finding:
    level: str  # error | warning | info
    where: str
    message: str


def run_checks(config: Config, now: datetime, *, connect: bool = False) -> list[Finding]:
    findings: list[Finding] = []
    templates: Templates | None = None
    if config.rule_tabs:  # the rules are in the sheet: read and check them first
        from sheetcrm.app.rules import check_tabs

        try:
            ruleset, tab_problems = check_tabs(config, open_table(config).read())
        except SheetcrmError as exc:
            findings.append(Finding("error", "table", str(exc)))
            return findings
        findings.extend(Finding("error", f"{p.tab} {_('row {row}', row=p.row)}" if p.row
                                else p.tab, p.message) for p in tab_problems)
        if ruleset is None:
            return findings
        config, templates = ruleset.config, ruleset.templates
    try:
        rules = compile_rules(config)
    except SheetcrmError as exc:
        findings.append(Finding("error", "rules", str(exc)))
        return findings

    templates = templates or Templates(config.templates_dir)
    broken = _template_findings(config, templates, findings)
    findings.extend(_state_findings(config))
    findings.extend(_server_findings(config))
    findings.extend(_signal_findings(config, rules))
    findings.extend(_reply_opt_out_findings(config))
    findings.extend(_keep_findings(config))
    if config.model.alerts is not None:  # apprise understands every URL
        from sheetcrm.app.alerts import check_urls

        findings.extend(Finding(*found) for found in check_urls(config))
    if connect:
        findings.extend(_connect(config))

    try:
        snapshot = open_table(config).read()
    except SheetcrmError as exc:
        findings.append(Finding("error", "table", str(exc)))
        return findings
    if config.table.backend == "airtable":
        from sheetcrm.table.airtable import monthly_budget_warning

        budget = monthly_budget_warning(config, len(snapshot.rows), now=now, tab_rows={
            tab: max(0, len(rows) - 1) for tab, rows in snapshot.tabs.items()})
        if budget:
            findings.append(Finding("warning", "schedule", budget))
    problems = header_problems(snapshot.header, config)
    blank = [i + 1 for i, h in enumerate(snapshot.header) if not h]
    if blank:
        findings.append(Finding("warning", "header", _("blank header cells at columns {columns}",
                                                        columns=blank)))
    if problems:
        findings.extend(Finding("error", "header", p) for p in problems)
        return findings
    table = read_records(snapshot, config)
    for col in table.missing_writeback:
        findings.append(Finding("info", "writeback",
                                _("column {column} is not in the sheet; sync will append it",
                                  column=repr(col))))
    good = [r for r in table.records if r.ok]

    try:
        state = _ledger_state(config)
        plan = make_plan(table, state, now, config, rules, suppressed=load_suppression(config))
    except SheetcrmError as exc:  # an unreadable ledger or suppression list
        findings.append(Finding("error", "plan", str(exc)))
        return findings
    for error in plan.errors:
        if error.kind == "rule":
            continue  # reported once per rule below, with the rows it fails on
        where = (_("row {row} ({key})", row=error.line, key=error.key) if error.key
                 else _("row {row}", row=error.line))
        findings.append(Finding("error", where, error.message))
    _owned, foreign = column_ownership(snapshot.header, plan.records, config, state.owned_columns)
    findings.extend(Finding("error", f"writeback.{f.role}", f.message()) for f in foreign)
    findings.extend(Finding("warning", "flows", note) for note in plan.notes)
    if plan.stopped:
        findings.append(Finding("warning", "sending", _("sync would hold sends: {why}",
                                                        why=plan.stopped)))

    findings.extend(_rule_findings(config, rules, good, state, now))
    findings.extend(_render_findings(config, templates, broken, good, now))
    findings.extend(text_findings(config, templates, broken, good, now))
    return findings


def _state_findings(config: Config) -> list[Finding]:
    """The state file can be created where the config says (check itself creates nothing)."""
    path = config.state_path
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    problem = ""
    if path.exists() and not path.is_file():
        problem = _("{path} is not a file", path=path)
    elif not folder.is_dir():
        problem = _("{file} is a file, so the folder {folder} cannot be made", file=folder,
                    folder=path.parent)
    elif not os.access(folder, os.W_OK | os.X_OK):
        problem = _("no permission to write in {folder}", folder=folder)
    if not problem:
        return []
    return [Finding("error", "state", _("the state file {path} cannot be created: {problem}; "
                                        "point state at a folder sheetcrm may write",
                                        path=path, problem=problem))]


def _server_findings(config: Config) -> list[Finding]:
    """Ads by email need a working opt-out link: ``[server]``, reached over https."""
    server = config.server
    if server is not None and not server.https and not server.public_on_loopback:
        return [Finding("warning", "server.public_url",
                        _("{url} is not https: mail providers expect an https one-click "
                          "unsubscribe link, and the link's token would travel in clear; put "
                          "the endpoint behind a TLS proxy (docs/server.md)",
                          url=repr(server.public_url)))]
    if server is None:
        ads = sorted({f"flows.{name}" for name, flow in config.flows.items()
                      for step in flow.steps if step.kind == "ad"
                      and isinstance(config.channels.get(step.channel), EmailSettings)})
        if ads:
            return [Finding("warning", "server",
                            _("ads are sent by email ({flows}) without [server]: they carry "
                              "no working one-click unsubscribe link (Gmail and Yahoo require "
                              "one from bulk senders); add [server] (docs/server.md)",
                              flows=", ".join(ads)))]
    return []


def _keep_findings(config: Config) -> list[Finding]:
    """A rule reading further back than ``[ledger] keep``: plan and sync refuse it."""
    try:
        check_keep(config)
    except ConfigError as exc:
        where = exc.path or "ledger.keep"
        message = str(exc).removeprefix(f"{where}: ")
        return [Finding("error", where, message)]
    return []


def _reply_opt_out_findings(config: Config) -> list[Finding]:
    """A footer that says "reply to opt out" needs someone reading the replies."""
    footer = config.sending.opt_out or ""
    if config.model.mailbox is not None or not _ASKS_A_REPLY.search(footer):
        return []
    if not any(step.kind == "ad" and isinstance(config.channels.get(step.channel), EmailSettings)
               for flow in config.flows.values() for step in flow.steps):
        return []
    return [Finding("warning", "sending.opt_out",
                    _("the ads' footer asks customers to reply to opt out, but no [mailbox] "
                      "reads the replies: add [mailbox] (docs/mailbox.md) so a reply saying "
                      "수신거부 stops the ads, or read the replies yourself and mark the "
                      "customer in the sheet"))]


def _signal_findings(config: Config, rules: Rules) -> list[Finding]:
    """A condition over a signal nothing is set up to hear would be false for ever."""
    server = config.server
    missing = {
        "clicked": "" if server and server.track_clicks else
        _("clicks are heard only with [server] and track_clicks = true"),
        "opened": "" if server and server.track_opens else
        _("opens are heard only with [server] and track_opens = true"),
        "unsubscribed": "" if server else _("opt-outs are heard only with [server]"),
        "replied": "" if config.model.mailbox else _("replies are read only with [mailbox]"),
        "bounced": "" if config.model.mailbox else _("bounces are read only with [mailbox]"),
    }
    conditions = [(f"tags.{_quote_key(tag)}", expr) for tag, expr in rules.tags]
    for name, flow in rules.flows.items():
        where = f"flows.{_quote_key(name)}"
        conditions.append((f"{where}.trigger", flow.trigger))
        if flow.goal is not None:
            conditions.append((f"{where}.goal", flow.goal))
    return [Finding("warning", where, _("{helper}() is always false here: {why} "
                                        "(docs/server.md, docs/mailbox.md)", helper=helper,
                                        why=missing[helper]))
            for where, expr in conditions for helper in sorted(expr.helpers)
            if missing.get(helper)]


def _ledger_state(config: Config) -> LedgerState:
    ledger = Ledger.open_readonly(config.state_path)
    try:
        return ledger.load_state(config.renames)
    finally:
        ledger.close()


def _template_findings(config: Config, templates: Templates, findings: list[Finding]
                       ) -> set[str]:
    """Every template a step can reach compiles; returns the names that do not."""
    broken: set[str] = set()
    for flow_name, flow in config.flows.items():
        for step in flow.steps:
            for name in _reachable(step, templates):
                if name in broken:
                    continue
                try:
                    templates.check(name)
                except TemplateError as exc:
                    broken.add(name)
                    findings.append(Finding("error", f"flows.{flow_name}", str(exc)))
    return broken


def _reachable(step: StepSettings, templates: Templates) -> list[str]:
    """The step's template and the variant files that replace it."""
    names = [step.template]
    for variant in step.variants or {}:
        special = f"{step.template}.{variant}"
        if special in templates.names():
            names.append(special)
    return names


def _connect(config: Config) -> list[Finding]:
    """Reach every channel a flow uses, sending nothing; log in to the mailbox, reading none."""
    from sheetcrm.channels import make_channel

    findings = []
    used = sorted({s.channel for f in config.flows.values() for s in f.steps})
    for name in used:
        channel = make_channel(name, config.channels[name], base_dir=config.base_dir)
        try:
            findings.append(Finding("info", f"channels.{name}", channel.probe()))
        except ChannelError as exc:
            findings.append(Finding("error", f"channels.{name}", str(exc)))
        finally:
            channel.close()
    if config.model.mailbox is not None:
        from sheetcrm.mailbox import MailboxError, probe

        try:
            findings.append(Finding("info", "mailbox", probe(config.model.mailbox)))
        except MailboxError as exc:
            findings.append(Finding("error", "mailbox", str(exc)))
    return findings


def _rule_findings(config: Config, rules: Rules, rows: list[Record], state: LedgerState,
                   now: datetime) -> list[Finding]:
    """Every tag, trigger and goal on every row, each rule on its own.

    The planner stops at a row's first failing rule; here each rule is tried on
    every row (a failing one read as false), so one broken condition cannot hide
    another.
    """
    failures: dict[str, list[str]] = {}
    ctx = RowContext(now, config.tz, state)
    for rec in rows:
        def failed(where: str, exc: ExpressionRuntimeError, rec: Record = rec) -> None:
            failures.setdefault(where, []).append(
                _("row {row} ({key}): {problem}", row=rec.line, key=rec.key,
                  problem=exc.message))

        row = RowConditions(rules, rec, ctx, on_error=failed)
        row.tags()
        for name in rules.flows:
            row.triggered(name)
            row.goal_met(name)
    findings = []
    for where, problems in failures.items():
        values = dict(failed=len(problems), rows=len(rows), first=problems[0])
        findings.append(Finding("error", where, _(
            "fails on {failed} of {rows} row(s) — on every row: sync would act on no one; "
            "first: {first}", **values) if len(problems) == len(rows) else _(
            "fails on {failed} of {rows} row(s); first: {first}", **values)))
    return findings


def _render_findings(config: Config, templates: Templates, broken: set[str],
                     rows: list[Record], now: datetime) -> list[Finding]:
    """Render each step (and each variant) for every row that could receive it."""
    findings: list[Finding] = []
    failures: dict[str, int] = {}
    warned: set[str] = set()
    for flow_name, flow in config.flows.items():
        for i, step in enumerate(flow.steps):
            variants: list[str | None] = [*(step.variants or {})] or [None]
            for variant in variants:
                for rec in rows:
                    sample = Enrollment(key=rec.key, flow=flow_name, entry=1, entered_at=now,
                                        anchor_at=None, next_step=i)
                    send = next_send(sample, flow, variant)
                    name = template_name(send, templates)
                    if name in broken or failures.get(name, 0) >= MAX_PER_TEMPLATE:
                        break
                    try:
                        build_message(rec, send, [], now, config, templates)
                        if step.kind == "ad" and name not in warned:
                            warned.add(name)
                            findings.extend(_ad_marker_findings(config, templates, rec, send,
                                                                now))
                    except TemplateError as exc:
                        failures[name] = failures.get(name, 0) + 1
                        findings.append(Finding("error", _("row {row} ({key})", row=rec.line,
                                                           key=rec.key), str(exc)))
    return findings


def _ad_marker_findings(config: Config, templates: Templates, rec: Record,
                        send: PlannedSend, now: datetime) -> list[Finding]:
    """The ad marker must read exactly '(광고)': '[광고]' or '( 광고 )' do not count."""
    subject = templates.render(template_name(send, templates),
                               context_for(rec, send, [], now, config)).subject
    where = f"templates/{template_name(send, templates)}"
    if misspelled_marker(subject):
        return [Finding("warning", where, _("subject {subject} marks the ad otherwise than "
                                            "'(광고)' at the very start, as Korean law "
                                            "requires", subject=repr(subject)))]
    if config.sending.compliance != "kr" and not subject.startswith(AD_MARKER):
        return [Finding("warning", where, _("an ad without '(광고)' at the start of the "
                                            "subject; set [sending] compliance = \"kr\" to "
                                            "add it and the footer"))]
    return []


def text_findings(config: Config, templates: Templates, broken: set[str],
                  rows: list[Record], now: datetime) -> list[Finding]:
    """What text-message steps (AlimTalk, SMS/LMS) would run into, before any is sent.

    Every row's number in the channel's ``to`` field must be a mobile number (a bad
    one fails that customer's step; it is shown masked). A ``to`` field typed as a
    number loses the leading zero in other tools: it should be ``type = "phone"``.
    Characters outside EUC-KR in a text may be refused by carriers or shown as ``?``.
    (Missing AlimTalk variables and texts over the limits are errors of the render.)
    """
    findings: list[Finding] = []
    for name, settings in config.channels.items():
        if not isinstance(settings, TextSettings):
            continue
        used = [(f, i, s) for f, flow in config.flows.items()
                for i, s in enumerate(flow.steps) if s.channel == name]
        if not used:
            continue
        field = config.fields.get(settings.to)
        if field is not None and field.type in ("int", "number"):
            findings.append(Finding("warning", f"fields.{settings.to}.type",
                                    _("{type} for phone numbers: a number keeps no leading "
                                      "zero in the sheet or elsewhere; use type = \"phone\"",
                                      type=repr(field.type))))
        bad = [rec for rec in rows if not _mobile(rec.values.get(settings.to))]
        for rec in bad[:MAX_PER_TEMPLATE]:
            findings.append(Finding("error", _("row {row} ({key})", row=rec.line, key=rec.key),
                                    _("{column}: {value} is not {expected}; its {channel} "
                                      "messages would fail",
                                      column=config.fields[settings.to].column,
                                      value=masked(rec.values.get(settings.to)),
                                      expected=EXPECTED, channel=name)))
        if len(bad) > MAX_PER_TEMPLATE:
            findings.append(Finding("error", f"channels.{name}.to",
                                    _("{n} rows in all have no mobile number", n=len(bad))))
        findings.extend(_euc_kr_findings(config, templates, broken, rows, now, used))
    return findings


def _mobile(value: object) -> bool:
    if value is None or value == "":
        return True  # blank: held, not failed (the guards)
    try:
        normalize_mobile(value)
    except ValueError:
        return False
    return True


def _euc_kr_findings(config: Config, templates: Templates, broken: set[str],
                     rows: list[Record], now: datetime,
                     used: list[tuple[str, int, StepSettings]]) -> list[Finding]:
    findings = []
    for flow_name, i, step in used:
        if step.template in broken or not rows:
            continue
        sample = Enrollment(key=rows[0].key, flow=flow_name, entry=1, entered_at=now,
                            anchor_at=None, next_step=i)
        send = next_send(sample, config.flows[flow_name])
        try:
            text = build_message(rows[0], send, [], now, config, templates).text
        except TemplateError:
            continue  # reported by the render check
        odd = outside_euc_kr(text)
        if odd:
            findings.append(Finding("warning", f"templates/{template_name(send, templates)}",
                                    _("characters outside EUC-KR ({characters}): carriers "
                                      "may refuse the SMS/LMS or show '?' for them",
                                      characters=" ".join(odd[:10]))))
    return findings
