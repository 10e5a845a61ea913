"""The planner's messages in the operator's language: cell errors, rule errors, held
reasons and the error cell sheetcrm writes into the sheet, which a run in the other
language still tells for sheetcrm's own."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from sheetcrm import fields, i18n
from sheetcrm.app.report.build import held_category
from sheetcrm.config import Config, load_config
from sheetcrm.core.projection import project, written_by_sheetcrm
from sheetcrm.core.wording import said_in
from sheetcrm.errors import CellError, TemplateError
from sheetcrm.model import LedgerState, Record
from sheetcrm.templates import Templates
from tests.support.journeys import World
from tests.test_config import BASE, error_of

SEOUL = dt.timezone(dt.timedelta(hours=9))


def bad_date(raw: str = "11/3/2026") -> str:
    parse = fields.make_parser("date", column="가입일", tz=SEOUL)
    with pytest.raises(CellError) as info:
        parse(raw)
    return str(info.value)


def test_a_date_cell_that_needs_date_order_reads_in_korean(korean: None) -> None:
    assert bad_date() == (
        "가입일: '11/3/2026'은(는) 2025-06-01, 2025. 6. 1., 2025/06/01 같은 날짜 형식이 "
        "아닙니다; 11/3/2026 같은 날짜를 읽으려면 이 항목의 date_order을(를) "
        '"M/D/YYYY"(월이 먼저) 또는 "D/M/YYYY"(일이 먼저)로 정해 주세요')


def test_the_same_date_cell_reads_in_english_by_default() -> None:
    assert bad_date() == (
        "가입일: '11/3/2026' is not a date like 2025-06-01, 2025. 6. 1. or 2025/06/01; "
        "a date like 11/3/2026 needs the field's date_order set to \"M/D/YYYY\" (month "
        "first) or \"D/M/YYYY\" (day first)")


def test_what_a_column_expects_follows_the_language_spoken_when_the_cell_fails() -> None:
    parse = fields.make_parser("int", column="수량", tz=SEOUL)
    i18n.set_language("ko")
    with pytest.raises(CellError) as info:
        parse("many")
    assert info.value.expected == "42, 007, 1,234 같은 정수"


def test_a_rule_naming_an_unknown_field_reads_in_korean_with_did_you_mean(
        tmp_path: Path, korean: None) -> None:
    text = BASE.replace('"not paid and days_since(applied_at) >= 1"',
                        '"not payd and days_since(applied_at) >= 1"')
    message = error_of(tmp_path, text)
    assert "알 수 없는 이름 'payd'. 'paid'을(를) 적으려던 것인가요? 쓸 수 있는 이름: " in message
    assert "(조건식 'not payd and days_since(applied_at) >= 1')" in message


def test_quiet_hours_hold_a_send_with_a_korean_reason(tmp_path: Path) -> None:
    w = World.create(tmp_path, {})
    w.customers = {"a@x.com": {"applied": w.date(-1)}}
    w.write_sheet()
    w.sync(0, hour=10)
    i18n.set_language("ko")
    result = w.sync(2, hour=21, minute=0)
    reasons = [h.reason for h in result.plan.held]
    assert reasons == ["야간 발송 제한 시간 21:00–08:00(Asia/Seoul): 2026-03-05 08:00(으)로 미룸"]
    assert held_category(reasons[0]) == "quiet_hours"


def error_cell(errors: list[str], tmp_path: Path) -> tuple[str, Config]:
    World.create(tmp_path, {})
    toml = tmp_path / "config.toml"
    text = toml.read_text(encoding="utf-8")
    sent = 'last_sent = "최근 발송"'
    toml.write_text(text.replace(sent, f'{sent}\nerror = "오류"'), encoding="utf-8")
    config = load_config(toml, {})
    assert config.writeback.error == "오류"
    rec = Record(line=2, key="a@x.com", values={}, current={}, errors=errors)
    updates = project([rec], {}, LedgerState(), config)
    return next(u.value for u in updates if u.column == config.writeback.error), config


def test_the_error_cell_written_into_the_sheet_reads_in_korean(tmp_path: Path,
                                                               korean: None) -> None:
    text, config = error_cell([bad_date("13/13/2026")], tmp_path)
    assert text.startswith("가입일: '13/13/2026'은(는) 2025-06-01, 2025. 6. 1., "
                           "2025/06/01 같은 날짜 형식이 아닙니다; ")
    i18n.set_language("en")  # the next run speaks English: the cell is still its own
    rec = Record(line=2, key="a@x.com", values={}, current={}, errors=[bad_date("13/13/2026")])
    assert written_by_sheetcrm("error", text, rec, config)


@pytest.mark.parametrize(("written_in", "read_in"), [("ko", "en"), ("en", "ko")])
def test_an_error_cell_written_in_one_language_is_recognised_in_the_other(
        tmp_path: Path, written_in: i18n.Language, read_in: i18n.Language) -> None:
    config = World.create(tmp_path, {}).config
    i18n.set_language(written_in)
    written = bad_date()
    note = "2026-03-03 메일 반송(5.1.10): 550 5.1.10 RecipientNotFound"
    i18n.set_language(read_in)
    rec = Record(line=2, key="a@x.com", values={}, current={}, errors=[bad_date()])
    assert rec.errors[0] != written
    assert written_by_sheetcrm("error", written, rec, config)
    assert written_by_sheetcrm("error", f"{written}; {note}", rec, config)
    assert not written_by_sheetcrm("error", f"메모; {written}", rec, config)
    other = Record(line=2, key="a@x.com", values={}, current={}, errors=[bad_date("4/5/2026")])
    assert not written_by_sheetcrm("error", written, other, config)


def test_a_message_is_said_again_in_the_other_language_with_its_inner_messages() -> None:
    english = bad_date()
    i18n.set_language("ko")
    korean = bad_date()
    assert said_in(english, "en", "ko") == korean
    assert said_in(korean, "ko", "en") == english
    assert said_in("a note the operator typed", "en", "ko") is None


def test_a_config_naming_a_field_that_does_not_exist_reads_in_korean(
        tmp_path: Path, korean: None) -> None:
    message = error_of(tmp_path, BASE.replace('to = "email"', 'to = "mail"'))
    assert "'mail'은(는) 항목이 아닙니다. 다음 중 하나를 적으세요: " in message


def test_a_template_without_its_blocks_reads_in_korean(tmp_path: Path, korean: None) -> None:
    (tmp_path / "t.j2").write_text("{% block text %}hello{% endblock %}", encoding="utf-8")
    with pytest.raises(TemplateError) as info:
        Templates(tmp_path).render("t", {})
    assert "템플릿 't'에는 'subject'와 'text' 블록이 있어야 합니다" in str(info.value)


def test_a_josa_filter_given_no_particle_pair_reads_in_korean(tmp_path: Path,
                                                              korean: None) -> None:
    (tmp_path / "t.j2").write_text(
        '{% block subject %}s{% endblock %}{% block text %}{{ "강의"|josa("을/는") }}'
        "{% endblock %}", encoding="utf-8")
    with pytest.raises(TemplateError) as info:
        Templates(tmp_path).render("t", {})
    assert "josa('을/는'): 조사 짝이 아닙니다. 은/는, 이/가, 을/를, 과/와, (으)로처럼 적으세요" \
        in str(info.value)
