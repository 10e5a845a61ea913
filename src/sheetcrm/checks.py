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
from .messages import build_message
from .rules import compile_rules
from .schema import header_problems, read_records
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
    for template, flow in sorted(used):
        try:
            templates.check(template)
        except TemplateError as exc:
            broken.add(template)
            findings.append(Finding("error", f"flows.{flow}", str(exc)))

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
                except TemplateError as exc:
                    failures[step.template] = failures.get(step.template, 0) + 1
                    findings.append(Finding("error", f"row {rec.line} ({rec.key})", str(exc)))
    return findings


def _sample_send(key: str, flow: str, i: int, n: int, step: object, now: datetime
                 ) -> PlannedSend:
    e = Enrollment(key=key, flow=flow, entry=1, entered_at=now, anchor_at=None)
    return PlannedSend(key=key, flow=flow, step=i, steps=n, channel=step.channel,  # type: ignore[attr-defined]
                       template=step.template, kind=step.kind, due_at=now,  # type: ignore[attr-defined]
                       enrollment=e, idem_key=idempotency_key(key, flow, 1, i))
