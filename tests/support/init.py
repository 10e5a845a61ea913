"""What the tests of ``sheetcrm init`` share: the shipped sample's CSV and config, the
tabs init writes read back, and the config it writes loaded or turned into the TOML
form. The test files are ``tests/test_init*.py``."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from sheetcrm.config import load_config
from tests.support.sample import ROOT

SAMPLE_CSV = ROOT / "sample_sheets" / "customers.csv"
# The sample's field names -> the ones init makes from the sample's columns.
RENAMED = {"name": "고객명", "applied_at": "신청일", "course": "강의", "paid": "결제_여부",
           "clicked": "링크_클릭", "reviewed": "후기_작성", "last_login": "최근_접속",
           "missed": "과제_미제출", "consent": "수신_동의", "amount": "결제_금액"}
NOW = "2026-11-23T10:00"


# Korean Excel writes the won sign as ￦ (U+FFE6) or, in CP949, as a backslash.
EXPORT = [
    ["성함", "메일주소", "휴대폰", "가입일", "결제완료", "금액", "마지막 로그인", "마케팅 동의",
     "비고"],
    ["김수현", "soohyun@example.com", "010-1111-2222", "2026. 11. 3.", "예", "￦39,000",
     "2026. 11. 20. 오후 3:04:05", "V", "VIP"],
    ["이지훈", "jihoon@example.com", "01098765432", "2026. 11. 1.", "아니오", "\\39,000", "",
     "", ""],
    ["박채린", "chaerin@example.com", "010-3333-4444", "2026. 10. 28.", "예", "49,000원",
     "2026. 11. 2. 오전 9:00:00", "V", ""],
    ["최민준", "minjun@example.com", "010-5555-6666", "2026. 11. 5.", "아니오", "", "", "V",
     "전화 요망"],
]


def write_cp949(path: Path, rows: list[list[str]]) -> None:
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows(rows)
    path.write_bytes(text.getvalue().encode("cp949"))


@pytest.fixture
def sheet(tmp_path: Path) -> Path:
    """A fixture: the folder ``copy_sheet`` makes."""
    return copy_sheet(tmp_path)


@pytest.fixture
def no_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixture: standard input that fails the test when read (``close_stdin``)."""
    close_stdin(monkeypatch)


def copy_sheet(tmp_path: Path) -> Path:
    """A folder holding only a copy of the sample's customers.csv."""
    folder = tmp_path / "sheet"
    folder.mkdir()
    shutil.copy(SAMPLE_CSV, folder / "customers.csv")
    return folder


def close_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Standard input that fails the test when read."""

    class Closed(io.StringIO):
        def read(self, *args: Any) -> str:
            raise AssertionError("standard input was read")

        readline = read

    monkeypatch.setattr(sys, "stdin", Closed())


def read_tab(path: Path) -> list[list[str]]:
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf"), f"{path.name} has no UTF-8 BOM (Excel)"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def as_dicts(rows: list[list[str]]) -> list[dict[str, str]]:
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def shipped() -> dict[str, Any]:
    return tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))


def renamed(condition: str) -> str:
    """A condition of the sample in init's field names (``clicked(...)`` stays a call)."""
    for old, new in RENAMED.items():
        condition = re.sub(rf"\b{old}\b(?!\s*\()", new, condition)
    return condition


def loaded(config: Path) -> Any:
    """The written config as load_config reads it, [rules] and its tabs included."""
    return load_config(config, os.environ)


def config_of(folder: Path, name: str = "config.toml") -> dict[str, Any]:
    return tomllib.loads((folder / name).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- check, plan, sync


def findings(run_cli: Any, folder: Path) -> tuple[int, dict[str, set[str]]]:
    """``check``'s exit code and the places of its findings, by level."""
    result = run_cli(folder, "--now", NOW, "--json", "check")
    by_level: dict[str, set[str]] = {}
    for finding in json.loads(result.out)["findings"]:
        by_level.setdefault(finding["level"], set()).add(finding["where"])
    return result.code, by_level


def tag_cells(path: Path) -> dict[tuple[int, str], str]:
    """(line, key) -> the 상태 태그 cell, for every row of a customer CSV."""
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    key, tags = rows[0].index("이메일"), rows[0].index("상태 태그")
    return {(n, row[key]): row[tags] for n, row in enumerate(rows[1:], start=2)}


def toml_form(folder: Path) -> None:
    """Turn what init wrote into the TOML form today's loader takes: the 태그 tab into
    ``[tags]``, the 흐름 tab into ``[flows]``, the 템플릿 tab into template files, each
    as RULES_SPEC.md defines its columns. No reader of this repository is used, so this
    checks the starter set itself, apart from the rules reader."""
    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    text = (folder / "config.toml").read_text(encoding="utf-8")
    text = re.sub(r"\[rules\][^\[]*\Z", "", text).replace('language = "ko"', 'language = "en"')
    lines = ['templates = "templates"', text, "[tags]"]
    lines += [f"{q(t['이름'])} = {q(t['조건'])}" for t in as_dicts(read_tab(folder / "태그.csv"))]
    rows = as_dicts(read_tab(folder / "흐름.csv"))
    for name in dict.fromkeys(r["흐름"] for r in rows):
        steps = [r for r in rows if r["흐름"] == name]
        first = steps[0]
        lines += [f"[flows.{name}]", f"trigger = {q(first['시작 조건'])}"]
        lines += [f"goal = {q(first['목표'])}"] * bool(first["목표"])
        lines += [f"then = {q(first['다음 흐름'])}"] * bool(first["다음 흐름"])
        if first["대조군 비율"]:
            lines.append(f"holdout = {float(first['대조군 비율'].rstrip('%')) / 100}")
        lines += ["exit_on_reply = true"] * (first["답장 시 종료"] == "O")
        lines.append("steps = [")
        for step in steps:
            kind = ', kind = "ad"' if step["광고 여부"] == "O" else ""
            variants = ", ".join(f"{v.split(':')[0].strip()} = {v.split(':')[1].strip()}"
                                 for v in step["A/B 비율"].split(",") if v.strip())
            variants = f", variants = {{ {variants} }}" if variants else ""
            lines.append(f"  {{ after = {q(step['대기'].replace('일', 'd'))}, channel = "
                         f"{q(step['채널'])}, template = {q(step['템플릿'])}{kind}{variants} }},")
        lines.append("]")
    (folder / "config.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "templates").mkdir()
    for t in as_dicts(read_tab(folder / "템플릿.csv")):
        source = (f"{{% block subject %}}{t['제목']}{{% endblock %}}"
                  f"{{% block text %}}{t['본문']}{{% endblock %}}")
        if t["HTML"]:
            source += f"{{% block html %}}{t['HTML']}{{% endblock %}}"
        (folder / "templates" / f"{t['이름']}.j2").write_text(source, encoding="utf-8")


def sends(run_cli: Any, folder: Path) -> list[tuple[str, str, int, str, str]]:
    result = run_cli(folder, "--now", NOW, "--json", "plan")
    assert result.code == 0, result.err
    plan = json.loads(result.out)
    due = [(s["key"], s["flow"], s["step"], s["template"], "due") for s in plan["sends"]]
    held = [(h["key"], h["flow"], h["step"], h["template"], h["reason"]) for h in plan["held"]]
    return sorted(due + held)
