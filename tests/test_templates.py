"""Templates render in Jinja's sandbox, strict about undefined names; cells are data."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from sheetcrm.errors import TemplateError
from sheetcrm.templates import Templates
from tests.support.sample import DAY0


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


def blocks(text: str) -> str:
    return f"{{% block subject %}}s{{% endblock %}}{{% block text %}}{text}{{% endblock %}}"


def render_error(tmp_path: Path, text: str, within: Any, **context: Any) -> str:
    t = make(tmp_path, "t", blocks(text))
    with pytest.raises(TemplateError) as info:
        within(lambda: (t.check("t"), t.render("t", context)))
    message = str(info.value)
    assert message.startswith(str(tmp_path / "t.j2") + ": ")
    assert "Traceback" not in message and len(message) < 500
    return message


# --- nothing short takes gigabytes or forever -------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{{ 'x' * 1000000000 }}", "'*' would build a value longer than 1,000,000"),
        ("{{ 'x' * 10**9 }}", "'*' would build a value longer than 1,000,000"),
        ("{{ [1, 2] * 10**9 }}", "'*' would build a value longer than 1,000,000"),
        ("{{ [['x'] * 1000] * 1000 }}", "'*' would build a value longer than 1,000,000"),
        ("{{ 9**(9**9) }}", "'**' would build a number of more than 4,300 digits"),
        ("{{ (10**4000) * (10**4000) }}", "'*' would build a number of more than 4,300 digits"),
        ("{{ range(10**9)|list }}", "Range too big"),
        ("{{ 'x'|center(1000000000) }}", "|center would build a value longer than 1,000,000"),
        ("{{ 'x'.ljust(1000000000) }}", "ljust() would build a value longer than 1,000,000"),
        ("{{ (1).to_bytes(1000000000, 'big') }}", "to_bytes() would build a value longer"),
        ("{{ '%0999999999d' % 1 }}", "'%' would build a value longer than 1,000,000"),
        ("{{ '%0999999999d'|format(1) }}", "|format would build a value longer"),
        ("{{ '{:>999999999}'.format(1) }}", "format() would build a value longer"),
        ("{{ ('x' * 1000)|replace('', 'y' * 1000) }}", "|replace would build a value longer"),
        ("{{ ('x\n' * 100000)|indent(100) }}", "|indent would build a value longer"),
        ("{{ {'a': 1}|tojson(1000000000) }}", "|tojson would build a value longer"),
        ("{{ [1]|batch(1000000000, 'x')|list }}", "|batch would build a value longer"),
        ("{{ [1]|slice(1000000000)|list }}", "|slice would build a value longer"),
        ("{{ 1.5|round(1000000000, 'ceil') }}", "|round: precision must be a whole number"),
        ("{{ 5|round(-1000000000) }}", "|round: precision must be a whole number"),
        ("{{ lipsum(100000000) }}", "lipsum() would build a value longer than 1,000,000"),
        ("{{ range(100000)|join('x' * 100000) }}", "|join would build a value longer"),
        ("{{ ('x' * 100000).join(range(100000)|map('string')) }}",
         "join() would build a value longer"),
        ("{{ range(100000)|map('center', 100000)|join }}", "does too much work"),
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
         "does too much work"),
        ("{% set b %}{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}{% endset %}",
         "does too much work"),
        ("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
         "{% endfor %}", "'s' holds a value longer than 1,000,000"),
        ("{% set ns = namespace(s='x') %}{% for i in range(64) %}"
         "{% set ns.s = ns['s'] ~ ns['s'] %}{% endfor %}", "'s' holds a value longer"),
        ("{% macro f(s, n) %}{{ f(s ~ s, n - 1) if n else s|length }}{% endmacro %}"
         "{{ f('x', 64) }}", "a value longer than 1,000,000 was passed to a call"),
        ("{% for i in range(20) %}{{ 'x' * 100000 }}{% endfor %}",
         "the block renders to more than 1,000,000 characters"),
    ],
)
def test_a_template_that_would_take_gigabytes_or_forever_is_a_clean_error(
    tmp_path: Path, text: str, problem: str, within: Any
) -> None:
    message = render_error(tmp_path, text, within)
    assert "block 'text'" in message
    assert problem in message


def test_a_number_literal_past_pythons_limit_is_a_clean_error(tmp_path: Path) -> None:
    t = make(tmp_path, "t", blocks("{{ " + "9" * 5000 + " }}"))
    with pytest.raises(TemplateError) as info:
        t.check("t")
    assert str(info.value) == (f"{tmp_path / 't.j2'}: a number in the template is too long "
                               "(at most 4,300 digits)")


def test_ordinary_templates_are_not_refused(tmp_path: Path) -> None:
    t = make(tmp_path, "t", blocks(
        "{{ '-' * 10 }} {{ 2 ** 10 }} {{ 9**9**9 }} {{ '%05d' % 42 }} {{ '{:,}'.format(1234567) }} "
        "{{ [1, 2]|join(', ') }} {{ 3.14159|round(2) }} {{ 'a' ~ 'b' }} {{ range(3)|list }} "
        "{{ '%s님'|format(name) }} {{ name.center(5, '*') }} {{ [1] + [2] }} {{ 'x'|center(3) }}"
        "{% for i in range(3) %}{{ loop.index }}{% endfor %} {{ {'a': [1]}|tojson(2)|length }}"))
    assert t.render("t", {"name": "김"}).text == (
        "---------- 1024 196627050475552913618075908526912116283103450944214766927315415537966391"
        "196809 00042 1,234,567 1, 2 3.14 ab [0, 1, 2] 김님 **김** [1, 2]  x 123 22\n")


def test_a_long_cell_value_is_data_not_a_limit(tmp_path: Path) -> None:
    t = make(tmp_path, "t", blocks("{{ memo|length }} {{ memo[:3] }}"))
    assert t.render("t", {"memo": "가" * 200_000}).text == "200000 가가가\n"


# --- files: encoding, includes, inheritance ---------------------------------------------


def test_a_cp949_template_is_refused_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_bytes(blocks("{{ name }}님, 결제가 아직이에요").encode("cp949"))
    with pytest.raises(TemplateError) as info:
        Templates(tmp_path).check("t")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 't.j2'}: not UTF-8 text (byte 0xb4 on line 1)")
    assert "CP949" in message and "save it as UTF-8" in message


def test_a_file_with_a_byte_order_mark_renders(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_bytes(("\ufeff" + blocks("{{ name }}님")).encode("utf-8"))
    assert Templates(tmp_path).render("t", {"name": "김"}).text == "김님\n"


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({"t": blocks("{% include 't.j2' %}")}, "t.j2 includes t.j2: a template that reaches"),
        ({"t": "{% extends 't.j2' %}" + blocks("x")}, "t.j2 extends t.j2: a template"),
        ({"t": blocks("{% include 'a.j2' %}"), "a": "{% include 'b.j2' %}",
          "b": "{% extends 't.j2' %}"},
         "t.j2 includes a.j2, a.j2 includes b.j2, b.j2 extends t.j2: a template that"),
        ({"t": "{% extends 'base.j2' %}", "base": "{% import 't.j2' as m %}" + blocks("x")},
         "t.j2 extends base.j2, base.j2 imports t.j2: a template that reaches itself"),
    ],
)
def test_a_template_that_reaches_itself_is_refused_at_load(
    tmp_path: Path, files: dict[str, str], problem: str
) -> None:
    for name, body in files.items():
        (tmp_path / f"{name}.j2").write_text(body, encoding="utf-8")
    with pytest.raises(TemplateError) as info:
        Templates(tmp_path).check("t")
    assert str(info.value).startswith(f"{tmp_path / 't.j2'}: {problem}")


def test_an_include_of_a_missing_file_names_it_and_the_asker(tmp_path: Path) -> None:
    t = make(tmp_path, "t", blocks("{% include 'footer.j2' %}"))
    with pytest.raises(TemplateError) as info:
        t.check("t")
    assert str(info.value) == (f"{tmp_path / 't.j2'}: includes 'footer.j2', "
                               f"which is not in {tmp_path}")


def test_a_missing_file_named_by_a_value_is_a_render_error_naming_both(
    tmp_path: Path, within: Any
) -> None:
    message = render_error(tmp_path, "{% include part %}", within, part="footer.j2")
    assert "'footer.j2' is not in" in message and "asked for by this template" in message


def test_a_value_that_includes_the_template_itself_is_a_clean_error(
    tmp_path: Path, within: Any
) -> None:
    message = render_error(tmp_path, "{% include part %}", within, part="t.j2")
    assert "calls itself without end" in message


def test_a_macro_that_calls_itself_forever_is_a_clean_error(tmp_path: Path, within: Any) -> None:
    message = render_error(tmp_path, "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", within)
    assert "a macro or include calls itself without end" in message


def test_a_syntax_error_in_an_included_file_names_that_file(tmp_path: Path) -> None:
    t = make(tmp_path, "t", blocks("{% include 'part.j2' %}"))
    (tmp_path / "part.j2").write_text("\n{{ x ", encoding="utf-8")
    with pytest.raises(TemplateError) as info:
        t.check("t")
    assert str(info.value).startswith(f"{tmp_path / 'part.j2'}: line 2: ")
    assert "(t.j2 includes part.j2)" in str(info.value)


def test_an_optional_include_may_be_missing(tmp_path: Path) -> None:
    t = make(tmp_path, "t", blocks("a{% include 'footer.j2' ignore missing %}b"))
    assert t.render("t", {}).text == "ab\n"


def test_a_template_inherits_the_blocks_of_the_one_it_extends(tmp_path: Path) -> None:
    (tmp_path / "base.j2").write_text(
        "{% block subject %}[소담] {% block title %}{% endblock %}{% endblock %}"
        "{% block text %}{% block body %}{% endblock %}\n-- 소담 클래스{% endblock %}",
        encoding="utf-8")
    t = make(tmp_path, "t", "{% extends 'base.j2' %}{% block title %}{{ name }}님{% endblock %}"
                            "{% block body %}안녕하세요 {{ super() }}{% endblock %}")
    r = t.render("t", {"name": "김"})
    assert (r.subject, r.text) == ("[소담] 김님", "안녕하세요 -- 소담 클래스\n")


# --- through the command line -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (blocks("{{ name * 10**9 }}").encode("utf-8"), "'*' would build a value longer"),
        (blocks("{{ 9**(9**9) }}").encode("utf-8"), "'**' would build a number"),
        (blocks("{{ name }}님, 결제가 아직이에요").encode("cp949"), "save it as UTF-8"),
        (blocks("{% include 'payment_reminder.j2' %}").encode("utf-8"), "reaches itself"),
        (blocks("{% include 'footer.j2' %}").encode("utf-8"), "includes 'footer.j2'"),
    ],
)
def test_check_reports_a_bad_template_naming_the_file(
    sample: Path, run_cli: Any, within: Any, body: bytes, problem: str
) -> None:
    (sample / "templates" / "payment_reminder.j2").write_bytes(body)
    result = within(lambda: run_cli(sample, "--now", DAY0, "--json", "check"))
    assert result.code == 1
    assert "Traceback" not in result.out + result.err
    messages = [f["message"] for f in json.loads(result.out)["findings"]
                if "payment_reminder.j2" in f["message"]]
    assert messages and all(problem in m for m in messages)
    assert all(len(m) < 500 for m in messages)


def test_sync_marks_the_rows_a_hostile_template_fails_and_goes_on(
    sample: Path, run_cli: Any, within: Any
) -> None:
    (sample / "templates" / "payment_reminder.j2").write_text(
        blocks("{{ name * 10**9 }}"), encoding="utf-8")
    result = within(lambda: run_cli(sample, "--now", DAY0, "--json", "sync"))
    assert result.code == 1
    assert "Traceback" not in result.out + result.err
    outcome = json.loads(result.out)
    failed = [s for s in outcome["sends"] if s["template"] == "payment_reminder"]
    assert failed and all(s["result"] == "error" for s in failed)
    assert any(s["result"] == "sent" for s in outcome["sends"])
    assert any("payment_reminder.j2" in e["message"] and "longer than" in e["message"]
               for e in outcome["errors"])
