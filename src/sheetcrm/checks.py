"""``sheetcrm check``: find every problem before anything is sent.

Config, rules, templates, columns, keys and cells are checked, and every template
a flow uses is rendered against every row that could receive it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .config import Config
from .engine import PlannedSend, idempotency_key
from .errors import SheetcrmError, TemplateError
from .ledger import Enrollment
from .messages import AD_MARKER, build_message, context_for, misspelled_marker, template_name
from .rules import compile_rules
from .schema import Record, header_problems, read_records
from .table import open_table
from .templates import Templates

MAX_PER_TEMPLATE = 5


@dataclass
class Finding:
    level: str  # error | warning | info
    where: str
    message: str


def run_checks(config: Config, now: datetime) -> list[Finding]:
    findings: list[Finding] = []
    try:
        compile_rules(config)
    except SheetcrmError as exc:
        findings.append(Finding("error", "rules", str(exc)))
        return findings

    templates = Templates(config.templates_dir)
    used = {(s.template, name) for name, f in config.flows.items() for s in f.steps}
    broken = set()
    for template, flow_name in sorted(used):
        try:
            templates.check(template)
        except TemplateError as exc:
            broken.add(template)
            findings.append(Finding("error", f"flows.{flow_name}", str(exc)))

    try:
        snapshot = open_table(config).read()
    except SheetcrmError as exc:
        findings.append(Finding("error", "table", str(exc)))
        return findings
    problems = header_problems(snapshot.header, config)
    blank = [i + 1 for i, h in enumerate(snapshot.header) if not h]
    if blank:
        findings.append(Finding("warning", "header", f"blank header cells at columns {blank}"))
    if problems:
        findings.extend(Finding("error", "header", p) for p in problems)
        return findings
    table = read_records(snapshot, config)
    for col in table.missing_writeback:
        findings.append(Finding("info", "writeback",
                                f"column {col!r} is not in the sheet; sync will append it"))
    for p in table.problems:
        findings.append(Finding("error", f"row {p.line}", p.message))
    for rec in table.records:
        for msg in rec.errors:
            findings.append(Finding("error", f"row {rec.line} ({rec.key})", msg))

    failures: dict[str, int] = {}
    warned: set[str] = set()
    good = [r for r in table.records if r.ok]
    for flow_name, flow in config.flows.items():
        for i, step in enumerate(flow.steps):
            if step.template in broken:
                continue
            for rec in good:
                if failures.get(step.template, 0) >= MAX_PER_TEMPLATE:
                    break
                send = _sample_send(rec.key, flow_name, i, len(flow.steps), step, now)
                try:
                    build_message(rec, send, [], now, config, templates)
                    if step.kind == "ad" and step.template not in warned:
                        warned.add(step.template)
                        findings.extend(_ad_marker_findings(config, templates, rec, send, now))
                except TemplateError as exc:
                    failures[step.template] = failures.get(step.template, 0) + 1
                    findings.append(Finding("error", f"row {rec.line} ({rec.key})", str(exc)))
    return findings


def _ad_marker_findings(config: Config, templates: Templates, rec: Record,
                        send: PlannedSend, now: datetime) -> list[Finding]:
    """The ad marker must read exactly '(광고)': '[광고]' or '( 광고 )' do not count."""
    subject = templates.render(template_name(send, templates),
                               context_for(rec, send, [], now, config)).subject
    where = f"templates/{send.template}"
    if misspelled_marker(subject):
        return [Finding("warning", where, f"subject {subject!r} marks the ad otherwise than "
                        "'(광고)' at the very start, as Korean law requires")]
    if config.sending.compliance != "kr" and not subject.startswith(AD_MARKER):
        return [Finding("warning", where, "an ad without '(광고)' at the start of the subject; "
                        "set [sending] compliance = \"kr\" to add it and the footer")]
    return []


def _sample_send(key: str, flow: str, i: int, n: int, step: object, now: datetime
                 ) -> PlannedSend:
    e = Enrollment(key=key, flow=flow, entry=1, entered_at=now, anchor_at=None)
    return PlannedSend(key=key, flow=flow, step=i, steps=n, channel=step.channel,  # type: ignore[attr-defined]
                       template=step.template, kind=step.kind, due_at=now,  # type: ignore[attr-defined]
                       enrollment=e, idem_key=idempotency_key(key, flow, 1, i))
