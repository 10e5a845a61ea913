"""Reading the rule tabs' rows (``config.rule_tabs``) into what the TOML form holds, and
templates given as sources (``Templates.from_sources``).

Every form the shared format allows is read as the TOML form would write it; every
row that cannot be read gets a problem naming its tab and row.
"""

from __future__ import annotations

from datetime import date

import pytest

from sheetcrm.config.rule_tabs import Known, parse_tabs
from sheetcrm.errors import TemplateError
from sheetcrm.templates import Templates

KNOWN = Known(channels=["email", "kakao"], fields=["name", "paid", "applied_at"])
FLOWS = ["흐름", "시작 조건", "목표", "순서", "대기", "채널", "템플릿", "광고 여부", "A/B 비율",
         "대조군 비율", "다음 흐름", "답장 시 종료", "재진입", "기준일", "상태"]


def flows_of(*rows: list[str]) -> tuple[dict, list[tuple[int, str]]]:
    parsed = parse_tabs({"flows": "흐름"}, {"흐름": [FLOWS, *rows]}, KNOWN)
    return parsed.flows or {}, [(p.row, p.message) for p in parsed.problems]


def test_every_form_of_the_shared_format_reads_as_the_toml_form() -> None:
    flows, problems = flows_of(
        ["pay", "결제 대기", "paid", "2", " 3시간 ", "email", "b", "O", "x:1, y:3", "10%",
         "after", "예", "730일", "applied_at", ""],
        ["pay", "", "", "1", "0일", "kakao", "a", "", "", "", "", "", "", "", "✅"],
        [],  # a blank row between
        ["pay", "결제 대기", "paid", "3", "1주", "email", "c", "TRUE", "", "", "", "", "", "",
         ""],
        ["after", "tagged('x')", "", "1", "2d", "email", "d", "아니요", "", "0.05", "", "X",
         "안 함", "", ""])
    assert problems == []
    assert flows["pay"] == {
        "trigger": "결제 대기", "goal": "paid", "holdout": 0.1, "then": "after",
        "exit_on_reply": True, "reentry": "730d", "anchor": "applied_at",
        "steps": [
            {"after": "0d", "channel": "kakao", "template": "a", "kind": "transactional"},
            {"after": "3h", "channel": "email", "template": "b", "kind": "ad",
             "variants": {"x": 1.0, "y": 3.0}},
            {"after": "1w", "channel": "email", "template": "c", "kind": "ad"}]}
    assert flows["after"] == {"trigger": "tagged('x')", "holdout": 0.05,
                              "exit_on_reply": False,
                              "steps": [{"after": "2d", "channel": "email", "template": "d",
                                         "kind": "transactional"}]}


def test_each_unreadable_row_is_a_problem_on_its_own_row() -> None:
    flows, problems = flows_of(
        ["pay", "결제 대기", "", "1", "사흘", "emial", "a", "글쎄", "x:1", "", "", "", "", "",
         ""],
        ["pay", "다른 조건", "", "1", "0", "email", "a", "", "", "", "", "", "", "", ""],
        ["", "", "", "2", "0", "email", "a", "", "", "", "", "", "", "", ""],
        ["solo", "", "", "하나", "0", "email", "", "", "", "60%", "", "", "", "nope", ""])
    assert flows == {}
    by_row: dict[int, list[str]] = {}
    for row, message in problems:
        by_row.setdefault(row, []).append(message)
    assert len(by_row[2]) == 4
    assert "'사흘' is not a wait" in by_row[2][0]
    assert "channel 'emial' does not exist; did you mean 'email'?" in by_row[2][1]
    assert "'글쎄' is not O or X" in by_row[2][2] and "names one variant" in by_row[2][3]
    assert "belongs to the whole flow" in by_row[3][0] and "step 1 of 'pay'" in by_row[3][1]
    assert "the flow name (흐름) is empty" in by_row[4][0]
    assert sorted(by_row[5]) == sorted([
        "대조군 비율 '60%' is not a share from 0 to 50%, like 10% or 0.1",
        "field 'nope' does not exist; expected a field of [fields]: applied_at, name, paid",
        "시작 조건 is empty: write on the flow's first row the tag (or condition) that starts it",
        "순서 must be the step's number (1, 2, 3 ...), not '하나'"])


def test_tags_templates_and_missing_tabs() -> None:
    parsed = parse_tabs(
        {"tags": "태그", "templates": "템플릿", "flows": "없는 탭"},
        {"태그": [[" 이름 ", "설명", "조건", "상태"], ["a", "메모", "paid", "✅"],
                 ["", "메모만 있는 행", "", ""], ["b", "", "", ""], ["a", "", "not paid", ""]],
         "템플릿": [["이름", "제목", "본문", "HTML"], ["hi", "{{ name }}님", "안녕하세요", ""],
                 ["hi.b", "B", "본문 B", "<p>B</p>"]]},
        KNOWN)
    assert parsed.tags == {"a": "paid"}
    assert parsed.templates == {
        "hi": "{% block subject %}{{ name }}님{% endblock %}{% block text %}안녕하세요"
              "{% endblock %}",
        "hi.b": "{% block subject %}B{% endblock %}{% block text %}본문 B{% endblock %}"
                "{% block html %}<p>B</p>{% endblock %}"}
    assert [(p.tab, p.row) for p in parsed.problems] == [("태그", 4), ("태그", 5),
                                                         ("없는 탭", 0)]
    assert "already on row 2" in parsed.problems[1].message
    assert "the tab '없는 탭' is not there" in parsed.problems[2].message
    assert sorted(parsed.rows["태그"]) == [2, 4, 5]  # row 3 holds a note only: no 상태


def test_templates_from_sources_render_in_the_same_sandbox_with_the_same_filters() -> None:
    templates = Templates.from_sources({
        "welcome": "{% block subject %}{{ name|josa('은/는') }} {{ amount|won }}{% endblock %}"
                   "{% block text %}{{ day|kdate }} {% include 'footer.j2' %}{% endblock %}",
        "footer": "감사합니다",
        "broken": "{% block subject %}{{ name }{% endblock %}",
        "sneaky": "{% block subject %}{{ name.__class__ }}{% endblock %}"
                  "{% block text %}x{% endblock %}",
    }, "템플릿")
    assert templates.names() == ["broken", "footer", "sneaky", "welcome"]
    rendered = templates.render("welcome", {"name": "김수현", "amount": 39000,
                                            "day": date(2026, 11, 1)})
    assert rendered.subject == "김수현은 39,000원"
    assert rendered.text == "11월 1일 (일) 감사합니다\n"
    assert templates.reads("welcome") == {"name", "amount", "day"}
    with pytest.raises(TemplateError, match="템플릿: broken"):
        templates.check("broken")
    with pytest.raises(TemplateError, match="not found"):
        templates.check("nope")
    with pytest.raises(TemplateError):
        templates.render("sneaky", {"name": "x"})


def test_a_flows_old_name_and_its_grace_are_read_from_their_optional_columns() -> None:
    header = ["흐름", "시작 조건", "순서", "대기", "채널", "템플릿", "이전 이름", "지연 허용"]
    parsed = parse_tabs({"flows": "흐름"}, {"흐름": [
        header,
        ["결제안내", "결제 대기", "1", "0", "email", "a", "payment", "2일"],
        ["결제안내", "", "2", "2일", "email", "b", "", ""],
        ["후기", "paid", "1", "0", "email", "c", "", "12시간"],
        ["휴면", "paid", "1", "0", "email", "d", "", "언젠가"],
    ]}, KNOWN)
    flows = parsed.flows or {}
    assert flows["결제안내"]["renamed_from"] == "payment"
    assert flows["결제안내"]["grace"] == "2d" and flows["후기"]["grace"] == "12h"
    assert "renamed_from" not in flows["후기"]
    assert [(p.row, p.message) for p in parsed.problems] == [
        (5, "지연 허용 '언젠가' is not a wait like 1일, 12시간 or 0")]
