"""``sheetcrm init`` on CSV files: the shipped sample's, a CP949 Excel export with other
column names, dates that prove their order or do not; types inferred by the project's
own cell parsers, the key, the config written, the tabs written, nothing overwritten
without --force, --yes never reading standard input."""

from __future__ import annotations

import io
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from sheetcrm.app.setup.samples import SOURCES
from tests.support.init import (
    EXPORT,
    RENAMED,
    as_dicts,
    config_of,
    loaded,
    read_tab,
    renamed,
    shipped,
    write_cp949,
)
from tests.support.sample import ROOT

# --------------------------------------------------------------------------- the sample


@pytest.mark.usefixtures("no_stdin")
def test_init_on_the_sample_csv_proposes_the_sample_fields_with_their_types(
        sheet: Path, run_cli: Any, tmp_path: Path) -> None:
    result = run_cli(sheet, "init", "customers.csv", "--yes")
    assert result.code == 0, result.err
    config = config_of(sheet)
    types = {name: spec.get("type", "text") for name, spec in config["fields"].items()}
    sample = shipped()["fields"]
    for old, new in RENAMED.items():
        assert types[new] == sample[old].get("type", "text"), old
    assert types["이메일"] == "email" and types["연락처"] == "phone"
    assert types["메일_미열람"] == "int" and types["동의일"] == "date"
    assert config["fields"]["결제_금액"]["column"] == "결제 금액"
    assert config["table"] == {"backend": "csv", "path": "customers.csv", "key": "이메일"}
    assert config["language"] == "ko" and config["timezone"] == "Asia/Seoul"
    assert config["writeback"] == shipped()["writeback"]  # the sample's empty columns
    assert config["sending"]["consent"] == "수신_동의"
    assert config["sending"]["compliance"] == "kr"
    assert config["channels"] == {"email": {"type": "outbox", "path": "outbox",
                                            "from": "보내는 곳 <hello@example.com>",
                                            "to": "이메일"}}
    assert config["rules"] == {"tags": "태그", "flows": "흐름", "templates": "템플릿"}
    assert "상태_태그" not in config["fields"] and "자동화_흐름" not in config["fields"]
    # The cells the sample holds on purpose to show row errors are named.
    assert "'suzy.bae@'" in result.out and "'2026-02-30'" in result.out
    assert "'몰라'" in result.out
    assert "gayoung.moon@example.com" in result.out  # the duplicate key
    assert loaded(sheet / "config.toml").rule_tabs == {
        "tags": "태그", "flows": "흐름", "templates": "템플릿"}


def test_init_writes_the_sample_rules_in_its_own_field_names(
        sheet: Path, run_cli: Any) -> None:
    assert run_cli(sheet, "init", "customers.csv", "--yes").code == 0
    tags = as_dicts(read_tab(sheet / "태그.csv"))
    assert {t["이름"]: t["조건"] for t in tags} == {
        name: renamed(condition) for name, condition in shipped()["tags"].items()}
    assert all(t["설명"] and t["상태"] == "" for t in tags)

    flows = as_dicts(read_tab(sheet / "흐름.csv"))
    sample = shipped()["flows"]
    assert list(dict.fromkeys(f["흐름"] for f in flows)) == list(sample)
    for name, flow in sample.items():
        steps = [f for f in flows if f["흐름"] == name]
        first = steps[0]
        assert first["시작 조건"] == flow["trigger"]
        assert first["목표"] == renamed(flow.get("goal", ""))
        assert first["다음 흐름"] == flow.get("then", "")
        assert first["답장 시 종료"] == ("O" if flow.get("exit_on_reply") else "")
        assert first["대조군 비율"] == (f"{flow['holdout']:.0%}" if "holdout" in flow else "")
        assert [s["템플릿"] for s in steps] == [s["template"] for s in flow["steps"]]
        assert [s["대기"] for s in steps] == [s["after"].replace("d", "일")
                                            for s in flow["steps"]]
        assert [s["광고 여부"] for s in steps] == ["O" if s.get("kind") == "ad" else "X"
                                               for s in flow["steps"]]
        assert [s["순서"] for s in steps] == [str(n) for n in range(1, len(steps) + 1)]
    ab = next(f for f in flows if f["A/B 비율"])
    assert ab["A/B 비율"] == "reviews:1, compare:1"

    templates = {t["이름"]: t for t in as_dicts(read_tab(sheet / "템플릿.csv"))}
    used = {s["template"] for flow in sample.values() for s in flow["steps"]}
    assert set(templates) == used | {"payment_reviews.compare"}
    welcome = templates["onboarding_welcome"]
    assert welcome["제목"] == "{{ 고객명 }}님, {{ 강의 }} 수강을 환영합니다"
    assert welcome["본문"].startswith("{{ 고객명 }}님, 안녕하세요. 소담 클래스입니다.\n")
    assert welcome["HTML"].startswith("<p>{{ 고객명 }}님, 안녕하세요.")
    assert "{{ 신청일|kdate(weekday=False) }}" in templates["payment_reminder"]["본문"]
    assert "{% if 과제_미제출 and 과제_미제출 >= 2 %}" in templates["churn_checkin"]["본문"]
    assert templates["payment_reviews"]["HTML"] == ""


def test_the_starter_messages_are_the_samples_template_files_word_for_word() -> None:
    for name, source in SOURCES.items():
        assert (ROOT / "templates" / f"{name}.j2").read_text(encoding="utf-8") == source


# --------------------------------------------------------------------------- an Excel export

@pytest.mark.usefixtures("no_stdin")
def test_init_on_a_cp949_excel_export_reads_its_own_column_names(
        tmp_path: Path, run_cli: Any) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    write_cp949(folder / "고객.csv", EXPORT)
    result = run_cli(folder, "init", "고객.csv", "--yes")
    assert result.code == 0, result.err
    config = config_of(folder)
    fields = config["fields"]
    assert {name: spec.get("type", "text") for name, spec in fields.items()} == {
        "성함": "text", "메일주소": "email", "휴대폰": "phone", "가입일": "date",
        "결제완료": "bool", "금액": "number", "마지막_로그인": "datetime",
        "마케팅_동의": "bool", "비고": "text"}
    assert fields["마지막_로그인"]["column"] == "마지막 로그인"
    assert config["table"]["key"] == "메일주소"
    assert config["sending"]["consent"] == "마케팅_동의"
    assert config["channels"]["email"]["to"] == "메일주소"

    tags = {t["이름"]: t["조건"] for t in as_dicts(read_tab(folder / "태그.csv"))}
    assert tags["결제 대기"] == "not 결제완료 and days_since(가입일) >= 1"
    assert tags["휴면"] == "결제완료 and days_since(마지막_로그인) >= 30"
    # No 링크 클릭 column, no 후기 작성 column: no tag reads them, the rest stay.
    assert "결제 유도" not in tags and "후기 미작성" not in tags and "우수 참여자" not in tags
    assert "과제" not in tags["이탈 가능"]
    flows = as_dicts(read_tab(folder / "흐름.csv"))
    assert list(dict.fromkeys(f["흐름"] for f in flows)) == [
        "onboarding", "payment", "dormant", "churn"]
    templates = {t["이름"]: t for t in as_dicts(read_tab(folder / "템플릿.csv"))}
    # No course column: the word stands in; no 과제 column: the clause reads none.
    assert templates["onboarding_welcome"]["제목"] == '{{ 성함 }}님, {{ "강의" }} 수강을 환영합니다'
    assert "{% if none and none >= 2 %}" in templates["churn_checkin"]["본문"]
    assert "left out: the tag 결제 유도 (no column for clicked)" in result.out
    loaded(folder / "config.toml")


def test_won_amounts_counts_and_phone_numbers_are_told_apart() -> None:
    from zoneinfo import ZoneInfo

    from sheetcrm.app.setup.infer import infer_columns

    header = ["금액", "횟수", "전화", "코드", "가입", "표시"]
    rows = [["₩39,000", "0", "01012345678", "007", "2026-11-03 10:00", "O"],
            ["39,000원", "1", "010-2222-3333", "012", "2026-11-04", "X"],
            ["\\12,000", "1", "02-123-4567", "120", "2026. 11. 5. 오후 3:04:05", "예"]]
    columns = {c.name: c.type for c in infer_columns(header, rows, ZoneInfo("Asia/Seoul"))}
    assert columns == {"금액": "number", "횟수": "int", "전화": "phone", "코드": "text",
                       "가입": "datetime", "표시": "bool"}


def test_slash_dates_take_the_order_their_values_prove_and_no_other(
        tmp_path: Path, run_cli: Any) -> None:
    folder = tmp_path / "slash"
    folder.mkdir()
    rows = [["email", "day first", "unsettled"],
            ["a@example.com", "13/1/2026", "1/2/2026"],
            ["b@example.com", "2/3/2026", "3/4/2026"],
            ["c@example.com", "25/12/2025", "5/6/2026"]]
    (folder / "c.csv").write_text("\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")
    result = run_cli(folder, "init", "c.csv", "--yes")
    assert result.code == 0, result.err
    fields = config_of(folder)["fields"]
    assert fields["day_first"] == {"column": "day first", "type": "date",
                                   "date_order": "D/M/YYYY"}
    assert fields["unsettled"] == {"column": "unsettled"}  # never guessed
    assert "unsettled: dates like 6/1/2026 could be month or day first" in result.out


def test_asked_the_key_the_operator_may_take_the_default_or_name_another(
        sheet: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    assert run_cli(sheet, "init", "customers.csv").code == 0
    config = config_of(sheet)
    assert config["table"]["key"] == "이메일"
    monkeypatch.setattr(sys, "stdin", io.StringIO("연락처\n"))
    assert run_cli(sheet, "init", "customers.csv", "--force").code == 0
    config = config_of(sheet)
    assert config["table"]["key"] == "연락처"


@pytest.mark.usefixtures("no_stdin")
def test_yes_stops_when_no_column_can_be_the_key_by_default(
        tmp_path: Path, run_cli: Any) -> None:
    folder = tmp_path / "nokey"
    folder.mkdir()
    (folder / "c.csv").write_text("이름,메모\n김,a\n이,b\n박,c\n", encoding="utf-8")
    result = run_cli(folder, "init", "c.csv", "--yes")
    assert result.code == 2
    assert "--key COLUMN" in result.err and "이름, 메모" in result.err
    assert not (folder / "config.toml").exists() and not (folder / "태그.csv").exists()
    result = run_cli(folder, "init", "c.csv", "--yes", "--key", "이름")
    assert result.code == 0, result.err
    config = config_of(folder)
    assert config["table"]["key"] == "이름" and "consent" not in config["sending"]


# --------------------------------------------------------------------------- never overwrite


def test_init_overwrites_no_config_and_no_tab_without_force(sheet: Path, run_cli: Any) -> None:
    (sheet / "config.toml").write_text("# mine\n", encoding="utf-8")
    result = run_cli(sheet, "init", "customers.csv", "--yes")
    assert result.code == 2
    assert "config.toml" in result.err and "--force" in result.err
    assert (sheet / "config.toml").read_text(encoding="utf-8") == "# mine\n"
    assert not (sheet / "태그.csv").exists()

    (sheet / "config.toml").unlink()
    (sheet / "흐름.csv").write_text("흐름\n내 흐름\n", encoding="utf-8")
    result = run_cli(sheet, "init", "customers.csv", "--yes")
    assert result.code == 2 and "흐름.csv" in result.err and "--force" in result.err
    assert (sheet / "흐름.csv").read_text(encoding="utf-8") == "흐름\n내 흐름\n"
    assert not (sheet / "config.toml").exists() and not (sheet / "태그.csv").exists()

    assert run_cli(sheet, "init", "customers.csv", "--yes", "--force").code == 0
    assert read_tab(sheet / "흐름.csv")[0][0] == "흐름"
    assert (sheet / "config.toml").read_text(encoding="utf-8").startswith("# sheetcrm")


def test_config_goes_where_config_says(sheet: Path, run_cli: Any, tmp_path: Path) -> None:
    elsewhere = tmp_path / "conf" / "crm.toml"
    result = run_cli(sheet, "init", "customers.csv", "--yes", "--config", str(elsewhere))
    assert result.code == 0, result.err
    config = tomllib.loads(elsewhere.read_text(encoding="utf-8"))
    assert config["table"]["path"] == "../sheet/customers.csv"
    assert not (sheet / "config.toml").exists() and (sheet / "태그.csv").exists()
    loaded(elsewhere)


def test_an_unknown_target_names_the_three_forms(tmp_path: Path, run_cli: Any) -> None:
    result = run_cli(tmp_path, "init", "고객 명단", "--yes")
    assert result.code == 2
    assert "neither a CSV file, nor a Google spreadsheet, nor an Airtable table" in result.err
    assert list(tmp_path.iterdir()) == []


def test_config_is_taken_before_and_after_the_command(sheet: Path, run_cli: Any) -> None:
    before = run_cli(sheet, "--config", "a/crm.toml", "init", "customers.csv", "--yes")
    after = run_cli(sheet, "init", "customers.csv", "--yes", "--config", "b/crm.toml",
                    "--force")
    assert before.code == after.code == 0, before.err + after.err
    assert (sheet / "a" / "crm.toml").is_file() and (sheet / "b" / "crm.toml").is_file()
    assert not (sheet / "config.toml").exists()


# --------------------------------------------------------------------------- the terminal


def test_asked_the_order_of_slash_dates_the_operator_settles_it(
        tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "ask"
    folder.mkdir()
    rows = ["email,paid on", "a@example.com,1/2/2026", "b@example.com,3/4/2026",
            "c@example.com,5/6/2026"]
    (folder / "c.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", io.StringIO("M/D/YYYY\n\n"))  # then the default key
    result = run_cli(folder, "init", "c.csv")
    assert result.code == 0, result.err
    assert "month first (M/D/YYYY) or day first (D/M/YYYY)?" in result.out
    fields = config_of(folder)["fields"]
    assert fields["paid_on"] == {"column": "paid on", "type": "date", "date_order": "M/D/YYYY"}
    assert config_of(folder)["table"]["key"] == "email"


def test_init_speaks_korean_in_a_korean_terminal(
        sheet: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANG", "ko_KR.UTF-8")
    result = run_cli(sheet, "init", "customers.csv", "--yes")
    assert result.code == 0, result.err
    assert "기본 규칙: 태그 8개, 흐름 5개, 메시지 14개" in result.out
    assert "1칸이 email 종류가 아닙니다: 20행 'suzy.bae@'" in result.out
    again = run_cli(sheet, "init", "customers.csv", "--yes")
    assert again.code == 2 and "덮어쓰지 않습니다" in again.err and "--force" in again.err


def test_json_prints_the_proposal_and_what_was_written(sheet: Path, run_cli: Any) -> None:
    import json

    result = run_cli(sheet, "init", "customers.csv", "--yes", "--json")
    assert result.code == 0, result.err
    answer = json.loads(result.out)
    assert answer["key"] == "이메일" and answer["rows"] == 26
    assert answer["fields"]["결제_여부"] == {"column": "결제 여부", "type": "bool",
                                          "date_order": None, "role": "paid", "unread": 1}
    assert answer["rules"]["flows"] == ["onboarding", "payment", "dormant", "churn", "review"]
    assert [Path(w).name for w in answer["written"]] == [
        "태그.csv", "흐름.csv", "템플릿.csv", "config.toml"]


@pytest.mark.usefixtures("no_stdin")
def test_init_refuses_to_overwrite_before_asking_anything(sheet: Path, run_cli: Any) -> None:
    (sheet / "태그.csv").write_text("이름,조건\n", encoding="utf-8")
    result = run_cli(sheet, "init", "customers.csv")  # would ask for the key
    assert result.code == 2 and "태그.csv" in result.err and "--force" in result.err
