"""The rule tabs (``태그``, ``흐름``, ``템플릿``) turned into what the TOML form holds.

A tab arrives as rows of text, header first (``Snapshot.tabs``). Each is turned into
the same values ``[tags]``, ``[flows.NAME]`` and the template folder give, so the
rest of the program (``compile_rules``, the planner, ``Templates``) never knows where
its rules came from. Every row that cannot be read gets a ``Problem``: the tab, the
row number the sheet shows, and what is wrong with the fix, in the operator's
language. ``places`` maps each key path (``flows.결제안내.steps[1]``) to the row it
came from, so a problem found later by the checks the TOML form goes through
(references, expressions, templates) is written on the row that causes it. The
column order is free; headers are matched after trimming spaces.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sheetcrm.config.base import parse_duration, quote_key
from sheetcrm.config.rules import STATUS_COLUMN
from sheetcrm.i18n import _

TAG_COLUMNS = ("이름", "조건")
FLOW_COLUMNS = ("흐름", "시작 조건", "순서", "대기", "채널", "템플릿")
TEMPLATE_COLUMNS = ("이름", "제목", "본문")
#: Flow-level columns: written on the flow's first row (-> the [flows.NAME] key).
FLOW_LEVEL = {"시작 조건": "trigger", "목표": "goal", "대조군 비율": "holdout",
              "다음 흐름": "then", "답장 시 종료": "exit_on_reply", "재진입": "reentry",
              "기준일": "anchor", "이전 이름": "renamed_from", "지연 허용": "grace"}
_YES = {"o", "○", "예", "네", "광고", "true", "v", "✓", "✔", "y", "yes", "1"}
_NO = {"", "x", "×", "아니요", "아니오", "false", "n", "no", "0"}
_NEVER = {"", "never", "안 함", "안함", "없음"}
_KOREAN_UNITS = (("주", "w"), ("일", "d"), ("시간", "h"), ("분", "m"), ("초", "s"))


@dataclass(frozen=True)
class Problem:
    """What is wrong with one row of a rule tab (``row`` as the sheet numbers it)."""

    tab: str
    row: int
    message: str


@dataclass
class TabRules:
    """What the rule tabs hold, as the TOML form would give it, and their problems."""

    tags: dict[str, str] | None = None  # None: not kept in the sheet
    flows: dict[str, dict[str, Any]] | None = None
    templates: dict[str, str] | None = None  # name -> Jinja source
    problems: list[Problem] = field(default_factory=list)
    places: dict[str, tuple[str, int]] = field(default_factory=dict)  # key path -> row
    #: tab -> its filled rows: sheet row number -> the row's identity (``row_identity``)
    rows: dict[str, dict[int, tuple[tuple[str, str], ...]]] = field(default_factory=dict)

    def place_of(self, path: str | None) -> tuple[str, int] | None:
        """The row behind a key path: the longest place the path starts with."""
        if not path:
            return None
        path = path.replace('"', "")  # tags."결제 대기" and tags.결제 대기 alike
        found = [p for p in self.places
                 if path == (bare := p.replace('"', "")) or path.startswith((f"{bare}.",
                                                                            f"{bare}["))]
        return self.places[max(found, key=len)] if found else None

    def problem_at(self, path: str | None, message: str, fallback: tuple[str, int]
                   ) -> Problem:
        tab, row = self.place_of(path) or fallback
        return Problem(tab, row, message)


@dataclass(frozen=True)
class Known:
    """Names a row may refer to, for a did-you-mean."""

    channels: Collection[str]
    fields: Collection[str]


def parse_tabs(tabs: dict[str, str], read: dict[str, list[list[str]]], known: Known
               ) -> TabRules:
    """The rule tabs (kind -> tab name) as read (tab -> rows) into a ``TabRules``."""
    result = TabRules()
    for kind, tab in tabs.items():
        rows = read.get(tab)
        if rows is None:
            result.problems.append(Problem(tab, 0, _(
                "the tab {tab} is not there; add it (first row: {columns}) or change "
                "rules.{kind} in config.toml", tab=repr(tab), kind=kind,
                columns=" | ".join(_required(kind)))))
            continue
        table = _Tab(tab, rows)
        if not table.has(_required(kind), result):
            continue
        result.rows[tab] = {n: row_identity(cells) for n, cells in table.body()}
        if kind == "tags":
            result.tags = _tags(table, result)
        elif kind == "flows":
            result.flows = _flows(table, result, known)
        else:
            result.templates = _templates(table, result)
    if result.flows is not None and result.templates is not None:
        _check_template_names(result.flows, result.templates, result)
    return result


def _check_template_names(flows: dict[str, dict[str, Any]], templates: dict[str, str],
                          result: TabRules) -> None:
    """A step's template must be a row of the 템플릿 tab (a did-you-mean if not)."""
    for name, flow in flows.items():
        for i, step in enumerate(flow["steps"]):
            if step["template"] not in templates:
                tab, row = result.places[f"flows.{quote_key(name)}.steps[{i}]"]
                result.problems.append(Problem(tab, row, _unknown(
                    _("template"), step["template"], templates, _("a row of the 템플릿 tab"))))


def _required(kind: str) -> tuple[str, ...]:
    return {"tags": TAG_COLUMNS, "flows": FLOW_COLUMNS}.get(kind, TEMPLATE_COLUMNS)


class _Tab:
    """One tab's rows, read by header name."""

    def __init__(self, name: str, rows: list[list[str]]) -> None:
        self.name = name
        self.rows = rows
        header = [cell.strip() for cell in rows[0]] if rows else []
        self.columns = {title: i for i, title in reversed(list(enumerate(header))) if title}

    def has(self, needed: tuple[str, ...], result: TabRules) -> bool:
        missing = [name for name in needed if name not in self.columns]
        if missing:
            result.problems.append(Problem(self.name, 1, _(
                "the header row lacks {columns}; the first row of this tab names the "
                "columns: {needed}", columns=", ".join(repr(m) for m in missing),
                needed=" | ".join(needed))))
        return not missing

    def body(self) -> list[tuple[int, dict[str, str]]]:
        """(sheet row number, cells by column name) of every row with something in it."""
        found = []
        for index, row in enumerate(self.rows[1:], start=2):
            cells = {name: (row[i].strip() if i < len(row) else "")
                     for name, i in self.columns.items() if name != STATUS_COLUMN}
            if any(cells.values()):
                found.append((index, cells))
        return found


def row_identity(cells: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """A row as its filled cells, ``상태`` left out: how a row is found again to write
    its status, wherever it moved meanwhile (an edited row is not the same row)."""
    return tuple(sorted((name.strip(), value.strip()) for name, value in cells.items()
                        if name.strip() and name.strip() != STATUS_COLUMN and value.strip()))


def _tags(tab: _Tab, result: TabRules) -> dict[str, str]:
    tags: dict[str, str] = {}
    for number, cells in tab.body():
        name, condition = cells.get("이름", ""), cells.get("조건", "")
        if not name and not condition:
            result.rows[tab.name].pop(number, None)  # only a note in 설명: not a rule
            continue
        if not name or not condition:
            result.problems.append(Problem(tab.name, number, _(
                "a tag needs both 이름 (its name) and 조건 (when it applies); fill the "
                "empty one or clear the row")))
        elif name in tags:
            result.problems.append(Problem(tab.name, number, _(
                "the tag {name} is already on row {row}; give this one another name",
                name=repr(name), row=result.places[f"tags.{quote_key(name)}"][1])))
        else:
            tags[name] = condition
            result.places[f"tags.{quote_key(name)}"] = (tab.name, number)
    return tags


def _flows(tab: _Tab, result: TabRules, known: Known) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for number, cells in tab.body():
        name = cells.get("흐름", "")
        if not name:
            result.problems.append(Problem(tab.name, number, _(
                "the flow name (흐름) is empty; write it on every row of the flow")))
            continue
        groups.setdefault(name, []).append((number, cells))
    flows: dict[str, dict[str, Any]] = {}
    for name, rows in groups.items():
        flow = _flow(tab, name, rows, result, known)
        if flow is not None:
            flows[name] = flow
    return flows


def _flow(tab: _Tab, name: str, rows: list[tuple[int, dict[str, str]]], result: TabRules,
          known: Known) -> dict[str, Any] | None:
    first, head = rows[0]
    where = f"flows.{quote_key(name)}"
    result.places[where] = (tab.name, first)
    before = len(result.problems)
    flow: dict[str, Any] = {}
    for column, key in FLOW_LEVEL.items():
        value = head.get(column, "")
        for number, cells in rows[1:]:
            other = cells.get(column, "")
            if other and other != value:
                result.problems.append(Problem(tab.name, number, _(
                    "{column} belongs to the whole flow and is written on its first row "
                    "(row {row}: {value}); leave it empty here or write the same",
                    column=column, row=first, value=repr(value))))
        if value:
            parsed = _flow_value(key, value, known)
            if isinstance(parsed, _Bad):
                result.problems.append(Problem(tab.name, first, parsed.message))
            elif parsed is not None:
                flow[key] = parsed
    if "trigger" not in flow:
        result.problems.append(Problem(tab.name, first, _(
            "시작 조건 is empty: write on the flow's first row the tag (or condition) that "
            "starts it")))
    steps: list[tuple[int, int, dict[str, Any]]] = []
    seen: dict[int, int] = {}
    for number, cells in rows:
        order = cells.get("순서", "")
        if not re.fullmatch(r"\d+", order):
            result.problems.append(Problem(tab.name, number, _(
                "순서 must be the step's number (1, 2, 3 ...), not {value}",
                value=repr(order))))
            continue
        if int(order) in seen:
            result.problems.append(Problem(tab.name, number, _(
                "step {order} of {flow} is already on row {row}; number the steps 1, 2, "
                "3 ...", order=order, flow=repr(name), row=seen[int(order)])))
            continue
        seen[int(order)] = number
        step = _step(tab.name, number, cells, result, known)
        if step is not None:
            steps.append((int(order), number, step))
    steps.sort(key=lambda s: s[0])
    for i, number in enumerate(n for _o, n, _s in steps):
        result.places[f"{where}.steps[{i}]"] = (tab.name, number)
    flow["steps"] = [step for _o, _n, step in steps]
    return flow if len(result.problems) == before else None


def _step(tab: str, number: int, cells: dict[str, str], result: TabRules, known: Known
          ) -> dict[str, Any] | None:
    problems: list[str] = []
    after = _duration(cells.get("대기", ""))
    if after is None:
        problems.append(_("대기 {value} is not a wait like 0, 2일, 3시간, 30분 or 1주",
                          value=repr(cells.get("대기", ""))))
    channel = cells.get("채널", "")
    if channel not in known.channels:
        problems.append(_unknown(_("channel"), channel, known.channels,
                                 _("a channel of [channels] in config.toml")))
    template = cells.get("템플릿", "")
    if not template:
        problems.append(_("템플릿 is empty; write the name of a template"))
    ad = _yes_no(cells.get("광고 여부", ""))
    if ad is None:
        problems.append(_("광고 여부 {value} is not O or X (예/아니요)",
                          value=repr(cells.get("광고 여부", ""))))
    variants = _variants(cells.get("A/B 비율", ""))
    if isinstance(variants, _Bad):
        problems.append(variants.message)
    if problems:
        result.problems.extend(Problem(tab, number, p) for p in problems)
        return None
    step: dict[str, Any] = {"after": after, "channel": channel, "template": template,
                            "kind": "ad" if ad else "transactional"}
    if variants:
        step["variants"] = variants
    return step


@dataclass(frozen=True)
class _Bad:
    message: str


def _flow_value(key: str, value: str, known: Known) -> Any:
    if key in ("trigger", "goal", "then", "renamed_from"):
        return value
    if key == "grace":
        grace = _duration(value)
        return _Bad(_("지연 허용 {value} is not a wait like 1일, 12시간 or 0",
                      value=repr(value))) if grace is None else grace
    if key == "anchor":
        if value not in known.fields:
            return _Bad(_unknown(_("field"), value, known.fields, _("a field of [fields]")))
        return value
    if key == "exit_on_reply":
        answer = _yes_no(value)
        return _Bad(_("답장 시 종료 {value} is not O or X (예/아니요)", value=repr(value))
                    ) if answer is None else answer
    if key == "holdout":
        return _share(value)
    if value.lower() in _NEVER:
        return None
    after = _duration(value)
    return _Bad(_("재진입 {value} is not a wait like 730일, or 안 함 (never)",
                  value=repr(value))) if after is None else after


def _unknown(what: str, value: str, known: Collection[str], expected: str) -> str:
    close = difflib.get_close_matches(value, list(known), n=1)
    if close:
        return _("{what} {value} does not exist; did you mean {guess}? ({expected})",
                 what=what, value=repr(value), guess=repr(close[0]), expected=expected)
    return _("{what} {value} does not exist; expected {expected}: {known}", what=what,
             value=repr(value), expected=expected, known=", ".join(sorted(known)) or "-")


def _duration(text: str) -> str | None:
    """``2일`` -> ``2d`` (``1일 12시간`` -> ``1d12h``); None when it is not a wait."""
    s = text.strip().replace(" ", "")
    for korean, unit in _KOREAN_UNITS:
        s = s.replace(korean, unit)
    try:
        parse_duration(s)
    except ValueError:
        return None
    return s


def _yes_no(text: str) -> bool | None:
    s = text.strip().lower()
    return True if s in _YES else False if s in _NO else None


def _share(text: str) -> float | _Bad:
    s = text.strip()
    try:
        share = float(s[:-1]) / 100 if s.endswith("%") else float(s)
    except ValueError:
        share = -1.0
    if not 0 <= share <= 0.5:
        return _Bad(_("대조군 비율 {value} is not a share from 0 to 50%, like 10% or 0.1",
                      value=repr(text)))
    return share


def _variants(text: str) -> dict[str, float] | _Bad | None:
    """``reviews:1, compare:1`` -> {"reviews": 1.0, "compare": 1.0}."""
    if not text.strip():
        return None
    found: dict[str, float] = {}
    for part in re.split(r"[,，]", text):
        name, colon, weight = part.partition(":")
        try:
            value = float(weight)
        except ValueError:
            value = -1.0
        if not colon or not re.fullmatch(r"\w+", name.strip()) or value <= 0:
            return _Bad(_("A/B 비율 {value} is not like reviews:1, compare:1 (name:weight, "
                          "comma separated)", value=repr(text)))
        found[name.strip()] = value
    if len(found) < 2:
        return _Bad(_("A/B 비율 {value} names one variant; an A/B test needs two or more",
                      value=repr(text)))
    return found


def _templates(tab: _Tab, result: TabRules) -> dict[str, str]:
    templates: dict[str, str] = {}
    for number, cells in tab.body():
        name = cells.get("이름", "")
        subject, text = cells.get("제목", ""), cells.get("본문", "")
        if not name or not subject or not text:
            result.problems.append(Problem(tab.name, number, _(
                "a template needs 이름, 제목 and 본문; fill the empty ones or clear the row")))
            continue
        if name in templates:
            result.problems.append(Problem(tab.name, number, _(
                "the template {name} is already on row {row}; give this one another name",
                name=repr(name), row=result.places[f"templates.{name}"][1])))
            continue
        source = (f"{{% block subject %}}{subject}{{% endblock %}}"
                  f"{{% block text %}}{text}{{% endblock %}}")
        if cells.get("HTML"):
            source += f"{{% block html %}}{cells['HTML']}{{% endblock %}}"
        templates[name] = source
        result.places[f"templates.{name}"] = (tab.name, number)
    return templates
