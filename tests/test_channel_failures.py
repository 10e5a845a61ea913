"""A channel that fails as a whole fails no customer; a refused recipient fails one.

Driven through the real CLI on the shipped sample, against a real SMTP server
(aiosmtpd) and a real HTTP receiver on loopback.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from servers import SmtpServer, WebhookServer

DAY0 = "2026-11-23T10:00"


def use_smtp(folder: Path, port: int) -> None:
    config = folder / "config.toml"
    text = re.sub(r'type = "outbox" .*\npath = "outbox"',
                  f'type = "smtp"\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
                  'username = "op"\npassword = "${SMTP_PASSWORD}"',
                  config.read_text(encoding="utf-8"))
    config.write_text(text, encoding="utf-8")


def flows(folder: Path) -> str:
    return (folder / "sample_sheets/customers.csv").read_bytes().decode("utf-8-sig")


def test_a_refused_login_fails_no_customer_and_the_next_run_sends_once(
        sample: Path, run_cli, monkeypatch) -> None:
    with SmtpServer(users={"op": "right"}) as smtp:
        use_smtp(sample, smtp.port)
        monkeypatch.setenv("SMTP_PASSWORD", "wrong")
        result = run_cli(sample, "--now", DAY0, "--json", "sync")
        assert result.code == 4, result.err
        data = json.loads(result.out)
        assert list(data["summary"]["channels_down"]) == ["email"]
        assert "login as 'op' refused" in data["summary"]["channels_down"]["email"]
        assert data["summary"]["failed"] == 0 and data["summary"]["sent"] == 0
        # One attempt, then the channel is left alone for the rest of the run.
        assert data["summary"]["waiting_for_channel"] == 22
        assert smtp.messages == []
        assert "실패" not in flows(sample)  # no flow was failed
        assert "wrong" not in result.out + result.err

        monkeypatch.setenv("SMTP_PASSWORD", "right")  # the operator fixes the secret
        result = run_cli(sample, "--now", "2026-11-23T10:10", "--json", "sync")
        assert result.code == 0, result.err
        assert json.loads(result.out)["summary"]["sent"] == 22
        assert len(smtp.messages) == 22
        assert len({m.message["Message-ID"] for m in smtp.messages}) == 22

        result = run_cli(sample, "--now", "2026-11-23T10:20", "--json", "sync")
        assert json.loads(result.out)["summary"]["sent"] == 0
        assert len(smtp.messages) == 22


def test_a_refused_recipient_fails_that_customer_only(sample: Path, run_cli,
                                                      monkeypatch) -> None:
    refused = "minjun.choi@example.com"
    with SmtpServer(users={"op": "right"},
                    refuse={refused: "550 5.1.1 No such user"}) as smtp:
        use_smtp(sample, smtp.port)
        monkeypatch.setenv("SMTP_PASSWORD", "right")
        result = run_cli(sample, "--now", DAY0, "--json", "sync")
    assert result.code == 1
    data = json.loads(result.out)
    assert data["summary"]["channels_down"] == {}
    assert data["summary"]["failed"] == 2  # his churn and review messages
    assert len(smtp.messages) == 20
    errors = [e for e in data["errors"] if e["key"] == refused]
    assert errors and all("550" in e["message"] for e in errors)


def test_a_webhook_url_that_answers_404_is_tried_once_per_run(sample: Path, run_cli) -> None:
    with WebhookServer([404] * 100) as server:
        config = sample / "config.toml"
        text = re.sub(r'type = "outbox" .*\npath = "outbox"\nfrom = .*\nto = "email".*\n',
                      f'type = "webhook"\nurl = "{server.url}"\n',
                      config.read_text(encoding="utf-8"))
        config.write_text(text, encoding="utf-8")
        result = run_cli(sample, "--now", DAY0, "sync")
        assert result.code == 4
        assert "channel email is down" in result.out
        assert "22 send(s) wait for the next run" in result.out
        assert len(server.requests) == 1
