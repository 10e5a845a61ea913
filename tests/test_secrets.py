"""Secrets never appear in output: not in plan, check, sync, nor in errors; and the one
redaction policy (``sheetcrm.redact``) that masks them."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from sheetcrm.channels.webhook import WebhookSettings
from sheetcrm.config import load_config
from sheetcrm.redact import (
    HIDDEN,
    config_secrets,
    is_secret_field,
    is_secret_key,
    mask,
    shown_value,
    url_origin,
)
from tests.support.servers import WebhookServer

SECRET = "whsec_" + base64.b64encode(b"very-secret-signing-key-0123456").decode()
PASSWORD = "pa55-W0rd-never-print"


def add_channels(folder: Path, url: str) -> None:
    config = folder / "config.toml"
    text = config.read_text(encoding="utf-8")
    text = re.sub(r"^\[channels\.email\].*?\n\n",
                  f'[channels.email]\ntype = "webhook"\nurl = "{url}"\n'
                  'secret = "${HOOK_SECRET}"\nretries = 0\n\n'
                  '[channels.smtp]\ntype = "smtp"\nhost = "127.0.0.1"\nport = 1\n'
                  'security = "none"\nusername = "me"\npassword = "${SMTP_PASSWORD}"\n'
                  'from = "S <s@example.com>"\n\n', text, flags=re.S | re.M)
    config.write_text(text, encoding="utf-8")


@pytest.mark.parametrize("args", [("check",), ("plan",), ("--json", "plan"), ("sync",),
                                  ("--json", "sync")])
def test_no_command_prints_a_secret(sample: Path, run_cli, monkeypatch, args) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    with WebhookServer() as server:
        add_channels(sample, server.url)
        result = run_cli(sample, "--now", "2026-11-23T10:00", *args)
    assert result.code in (0, 1), result.err
    for secret in (SECRET, SECRET.removeprefix("whsec_"), PASSWORD):
        assert secret not in result.out and secret not in result.err


def test_a_failing_webhook_error_does_not_print_the_secret(sample: Path, run_cli,
                                                           monkeypatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    with WebhookServer([400] * 50) as server:
        add_channels(sample, server.url)
        result = run_cli(sample, "--now", "2026-11-23T10:00", "sync")
    assert result.code == 1
    assert "400" in result.out
    assert SECRET not in result.out + result.err


def test_a_secret_is_masked_whole_even_when_it_contains_another() -> None:
    text = "login abc failed; token abcdef-1 rejected"
    assert mask(text, ["abc", "abcdef-1", ""]) == "login *** failed; token *** rejected"
    assert mask("nothing secret here", []) == "nothing secret here"


def test_a_password_in_a_url_is_masked_in_text_and_a_url_alone_keeps_only_its_origin() -> None:
    assert mask("POST https://me:pa55@hooks.example.com/t/x failed", []) == \
        "POST https://***@hooks.example.com/t/x failed"
    assert url_origin("https://u:p@example.com:8443/a/b?token=x#f") == "https://example.com:8443"
    assert url_origin("https://hooks.slack.com/services/T0/B0/XyZ") == "https://hooks.slack.com"
    assert url_origin("http://[::1]/hook") == "http://[::1]"
    assert url_origin("not a url /with/a/token") == ""


def test_a_configs_secrets_are_its_secret_settings_and_the_env_values_its_file_names(
        sample: Path) -> None:
    add_channels(sample, "${HOOK_URL}")
    config_file = sample / "config.toml"
    config_file.write_text(config_file.read_text(encoding="utf-8")
                           .replace("port = 1\n", 'port = "${SMTP_PORT}"\n'), encoding="utf-8")
    env = {"HOOK_URL": "https://hooks.example.com/t/abc123token", "HOOK_SECRET": SECRET,
           "SMTP_PASSWORD": PASSWORD, "SMTP_PORT": "25", "UNRELATED": "not-in-the-config"}
    found = config_secrets(load_config(config_file, env), env)
    assert set(found) == {SECRET, PASSWORD, env["HOOK_URL"]}  # "25" is too short to mask
    assert found == sorted(found, key=len, reverse=True)


def test_a_field_is_secret_by_its_type_and_a_key_by_its_name() -> None:
    assert is_secret_field(WebhookSettings, "secret")  # SecretStr | None
    assert is_secret_field(WebhookSettings, "headers")  # dict[str, SecretStr]
    assert not is_secret_field(WebhookSettings, "url")
    assert is_secret_field(WebhookSettings, "secert")  # unknown: maybe a misspelt secret
    assert is_secret_key("channels.smtp.password") and is_secret_key("table.token")
    assert not is_secret_key("channels.smtp.host")
    assert shown_value("pa55", secret=True) == HIDDEN
    assert shown_value("smtp.example.com", secret=False) == "'smtp.example.com'"
