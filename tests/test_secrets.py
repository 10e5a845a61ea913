"""Secrets never appear in output: not in plan, check, sync, nor in errors."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from servers import WebhookServer

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
