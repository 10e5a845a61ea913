"""The operator's language: how it is chosen, and the same failures read in Korean.

``language = "ko"`` (the sample's) or ``"en"``; without it the locale variables decide,
else English. The command line reads it before it validates the config, so a config
error reads in that language too. Each converted area is shown failing in Korean the
way its English tests show it failing in English: a CSV that cannot be read, a refused
SMTP login, a webhook that answers 404, a spreadsheet not shared with the service
account, a text delivery that failed, an alert, a bad cell.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sheetcrm import i18n
from sheetcrm.app.alerts import _Incident, _text
from sheetcrm.config import load_config, peek_language
from sheetcrm.daemon.reload import ConfigFile
from sheetcrm.errors import BackendError, CellError, ChannelError, ConfigError
from sheetcrm.table.csv import CsvTable
from sheetcrm.table.gsheets import GoogleSheetsTable
from sheetcrm.texting.reports import parse_nhn_reports
from tests.support.emulators.sheets import SheetsEmulator
from tests.support.gsheets import KEY, SHEET
from tests.support.sample import DAY0, copy_sample, sample_config
from tests.support.servers import WebhookServer
from tests.support.smtp import SmtpServer
from tests.test_channel_smtp import MESSAGE, channel_for

HANGUL = re.compile("[가-힣]")


def write_config(folder: Path, text: str) -> Path:
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


# -------------------------------------------------------------------- choosing it


@pytest.mark.parametrize(("env", "language"), [
    ({"LANG": "ko_KR.UTF-8"}, "ko"),
    ({"LANG": "ko"}, "ko"),
    ({"LANG": "en_US.UTF-8"}, "en"),
    ({"LC_ALL": "ko_KR.UTF-8", "LANG": "en_US.UTF-8"}, "ko"),
    ({"LC_ALL": "C.UTF-8", "LANG": "ko_KR.UTF-8"}, "en"),
    ({}, "en"),
])
def test_without_a_setting_the_locale_variables_decide(env: dict[str, str],
                                                        language: str) -> None:
    assert i18n.language_from_env(env) == language


def test_the_config_says_which_language_before_anything_else_is_checked(
        tmp_path: Path) -> None:
    korean = write_config(tmp_path, 'language = "ko"\n[table]\nbackend = 3\n')
    assert peek_language(korean, {"LANG": "en_US.UTF-8"}) == "ko"
    # TOML that does not parse (a bare Hangul key): the top line is still read
    broken = write_config(tmp_path, 'language = "ko"  # 한국어\n[fields]\n이름 = 1\n')
    assert peek_language(broken, {}) == "ko"
    assert peek_language(tmp_path / "missing.toml", {"LANG": "ko_KR.UTF-8"}) == "ko"
    unset = write_config(tmp_path, '[table]\nbackend = "csv"\n')
    assert peek_language(unset, {"LANG": "ko_KR.UTF-8"}) == "ko"
    assert peek_language(unset, {}) == "en"


def test_the_report_speaks_the_config_language_unless_it_says_otherwise(
        tmp_path: Path) -> None:
    copy_sample(tmp_path, language="ko")
    config = load_config(tmp_path / "config.toml", {})
    assert config.model.language == "ko" and config.model.report.language == "ko"
    text = sample_config("ko").replace("[report]\n", '[report]\nlanguage = "en"\n')
    config = load_config(write_config(tmp_path, text), {})
    assert config.model.language == "ko" and config.model.report.language == "en"


def test_a_config_without_language_follows_the_environment(tmp_path: Path) -> None:
    text = re.sub(r'^language = .*\n', "", sample_config(), flags=re.M)
    path = write_config(tmp_path, text)
    assert load_config(path, {"LANG": "ko_KR.UTF-8"}).model.language == "ko"
    assert load_config(path, {}).model.language == "en"


def test_an_unknown_language_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, sample_config().replace('language = "en"',
                                                          'language = "fr"'))
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert caught.value.path == "language" and "'fr'" in str(caught.value)


def test_a_config_error_reads_in_the_language_the_config_asks_for(sample: Path,
                                                                    run_cli) -> None:
    config = sample / "config.toml"
    text = config.read_text(encoding="utf-8").replace('language = "en"', 'language = "ko"')
    config.write_text(text.replace('timezone = "Asia/Seoul"', 'timezone = "Asia/Seoul"\n'
                                   'port = "x"'), encoding="utf-8")
    result = run_cli(sample, "check")
    assert result.code == 2
    assert "port: 알 수 없는 항목입니다(철자를 확인하세요)" in result.err, result.err


def test_the_english_config_error_is_unchanged(sample: Path, run_cli) -> None:
    config = sample / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('timezone = "Asia/Seoul"',
                                   'timezone = "Asia/Seoul"\nport = "x"'), encoding="utf-8")
    result = run_cli(sample, "check")
    assert result.code == 2 and "port: unknown key (check the spelling)" in result.err


def test_the_daemon_takes_the_language_of_a_reloaded_config(sample: Path) -> None:
    path = sample / "config.toml"
    watched = ConfigFile(path, {})
    path.write_text(path.read_text(encoding="utf-8").replace('language = "en"',
                                                             'language = "ko"'),
                    encoding="utf-8")
    assert watched.new_version(None) is not None
    assert i18n.current_language() == "ko"
    path.write_text(path.read_text(encoding="utf-8") + "\n[nonsense]\n", encoding="utf-8")
    assert watched.new_version(None) is None
    assert watched.rejection is not None and "알 수 없는 항목" in watched.rejection


# -------------------------------------------------------------------- the same failures in Korean


@pytest.mark.usefixtures("korean")
def test_a_csv_that_cannot_be_read_says_so_in_korean(tmp_path: Path) -> None:
    missing = CsvTable(tmp_path / "고객.csv")
    with pytest.raises(BackendError, match="고객.csv: 파일이 없습니다"):
        missing.read()
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes("이름,이메일\n".encode("utf-16"))
    with pytest.raises(BackendError, match='UTF-16 파일은 읽을 수 없습니다. 엑셀에서 "CSV UTF-8"'):
        CsvTable(utf16).read()


@pytest.mark.usefixtures("korean")
def test_a_refused_smtp_login_says_so_in_korean() -> None:
    with SmtpServer(users={"hello": "right"}) as server:
        channel = channel_for(server, username="hello", password="wrong")
        with pytest.raises(ChannelError) as caught:
            channel.send(MESSAGE)
    text = str(caught.value)
    assert caught.value.channel_down
    assert f"SMTP 127.0.0.1:{server.port}: 'hello'(으)로 로그인하지 못했습니다(535)" in text
    assert "앱 비밀번호" in text and "wrong" not in text


@pytest.mark.usefixtures("korean")
def test_a_webhook_that_answers_404_says_so_in_korean(tmp_path: Path) -> None:
    from sheetcrm.channels import make_channel, parse_channel_settings

    with WebhookServer([404]) as server:
        settings = parse_channel_settings("crm", {"type": "webhook", "url": server.url,
                                                  "retries": 0, "timeout": 5})
        channel = make_channel("crm", settings, base_dir=tmp_path)
        with pytest.raises(ChannelError) as caught:
            channel.send(MESSAGE)
    assert caught.value.channel_down
    assert "HTTP 404" in str(caught.value)
    assert "주소(url)와 인증 정보를 확인하세요" in str(caught.value)


@pytest.mark.usefixtures("loopback_only", "fast_retries", "korean")
def test_a_spreadsheet_not_shared_with_the_account_says_so_in_korean(
        emulator: SheetsEmulator, make_table: Callable[..., GoogleSheetsTable],
        account) -> None:
    emulator.add_spreadsheet(KEY, shared_with=["someone-else@example.com"])
    emulator.add_sheet(KEY, SHEET)
    with pytest.raises(BackendError) as caught:
        make_table().read()
    text = str(caught.value)
    assert "스프레드시트 열기 중 권한이 없다는 답을 받았습니다" in text
    assert f"서비스 계정 {account.email}에 공유하고" in text


@pytest.mark.usefixtures("korean")
def test_a_failed_text_delivery_is_noted_in_korean() -> None:
    [report] = parse_nhn_reports({"message": {
        "requestId": "r1", "recipientSeq": 1, "resultCode": "3018",
        "resultCodeName": "Blocked", "resendStatus": "RSC05", "resendResultCode": "SMS-9",
        "receiveDate": "2026-11-25 10:00:00"}})
    assert report.reason == ("알림톡이 전달되지 않았고(3018 Blocked) 대신 보낸 문자도 "
                             "실패했습니다 (SMS-9)")


def test_an_alert_is_written_in_the_language_of_the_config(sample: Path) -> None:
    config = load_config(sample / "config.toml", {})
    since = datetime(2026, 11, 23, 1, 0, tzinfo=UTC).isoformat()
    incident = _Incident(reason="SMTP 127.0.0.1:25: connection failed", since=since, told=[])
    now = datetime.fromisoformat(DAY0).replace(tzinfo=config.tz)
    title, body = _text(config, "channel:email", incident, True, now)
    assert title == "sheetcrm: channel email is down"
    i18n.set_language("ko")
    title, body = _text(config, "channel:email", incident, True, now)
    assert title == "sheetcrm: 채널 email이(가) 멈췄습니다"
    assert body.startswith("SMTP 127.0.0.1:25: connection failed\n\n이 채널로 보낼 메시지는")
    title, _ = _text(config, "channel:email", incident, False, now)
    assert title == "sheetcrm: 채널 email이(가) 다시 됩니다"


def test_a_bad_cell_is_described_in_the_language_of_the_run() -> None:
    assert str(CellError("가입일", "11/3/2026", "a date")) == "가입일: '11/3/2026' is not a date"
    i18n.set_language("ko")
    korean = str(CellError("가입일", "11/3/2026", "날짜"))
    assert korean == "가입일: '11/3/2026'은(는) 날짜 형식이 아닙니다"


def test_every_korean_message_is_korean() -> None:
    """No Korean catalog entry is left in English (beyond names and codes)."""
    from tests.support import catalogs

    english = [m.id for m in catalogs.read("ko") if m.id and not any(
        HANGUL.search(s) for s in ((m.string,) if isinstance(m.string, str) else m.string))
        and HANGUL.search(str(m.id)) is None and re.search("[a-z]{3} [a-z]{3}", str(m.id))]
    assert english == []
