"""The starter rule set ``init`` writes into the 태그, 흐름 and 템플릿 tabs.

It is the shipped sample's rule set (``config.toml`` ``[tags]`` and ``[flows]``, and
``templates/*.j2``, kept word for word in ``samples.py``), written in terms of column
*roles* (paid, applied_at, last_login ...) and given the field names ``init`` made
for the operator's own columns. A rule is written only when the columns it reads
exist: a sheet without a 결제 여부 column gets no payment tags, a flow is written
only when its trigger tag is, and a clause over an optional column (과제 미제출 in
이탈 가능) is left out when that column is. In a message, a name or course column the
sheet lacks reads as a plain word (``고객``, ``강의``) and any other missing value as
empty, so every message renders on every row.

Fields in messages are renamed by Jinja's own lexer (a name token, not text that
happens to match), and the rest of the source is kept byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from jinja2 import Environment

from sheetcrm.app.setup.samples import SOURCES

TAG_HEADER = ["이름", "조건", "설명", "상태"]
FLOW_HEADER = ["흐름", "시작 조건", "목표", "순서", "대기", "채널", "템플릿", "광고 여부",
               "A/B 비율", "대조군 비율", "다음 흐름", "답장 시 종료", "상태"]
TEMPLATE_HEADER = ["이름", "제목", "본문", "HTML", "상태"]

#: What a message says where the sheet has no column for a role it names.
_WORDS = {"name": '"고객"', "course": '"강의"'}
_MESSAGE_ROLES = ("name", "course", "applied_at", "last_login", "missed")

Roles = Mapping[str, str]  # role -> field name


@dataclass(frozen=True)
class Tag:
    name: str
    needs: tuple[str, ...]
    condition: Callable[[Roles], str]
    about: str


# The sample's [tags], clause by clause.
def _churn(r: Roles) -> str:
    missed = f" or {r['missed']} >= 2" if "missed" in r else ""
    return (f"{r['paid']} and (days_since({r['last_login']}) >= 7{missed} or "
            "(sent_count(days=21) >= 3 and not clicked(days=21) and not replied(days=21)))")


def _engaged(r: Roles) -> str:
    missed = f" and ({r['missed']} or 0) == 0" if "missed" in r else ""
    return f"{r['paid']} and {r['reviewed']}{missed} and days_since({r['last_login']}) < 7"


TAGS = (
    Tag("결제 대기", ("paid", "applied_at"),
        lambda r: f"not {r['paid']} and days_since({r['applied_at']}) >= 1",
        "신청하고 하루가 지났는데 결제하지 않은 고객"),
    Tag("결제 유도", ("paid", "clicked"), lambda r: f"not {r['paid']} and {r['clicked']}",
        "결제 전인데 링크를 누른 고객"),
    Tag("첫 수강 전", ("paid", "last_login"),
        lambda r: f"{r['paid']} and {r['last_login']} is none",
        "결제했지만 아직 한 번도 접속하지 않은 고객"),
    Tag("이탈 가능", ("paid", "last_login"), _churn,
        "7일 넘게 접속이 없거나 과제가 밀렸거나, 3주 동안 메일 3통에 반응이 없는 고객"),
    Tag("후기 미작성", ("paid", "reviewed", "applied_at", "last_login"),
        lambda r: (f"{r['paid']} and not {r['reviewed']} and days_since({r['applied_at']}) "
                   f">= 7 and {r['last_login']} is not none"),
        "수강을 시작했지만 후기를 남기지 않은 고객"),
    Tag("우수 참여자", ("paid", "reviewed", "last_login"), _engaged,
        "후기를 남기고 최근 7일 안에 접속한 고객"),
    Tag("휴면", ("paid", "last_login"),
        lambda r: f"{r['paid']} and days_since({r['last_login']}) >= 30",
        "30일 넘게 접속하지 않은 고객"),
    Tag("정리 대상", ("paid", "last_login"), lambda r: "finished('dormant')",
        "휴면 복귀 메일 세 통에 답이 없었던 고객"),
)


@dataclass(frozen=True)
class Step:
    after: str
    template: str
    ad: bool = False
    variants: str = ""


@dataclass(frozen=True)
class Flow:
    name: str
    trigger: str
    goal: Callable[[Roles], str] | None
    steps: tuple[Step, ...]
    holdout: str = ""
    then: str = ""
    exit_on_reply: bool = False


# The sample's [flows], in its order.
FLOWS = (
    Flow("onboarding", "첫 수강 전", lambda r: f"{r['last_login']} is not none",
         (Step("0일", "onboarding_welcome"), Step("2일", "onboarding_guide"),
          Step("4일", "onboarding_offer", ad=True)), then="dormant"),
    Flow("payment", "결제 대기", lambda r: r["paid"],
         (Step("0일", "payment_reminder"),
          Step("2일", "payment_reviews", ad=True, variants="reviews:1, compare:1"),
          Step("4일", "payment_last_call", ad=True)), holdout="10%"),
    Flow("dormant", "휴면", lambda r: f"days_since({r['last_login']}) < 7",
         (Step("0일", "dormant_last_activity", ad=True), Step("7일", "dormant_offer", ad=True),
          Step("14일", "dormant_feedback", ad=True)), exit_on_reply=True),
    Flow("churn", "이탈 가능", None,
         (Step("0일", "churn_checkin"), Step("3일", "churn_summary")), exit_on_reply=True),
    Flow("review", "후기 미작성", lambda r: r["reviewed"],
         (Step("0일", "review_request"), Step("3일", "review_reward", ad=True))),
)


@dataclass
class RuleTabs:
    """The rows of the three tabs, header first, and what was left out and why."""

    tags: list[list[str]] = field(default_factory=lambda: [list(TAG_HEADER)])
    flows: list[list[str]] = field(default_factory=lambda: [list(FLOW_HEADER)])
    templates: list[list[str]] = field(default_factory=lambda: [list(TEMPLATE_HEADER)])
    left_out: list[tuple[str, list[str]]] = field(default_factory=list)  # tag, roles missing

    @property
    def tag_names(self) -> list[str]:
        return [row[0] for row in self.tags[1:]]

    @property
    def flow_names(self) -> list[str]:
        return list(dict.fromkeys(row[0] for row in self.flows[1:]))


def starter_tabs(roles: Roles, channel: str = "email") -> RuleTabs:
    """The starter set for a sheet whose roles are held by the fields ``roles`` names."""
    tabs = RuleTabs()
    tags = [t for t in TAGS if all(role in roles for role in t.needs)]
    tabs.left_out = [(t.name, [role for role in t.needs if role not in roles])
                     for t in TAGS if t not in tags]
    flows = [f for f in FLOWS if any(t.name == f.trigger for t in tags)]
    names = {f.name for f in flows}
    for tag in tags:
        if tag.name == "정리 대상" and "dormant" not in names:
            continue
        tabs.tags.append([tag.name, tag.condition(roles), tag.about, ""])
    for flow in flows:
        tabs.flows.extend(_flow_rows(flow, roles, channel, names))
        for step in flow.steps:
            tabs.templates.append(template_row(step.template, roles))
            for variant in _variants(step.variants)[1:]:
                tabs.templates.append(template_row(f"{step.template}.{variant}", roles))
    return tabs


def _variants(text: str) -> list[str]:
    return [part.split(":")[0].strip() for part in text.split(",") if part.strip()]


def _flow_rows(flow: Flow, roles: Roles, channel: str, names: set[str]) -> list[list[str]]:
    rows = []
    for number, step in enumerate(flow.steps, start=1):
        first = number == 1
        rows.append([
            flow.name,
            flow.trigger if first else "",
            (flow.goal(roles) if flow.goal else "") if first else "",
            str(number), step.after, channel, step.template, "O" if step.ad else "X",
            step.variants,
            flow.holdout if first else "",
            flow.then if first and flow.then in names else "",
            ("O" if flow.exit_on_reply else "") if first else "",
            "",
        ])
    return rows


# -- messages ------------------------------------------------------------------------

_BLOCK = re.compile(r"{%-?\s*block\s+(\w+)\s*-?%}(.*?){%-?\s*endblock\s*-?%}", re.DOTALL)
_LEXER = Environment(keep_trailing_newline=True)  # tokens keep the source text


def renamed(source: str, roles: Roles) -> str:
    """``source`` with every sample field the sheet has renamed to its field, and every
    one it lacks replaced by a word or ``none`` (see the module docstring)."""
    out: list[str] = []
    previous = ""
    for _line, kind, value in _LEXER.lexer.tokeniter(source, None):
        if kind == "name" and value in _MESSAGE_ROLES and previous not in (".", "|"):
            value = roles.get(value) or _WORDS.get(value, "none")
        if kind != "whitespace":
            previous = value
        out.append(value)
    return "".join(out)


def template_row(name: str, roles: Roles) -> list[str]:
    """A 템플릿 row (이름, 제목, 본문, HTML, 상태) from the sample message ``name``."""
    blocks = {block: text for block, text in _BLOCK.findall(renamed(SOURCES[name], roles))}
    return [name, blocks.get("subject", "").strip(), _cell(blocks.get("text", "")),
            _cell(blocks.get("html", "")), ""]


def _cell(text: str) -> str:
    """A block's text as a cell: without the line break after its opening tag (the
    templates' ``trim_blocks`` drops it anyway) and the one before its end."""
    return text.removeprefix("\n").removesuffix("\n")
