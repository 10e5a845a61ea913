"""Which rule set a run uses: the sheet's tabs when they check out, else the last one.

The operator edits tags, flows and templates in the sheet while runs go on, so an
edit is taken only when the whole set checks out the way ``config.toml`` does
(references, every condition compiled, every template compiled and found). Until
then the last accepted set, kept in the ledger, stays in force, and the ``상태``
cells of the rule tabs say what is wrong on which row. A valid edit that would
newly message more customers than ``[sending] max_sends_per_run`` waits too: the
operator confirms it by typing the confirm word into a ``상태`` cell (only for the
very edit that waits: its hash) or by ``sync --allow-blast``. Every accepted set
(the TOML form's too) is recorded with its short hash, which each send then carries.
``plan`` goes through the same choice without writing anything.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sheetcrm.config import Config, with_rules
from sheetcrm.config.rule_tabs import Known, Problem, TabRules, parse_tabs, row_identity
from sheetcrm.config.rules import DEFAULT_CONFIRM_WORD, STATUS_COLUMN
from sheetcrm.core.engine import RunOptions, make_plan
from sheetcrm.core.rules import Rules, compile_rules
from sheetcrm.core.schema import read_records
from sheetcrm.errors import ConfigError, RuleError, TemplateError
from sheetcrm.i18n import _
from sheetcrm.ledger import AcceptedRules, Ledger
from sheetcrm.model import LedgerState, Snapshot
from sheetcrm.table import open_table
from sheetcrm.templates import SUFFIX, Templates

IN_FORCE = "✅"


@dataclass
class RuleSet:
    """One whole rule set, checked: the config carrying it, its templates, its hash."""

    config: Config
    templates: Templates
    rules: Rules
    hash: str
    body: str  # canonical JSON of tags + flows + templates


@dataclass
class Pending:
    """A valid edit that waits for a confirmation (it would message many at once)."""

    hash: str
    newly: int  # customers it would newly message
    tag_counts: dict[str, tuple[int, int]]  # tag -> (customers now, with the edit)
    confirm_word: str


@dataclass
class RuleChoice:
    """The rule set in force for this run, and what the rule tabs are told."""

    in_force: RuleSet
    candidate: str | None = None  # hash of what the tabs hold now, when it checks out
    problems: list[Problem] = field(default_factory=list)
    pending: Pending | None = None
    statuses: dict[str, dict[int, str]] = field(default_factory=dict)  # tab -> row -> 상태
    identities: dict[str, dict[int, tuple[tuple[str, str], ...]]] = field(default_factory=dict)
    confirmed: bool = False  # the edit was confirmed in a 상태 cell: its sends may go


def canonical(tags: Any, flows: Any, templates: Any) -> tuple[str, str]:
    """(short hash, canonical JSON) of a rule set.

    The order of the tags and flows is kept (the rows' order in the tabs, the file's
    in TOML): the planner goes through flows in it, and the flow state written into
    the sheet lists them in it, so a set put back in force from the ledger must run
    exactly as it did; a reordering is a different set."""
    body = json.dumps({"tags": tags, "flows": flows, "templates": templates},
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:8], body


def _folder_sources(config: Config) -> dict[str, str]:
    folder = config.templates_dir
    found: dict[str, str] = {}
    if folder.is_dir():
        for path in sorted(folder.glob(f"*{SUFFIX}")):
            try:
                found[path.name[: -len(SUFFIX)]] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue  # the template check names the file when it is used
    return found


def build(config: Config, tags: dict[str, str] | None, flows: dict[str, Any] | None,
          templates: dict[str, str] | None) -> RuleSet:
    """The rule set of the file's kinds plus the given ones (None: the file's).

    Raises ConfigError (RuleError, TemplateError) with the key path of the problem:
    ``templates.NAME`` for a template that does not compile.
    """
    effective = with_rules(config, tags, flows)
    if templates is not None:
        loaded = Templates.from_sources(templates, config.rule_tabs.get("templates", ""))
        for name in templates:
            try:
                loaded.check(name)
            except TemplateError as exc:
                raise TemplateError(_message(exc), path=f"templates.{name}") from None
    else:
        loaded = Templates(config.templates_dir)
    rules = compile_rules(effective)
    require_templates(effective, loaded)
    flows_json = flows if flows is not None else {
        name: flow.model_dump(mode="json") for name, flow in config.flows.items()}
    sources = templates if templates is not None else _folder_sources(config)
    digest, body = canonical(effective.tags, flows_json, sources)
    return RuleSet(effective, loaded, rules, digest, body)


def require_templates(config: Config, templates: Templates) -> None:
    """Every step's template (and its variants' files) exists and compiles, or the run
    does not start: a missing or broken template is the config's mistake, found before
    any row is touched, not once per customer in the middle of sending."""
    for name, flow in config.flows.items():
        for i, step in enumerate(flow.steps):
            variants = [f"{step.template}.{v}" for v in step.variants or ()]
            for template in [step.template, *(v for v in variants if v in templates.names())]:
                try:
                    templates.check(template)
                except TemplateError as exc:
                    raise TemplateError(_message(exc), path=f"flows.{name}.steps[{i}]"
                                        ".template") from None


def _message(exc: ConfigError) -> str:
    text = str(exc)
    return text.removeprefix(f"{exc.path}: ") if exc.path else text


def from_ledger(config: Config, accepted: AcceptedRules) -> RuleSet | None:
    """The accepted set put back in force (the file's kinds as the file has them now);
    None when it no longer fits the config (a channel or field removed since)."""
    body = json.loads(accepted.body)
    tabs = config.rule_tabs
    try:
        ruleset = build(config, body["tags"] if "tags" in tabs else None,
                        body["flows"] if "flows" in tabs else None,
                        body["templates"] if "templates" in tabs else None)
    except ConfigError:
        return None
    return ruleset


def last_accepted(config: Config, ledger: Ledger) -> RuleSet | None:
    accepted = ledger.rules_in_force()
    return from_ledger(config, accepted) if accepted and config.rule_tabs else None


def in_force(config: Config, ledger: Ledger) -> Config:
    """The config carrying the rule set in force, for the commands that look back at what
    was sent (``report``, ``status``, ``history``): with ``[rules]``, the last set a run
    accepted. Not the tabs as they read now: an edit that waits or does not check out has
    sent nothing, and looking back costs no request to the sheet. Without ``[rules]``, or
    before any run accepted a set, the config itself."""
    ruleset = last_accepted(config, ledger)
    return ruleset.config if ruleset is not None else config


DueKeys = Callable[[RuleSet], tuple[set[str], dict[str, list[str]]]]


def due_keys(snapshot: Snapshot, load: Callable[[dict[str, str]], LedgerState],
             now: datetime, options: RunOptions) -> DueKeys:
    """Who a rule set would message this run, and the tags it gives (the blast check).

    ``load(renames)`` gives the ledger's whole history with those flows renamed, read
    only when an edit is compared (the two rule sets may look back over different
    windows). A set that renames flows (이전 이름) is tried on the state as renamed, so
    the customers carried over are not counted as newly messaged."""
    loaded: dict[tuple[tuple[str, str], ...], LedgerState] = {}
    trial = RunOptions(allow_blast=True, allow_flow_change=options.allow_flow_change,
                       restore_from_sheet=options.restore_from_sheet)

    def keys(ruleset: RuleSet) -> tuple[set[str], dict[str, list[str]]]:
        records = read_records(snapshot, ruleset.config)
        renames = ruleset.config.renames
        seen = loaded.get(marker := tuple(sorted(renames.items())))
        if seen is None:
            seen = loaded[marker] = load(renames)
        plan = make_plan(records, seen, now, ruleset.config, ruleset.rules, options=trial,
                         templates=ruleset.templates)
        return {send.key for send in plan.sends}, plan.tags

    return keys


def tab_renames(config: Config) -> dict[str, str]:
    """Flows renamed in the 흐름 tab (이전 이름): their customers carry over, as
    ``renamed_from`` does for the file's flows."""
    return config.renames if "flows" in config.rule_tabs else {}


def choose(config: Config, snapshot: Snapshot, ledger: Ledger, now: datetime, *,
           due: DueKeys, before: RuleSet | None, allow_blast: bool = False,
           record: bool = True) -> RuleChoice:
    """The rule set for this run (see the module docstring). ``record`` False: ``plan``,
    nothing is written. ``before``: ``last_accepted``, which the caller has read. Raises
    ConfigError when nothing valid was ever accepted."""
    if not config.rule_tabs:
        ruleset = build(config, None, None, None)
        if record:
            ledger.accept_rules(ruleset.hash, ruleset.body, now)
        return RuleChoice(ruleset, ruleset.hash)
    tabs = config.rule_tabs
    parsed = parse_tabs({str(k): v for k, v in tabs.items()}, snapshot.tabs,
                        Known(list(config.channels), list(config.fields)))
    candidate = _candidate(config, parsed)
    old = before  # the last accepted set (``last_accepted``), read once by the caller
    if not isinstance(candidate, RuleSet):
        if old is None:
            raise ConfigError(_not_yet(parsed.problems))
        choice = RuleChoice(old, identities=parsed.rows, problems=parsed.problems)
        _tell(choice, parsed, _("waits: fix the problems on the other rows first; until "
                                "then the rules of {hash} stay in force", hash=old.hash))
        return choice
    choice = RuleChoice(old or candidate, identities=parsed.rows)
    choice.candidate = candidate.hash
    if old is None or old.hash == candidate.hash:
        return _accept(choice, candidate, parsed, ledger, now, record)
    newly, tag_counts = _newly(due, old, candidate)
    limit = config.sending.max_sends_per_run
    pending = ledger.pending_rules()
    confirmed = pending is not None and pending.hash == candidate.hash and _confirm_typed(
        snapshot, tabs.values(), _confirm_word(config))
    if limit is None or newly <= limit or allow_blast or confirmed:
        choice.confirmed = confirmed
        return _accept(choice, candidate, parsed, ledger, now, record)
    if record:
        ledger.hold_rules(candidate.hash, newly, now)
    word = _confirm_word(config)
    choice.pending = Pending(candidate.hash, newly, tag_counts, word)
    waiting = _("waits: this edit would newly message {count} customers (more than "
                "max_sends_per_run = {limit}); type {word} into a 상태 cell of this tab, or "
                "run sheetcrm sync --allow-blast, to apply it", count=newly, limit=limit,
                word=repr(word))
    changed = _changed_rows(parsed, old, candidate)
    for tab, rows in parsed.rows.items():
        choice.statuses[tab] = {row: waiting if (tab, row) in changed else IN_FORCE
                                for row in rows}
    return choice


def resolved(config: Config) -> tuple[Config, Templates]:
    """For the commands besides sync and plan (``preview``, ``test-send``): the rule set
    the tabs hold when it checks out, else the last accepted one; without ``[rules]``,
    the file's own. Raises ConfigError when neither exists."""
    if not config.rule_tabs:
        return config, Templates(config.templates_dir)
    ruleset, problems = check_tabs(config, open_table(config).read())
    if ruleset is None:
        ledger = Ledger.open_readonly(config.state_path)
        try:
            ruleset = last_accepted(config, ledger)
        finally:
            ledger.close()
    if ruleset is None:
        raise ConfigError(_not_yet(problems))
    return ruleset.config, ruleset.templates


def check_with_tabs(config: Config) -> None:
    """A config.toml with ``[rules]``, before a daemon adopts it: the rules kept in the
    sheet must still run under it (a channel or field they use still there). The last
    accepted set is tried first (no request); when it no longer fits, the tabs as they
    read now (an edit made for the new file). Raises ConfigError naming the key path
    when neither fits; passes when no set was ever accepted and the tabs do not check
    out either, since a run says on their rows what is wrong, and the file is not why."""
    ledger = Ledger.open_readonly(config.state_path)
    try:
        accepted = ledger.rules_in_force()
    finally:
        ledger.close()
    problem: ConfigError | None = None
    if accepted is not None:
        body = json.loads(accepted.body)
        tabs = config.rule_tabs
        try:
            build(config, *(body[kind] if kind in tabs else None
                            for kind in ("tags", "flows", "templates")))
            return
        except ConfigError as exc:
            problem = exc
    ruleset, _problems = check_tabs(config, open_table(config).read())
    if ruleset is None and problem is not None:
        raise ConfigError(_("the rule set in force ({hash}) would no longer run with this "
                            "file, nor would the rule tabs as they read now: {problem}",
                            hash=accepted.hash if accepted else "-",
                            problem=_message(problem)), path=problem.path)


def check_tabs(config: Config, snapshot: Snapshot) -> tuple[RuleSet | None, list[Problem]]:
    """What ``check`` says of the rule tabs: the set they hold when it checks out, and
    every problem found, row by row (nothing is recorded)."""
    parsed = parse_tabs({str(k): v for k, v in config.rule_tabs.items()}, snapshot.tabs,
                        Known(list(config.channels), list(config.fields)))
    candidate = _candidate(config, parsed)
    return (candidate if isinstance(candidate, RuleSet) else None), parsed.problems


def _confirm_word(config: Config) -> str:
    return config.model.rules.confirm_word if config.model.rules else DEFAULT_CONFIRM_WORD


def _candidate(config: Config, parsed: TabRules) -> RuleSet | TabRules:
    """The rule set the tabs hold, or ``parsed`` with its problems when it fails."""
    if parsed.problems:
        return parsed
    tabs = config.rule_tabs
    fallback = next(((tab, min(rows)) for tab, rows in parsed.rows.items() if rows),
                    (next(iter(tabs.values())), 1))
    try:
        return build(config, parsed.tags if "tags" in tabs else None,
                     parsed.flows if "flows" in tabs else None,
                     parsed.templates if "templates" in tabs else None)
    except RuleError as exc:
        problem = _("condition error: {problem}", problem=_message(exc))
        parsed.problems.append(parsed.problem_at(exc.path, problem, fallback))
    except TemplateError as exc:
        problem = _("template error: {problem}", problem=_message(exc))
        parsed.problems.append(parsed.problem_at(exc.path, problem, fallback))
    except ConfigError as exc:
        parsed.problems.append(parsed.problem_at(exc.path, _message(exc), fallback))
    return parsed


def _accept(choice: RuleChoice, ruleset: RuleSet, parsed: TabRules, ledger: Ledger,
            now: datetime, record: bool) -> RuleChoice:
    if record:
        ledger.accept_rules(ruleset.hash, ruleset.body, now)
    choice.in_force = ruleset
    _tell(choice, parsed, IN_FORCE)
    return choice


def _tell(choice: RuleChoice, parsed: TabRules, otherwise: str) -> None:
    """Each row's 상태: its problems, else ``otherwise``."""
    said: dict[tuple[str, int], list[str]] = {}
    for problem in parsed.problems:
        said.setdefault((problem.tab, problem.row), []).append(problem.message)
    for tab, rows in parsed.rows.items():  # never the header row: it names the columns
        choice.statuses[tab] = {row: " / ".join(said.get((tab, row), [])) or otherwise
                                for row in rows}


def _newly(due: DueKeys, old: RuleSet, new: RuleSet) -> tuple[int, dict[str, tuple[int, int]]]:
    before, tags_before = due(old)
    after, tags_after = due(new)
    count_before = Counter(tag for tags in tags_before.values() for tag in tags)
    count_after = Counter(tag for tags in tags_after.values() for tag in tags)
    counts = {tag: (count_before[tag], count_after[tag])
              for tag in sorted(set(count_before) | set(count_after))
              if count_before[tag] != count_after[tag]}
    return len(after - before), counts


def _changed_rows(parsed: TabRules, old: RuleSet, new: RuleSet) -> set[tuple[str, int]]:
    """The rows whose tag, flow or template differs from the set in force."""
    was = json.loads(old.body)
    now = json.loads(new.body)
    changed: set[tuple[str, int]] = set()
    for path, place in parsed.places.items():
        kind, _dot, rest = path.partition(".")
        name = rest.split(".steps[")[0]
        name = name[1:-1] if name.startswith('"') and name.endswith('"') else name
        if was.get(kind, {}).get(name) != now.get(kind, {}).get(name):
            changed.add(place)
    return changed


def _confirm_typed(snapshot: Snapshot, tabs: Any, word: str) -> bool:
    for tab in tabs:
        rows = snapshot.tabs.get(tab) or []
        header = [cell.strip() for cell in rows[0]] if rows else []
        if STATUS_COLUMN not in header:
            continue
        column = header.index(STATUS_COLUMN)
        if any(len(row) > column and row[column].strip() == word for row in rows[1:]):
            return True
    return False


def _not_yet(problems: list[Problem]) -> str:
    shown = "; ".join(f"{p.tab} {_('row {row}', row=p.row)}: {p.message}" if p.row
                      else f"{p.tab}: {p.message}" for p in problems[:5])
    return _("the rules in the sheet do not check out yet, and no earlier rule set was "
             "accepted: nothing runs until they do. {problems}", problems=shown)


def stage_statuses(table: Any, choice: RuleChoice, snapshot: Snapshot) -> None:
    """Google Sheets (and Airtable): the 상태 cells that change ride along with the
    customer write. Only a tab with a 상태 column in its header is written. Sheets
    takes them by row content (``stage_tab_statuses``: placed where those rows are at
    write time); Airtable by the rows read (``stage_tab_cells``: its records keep their
    ids whatever the order shown)."""
    by_content = getattr(table, "stage_tab_statuses", None)
    stage = getattr(table, "stage_tab_cells", None)
    if by_content is None and stage is None:
        return
    for tab, statuses in choice.statuses.items():
        rows = snapshot.tabs.get(tab) or []
        header = [cell.strip() for cell in rows[0]] if rows else []
        if STATUS_COLUMN not in header:
            continue
        column = header.index(STATUS_COLUMN)
        cells = {}
        said: dict[tuple[tuple[str, str], ...], list[str]] = {}
        for row, status in statuses.items():
            cells_now = rows[row - 1] if row - 1 < len(rows) else []
            if (cells_now[column] if column < len(cells_now) else "") != status:
                cells[(row, column)] = status
            identity = choice.identities.get(tab, {}).get(row)
            if identity is not None:
                said.setdefault(identity, []).append(status)
        if cells and by_content is not None:
            by_content(tab, said)
        elif cells and stage is not None:
            stage(tab, cells)


def finish_statuses(table: Any, choice: RuleChoice) -> None:
    """Write the 상태 cells that were not sent with the customer write.

    CSV: each tab's file is re-read and rewritten atomically, setting 상태 only on the
    rows that still hold what was judged (a row edited meanwhile is judged next run).
    Google Sheets: what ``stage_statuses`` staged, if no customer write took it along.
    """
    flush = getattr(table, "flush_tab_cells", None)
    if flush is not None:
        flush()
        return
    tab_file = getattr(table, "tab_file", None)
    if tab_file is None:
        return
    for tab, statuses in choice.statuses.items():
        known: dict[Any, str] = {choice.identities.get(tab, {}).get(row): status
                                 for row, status in statuses.items()}
        known.pop(None, None)

        sibling = tab_file(tab)
        if not sibling.path.is_file() or not known:
            continue
        sibling.read()  # its encoding: a ✅ does not fit in CP949, a word does
        if not str(sibling.encoding).startswith("utf"):
            plain = _("OK")
            known = {identity: plain if status == IN_FORCE else status
                     for identity, status in known.items()}
        sibling.write_column(STATUS_COLUMN,
                             lambda cells, known=known: known.get(row_identity(cells)))


def rules_json(choice: RuleChoice | None) -> dict[str, Any] | None:
    """The rule set in force, a waiting edit and the tabs' problems, for ``--json``."""
    if choice is None:
        return None
    pending = choice.pending
    return {"in_force": choice.in_force.hash, "candidate": choice.candidate,
            "pending": pending and {"hash": pending.hash, "newly": pending.newly,
                                    "tag_counts": {tag: list(counts) for tag, counts
                                                   in pending.tag_counts.items()}},
            "problems": [{"tab": p.tab, "row": p.row, "message": p.message}
                         for p in choice.problems]}


def rules_lines(choice: RuleChoice | None) -> list[str]:
    """What ``plan`` and ``sync`` say about the rule tabs: nothing when all is well."""
    if choice is None or (choice.pending is None and not choice.problems):
        return []
    lines = []
    pending = choice.pending
    if pending is not None:
        lines.append(_("rule set {now} in force; the edit {hash} waits: it would newly "
                       "message {count} customers. Type {word} into a 상태 cell of a rules "
                       "tab, or run sheetcrm sync --allow-blast, to apply it", now=choice
                       .in_force.hash, hash=pending.hash, count=pending.newly,
                       word=repr(pending.confirm_word)))
        lines.extend(_("  tag {tag}: {before} customers now, {after} with the edit", tag=tag,
                       before=before, after=after)
                     for tag, (before, after) in pending.tag_counts.items())
    if choice.problems:
        lines.append(_("the rule tabs do not check out; rule set {hash} stays in force:",
                       hash=choice.in_force.hash))
        lines.extend(f"  {p.tab} {_('row {row}', row=p.row)}: {p.message}" if p.row
                     else f"  {p.tab}: {p.message}" for p in choice.problems)
    return lines
