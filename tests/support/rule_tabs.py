"""The shipped sample's rules as the rule tabs (``태그``, ``흐름``, ``템플릿``) hold them.

``sample_tabs`` turns ``[tags]``, ``[flows.*]`` and the template files of the shipped
sample into the rows an operator would type into the tabs; ``tabs_config`` is the
shipped config.toml with those sections taken out and ``[rules]`` naming the tabs.
The two forms must run the same: tests compare them.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from pathlib import Path

from tests.support.sample import ROOT, sample_config

TAGS_HEADER = ["이름", "조건", "설명", "상태"]
FLOWS_HEADER = ["흐름", "시작 조건", "목표", "순서", "대기", "채널", "템플릿", "광고 여부",
                "A/B 비율", "대조군 비율", "다음 흐름", "답장 시 종료", "상태"]
TEMPLATES_HEADER = ["이름", "제목", "본문", "HTML", "상태"]
_BLOCK = re.compile(r"{% block (\w+) %}(.*?){% endblock %}", re.DOTALL)


def sample_tabs() -> dict[str, list[list[str]]]:
    """Tab name -> rows (header first) holding the shipped sample's rules."""
    raw = tomllib.loads(sample_config())
    tags = [TAGS_HEADER] + [[name, condition, "", ""] for name, condition in raw["tags"].items()]
    flows = [FLOWS_HEADER]
    for name, flow in raw["flows"].items():
        for number, step in enumerate(flow["steps"], start=1):
            first = number == 1
            variants = ", ".join(f"{k}:{v}" for k, v in (step.get("variants") or {}).items())
            flows.append([
                name, flow["trigger"] if first else "", flow.get("goal", "") if first else "",
                str(number), step["after"].replace("d", "일"), step["channel"],
                step["template"], "O" if step.get("kind") == "ad" else "X", variants,
                f"{round(flow['holdout'] * 100)}%" if first and "holdout" in flow else "",
                flow.get("then", "") if first else "",
                "O" if first and flow.get("exit_on_reply") else "", ""])
    templates = [TEMPLATES_HEADER]
    for path in sorted((ROOT / "templates").glob("*.j2")):
        blocks = dict(_BLOCK.findall(path.read_text(encoding="utf-8")))
        if "subject" in blocks and "text" in blocks:
            templates.append([path.name[:-3], blocks["subject"], blocks["text"],
                              blocks.get("html", ""), ""])
    return {"태그": tags, "흐름": flows, "템플릿": templates}


def tabs_config(text: str) -> str:
    """A config.toml text without [tags], [flows.*] and the templates folder, with
    [rules] naming the tabs instead."""
    text = re.sub(r"\n\[tags\]\n.*?(?=\n\[sending\])", "\n", text, count=1, flags=re.DOTALL)
    start, end = text.index("\n[flows.onboarding]"), text.index("\n[report]")
    text = text[:start] + text[end:]
    text = re.sub(r'^templates = "templates"\n', "", text, count=1, flags=re.MULTILINE)
    return text + '\n[rules]\ntags = "태그"\nflows = "흐름"\ntemplates = "템플릿"\n'


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8-sig") -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))


def read_csv(path: Path, encoding: str = "utf-8-sig") -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode(encoding))))


def status_of(rows: list[list[str]]) -> dict[str, str]:
    """First cell of each row -> its 상태 (the tab's rows as written back)."""
    column = rows[0].index("상태")
    return {f"{row[0]}#{i}": (row[column] if column < len(row) else "")
            for i, row in enumerate(rows[1:], start=2)}
