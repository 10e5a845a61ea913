"""Templates render in Jinja's sandbox, strict about undefined names; cells are data."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from sheetcrm.errors import TemplateError
from sheetcrm.templates import Templates


def make(tmp_path: Path, name: str, body: str) -> Templates:
    (tmp_path / f"{name}.j2").write_text(body, encoding="utf-8")
    return Templates(tmp_path)


def test_blocks_render_with_filters(tmp_path: Path) -> None:
    t = make(tmp_path, "t", (
        "{% block subject %}{{ name }}님,\n  안녕하세요{% endblock %}"
        "{% block text %}\n{{ amount | won }} / {{ day | datefmt('%m월 %d일') }}\n{% endblock %}"
        "{% block html %}<p>{{ name }}</p>{% endblock %}"))
    r = t.render("t", {"name": "<김수현>", "amount": 129000, "day": date(2026, 11, 3)})
    assert r.subject == "<김수현>님, 안녕하세요"  # whitespace folded to one line
    assert r.text == "129,000원 / 11월 03일\n"
    assert r.html == "<p>&lt;김수현&gt;</p>"  # HTML is autoescaped, text is not
    assert r.payload is None


def test_json_block_becomes_the_payload(tmp_path: Path) -> None:
    t = make(tmp_path, "t", (
        '{% block subject %}s{% endblock %}{% block text %}t{% endblock %}'
        '{% block json %}{"name": {{ name | tojson }}, "n": {{ n }}}{% endblock %}'))
    r = t.render("t", {"name": 'a "quoted" 이름', "n": 3})
    assert r.payload == {"name": 'a "quoted" 이름', "n": 3}
    json.dumps(r.payload)


def test_undefined_variable_is_an_error_naming_file_and_block(tmp_path: Path) -> None:
    t = make(tmp_path, "t", "{% block subject %}{{ coupon }}{% endblock %}"
                            "{% block text %}x{% endblock %}")
    with pytest.raises(TemplateError) as info:
        t.render("t", {"name": "a"})
    assert "t.j2" in str(info.value) and "'subject'" in str(info.value)
    assert "coupon" in str(info.value)


def test_the_sandbox_blocks_attribute_escapes(tmp_path: Path) -> None:
    t = make(tmp_path, "t", "{% block subject %}{{ name.__class__.__mro__ }}{% endblock %}"
                            "{% block text %}x{% endblock %}")
    with pytest.raises(TemplateError):
        t.render("t", {"name": "a"})


def test_cell_values_are_never_executed(tmp_path: Path) -> None:
    t = make(tmp_path, "t", "{% block subject %}{{ name }}{% endblock %}"
                            "{% block text %}{{ name }}{% endblock %}")
    r = t.render("t", {"name": "{{ 7 * 7 }}{% raw %}"})
    assert r.subject == "{{ 7 * 7 }}{% raw %}"


def test_missing_template_lists_the_available_ones(tmp_path: Path) -> None:
    t = make(tmp_path, "welcome", "{% block subject %}s{% endblock %}"
                                  "{% block text %}t{% endblock %}")
    with pytest.raises(TemplateError, match="available: welcome"):
        t.render("welcom", {})


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    t = make(tmp_path, "t",
             "{% block subject %}s{% endblock %}\n{% block text %}{{ x {% endblock %}")
    with pytest.raises(TemplateError, match="line 2"):
        t.check("t")


def test_subject_and_text_blocks_are_required(tmp_path: Path) -> None:
    t = make(tmp_path, "t", "{% block subject %}s{% endblock %}")
    with pytest.raises(TemplateError, match="'subject' and a 'text' block"):
        t.render("t", {})
