"""Text messages through a whole sync: the sample sending by Solapi (SMS/LMS and
AlimTalk) and NHN Cloud, against the loopback emulators. Numbers as cells hold them,
the §50 ad form, config errors, ``check``, the guards, and delivery reports turning
``accepted`` into ``delivered`` or ``failed`` where ``status`` shows them."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sheetcrm.config import load_config
from sheetcrm.ledger import Applied, Ledger
from sheetcrm.model import DeliveryReport, DeliveryState
from sheetcrm.texting import parse_solapi_reports
from tests.support.emulators.solapi import SolapiEmulator
from tests.support.kakao import PF_ID, use_solapi
from tests.support.sample import CSV, DAY0, DAY0_SENDS, DAY0_SENDS_NO_ADDRESS, DAY2

NOW = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


@pytest.fixture
def solapi() -> Iterator[SolapiEmulator]:
    with SolapiEmulator() as emulator:
        yield emulator


def sync(run_cli: Any, folder: Path, when: str = DAY0) -> dict[str, Any]:
    result = run_cli(folder, "--now", when, "--json", "sync")
    assert result.code in (0, 1), result.err
    return json.loads(result.out)


def edit_rows(folder: Path, change: Any) -> None:
    """Rewrite the sample sheet, ``change(row)`` applied to every row (a dict)."""
    path = folder / CSV
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        change(row)
        writer.writerow(row)
    path.write_text("\ufeff" + out.getvalue(), encoding="utf-8")


def cells(folder: Path, column: str) -> dict[str, str]:
    text = (folder / CSV).read_text(encoding="utf-8-sig")
    return {r["이메일"]: r.get(column, "") for r in csv.DictReader(io.StringIO(text))}


def config_text(folder: Path) -> str:
    return (folder / "config.toml").read_text(encoding="utf-8")


def set_config(folder: Path, text: str) -> None:
    (folder / "config.toml").write_text(text, encoding="utf-8")


def test_a_sync_sends_every_due_step_by_sms_and_records_it_accepted(
        run_cli: Any, sample: Path, solapi: SolapiEmulator) -> None:
    use_solapi(sample, solapi)
    data = sync(run_cli, sample)
    assert data["summary"]["sent"] == len(DAY0_SENDS_NO_ADDRESS) == len(solapi.received)
    assert {m.type for m in solapi.received} <= {"SMS", "LMS"}
    assert all(m.to.startswith("010") and len(m.to) == 11 for m in solapi.received)
    ledger = Ledger.open_readonly(load_config(sample / "config.toml", {}).state_path)
    try:
        assert ledger.count_deliveries()[DeliveryState.ACCEPTED] == len(DAY0_SENDS_NO_ADDRESS)
    finally:
        ledger.close()


def test_delivery_reports_turn_accepted_into_delivered_or_failed_and_status_shows_them(
        run_cli: Any, sample: Path, solapi: SolapiEmulator) -> None:
    use_solapi(sample, solapi, alimtalk=True, extra="fallback = false\n")
    solapi.not_on_kakao.add("01023456789")  # 김수현 has no KakaoTalk
    sync(run_cli, sample)
    by_number = {m.to: m for m in solapi.received}
    failed = parse_solapi_reports(solapi.report(by_number["01023456789"].message_id))[0]
    delivered = parse_solapi_reports(solapi.report(by_number["01034567890"].message_id))[0]
    config = load_config(sample / "config.toml", {})
    ledger = Ledger.open(config.state_path)
    try:
        assert ledger.apply_delivery(failed, NOW) is Applied.APPLIED
        assert ledger.apply_delivery(delivered, NOW) is Applied.APPLIED
        assert ledger.apply_delivery(delivered, NOW) is Applied.REPEATED  # a provider's retry
        late = DeliveryReport("solapi", delivered.message_id, DeliveryState.FAILED, "3040")
        assert ledger.apply_delivery(late, NOW) is Applied.REPEATED  # settled stays settled
        ghost = DeliveryReport("solapi", "M4VNOSUCH", DeliveryState.DELIVERED)
        assert ledger.apply_delivery(ghost, NOW) is Applied.UNKNOWN
        on_the_way = DeliveryReport("solapi", by_number["01045678901"].message_id, None)
        assert ledger.apply_delivery(on_the_way, NOW) is Applied.PENDING
    finally:
        ledger.close()
    result = run_cli(sample, "--json", "status")
    assert result.code == 0, result.err
    deliveries = json.loads(result.out)["deliveries"]
    assert deliveries["counts"] == {"accepted": len(DAY0_SENDS_NO_ADDRESS) - 2, "delivered": 1,
                                    "failed": 1}
    [item] = deliveries["failed"]
    assert item["key"] == "soohyun.kim@example.com" and item["reason"] == "3104 카카오톡 미사용자"
    text = run_cli(sample, "status")
    assert "text message deliveries:" in text.out and "카카오톡 미사용자" in text.out
    assert "01023456789" not in text.out + result.out


def test_a_phone_cell_that_is_no_mobile_fails_that_row_only_and_is_shown_masked(
        run_cli: Any, sample: Path, solapi: SolapiEmulator) -> None:
    use_solapi(sample, solapi)
    edit_rows(sample, lambda r: r.update({"연락처": "02-555-1234"})
              if r["이메일"] == "soohyun.kim@example.com" else None)
    data = sync(run_cli, sample)
    assert data["summary"]["sent"] == len(DAY0_SENDS_NO_ADDRESS) - 1
    error = cells(sample, "오류")["soohyun.kim@example.com"]
    assert "a Korean mobile number like 010-1234-5678" in error and "***34" in error
    assert "555-1234" not in error


def test_a_number_cell_that_lost_its_zero_still_reaches_the_phone(
        run_cli: Any, sample: Path, solapi: SolapiEmulator) -> None:
    use_solapi(sample, solapi)
    edit_rows(sample, lambda r: r.update({"연락처": "1023456789"})
              if r["이메일"] == "soohyun.kim@example.com" else None)
    sync(run_cli, sample)
    assert "01023456789" in {m.to for m in solapi.received}


def test_an_ad_on_an_alimtalk_channel_is_a_config_error(
        run_cli: Any, sample: Path, solapi: SolapiEmulator) -> None:
    use_solapi(sample, solapi, alimtalk=True)
    text = config_text(sample).replace('template = "review_reward" }',
                                       'template = "review_reward", kind = "ad" }')
    set_config(sample, text)
    result = run_cli(sample, "check")
    assert result.code == 2
    assert "flows.review.steps[1]: an ad cannot be sent by AlimTalk" in result.err
    assert "Traceback" not in result.err


def test_an_alimtalk_step_without_an_approved_template_id_is_a_config_error(
        run_cli: Any, sample: Path, solapi: SolapiEmulator) -> None:
    use_solapi(sample, solapi, alimtalk=True)
    set_config(sample, re.sub(r'"review_request" = "T\d+", ', "", config_text(sample)))
    result = run_cli(sample, "check")
    assert result.code == 2
    assert "flows.review.steps[0]: template 'review_request' has no approved AlimTalk" in result.err


def test_an_ad_sms_without_a_free_080_opt_out_is_a_config_error(
        run_cli: Any, sample: Path, solapi: SolapiEmulator) -> None:
    use_solapi(sample, solapi)
    set_config(sample, config_text(sample).replace('opt_out_number = "080-123-4567"\n', ""))
    result = run_cli(sample, "check")
    assert result.code == 2
    assert "must name the sender and end with a free 080 opt-out number" in result.err


def test_an_ad_sms_reads_광고_and_the_sender_first_and_the_080_opt_out_last(
        run_cli: Any, sample: Path, solapi: SolapiEmulator) -> None:
    use_solapi(sample, solapi)
    sync(run_cli, sample, DAY0)
    sync(run_cli, sample, DAY2)
    ads = [m for m in solapi.received if m.text.startswith("(광고)")]
    assert ads, [m.text[:20] for m in solapi.received]
    for ad in ads:
        assert ad.text.startswith("(광고)소담 클래스\n")
        assert ad.text.endswith("\n무료수신거부 080-123-4567")
    plain = [m for m in solapi.received if not m.text.startswith("(광고)")]
    assert plain and not any("무료수신거부" in m.text for m in plain)


def test_ads_wait_for_morning_and_need_consent_by_sms_as_by_email(
        run_cli: Any, sample: Path, solapi: SolapiEmulator) -> None:
    use_solapi(sample, solapi)
    sync(run_cli, sample, DAY0)
    day0 = len(solapi.received)  # the dormant win-back's first ad went in the morning
    night = sync(run_cli, sample, "2026-11-25T22:00")
    assert not any(m.text.startswith("(광고)") for m in solapi.received[day0:])
    assert any("quiet hours" in reason for reason in night["summary"]["held"])
    edit_rows(sample, lambda r: r.update({"수신 동의": "X"}))
    morning = sync(run_cli, sample, "2026-11-26T09:00")
    assert not any(m.text.startswith("(광고)") for m in solapi.received[day0:])
    assert any("no consent" in reason for reason in morning["summary"]["held"])


def test_the_frequency_cap_and_the_blast_radius_guard_hold_text_messages(
        run_cli: Any, sample: Path, solapi: SolapiEmulator) -> None:
    use_solapi(sample, solapi)
    text = config_text(sample)
    set_config(sample, text.replace('max_sends_per_run = 200', 'max_sends_per_run = 5'))
    stopped = sync(run_cli, sample)
    assert solapi.received == [] and stopped["summary"]["sending_stopped"]
    set_config(sample, text.replace('frequency_cap = "3/7d"', 'frequency_cap = "1/7d"'))
    capped = sync(run_cli, sample)
    per_phone: dict[str, int] = {}
    for m in solapi.received:
        per_phone[m.to] = per_phone.get(m.to, 0) + 1
    assert max(per_phone.values()) == 1
    assert any("frequency cap" in reason for reason in capped["summary"]["held"])


def test_check_flags_missing_alimtalk_variables_texts_over_limits_and_bad_numbers(
        run_cli: Any, sample: Path, solapi: SolapiEmulator) -> None:
    use_solapi(sample, solapi, alimtalk=True)
    (sample / "templates" / "review_request.j2").write_text(
        "{% block subject %}후기{% endblock %}\n{% block text %}#{name}님, #{쿠폰번호} 쿠폰을 "
        "드려요.{% endblock %}\n", encoding="utf-8")
    (sample / "templates" / "churn_checkin.j2").write_text(
        "{% block subject %}안내{% endblock %}\n{% block text %}" + "가" * 1301
        + "{% endblock %}\n", encoding="utf-8")
    edit_rows(sample, lambda r: r.update({"연락처": "02-555-1234"})
              if r["이메일"] == "jihoon.lee@example.com" else None)
    result = run_cli(sample, "check")
    assert result.code == 1
    out = result.out + result.err
    assert "AlimTalk variable #{쿠폰번호} has no value" in out
    assert "1,301 characters once filled; Kakao allows at most 1,300" in out
    assert re.search(r"연락처: \*\*\*34 is not a Korean mobile number", out)
    assert "555-1234" not in out


def test_check_connect_reaches_solapi_without_sending(run_cli: Any, sample: Path,
                                                     solapi: SolapiEmulator) -> None:
    use_solapi(sample, solapi)
    result = run_cli(sample, "check", "--connect")
    assert "API key accepted" in result.out + result.err
    assert solapi.received == []
    assert solapi.api_secret not in result.out + result.err


def test_the_samples_commented_alimtalk_reminder_works_once_uncommented(
        run_cli: Any, sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = config_text(sample)
    block = re.search(r"^# \[channels\.kakao\]\n(?:# .*\n)+", text, flags=re.M)
    assert block is not None
    with SolapiEmulator() as solapi:
        solapi.templates["KA01TP0000000009"] = (
            "#{고객명}님, #{신청일}에 신청하신 #{강의명} 결제가 아직 완료되지 않았어요.\n\n"
            "결제 이어하기: https://class.example.com/checkout")
        live = "".join(line[2:] + "\n" for line in block.group(0).splitlines())
        live = live.replace('"KA01PF..."', f'"{PF_ID}"').replace('"KA01TP..."',
                                                                  '"KA01TP0000000009"')
        text = text.replace(block.group(0), live + f'endpoint = "{solapi.url}"\n')
        reminder = '  { after = "0d", channel = "email", template = "payment_reminder" },\n  # '
        assert reminder in text
        set_config(sample, text.replace(reminder, "  "))
        monkeypatch.setenv("SOLAPI_API_KEY", solapi.api_key)
        monkeypatch.setenv("SOLAPI_API_SECRET", solapi.api_secret)
        sync(run_cli, sample)
    alimtalks = {m.to: m for m in solapi.received if m.type == "ATA"}
    assert len(alimtalks) == sum(1 for _, flow in DAY0_SENDS_NO_ADDRESS if flow == "payment")
    first = alimtalks["01023456789"]
    assert first.text.startswith("김수현님, 11월 1일에 신청하신 엑셀 기초 결제가")
    assert first.kakao["variables"]["#{고객명}"] == "김수현"


def test_the_shipped_sample_runs_with_no_account(run_cli: Any, sample: Path) -> None:
    data = sync(run_cli, sample)
    assert data["summary"]["sent"] == len(DAY0_SENDS)
    assert len(list((sample / "outbox").glob("*.eml"))) == len(DAY0_SENDS)


def test_check_refuses_an_ad_template_that_marks_itself_otherwise_than_광고(
        run_cli: Any, sample: Path, solapi: SolapiEmulator) -> None:
    use_solapi(sample, solapi)
    (sample / "templates" / "review_reward.j2").write_text(
        "{% block subject %}할인{% endblock %}\n{% block text %}[광고] 후기를 남기시면 15% "
        "할인{% endblock %}\n", encoding="utf-8")
    result = run_cli(sample, "check")
    assert result.code == 1
    assert "the law accepts only '(광고)' exactly" in result.out + result.err
